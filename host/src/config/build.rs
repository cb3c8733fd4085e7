//! Merging, CLI overrides, validation and typed extraction (server.md §1.3, §1.5, §1.6).
//!
//! Validation and the typed view are produced by the same code, so everything the typed
//! [`Config`] exposes has been checked. All problems are collected; nothing stops at the first.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::Config;
use super::defaults::{TOP_LEVEL_KEYS, defaults, endpoint_defaults, merge};
use super::error::{ConfigError, Problem};
use super::model::*;
use super::overrides::Overrides;
use super::paths::{LIB_DIR_ENV, absolute, normalize, resolve_path};
use super::preprocess::{EnvFn, escape_pointer, load_file_value};

pub(crate) struct BuildInput<'a> {
    pub conf_dir: &'a Path,
    pub config_file: Option<PathBuf>,
    pub overrides: &'a Overrides,
    pub env: EnvFn<'a>,
}

pub(crate) fn build(file: Value, input: BuildInput<'_>) -> Result<Config, ConfigError> {
    let conf_dir = normalize(&absolute(input.conf_dir));
    let mut c = Checker {
        problems: Vec::new(),
        conf_dir: conf_dir.clone(),
        lib_dir: None,
        env: input.env,
    };

    let file = match file {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        other => {
            return Err(ConfigError::Invalid(vec![Problem::new(
                "/",
                format!(
                    "the configuration must be a mapping of keys to values, got {}",
                    got(&other)
                ),
            )]));
        }
    };
    for key in file.keys() {
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            c.unknown_key("", key, "top-level key", &TOP_LEVEL_KEYS);
        }
    }

    let mut merged = defaults();
    // A section that names a plugin library gets none of the built-in's defaults: the
    // library owns its options and may reject keys it does not know.
    for (key, section) in &file {
        let names_library = |k: &str| section.get(k).is_some_and(|v| !v.is_null());
        if let Some(default) = merged.get_mut(key.as_str())
            && default.is_object()
            && (names_library("name") || names_library("path"))
        {
            *default = json!({});
        }
    }
    merge(&mut merged, Value::Object(file));
    let Value::Object(mut root) = merged else {
        unreachable!("defaults are an object")
    };
    input.overrides.apply(&mut root);

    // libDir: CLI > config (relative to the conf dir) > environment.
    c.lib_dir = if let Some(dir) = &input.overrides.lib_dir {
        Some(normalize(&absolute(dir)))
    } else {
        match root.get("libDir") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => {
                Some(resolve_path(Path::new(s), Some(&conf_dir)))
            }
            Some(other) => {
                c.err(
                    "/libDir",
                    format!("must be a directory path or null, got {}", got(other)),
                );
                None
            }
        }
        .or_else(|| {
            (c.env)(LIB_DIR_ENV)
                .filter(|s| !s.is_empty())
                .map(|s| normalize(&absolute(Path::new(&s))))
        })
    };
    root.insert(
        "libDir".into(),
        c.lib_dir
            .as_ref()
            .map_or(Value::Null, |d| Value::String(d.display().to_string())),
    );

    let server_name = match root.get("serverName") {
        None => random_server_name(),
        Some(Value::String(s)) if s == "UUID" => random_uuid(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(other) => {
            c.err(
                "/serverName",
                format!("must be a non-empty string, got {}", got(other)),
            );
            String::new()
        }
    };
    root.insert("serverName".into(), Value::String(server_name.clone()));

    let show_logo = c.bool(&root, "", "showLogo", false);
    let exit_on_fatal_error = c.bool(&root, "", "exitOnFatalError", false);
    let log_level = c.log_level(&root, "", "logLevel").unwrap_or(LogLevel::Info);
    let dependency_initialization_timeout =
        c.ms(&root, "", "dependencyInitializationTimeout", 1000, 2000);

    let enabled_features = {
        let o = c.section_object(&root, "enabledFeatures");
        c.known_keys(
            &o,
            "/enabledFeatures",
            &["record", "event", "rpc", "presence", "monitoring"],
        );
        EnabledFeatures {
            record: c.bool(&o, "/enabledFeatures", "record", true),
            event: c.bool(&o, "/enabledFeatures", "event", true),
            rpc: c.bool(&o, "/enabledFeatures", "rpc", true),
            presence: c.bool(&o, "/enabledFeatures", "presence", true),
            monitoring: c.bool(&o, "/enabledFeatures", "monitoring", false),
        }
    };
    let rpc = {
        let o = c.section_object(&root, "rpc");
        let p = "/rpc";
        c.known_keys(
            &o,
            p,
            &[
                "ackTimeout",
                "responseTimeout",
                "provideRequestorName",
                "provideRequestorData",
            ],
        );
        RpcConfig {
            ack_timeout: c.ms(&o, p, "ackTimeout", 1, 1000),
            response_timeout: c.ms(&o, p, "responseTimeout", 1, 10000),
            provide_requestor_name: c.bool(&o, p, "provideRequestorName", false),
            provide_requestor_data: c.bool(&o, p, "provideRequestorData", false),
        }
    };
    let record = {
        let o = c.section_object(&root, "record");
        let p = "/record";
        c.known_keys(
            &o,
            p,
            &[
                "cacheRetrievalTimeout",
                "storageRetrievalTimeout",
                "storageExclusionPrefixes",
                "storageHotPathPrefixes",
            ],
        );
        RecordConfig {
            cache_retrieval_timeout: c.ms(&o, p, "cacheRetrievalTimeout", 1, 1000),
            storage_retrieval_timeout: c.ms(&o, p, "storageRetrievalTimeout", 1, 2000),
            storage_exclusion_prefixes: c.strings(&o, p, "storageExclusionPrefixes", true),
            storage_hot_path_prefixes: c.strings(&o, p, "storageHotPathPrefixes", true),
        }
    };
    let listen = {
        let o = c.section_object(&root, "listen");
        let p = "/listen";
        c.known_keys(
            &o,
            p,
            &[
                "shuffleProviders",
                "responseTimeout",
                "rematchInterval",
                "matchCooldown",
            ],
        );
        ListenConfig {
            shuffle_providers: c.bool(&o, p, "shuffleProviders", true),
            response_timeout: c.ms(&o, p, "responseTimeout", 1, 500),
            rematch_interval: c.ms(&o, p, "rematchInterval", 0, 30000),
            match_cooldown: c.ms(&o, p, "matchCooldown", 0, 10000),
        }
    };

    let http_server = c.section(
        &root,
        "httpServer",
        PluginKind::HttpServer,
        &["default", "uws"],
    );
    let http_server_options = c.http_server_options(&http_server.options);
    // Option checks below are the built-ins' only: a section naming a library hands its
    // options to that library verbatim (it checks them itself).
    let logger = c.section(&root, "logger", PluginKind::Logger, &["default", "json"]);
    let json_logger = logger.names_builtin(JSON_LOGGER);
    if !logger.is_external() || json_logger {
        let p = "/logger/options";
        if let Some(level) = logger.options.get("logLevel")
            && LogLevel::from_value(level).is_none()
        {
            c.err(format!("{p}/logLevel"), level_message(level));
        }
        if !json_logger {
            c.bool(obj(&logger.options), p, "colors", true);
        }
    }
    let subscriptions = c.section(
        &root,
        "subscriptions",
        PluginKind::Subscriptions,
        &["default"],
    );
    if !subscriptions.is_external() {
        c.ms(
            obj(&subscriptions.options),
            "/subscriptions/options",
            "subscriptionsSanityTimer",
            50,
            10000,
        );
    }
    let cache = c.section(&root, "cache", PluginKind::Cache, &["default"]);
    let storage = c.section(&root, "storage", PluginKind::Storage, &["default"]);
    let telemetry = c.section(&root, "telemetry", PluginKind::Telemetry, &["deepstreamIO"]);
    if !telemetry.is_external() {
        let (o, p) = (obj(&telemetry.options), "/telemetry/options");
        c.bool(o, p, "enabled", false);
        c.bool(o, p, "debug", false);
        c.opt_string(o, p, "deploymentId");
    }
    let locks = c.section(&root, "locks", PluginKind::Locks, &["default"]);
    if !locks.is_external() {
        let (o, p) = (obj(&locks.options), "/locks/options");
        c.ms(o, p, "holdTimeout", 50, 1000);
        c.ms(o, p, "requestTimeout", 50, 1000);
    }
    let cluster_node = c.section(
        &root,
        "clusterNode",
        PluginKind::ClusterNode,
        &["default", "vertical"],
    );
    let cluster_registry = c.section(
        &root,
        "clusterRegistry",
        PluginKind::ClusterRegistry,
        &["default"],
    );
    if !cluster_registry.is_external() {
        let (o, p) = (obj(&cluster_registry.options), "/clusterRegistry/options");
        c.ms(o, p, "keepAliveInterval", 1, 5000);
        c.ms(o, p, "activeCheckInterval", 1, 1000);
        c.ms(o, p, "nodeInactiveTimeout", 1, 6000);
        c.opt_string(o, p, "role");
    }
    let cluster_states = c.section(
        &root,
        "clusterStates",
        PluginKind::ClusterStates,
        &["default"],
    );
    if !cluster_states.is_external() {
        c.ms(
            obj(&cluster_states.options),
            "/clusterStates/options",
            "reconciliationTimeout",
            1,
            500,
        );
    }

    let mut permission = c.section(
        &root,
        "permission",
        PluginKind::Permission,
        &["config", "none"],
    );
    c.permission_options(&mut permission);
    let auth = c.auth(&root);
    let monitoring = c.monitoring(&root);
    let connection_endpoints = c.endpoints(&root);
    let plugins = c.plugins(&root);

    if !c.problems.is_empty() {
        return Err(ConfigError::Invalid(c.problems));
    }

    // The final merged config as JSON (what plugins receive as "the full config").
    for (key, decl) in [
        ("httpServer", &http_server),
        ("logger", &logger),
        ("subscriptions", &subscriptions),
        ("permission", &permission),
        ("cache", &cache),
        ("storage", &storage),
        ("telemetry", &telemetry),
        ("locks", &locks),
        ("clusterNode", &cluster_node),
        ("clusterRegistry", &cluster_registry),
        ("clusterStates", &cluster_states),
    ] {
        root.insert(key.into(), decl_json(decl));
    }
    root.insert(
        "auth".into(),
        Value::Array(auth.iter().map(decl_json).collect()),
    );
    root.insert(
        "monitoring".into(),
        Value::Array(monitoring.iter().map(decl_json).collect()),
    );
    root.insert(
        "connectionEndpoints".into(),
        Value::Array(
            connection_endpoints
                .iter()
                .map(|e| decl_json(&e.decl))
                .collect(),
        ),
    );
    root.insert(
        "plugins".into(),
        Value::Object(
            plugins
                .iter()
                .map(|(k, d)| (k.clone(), decl_json(d)))
                .collect(),
        ),
    );

    Ok(Config {
        config_file: input.config_file,
        conf_dir,
        lib_dir: c.lib_dir,
        server_name,
        show_logo,
        log_level,
        dependency_initialization_timeout,
        exit_on_fatal_error,
        enabled_features,
        rpc,
        record,
        listen,
        http_server,
        http_server_options,
        connection_endpoints,
        logger,
        subscriptions,
        auth,
        permission,
        cache,
        storage,
        monitoring,
        telemetry,
        locks,
        cluster_node,
        cluster_registry,
        cluster_states,
        plugins,
        raw: Value::Object(root),
    })
}

