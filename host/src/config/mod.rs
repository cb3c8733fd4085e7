//! Configuration loading (server.md §1).
//!
//! Pipeline: find the file (§1.1) → pre-process the text (`file()`, `fileLoad()`, `${VAR}`;
//! §1.2) → parse YAML/JSON → merge over the built-in defaults (§1.5) → apply CLI
//! [`Overrides`] → determine `libDir` → validate and build the typed [`Config`] (§1.3).
//!
//! Every problem is collected into one [`ConfigError`]; its `Display` is one line per problem
//! naming the JSON pointer of the offending value.

mod build;
mod defaults;
mod error;
mod model;
mod overrides;
mod paths;
mod preprocess;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub use build::base36;
pub use defaults::{TOP_LEVEL_KEYS, defaults, endpoint_defaults, merge};
pub use error::{ConfigError, Problem};
pub use model::{
    EnabledFeatures, EndpointDecl, EndpointKind, EndpointOptions, HttpEndpointOptions,
    HttpServerOptions, JSON_LOGGER, ListenConfig, LogLevel, MqttEndpointOptions, PluginDecl,
    PluginKind, RecordConfig, RpcConfig, TlsOptions, WebSocketEndpointOptions,
    library_candidates_for,
};
pub use overrides::Overrides;
pub use paths::{CONFIG_ENV, LIB_DIR_ENV, default_config_stems, resolve_path};

pub(crate) use build::random_uuid;
use build::{BuildInput, build};
use paths::{Format, absolute, find_config_file, format_of, normalize};
use preprocess::{EnvFn, parse_json, parse_yaml, preprocess, process_env};

/// The fully defaulted, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file the config was loaded from (absolute), if any.
    pub config_file: Option<PathBuf>,
    /// The directory relative config paths are resolved against (absolute).
    pub conf_dir: PathBuf,
    /// Plugin library directory: CLI `--lib-dir` > `libDir` (relative to the conf dir) >
    /// `DEEPSTREAM_LIBRARY_DIRECTORY` > none. Absolute.
    pub lib_dir: Option<PathBuf>,
    /// `serverName` (`UUID` and "missing" already replaced by random ids).
    pub server_name: String,
    pub show_logo: bool,
    /// Top-level `logLevel`; see also [`Config::effective_log_level`].
    pub log_level: LogLevel,
    pub dependency_initialization_timeout: Duration,
    pub exit_on_fatal_error: bool,
    pub enabled_features: EnabledFeatures,
    pub rpc: RpcConfig,
    pub record: RecordConfig,
    pub listen: ListenConfig,
    pub http_server: PluginDecl,
    /// Typed view of `http_server.options` (CLI `--host`/`--port` already applied).
    pub http_server_options: HttpServerOptions,
    /// Enabled endpoints in config order (`null` entries dropped); never empty.
    pub connection_endpoints: Vec<EndpointDecl>,
    pub logger: PluginDecl,
    pub subscriptions: PluginDecl,
    /// Authentication handlers in order; never empty. With several entries, every entry whose
    /// `options.reportInvalidParameters` is not `true` has it set to `false` (§1.6).
    pub auth: Vec<PluginDecl>,
    pub permission: PluginDecl,
    pub cache: PluginDecl,
    pub storage: PluginDecl,
    /// `monitoring` as a list (a single declaration becomes a one-element list).
    pub monitoring: Vec<PluginDecl>,
    pub telemetry: PluginDecl,
    pub locks: PluginDecl,
    pub cluster_node: PluginDecl,
    pub cluster_registry: PluginDecl,
    pub cluster_states: PluginDecl,
    /// `plugins:` entries (key, declaration) in config order.
    pub plugins: Vec<(String, PluginDecl)>,
    /// The complete merged config as JSON, with the normalisations above applied (resolved
    /// paths, endpoint defaults, `serverName`, `libDir`) — "the full config" handed to plugins.
    pub raw: Value,
}

