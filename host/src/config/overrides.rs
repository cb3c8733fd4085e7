//! Command-line overrides (server.md §1.3 step 1, §1.8 "Intended effect of start flags").

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::model::LogLevel;

/// Values given on the command line; every `Some`/`true` field overrides the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `-l/--lib-dir`: wins over `libDir` and `DEEPSTREAM_LIBRARY_DIRECTORY`; relative to CWD.
    pub lib_dir: Option<PathBuf>,
    /// `--host`: sets `httpServer.options.host`.
    pub host: Option<String>,
    /// `--port`: sets `httpServer.options.port` (see [`Overrides::parse_port`]).
    pub port: Option<u16>,
    /// `--log-level`: sets `logger.options.logLevel` to the level name and the top-level
    /// `logLevel` to its number.
    pub log_level: Option<LogLevel>,
    /// `--colors`: sets `logger.options.colors`.
    pub colors: Option<bool>,
    /// `--disable-auth`: `auth` becomes `[{type: none}]`.
    pub disable_auth: bool,
    /// `--disable-permissions`: `permission` becomes `{type: none}` (options kept).
    pub disable_permissions: bool,
    /// Sets `serverName` (e.g. for the workers of a vertical cluster); `UUID` is honoured.
    pub server_name: Option<String>,
}

impl Overrides {
    /// Parses a `--port` value; the error is the CLI message of server.md §1.8.
    pub fn parse_port(value: &str) -> Result<u16, String> {
        match value.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err("Provided --port must be an integer between 1 and 65535".to_owned()),
        }
    }

    /// Parses a `--colors` value (`true`/`false`).
    pub fn parse_colors(value: &str) -> Result<bool, String> {
        match value.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("Invalid argument for --colors, please provide true or false".to_owned()),
        }
    }

    /// Applies everything except `lib_dir` (handled with the libDir precedence rules) to the
    /// merged config. Sections that are not objects are left alone (validation reports them).
    pub(crate) fn apply(&self, config: &mut Map<String, Value>) {
        if let Some(name) = &self.server_name {
            config.insert("serverName".into(), Value::String(name.clone()));
        }
        if let Some(host) = &self.host {
            set_option(config, "httpServer", "host", Value::String(host.clone()));
        }
        if let Some(port) = self.port {
            set_option(config, "httpServer", "port", json!(port));
        }
        if let Some(level) = self.log_level {
            config.insert("logLevel".into(), json!(level.as_number()));
            set_option(config, "logger", "logLevel", json!(level.name()));
        }
        if let Some(colors) = self.colors {
            set_option(config, "logger", "colors", Value::Bool(colors));
        }
        if self.disable_auth {
            config.insert("auth".into(), json!([{"type": "none", "options": {}}]));
        }
        if self.disable_permissions {
            let options = config
                .get("permission")
                .and_then(|p| p.get("options"))
                .filter(|o| o.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}));
            config.insert(
                "permission".into(),
                json!({"type": "none", "options": options}),
            );
        }
    }
}

fn set_option(config: &mut Map<String, Value>, section: &str, key: &str, value: Value) {
    let section = config
        .entry(section)
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(section) = section else {
        return;
    };
    let options = section
        .entry("options")
        .or_insert_with(|| Value::Object(Map::new()));
    if options.is_null() {
        *options = Value::Object(Map::new());
    }
    if let Value::Object(options) = options {
        options.insert(key.to_owned(), value);
    }
}
