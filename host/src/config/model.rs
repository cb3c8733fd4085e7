//! The typed configuration model.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// Log levels (server.md §1.5 `logLevel`, Appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
    Fatal = 4,
    Off = 100,
}

impl LogLevel {
    /// All levels, lowest first.
    pub const ALL: [LogLevel; 6] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
        LogLevel::Fatal,
        LogLevel::Off,
    ];

    /// The numeric value (0..=4, 100).
    pub fn as_number(self) -> u8 {
        self as u8
    }

    /// `0..=4` or `100`.
    pub fn from_number(n: u64) -> Option<LogLevel> {
        LogLevel::ALL
            .into_iter()
            .find(|l| u64::from(l.as_number()) == n)
    }

    /// Upper-case name as used by deepstream: `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`, `OFF`.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Fatal => "FATAL",
            LogLevel::Off => "OFF",
        }
    }

    /// Case-insensitive level name (`debug`, `INFO`, …, `off`).
    pub fn from_name(name: &str) -> Option<LogLevel> {
        LogLevel::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Parses a level given as a number or a name, as accepted in the config file.
    pub fn from_value(value: &Value) -> Option<LogLevel> {
        match value {
            Value::Number(n) => n.as_u64().and_then(LogLevel::from_number),
            Value::String(s) => LogLevel::from_name(s),
            _ => None,
        }
    }

    /// Parses the CLI `--log-level` value (debug|info|warn|error|off, case-insensitive).
    /// The error is the CLI message of server.md §1.8.
    pub fn parse_cli(value: &str) -> Result<LogLevel, String> {
        match LogLevel::from_name(value) {
            Some(LogLevel::Fatal) | None => {
                Err("Log level must be one of the following (debug|info|warn|error|off)".to_owned())
            }
            Some(level) => Ok(level),
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `enabledFeatures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledFeatures {
    pub record: bool,
    pub event: bool,
    pub rpc: bool,
    pub presence: bool,
    pub monitoring: bool,
}

/// `rpc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    pub ack_timeout: Duration,
    pub response_timeout: Duration,
    pub provide_requestor_name: bool,
    pub provide_requestor_data: bool,
}

/// `record`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    pub cache_retrieval_timeout: Duration,
    pub storage_retrieval_timeout: Duration,
    pub storage_exclusion_prefixes: Vec<String>,
    pub storage_hot_path_prefixes: Vec<String>,
}

/// `listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenConfig {
    pub shuffle_providers: bool,
    pub response_timeout: Duration,
    /// As configured. Per server.md §1.5, values ≤ 1 s disable periodic re-matching (the
    /// listen implementation logs the `INVALID_CONFIG_DATA` warning).
    pub rematch_interval: Duration,
    pub match_cooldown: Duration,
}

/// Which kind of service a plugin declaration is for; determines the library naming
/// convention (server.md §1.6 `<kind>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    Cache,
    Storage,
    Logger,
    Locks,
    Subscriptions,
    ClusterRegistry,
    ClusterStates,
    ClusterNode,
    HttpServer,
    Authentication,
    Permission,
    Monitoring,
    Telemetry,
    /// Custom connection endpoints.
    Connection,
    /// Entries of the `plugins:` section.
    Plugin,
}

impl PluginKind {
    /// The lower-case `<kind>` used in library names.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Cache => "cache",
            PluginKind::Storage => "storage",
            PluginKind::Logger => "logger",
            PluginKind::Locks => "locks",
            PluginKind::Subscriptions => "subscriptions",
            PluginKind::ClusterRegistry => "clusterregistry",
            PluginKind::ClusterStates => "clusterstates",
            PluginKind::ClusterNode => "clusternode",
            PluginKind::HttpServer => "httpserver",
            PluginKind::Authentication => "authentication",
            PluginKind::Permission => "permission",
            PluginKind::Monitoring => "monitoring",
            PluginKind::Telemetry => "telemetry",
            PluginKind::Connection => "connection",
            PluginKind::Plugin => "plugin",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service section / plugin declaration (server.md §1.6) with the section's defaults
/// merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDecl {
    pub kind: PluginKind,
    /// `type`: selects a built-in implementation.
    pub type_: Option<String>,
    /// `name`: a plugin name, resolved by naming convention ([`PluginDecl::library_candidates`]).
    pub name: Option<String>,
    /// `path`: explicit library file, already resolved (server.md §1.4 with the lib dir;
    /// without a lib dir, `./`-relative paths are resolved against the conf dir and bare
    /// names are kept as they are, i.e. relative to the working directory).
    pub path: Option<PathBuf>,
    /// `options`: always a JSON object (absent → `{}`).
    pub options: Value,
}

/// The `logger` `name` that selects the built-in JSON logger (the reference's pino logger).
pub const JSON_LOGGER: &str = "pino";

impl PluginDecl {
    /// True when this declaration refers to an external library (`name` or `path` set), which
    /// takes precedence over `type` (server.md §1.6 resolution order).
    pub fn is_external(&self) -> bool {
        self.name.is_some() || self.path.is_some()
    }

    /// Whether `name` selects the built-in called `builtin` rather than a library, as
    /// `logger: {name: pino}` does (server.md §1.6 per-section rules); a `path` always means a
    /// library.
    pub fn names_builtin(&self, builtin: &str) -> bool {
        self.path.is_none() && self.name.as_deref() == Some(builtin)
    }