impl Config {
    /// Loads the config file `path`, or — if `None` — the file named by
    /// `DEEPSTREAM_CONFIG_DIRECTORY`, or the first file found in the default locations
    /// (server.md §1.1).
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        load_with(path, overrides, &process_env, &default_config_stems())
    }

    /// Builds a config from YAML (or JSON) text as if it had been read from a file in
    /// `conf_dir` (pre-processing included).
    pub fn from_yaml_str(
        text: &str,
        conf_dir: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        from_text(text, Format::Yaml, conf_dir, None, overrides, &process_env)
    }

    /// Builds a config from an already parsed value merged over the defaults, without text
    /// pre-processing (embedding API, server.md §1.9).
    pub fn from_value(
        value: Value,
        conf_dir: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        build(
            value,
            BuildInput {
                conf_dir,
                config_file: None,
                overrides,
                env: &process_env,
            },
        )
    }

    /// The level the logger should start with: `logger.options.logLevel` if set, else
    /// `logLevel` (server.md §2.4.5).
    pub fn effective_log_level(&self) -> LogLevel {
        self.logger
            .options
            .get("logLevel")
            .and_then(LogLevel::from_value)
            .unwrap_or(self.log_level)
    }

    /// The `plugins:` entry with this key.
    pub fn plugin(&self, key: &str) -> Option<&PluginDecl> {
        self.plugins.iter().find(|(k, _)| k == key).map(|(_, d)| d)
    }

    /// The declaration behind a service key as the server names services in messages:
    /// `storage`, `cache`, `permission`, `logger`, `locks`, `clusterNode`, `clusterRegistry`,
    /// `clusterStates`, `auth[i]`, `monitoring[i]`, `plugins.<name>`.
    pub fn declaration(&self, key: &str) -> Option<&PluginDecl> {
        let indexed = |prefix: &str, list: &'_ [PluginDecl]| -> Option<usize> {
            let index = key
                .strip_prefix(prefix)?
                .strip_prefix('[')?
                .strip_suffix(']')?;
            index.parse().ok().filter(|i| *i < list.len())
        };
        match key {
            "storage" => Some(&self.storage),
            "cache" => Some(&self.cache),
            "permission" => Some(&self.permission),
            "logger" => Some(&self.logger),
            "locks" => Some(&self.locks),
            "clusterNode" => Some(&self.cluster_node),
            "clusterRegistry" => Some(&self.cluster_registry),
            "clusterStates" => Some(&self.cluster_states),
            _ => {
                if let Some(i) = indexed("auth", &self.auth) {
                    Some(&self.auth[i])
                } else if let Some(i) = indexed("monitoring", &self.monitoring) {
                    Some(&self.monitoring[i])
                } else {
                    self.plugin(key.strip_prefix("plugins.")?)
                }
            }
        }
    }
}

impl Default for Config {
    /// The built-in defaults (no file), relative to the current directory.
    fn default() -> Self {
        Config::from_value(Value::Null, Path::new("."), &Overrides::default())
            .expect("the built-in defaults are valid")
    }
}

fn load_with(
    path: Option<&Path>,
    overrides: &Overrides,
    env: EnvFn<'_>,
    stems: &[PathBuf],
) -> Result<Config, ConfigError> {
    let env_path = env(CONFIG_ENV).filter(|s| !s.is_empty()).map(PathBuf::from);
    let file = find_config_file(path, env_path, stems)?;
    let format = format_of(&file)?;
    let file = normalize(&absolute(&file));
    let text = std::fs::read(&file)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| "file is not valid UTF-8".to_owned())
        })
        .map_err(|message| ConfigError::Read {
            path: file.clone(),
            message,
        })?;
    let conf_dir = file
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    from_text(&text, format, &conf_dir, Some(file), overrides, env)
}

fn from_text(
    text: &str,
    format: Format,
    conf_dir: &Path,
    file: Option<PathBuf>,
    overrides: &Overrides,
    env: EnvFn<'_>,
) -> Result<Config, ConfigError> {
    let conf_dir = normalize(&absolute(conf_dir));
    let source = file.as_ref().map_or_else(
        || "<config>".to_owned(),
        |f| {
            f.file_name().map_or_else(
                || f.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        },
    );
    let text = preprocess(text, format, &conf_dir, &source, env).map_err(ConfigError::Invalid)?;
    let value = match format {
        Format::Yaml => parse_yaml(&text),
        Format::Json => parse_json(&text),
    }
    .map_err(|message| ConfigError::Parse {
        path: file.clone(),
        message,
    })?;
    build(
        value,
        BuildInput {
            conf_dir: &conf_dir,
            config_file: file,
            overrides,
            env,
        },
    )
}
