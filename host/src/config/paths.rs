//! Path resolution (server.md §1.4) and config file discovery (§1.1).

use std::path::{Component, Path, PathBuf};

use super::error::ConfigError;

/// Environment variable naming the config **file** (despite its name).
pub const CONFIG_ENV: &str = "DEEPSTREAM_CONFIG_DIRECTORY";
/// Environment variable naming the plugin library directory.
pub const LIB_DIR_ENV: &str = "DEEPSTREAM_LIBRARY_DIRECTORY";

/// Resolves `path` against the prefix directory `prefix` following server.md §1.4:
///
/// | `path` is …                  | prefix set                              | prefix unset        |
/// |------------------------------|-----------------------------------------|---------------------|
/// | absolute                     | `path`                                  | `path`              |
/// | relative, starting with `.`  | `prefix/path` (relative prefix: `CWD/prefix/path`) | `CWD/path` |
/// | bare (not starting with `.`) | same as above                           | `path` unchanged    |
///
/// Joined results are lexically normalised (`.` and `..` components folded, like Node's
/// `path.join`).
pub fn resolve_path(path: &Path, prefix: Option<&Path>) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match prefix {
        Some(dir) => normalize(&absolute(dir).join(path)),
        None if path.as_os_str().to_string_lossy().starts_with('.') => normalize(&absolute(path)),
        None => path.to_path_buf(),
    }
}

/// `path` made absolute against the current working directory (no normalisation).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(path),
            Err(_) => path.to_path_buf(),
        }
    }
}

/// Lexical normalisation: drops `.` components and folds `..` into the preceding component.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let last_is_normal =
                    matches!(out.components().next_back(), Some(Component::Normal(_)));
                if last_is_normal {
                    out.pop();
                } else if !matches!(
                    out.components().next_back(),
                    Some(Component::RootDir | Component::Prefix(_))
                ) {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The stems searched when no config path is given (server.md §1.1), in order.
pub fn default_config_stems() -> Vec<PathBuf> {
    let mut stems = vec![
        PathBuf::from("/etc/deepstream/conf"),
        PathBuf::from("./conf/config"),
        PathBuf::from("../conf/config"),
    ];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        stems.push(dir.join("conf").join("config"));
        stems.push(dir.join("..").join("conf").join("config"));
    }
    stems
}

/// Extensions tried for every stem, in order. `.js` is looked for only to report that it is
/// not supported.
pub const CONFIG_EXTENSIONS: [&str; 4] = ["yml", "yaml", "json", "js"];

/// Picks the config file: `explicit` (argument), else `env_path`
/// (`DEEPSTREAM_CONFIG_DIRECTORY`), else the first existing `<stem>.<ext>`.
pub(crate) fn find_config_file(
    explicit: Option<&Path>,
    env_path: Option<PathBuf>,
    stems: &[PathBuf],
) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit.map(Path::to_path_buf).or(env_path) {
        if !path.is_file() {
            return Err(ConfigError::FileNotFound(path));
        }
        return Ok(path);
    }
    let mut searched = Vec::new();
    for stem in stems {
        for ext in CONFIG_EXTENSIONS {
            let mut candidate = stem.clone().into_os_string();
            candidate.push(".");
            candidate.push(ext);
            let candidate = PathBuf::from(candidate);
            if candidate.is_file() {
                return Ok(candidate);
            }
            searched.push(candidate);
        }
    }
    Err(ConfigError::NoConfigFile { searched })
}

/// Config file formats this server reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Json,
}

pub(crate) fn format_of(path: &Path) -> Result<Format, ConfigError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "yml" | "yaml" => Ok(Format::Yaml),
        "json" => Ok(Format::Json),
        "js" | "cjs" | "mjs" => Err(ConfigError::JavaScriptNotSupported(path.to_path_buf())),
        _ => Err(ConfigError::UnsupportedFormat {
            path: path.to_path_buf(),
            extension: if ext.is_empty() {
                "(no extension)".to_owned()
            } else {
                format!(".{ext}")
            },
        }),
    }
}