    /// The library files to try, in order:
    /// * `path` set → just that path;
    /// * `name` set → `<libDir>/{DLL_PREFIX}deepstream_<kind>_<name>{DLL_SUFFIX}`, then
    ///   `<libDir>/{DLL_PREFIX}<name>{DLL_SUFFIX}` (name lower-cased, `-` → `_` as cargo does
    ///   for cdylib names; the un-mapped spelling is added too if it differs). Without a lib
    ///   dir the bare file names are returned, which the loader looks for in the working
    ///   directory (there is no system library search: a file is only loaded from where the
    ///   config says);
    /// * neither → empty.
    pub fn library_candidates(&self, lib_dir: Option<&Path>) -> Vec<PathBuf> {
        if let Some(path) = &self.path {
            return vec![path.clone()];
        }
        let Some(name) = &self.name else {
            return Vec::new();
        };
        library_candidates_for(self.kind, name, lib_dir)
    }
}

/// See [`PluginDecl::library_candidates`].
pub fn library_candidates_for(
    kind: PluginKind,
    name: &str,
    lib_dir: Option<&Path>,
) -> Vec<PathBuf> {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    let lower = name.trim().to_lowercase();
    let underscored = lower.replace('-', "_");
    let mut stems = vec![
        format!("deepstream_{}_{underscored}", kind.as_str()),
        underscored,
    ];
    if lower != stems[1] {
        stems.push(lower);
    }
    stems
        .into_iter()
        .map(|stem| {
            let file = format!("{DLL_PREFIX}{stem}{DLL_SUFFIX}");
            match lib_dir {
                Some(dir) => dir.join(file),
                None => PathBuf::from(file),
            }
        })
        .collect()
}

/// TLS material given inline (PEM contents, typically via `fileLoad()`), or file names for
/// services that take names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub key: String,
    pub cert: String,
    pub ca: Option<String>,
}

/// Typed view of `httpServer.options` (defaults of server.md §1.5 / §2.4.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpServerOptions {
    pub host: String,
    pub port: u16,
    pub health_check_path: String,
    pub allow_all_origins: bool,
    pub origins: Vec<String>,
    pub headers: Vec<String>,
    /// POST body limit in bytes.
    pub max_message_size: u64,
    pub host_url: Option<String>,
    pub ssl: Option<TlsOptions>,
}

/// Built-in endpoint types, plus `Custom` for `name`/`path` endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    WsBinary,
    WsText,
    WsJson,
    Http,
    Mqtt,
    Custom,
}

impl EndpointKind {
    pub const BUILT_IN: [EndpointKind; 5] = [
        EndpointKind::WsText,
        EndpointKind::WsJson,
        EndpointKind::WsBinary,
        EndpointKind::Http,
        EndpointKind::Mqtt,
    ];

    /// The config `type` string (`custom` for [`EndpointKind::Custom`]).
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::WsBinary => "ws-binary",
            EndpointKind::WsText => "ws-text",
            EndpointKind::WsJson => "ws-json",
            EndpointKind::Http => "http",
            EndpointKind::Mqtt => "mqtt",
            EndpointKind::Custom => "custom",
        }
    }

    pub fn from_type(type_: &str) -> Option<EndpointKind> {
        EndpointKind::BUILT_IN
            .into_iter()
            .find(|k| k.as_str() == type_)
    }

    /// The default WebSocket upgrade path of a WebSocket endpoint type.
    pub fn default_url_path(self) -> Option<&'static str> {
        match self {
            EndpointKind::WsBinary => Some("/deepstream"),
            EndpointKind::WsText => Some("/deepstream-v3"),
            EndpointKind::WsJson => Some("/deepstream-json"),
            _ => None,
        }
    }
}

/// Options of the `ws-binary`, `ws-text` and `ws-json` endpoints (server.md §1.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketEndpointOptions {
    pub url_path: String,
    pub heartbeat_interval: Duration,
    /// Zero = write immediately.
    pub outgoing_buffer_timeout: Duration,
    pub max_buffer_byte_size: u64,
    pub headers: Vec<String>,
    /// `None` = disabled (`false` / `null` in the config).
    pub unauthenticated_client_timeout: Option<Duration>,
    pub max_auth_attempts: u32,
    pub log_invalid_auth_data: bool,
    /// Max inbound frame payload in bytes.
    pub max_message_size: u64,
}

/// Options of the `http` endpoint (server.md §1.5.1, §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpEndpointOptions {
    pub allow_auth_data: bool,
    pub enable_auth_endpoint: bool,
    pub auth_path: String,
    pub post_path: String,
    pub get_path: String,
    pub log_invalid_auth_data: bool,
    pub request_timeout: Duration,
}

/// Options of the `mqtt` endpoint (server.md §1.5.1, §5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttEndpointOptions {
    pub host: String,
    pub port: u16,
    pub idle_timeout: Duration,
    /// `None` = disabled.
    pub unauthenticated_client_timeout: Option<Duration>,
    /// `None` = failed logins never disconnect (the MQTT default).
    pub max_auth_attempts: Option<u32>,
    pub log_invalid_auth_data: bool,
    /// PEM contents; `Some` → TLS listener.
    pub ssl: Option<TlsOptions>,
}

/// Typed endpoint options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointOptions {
    WebSocket(WebSocketEndpointOptions),
    Http(HttpEndpointOptions),
    Mqtt(MqttEndpointOptions),
    /// A plugin endpoint: its options are only available as JSON in `decl.options`.
    Custom,
}

/// One entry of `connectionEndpoints` (a `null` entry is dropped = disabled).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointDecl {
    pub kind: EndpointKind,
    /// The declaration; for built-in types `options` already has the type's defaults merged.
    pub decl: PluginDecl,
    pub options: EndpointOptions,
}