fn decl_json(decl: &PluginDecl) -> Value {
    let mut map = Map::new();
    if let Some(t) = &decl.type_ {
        map.insert("type".into(), Value::String(t.clone()));
    }
    if let Some(n) = &decl.name {
        map.insert("name".into(), Value::String(n.clone()));
    }
    if let Some(p) = &decl.path {
        map.insert("path".into(), Value::String(p.display().to_string()));
    }
    map.insert("options".into(), decl.options.clone());
    Value::Object(map)
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// The object inside a value known to be an object (options always are), or an empty map.
fn obj(value: &Value) -> &Map<String, Value> {
    value.as_object().unwrap_or(&EMPTY)
}

/// Short rendering of an offending value for messages.
pub(crate) fn got(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn level_message(value: &Value) -> String {
    format!(
        "must be one of 0 (DEBUG), 1 (INFO), 2 (WARN), 3 (ERROR), 4 (FATAL), 100 (OFF) or a level name (DEBUG, INFO, WARN, ERROR, FATAL, OFF), got {}",
        got(value)
    )
}

/// Closest candidate within a small edit distance, for "did you mean" hints.
pub(crate) fn suggest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = input.to_lowercase();
    candidates
        .iter()
        .map(|c| (levenshtein(&lower, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn did_you_mean(input: &str, candidates: &[&str]) -> String {
    suggest(input, candidates)
        .map(|s| format!(" (did you mean \"{s}\"?)"))
        .unwrap_or_default()
}

fn random_server_name() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    format!("{}-{}", base36(ms), base36(rand::random::<u64>()))
}

/// A random (version 4) UUID in its usual text form.
pub(crate) fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `n` in base 36 (digits, then lower-case letters), as deepstream spells generated ids.
pub fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

const DECL_KEYS: [&str; 4] = ["type", "name", "path", "options"];

struct Checker<'a> {
    problems: Vec<Problem>,
    conf_dir: PathBuf,
    lib_dir: Option<PathBuf>,
    env: EnvFn<'a>,
}

impl Checker<'_> {
    fn err(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(pointer, message));
    }

    fn unknown_key(&mut self, base: &str, key: &str, what: &str, allowed: &[&str]) {
        let hint = did_you_mean(key, allowed);
        let hint = if hint.is_empty() {
            format!("; allowed: {}", allowed.join(", "))
        } else {
            hint
        };
        self.err(
            format!("{base}/{}", escape_pointer(key)),
            format!("unknown {what} \"{key}\"{hint}"),
        );
    }

    fn known_keys(&mut self, map: &Map<String, Value>, base: &str, allowed: &[&str]) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.unknown_key(base, key, "key", allowed);
            }
        }
    }

    /// A plain (non-plugin) section that must be an object.
    fn section_object(&mut self, root: &Map<String, Value>, key: &str) -> Map<String, Value> {
        match root.get(key) {
            Some(Value::Object(o)) => o.clone(),
            Some(other) => {
                self.err(
                    format!("/{key}"),
                    format!("must be a mapping (object), got {}", got(other)),
                );
                Map::new()
            }
            None => Map::new(),
        }
    }

    fn bool(&mut self, map: &Map<String, Value>, base: &str, key: &str, default: bool) -> bool {
        match map.get(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.err(
                    format!("{base}/{key}"),
                    format!("must be a boolean (true or false), got {}", got(other)),
                );
                default
            }
        }
    }

    fn uint_value(&mut self, value: &Value, pointer: &str, min: u64) -> Option<u64> {
        let n = match value {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                    .map(|f| f as u64)
            }),
            _ => None,
        };
        match n {
            Some(n) if n >= min => Some(n),
            _ => {
                self.err(
                    pointer,
                    format!("must be an integer >= {min}, got {}", got(value)),
                );
                None
            }
        }
    }

    fn uint(
        &mut self,
        map: &Map<String, Value>,
        base: &str,
        key: &str,
        min: u64,
        default: u64,
    ) -> u64 {
        match map.get(key) {
            None => default,
            Some(v) => self
                .uint_value(v, &format!("{base}/{key}"), min)
                .unwrap_or(default),
        }
    }

    fn ms(
        &mut self,
        map: &Map<String, Value>,
        base: &str,
        key: &str,
        min: u64,
        default: u64,
    ) -> Duration {
        Duration::from_millis(self.uint(map, base, key, min, default))
    }

    fn port(&mut self, map: &Map<String, Value>, base: &str, key: &str, default: u16) -> u16 {
        match map.get(key) {
            None => default,
            Some(v) => {
                let port = v.as_u64().filter(|p| (1..=65535).contains(p));
                match port {
                    Some(p) => p as u16,
                    None => {
                        self.err(
                            format!("{base}/{key}"),
                            format!("must be an integer >= 1 and <= 65535, got {}", got(v)),
                        );
                        default
                    }
                }
            }
        }
    }

    fn string(&mut self, map: &Map<String, Value>, base: &str, key: &str, default: &str) -> String {
        self.opt_string(map, base, key)
            .unwrap_or_else(|| default.to_owned())
    }

    /// A non-empty string if present.
    fn opt_string(&mut self, map: &Map<String, Value>, base: &str, key: &str) -> Option<String> {
        match map.get(key) {
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(other) => {
                self.err(
                    format!("{base}/{key}"),
                    format!("must be a non-empty string, got {}", got(other)),
                );
                None
            }
        }
    }

    fn strings(
        &mut self,
        map: &Map<String, Value>,
        base: &str,
        key: &str,
        allow_empty: bool,
    ) -> Vec<String> {
        let pointer = format!("{base}/{key}");
        match map.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) if allow_empty || !s.is_empty() => out.push(s.clone()),
                        other => self.err(
                            format!("{pointer}/{i}"),
                            format!(
                                "must be a {}string, got {}",
                                if allow_empty { "" } else { "non-empty " },
                                got(other)
                            ),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.err(
                    pointer,
                    format!("must be a list of strings, got {}", got(other)),
                );
                Vec::new()
            }
        }
    }

    fn ints(&mut self, map: &Map<String, Value>, base: &str, key: &str) {
        let pointer = format!("{base}/{key}");
        match map.get(key) {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if item.as_u64().is_none() {
                        self.err(
                            format!("{pointer}/{i}"),
                            format!("must be an integer, got {}", got(item)),
                        );
                    }
                }
            }
            Some(other) => {
                self.err(
                    pointer,
                    format!("must be a list of integers, got {}", got(other)),
                );
            }
        }
    }

    fn uri(&mut self, map: &Map<String, Value>, base: &str, key: &str) -> Option<String> {
        let value = self.opt_string(map, base, key)?;
        self.check_uri(&value, &format!("{base}/{key}"))
            .then_some(value)
    }

    /// `scheme://rest` with a syntactically valid scheme.
    fn check_uri(&mut self, value: &str, pointer: &str) -> bool {
        let ok = value.split_once("://").is_some_and(|(scheme, rest)| {
            !rest.is_empty()
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        if !ok {
            self.err(
                pointer,
                format!("must be a URL like \"https://example.com\", got \"{value}\""),
            );
        }
        ok
    }

    fn log_level(&mut self, map: &Map<String, Value>, base: &str, key: &str) -> Option<LogLevel> {
        let value = map.get(key)?;
        let level = LogLevel::from_value(value);
        if level.is_none() {
            self.err(format!("{base}/{key}"), level_message(value));
        }
        level
    }

    fn enum_value(&mut self, pointer: &str, value: &str, allowed: &[&str]) -> bool {
        if allowed.contains(&value) {
            return true;
        }
        self.err(
            pointer,
            format!(
                "must be one of {}, got \"{value}\"{}",
                allowed.join(", "),
                did_you_mean(value, allowed)
            ),
        );
        false
    }

    fn tls(&mut self, map: &Map<String, Value>, base: &str) -> Option<TlsOptions> {
        match map.get("ssl") {
            None | Some(Value::Null) => None,
            Some(Value::Object(ssl)) => {
                let p = format!("{base}/ssl");
                let key = self.opt_string(ssl, &p, "key");
                let cert = self.opt_string(ssl, &p, "cert");
                let ca = self.opt_string(ssl, &p, "ca");
                match (key, cert) {
                    (Some(key), Some(cert)) => Some(TlsOptions { key, cert, ca }),
                    _ => {
                        self.err(p, "needs both \"key\" and \"cert\" (PEM contents, e.g. fileLoad(key.pem))");
                        None
                    }
                }
            }
            Some(other) => {
                self.err(
                    format!("{base}/ssl"),
                    format!("must be a mapping with key and cert, got {}", got(other)),
                );
                None
            }
        }
    }

    /// Resolves a plugin `path` (lib dir rules of §1.4; without a lib dir `.`-relative paths
    /// are taken relative to the conf dir, bare names stay relative to the working directory).
    fn plugin_path(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        match &self.lib_dir {
            Some(dir) => resolve_path(path, Some(dir)),
            None if path.as_os_str().to_string_lossy().starts_with('.') => {
                resolve_path(path, Some(&self.conf_dir))
            }
            None => resolve_path(path, None),
        }
    }

    /// Parses a plugin declaration object. `types`: allowed `type` values (`None` = any).
    /// `selector`: require at least one of type/name/path (`Some(msg)` = message).
    fn decl(
        &mut self,
        value: &Value,
        pointer: &str,
        kind: PluginKind,
        types: Option<&[&str]>,
        selector: Option<&str>,
    ) -> Option<PluginDecl> {
        let Value::Object(map) = value else {
            let hint = if value.is_null() {
                "; remove the key to use the default"
            } else {
                ""
            };
            self.err(
                pointer,
                format!(
                    "must be a plugin declaration (a mapping with type, name, path and/or options), got {}{hint}",
                    got(value)
                ),
            );
            return None;
        };
        for key in map.keys() {
            if !DECL_KEYS.contains(&key.as_str()) {
                self.unknown_key(pointer, key, "key in plugin declaration", &DECL_KEYS);
            }
        }
        let null_is_absent = |k: &str| map.get(k).filter(|v| !v.is_null()).cloned();
        let mut probe = Map::new();
        for k in ["type", "name", "path"] {
            if let Some(v) = null_is_absent(k) {
                probe.insert(k.to_owned(), v);
            }
        }
        let type_ = self.opt_string(&probe, pointer, "type");
        if let (Some(t), Some(allowed)) = (&type_, types) {
            self.enum_value(&format!("{pointer}/type"), t, allowed);
        }
        let name = self.opt_string(&probe, pointer, "name");
        let path = self
            .opt_string(&probe, pointer, "path")
            .map(|p| self.plugin_path(&p));
        let options = match map.get("options") {
            None | Some(Value::Null) => json!({}),
            Some(Value::Object(o)) => Value::Object(o.clone()),
            Some(other) => {
                self.err(
                    format!("{pointer}/options"),
                    format!("must be a mapping (object), got {}", got(other)),
                );
                json!({})
            }
        };
        if let Some(message) = selector
            && probe.is_empty()
        {
            self.err(pointer, message);
        }
        Some(PluginDecl {
            kind,
            type_,
            name,
            path,
            options,
        })
    }

    /// A single-plugin section (defaults already merged in).
    fn section(
        &mut self,
        root: &Map<String, Value>,
        key: &str,
        kind: PluginKind,
        types: &[&str],
    ) -> PluginDecl {
        let value = root.get(key).cloned().unwrap_or(Value::Null);
        let message = format!(
            "needs a \"type\" ({}), a \"name\" or a \"path\"",
            types.join(", ")
        );
        self.decl(
            &value,
            &format!("/{key}"),
            kind,
            Some(types),
            Some(&message),
        )
        .unwrap_or(PluginDecl {
            kind,
            type_: None,
            name: None,
            path: None,
            options: json!({}),
        })
    }

    fn http_server_options(&mut self, options: &Value) -> HttpServerOptions {
        let (o, p) = (obj(options), "/httpServer/options");
        let result = HttpServerOptions {
            host: self.string(o, p, "host", "0.0.0.0"),
            port: self.port(o, p, "port", 6020),
            health_check_path: self.string(o, p, "healthCheckPath", "/health-check"),
            allow_all_origins: self.bool(o, p, "allowAllOrigins", true),
            origins: {
                let origins = self.strings(o, p, "origins", false);
                let mut valid = Vec::new();
                for (i, origin) in origins.into_iter().enumerate() {
                    if self.check_uri(&origin, &format!("{p}/origins/{i}")) {
                        valid.push(origin);
                    }
                }
                valid
            },
            headers: self.strings(o, p, "headers", false),
            max_message_size: self.uint(o, p, "maxMessageSize", 0, 1_048_576),
            host_url: self.opt_string(o, p, "hostUrl"),
            ssl: self.tls(o, p),
        };
        if !result.allow_all_origins && result.origins.is_empty() {
            self.err(
                format!("{p}/origins"),
                "allowAllOrigins is false but no origins are configured",
            );
        }
        result
    }

    fn permission_options(&mut self, permission: &mut PluginDecl) {
        if permission.is_external() {
            return;
        }
        let p = "/permission/options";
        let o = obj(&permission.options).clone();
        self.uint(&o, p, "maxRuleIterations", 1, 3);
        self.uint(&o, p, "cacheEvacuationInterval", 1, 60000);
        let legacy_path = self.opt_string(&o, p, "path");
        if let Some(perms) = o.get("permissions")
            && !perms.is_object()
        {
            self.err(
                format!("{p}/permissions"),
                format!(
                    "must be a mapping with record, event, rpc and presence rules, got {}",
                    got(perms)
                ),
            );
        }
        let uses_valve = permission.type_.as_deref() == Some("config");
        let mut options = o;
        if let Some(path) = legacy_path {
            let resolved = resolve_path(Path::new(&path), Some(&self.conf_dir));
            options.insert("path".into(), Value::String(resolved.display().to_string()));
            if uses_valve && !options.contains_key("permissions") {
                match self.load_structured(&resolved) {
                    Ok(v) => {
                        options.insert("permissions".into(), v);
                    }
                    Err(e) => self.err(format!("{p}/path"), e),
                }
            }
        }
        if uses_valve && !options.contains_key("permissions") {
            self.err(
                p,
                "permission type \"config\" needs \"permissions\" (e.g. permissions: fileLoad(permissions.yml))",
            );
        }
        permission.options = Value::Object(options);
    }

    fn load_structured(&self, path: &Path) -> Result<Value, String> {
        let name = path.to_string_lossy().to_ascii_lowercase();
        if !(name.ends_with(".json") || name.ends_with(".yml") || name.ends_with(".yaml")) {
            return Err(format!(
                "{} must be a .json, .yml or .yaml file",
                path.display()
            ));
        }
        load_file_value(path, self.env).map_err(|e| e.describe(path))
    }

    fn auth(&mut self, root: &Map<String, Value>) -> Vec<PluginDecl> {
        const TYPES: [&str; 4] = ["none", "file", "http", "storage"];
        let items: Vec<(String, Value)> = match root.get("auth") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("/auth/{i}"), v.clone()))
                .collect(),
            // deepstream ≤ 4 style single declaration.
            Some(v @ Value::Object(_)) => vec![("/auth".to_owned(), v.clone())],
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                self.err(
                    "/auth",
                    format!(
                        "must be a list of authentication declarations, got {}",
                        got(other)
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (pointer, value) in items {
            if value.is_null() {
                continue;
            }
            let Some(mut decl) = self.decl(
                &value,
                &pointer,
                PluginKind::Authentication,
                Some(&TYPES),
                Some("needs a \"type\" (none, file, http, storage), a \"name\" or a \"path\""),
            ) else {
                continue;
            };
            self.auth_options(&mut decl, &pointer);
            out.push(decl);
        }
        if out.is_empty()
            && !self
                .problems
                .iter()
                .any(|p| p.location.starts_with("/auth"))
        {
            self.err(
                "/auth",
                "No authentication type specified (use e.g. auth: [{type: none}])",
            );
        }
        if out.len() > 1 {
            // Built-in handlers only: plugin libraries own their options (and reject keys
            // they do not know).
            for decl in out.iter_mut().filter(|decl| !decl.is_external()) {
                if let Value::Object(o) = &mut decl.options
                    && o.get("reportInvalidParameters") != Some(&Value::Bool(true))
                {
                    o.insert("reportInvalidParameters".into(), Value::Bool(false));
                }
            }
        }
        out
    }

    fn auth_options(&mut self, decl: &mut PluginDecl, pointer: &str) {
        if decl.is_external() {
            return;
        }
        let p = format!("{pointer}/options");
        let mut o = obj(&decl.options).clone();
        self.opt_string(&o, &p, "hash");
        self.uint(&o, &p, "iterations", 1, 1);
        self.uint(&o, &p, "keyLength", 1, 1);
        self.bool(&o, &p, "createUser", false);
        self.opt_string(&o, &p, "table");
        self.uri(&o, &p, "endpointUrl");
        self.ints(&o, &p, "permittedStatusCodes");
        self.ints(&o, &p, "retryStatusCodes");
        self.uint(&o, &p, "requestTimeout", 1, 1);
        self.uint(&o, &p, "retryAttempts", 0, 0);
        self.uint(&o, &p, "retryInterval", 0, 0);
        self.strings(&o, &p, "promoteToHeader", false);
        self.bool(&o, &p, "reportInvalidParameters", true);
        if let Some(users) = o.get("users")
            && !users.is_object()
        {
            self.err(
                format!("{p}/users"),
                format!("must be a mapping of user names to {{password, clientData, serverData}}, got {}", got(users)),
            );
        }
        let builtin = decl.type_.as_deref();
        if let Some(path) = self.opt_string(&o, &p, "path") {
            let resolved = resolve_path(Path::new(&path), Some(&self.conf_dir));
            o.insert("path".into(), Value::String(resolved.display().to_string()));
            if builtin == Some("file") && !o.contains_key("users") {
                match self.load_structured(&resolved) {
                    Ok(users) => {
                        o.insert("users".into(), users);
                    }
                    Err(e) => self.err(format!("{p}/path"), e),
                }
            }
        }
        match builtin {
            Some("file") if !o.contains_key("users") => self.err(
                p,
                "auth type \"file\" needs \"users\" (e.g. users: fileLoad(users.yml))",
            ),
            Some("http") => {
                for key in [
                    "endpointUrl",
                    "permittedStatusCodes",
                    "requestTimeout",
                    "retryStatusCodes",
                    "retryAttempts",
                    "retryInterval",
                ] {
                    if !o.contains_key(key) {
                        self.err(
                            p.clone(),
                            format!("Missing key {key} (required by auth type \"http\")"),
                        );
                    }
                }
            }
            Some("storage") => {
                for key in ["table", "hash", "iterations", "keyLength"] {
                    if !o.contains_key(key) {
                        self.err(
                            p.clone(),
                            format!("Missing key {key} (required by auth type \"storage\")"),
                        );
                    }
                }
            }
            _ => {}
        }
        decl.options = Value::Object(o);
    }

    fn monitoring(&mut self, root: &Map<String, Value>) -> Vec<PluginDecl> {
        const TYPES: [&str; 4] = ["none", "default", "log", "http"];
        let items: Vec<(String, Value)> = match root.get("monitoring") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("/monitoring/{i}"), v.clone()))
                .collect(),
            Some(v @ Value::Object(_)) => vec![("/monitoring".to_owned(), v.clone())],
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                self.err(
                    "/monitoring",
                    format!(
                        "must be a monitoring declaration or a list of them, got {}",
                        got(other)
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (pointer, value) in items {
            if value.is_null() {
                continue;
            }
            let Some(decl) = self.decl(
                &value,
                &pointer,
                PluginKind::Monitoring,
                Some(&TYPES),
                Some("needs a \"type\" (none, log, http), a \"name\" or a \"path\""),
            ) else {
                continue;
            };
            let (o, p) = (obj(&decl.options).clone(), format!("{pointer}/options"));
            if !decl.is_external() {
                match decl.type_.as_deref() {
                    Some("http") => {
                        self.opt_string(&o, &p, "url");
                        if !o.contains_key("url") {
                            self.err(p.clone(), "Missing \"url\" for HTTP Monitoring");
                        }
                        self.opt_string(&o, &p, "headerKey");
                        self.opt_string(&o, &p, "headerValue");
                        let open = self.bool(&o, &p, "allowOpenPermissions", false);
                        let has_header =
                            o.contains_key("headerKey") && o.contains_key("headerValue");
                        if !open && !has_header {
                            self.err(
                                p.clone(),
                                "Missing \"headerKey\" and/or \"headerValue\" for HTTP Monitoring (or set allowOpenPermissions: true)",
                            );
                        }
                    }
                    Some("log") => {
                        self.uint(&o, &p, "logInterval", 1, 15000);
                        self.opt_string(&o, &p, "monitoringKey");
                    }
                    _ => {}
                }
            }
            out.push(decl);
        }
        out
    }

    fn endpoints(&mut self, root: &Map<String, Value>) -> Vec<EndpointDecl> {
        let types: Vec<&str> = EndpointKind::BUILT_IN.iter().map(|k| k.as_str()).collect();
        let items = match root.get("connectionEndpoints") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                self.err(
                    "/connectionEndpoints",
                    format!(
                        "must be a list of endpoint declarations, got {}",
                        got(other)
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        let mut had_errors = false;
        for (i, value) in items.into_iter().enumerate() {
            if value.is_null() {
                continue;
            }
            let pointer = format!("/connectionEndpoints/{i}");
            let before = self.problems.len();
            let Some(mut decl) = self.decl(
                &value,
                &pointer,
                PluginKind::Connection,
                Some(&types),
                Some("needs a \"type\" (ws-binary, ws-text, ws-json, http, mqtt), or a \"name\"/\"path\" for a custom endpoint"),
            ) else {
                had_errors = true;
                continue;
            };
            let kind = match &decl.type_ {
                Some(t) => EndpointKind::from_type(t).unwrap_or(EndpointKind::Custom),
                None => EndpointKind::Custom,
            };
            if kind != EndpointKind::Custom {
                let mut options = endpoint_defaults(kind);
                merge(&mut options, decl.options.clone());
                decl.options = options;
            }
            let options =
                self.endpoint_options(kind, obj(&decl.options), &format!("{pointer}/options"));
            had_errors |= self.problems.len() > before;
            out.push(EndpointDecl {
                kind,
                decl,
                options,
            });
        }
        if out.is_empty() && !had_errors {
            self.err("/connectionEndpoints", "No connection endpoints configured");
        }
        out
    }

    fn unauthenticated_timeout(&mut self, o: &Map<String, Value>, p: &str) -> Option<Duration> {
        match o.get("unauthenticatedClientTimeout") {
            None | Some(Value::Bool(true)) => Some(Duration::from_millis(180_000)),
            Some(Value::Null | Value::Bool(false)) => None,
            Some(v) => {
                let pointer = format!("{p}/unauthenticatedClientTimeout");
                match v.as_u64().filter(|n| *n >= 1) {
                    Some(n) => Some(Duration::from_millis(n)),
                    None => {
                        self.err(
                            pointer,
                            format!(
                                "must be an integer >= 1, or false/null to disable, got {}",
                                got(v)
                            ),
                        );
                        None
                    }
                }
            }
        }
    }

    fn endpoint_options(
        &mut self,
        kind: EndpointKind,
        o: &Map<String, Value>,
        p: &str,
    ) -> EndpointOptions {
        match kind {
            EndpointKind::WsBinary | EndpointKind::WsText | EndpointKind::WsJson => {
                let url_path = self.string(o, p, "urlPath", kind.default_url_path().unwrap_or("/"));
                EndpointOptions::WebSocket(WebSocketEndpointOptions {
                    url_path,
                    heartbeat_interval: self.ms(o, p, "heartbeatInterval", 1, 30000),
                    outgoing_buffer_timeout: self.ms(o, p, "outgoingBufferTimeout", 0, 0),
                    max_buffer_byte_size: self.uint(o, p, "maxBufferByteSize", 1, 100_000),
                    headers: self.strings(o, p, "headers", false),
                    unauthenticated_client_timeout: self.unauthenticated_timeout(o, p),
                    max_auth_attempts: self
                        .uint(o, p, "maxAuthAttempts", 1, 3)
                        .min(u64::from(u32::MAX)) as u32,
                    log_invalid_auth_data: self.bool(o, p, "logInvalidAuthData", false),
                    max_message_size: self.uint(o, p, "maxMessageSize", 0, 1_048_576),
                })
            }
            EndpointKind::Http => EndpointOptions::Http(HttpEndpointOptions {
                allow_auth_data: self.bool(o, p, "allowAuthData", true),
                enable_auth_endpoint: self.bool(o, p, "enableAuthEndpoint", true),
                auth_path: self.string(o, p, "authPath", "/api/auth"),
                post_path: self.string(o, p, "postPath", "/api"),
                get_path: self.string(o, p, "getPath", "/api"),
                log_invalid_auth_data: self.bool(o, p, "logInvalidAuthData", false),
                request_timeout: self.ms(o, p, "requestTimeout", 1, 20000),
            }),
            EndpointKind::Mqtt => EndpointOptions::Mqtt(MqttEndpointOptions {
                host: self.string(o, p, "host", "0.0.0.0"),
                port: self.port(o, p, "port", 1883),
                idle_timeout: self.ms(o, p, "idleTimeout", 1, 180_000),
                unauthenticated_client_timeout: self.unauthenticated_timeout(o, p),
                max_auth_attempts: o
                    .get("maxAuthAttempts")
                    .and_then(|v| self.uint_value(v, &format!("{p}/maxAuthAttempts"), 1))
                    .map(|n| n.min(u64::from(u32::MAX)) as u32),
                log_invalid_auth_data: self.bool(o, p, "logInvalidAuthData", false),
                ssl: self.tls(o, p),
            }),
            EndpointKind::Custom => EndpointOptions::Custom,
        }
    }

    fn plugins(&mut self, root: &Map<String, Value>) -> Vec<(String, PluginDecl)> {
        let map = match root.get("plugins") {
            Some(Value::Object(map)) => map.clone(),
            Some(Value::Null) | None => return Vec::new(),
            Some(other) => {
                self.err(
                    "/plugins",
                    format!(
                        "must be a mapping of plugin names to declarations, got {}",
                        got(other)
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (key, value) in map {
            let pointer = format!("/plugins/{}", escape_pointer(&key));
            let selected = ["name", "path"]
                .iter()
                .any(|k| value.get(k).is_some_and(|v| !v.is_null()));
            let Some(decl) = self.decl(&value, &pointer, PluginKind::Plugin, None, None) else {
                continue;
            };
            if !selected {
                self.err(pointer, "needs a \"name\" or a \"path\"");
                continue;
            }
            out.push((key, decl));
        }
        out
    }
}
