//! Configuration errors.
//!
//! Every [`ConfigError`] renders as one line per problem; the first line always stands alone
//! as a useful summary. The CLI turns [`ConfigError::problems`] into the numbered
//! "There was an error validating your configuration:" list and exits with status 1.

use std::fmt;
use std::path::PathBuf;

/// One problem found while pre-processing or validating a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the problem is: a JSON pointer into the merged config (`/httpServer/options/port`),
    /// or `<file>:<line> (<key>)` for text pre-processing problems.
    pub location: String,
    /// What is wrong, e.g. `must be an integer >= 1, got "abc"`.
    pub message: String,
}

impl Problem {
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.location, self.message)
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// An explicitly given config path (argument or `DEEPSTREAM_CONFIG_DIRECTORY`) does not exist.
    FileNotFound(PathBuf),
    /// No path given and none of the default locations holds a config file.
    NoConfigFile { searched: Vec<PathBuf> },
    /// The file extension is not one of `.yml`, `.yaml`, `.json`.
    UnsupportedFormat { path: PathBuf, extension: String },
    /// A `.js` config was selected; this server cannot evaluate JavaScript.
    JavaScriptNotSupported(PathBuf),
    /// The config file exists but could not be read.
    Read { path: PathBuf, message: String },
    /// The (pre-processed) text is not valid YAML / JSON.
    Parse {
        path: Option<PathBuf>,
        message: String,
    },
    /// Pre-processing (`file()`, `fileLoad()`) or validation found one or more problems.
    /// Never empty.
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems as readable lines (one per problem, without numbering).
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
            other => vec![other.single_line()],
        }
    }

    /// The structured problems of an [`ConfigError::Invalid`] error (empty for other kinds).
    pub fn invalid_problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            _ => &[],
        }
    }

    fn single_line(&self) -> String {
        match self {
            ConfigError::FileNotFound(path) => {
                format!("Configuration file not found at: {}", path.display())
            }
            ConfigError::NoConfigFile { searched } => {
                let list: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
                format!("No config file found (looked for: {})", list.join(", "))
            }
            ConfigError::UnsupportedFormat { path, extension } => format!(
                "{extension} is not supported as configuration file ({}); use .yml, .yaml or .json",
                path.display()
            ),
            ConfigError::JavaScriptNotSupported(path) => format!(
                "{}: JavaScript configuration files are not supported by this server; use .yml, .yaml or .json",
                path.display()
            ),
            ConfigError::Read { path, message } => {
                format!("could not read config file {}: {message}", path.display())
            }
            ConfigError::Parse {
                path: Some(path),
                message,
            } => format!("could not parse config file {}: {message}", path.display()),
            ConfigError::Parse {
                path: None,
                message,
            } => format!("could not parse config: {message}"),
            ConfigError::Invalid(problems) => problems
                .first()
                .map(ToString::to_string)
                .unwrap_or_else(|| "invalid configuration".to_owned()),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems().join("\n"))
    }
}

impl std::error::Error for ConfigError {}
