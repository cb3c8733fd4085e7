//! The built-in default services: what a server runs with when the config names no plugin.
//! Single-node implementations of the cluster slots live here too, so the core always goes
//! through the slots and a cluster plugin can take their place.

use std::{io::Write, sync::Arc};

use parking_lot::{Mutex, RwLock};

use crate::{HashMap, HashSet};

use super::{
    Answer, AuthVerdict, Authentication, ClusterHandler, ClusterNode, ClusterRegistry, Lifecycle,
    LockRegistry, LogLevel, Logger, MembershipHandler, Monitoring, Permission, PermissionRequest,
    RecordStore, ServiceError, StateHandler, StateRegistry, StateRegistryFactory, StoredRecord,
};

/// `auth: [{type: none}]`: everyone may log in; the id is `authData.username` or `"open"`.
pub struct OpenAuthentication;

impl Lifecycle for OpenAuthentication {
    fn description(&self) -> String {
        "none".into()
    }
}

impl Authentication for OpenAuthentication {
    fn is_valid_user(
        &self,
        _connection_data: &serde_json::Value,
        auth_data: &serde_json::Value,
    ) -> Answer<Option<AuthVerdict>> {
        let id = match auth_data.get("username") {
            Some(serde_json::Value::String(name)) => name.clone(),
            Some(serde_json::Value::Null) | None => "open".into(),
            Some(other) => other.to_string(),
        };
        Answer::Ready(Ok(Some(AuthVerdict {
            is_valid: true,
            id: Some(id),
            ..Default::default()
        })))
    }
}

/// `permission: {type: none}`: everything is allowed.
pub struct OpenPermission;

impl Lifecycle for OpenPermission {
    fn description(&self) -> String {
        "none".into()
    }
}

impl Permission for OpenPermission {
    fn can_perform_action(&self, _request: &PermissionRequest<'_>) -> Answer<bool> {
        Answer::Ready(Ok(true))
    }
}

/// `cache: {type: default}`: records in a process-local map. Not shared between servers.
#[derive(Default)]
pub struct MemoryCache {
    /// name → stored record.
    records: RwLock<HashMap<String, StoredRecord>>,
}

impl Lifecycle for MemoryCache {
    fn description(&self) -> String {
        "local cache".into()
    }
}

impl RecordStore for MemoryCache {
    fn get(&self, name: &str) -> Answer<Option<StoredRecord>> {
        Answer::Ready(Ok(self.records.read().get(name).cloned()))
    }

    fn set(&self, name: &str, version: i32, data: Arc<str>) -> Answer<()> {
        let mut records = self.records.write();
        match records.get_mut(name) {
            Some(stored) => *stored = StoredRecord { version, data },
            None => {
                records.insert(name.to_owned(), StoredRecord { version, data });
            }
        }
        Answer::Ready(Ok(()))
    }

    fn delete(&self, name: &str) -> Answer<()> {
        self.records.write().remove(name);
        Answer::Ready(Ok(()))
    }

    fn delete_bulk(&self, names: &[String]) -> Answer<()> {
        let mut records = self.records.write();
        for name in names {
            records.remove(name);
        }
        Answer::Ready(Ok(()))
    }

    fn head(&self, name: &str) -> Answer<Option<i32>> {
        Answer::Ready(Ok(self
            .records
            .read()
            .get(name)
            .map(|stored| stored.version)))
    }

    fn head_bulk(&self, names: &[String]) -> Answer<Vec<(String, i32)>> {
        let records = self.records.read();
        let found = names
            .iter()
            .filter_map(|name| {
                records
                    .get(name)
                    .map(|stored| (name.clone(), stored.version))
            })
            .collect();
        Answer::Ready(Ok(found))
    }
}

/// `storage: {type: default}`: keeps nothing; every read is "not found".
pub struct NoopStorage;

impl Lifecycle for NoopStorage {
    fn description(&self) -> String {
        "noop storage".into()
    }
}

impl RecordStore for NoopStorage {
    fn get(&self, _name: &str) -> Answer<Option<StoredRecord>> {
        Answer::Ready(Ok(None))
    }

    fn set(&self, _name: &str, _version: i32, _data: Arc<str>) -> Answer<()> {
        Answer::Ready(Ok(()))
    }

    fn delete(&self, _name: &str) -> Answer<()> {
        Answer::Ready(Ok(()))
    }

    fn delete_bulk(&self, _names: &[String]) -> Answer<()> {
        Answer::Ready(Ok(()))
    }

    fn head(&self, _name: &str) -> Answer<Option<i32>> {
        Answer::Ready(Ok(None))
    }

    fn head_bulk(&self, _names: &[String]) -> Answer<Vec<(String, i32)>> {
        Answer::Ready(Ok(Vec::new()))
    }
}

/// The built-in loggers (server.md §2.4.5).
pub struct BuiltinLogger {
    /// Lowest level written; `logLevel` and SIGHUP reloads change it.
    level: RwLock<LogLevel>,
    /// How lines look and where they go.
    format: LineFormat,
}

enum LineFormat {
    /// `logger: {type: default}`: `<namespace> | <EVENT> | <message>`; DEBUG, INFO and FATAL to
    /// stdout, WARN and ERROR to stderr.
    Text {
        /// Whether to colour lines by level.
        colors: bool,
    },
    /// `logger: {name: pino}`: one JSON object per line on stdout with pino's standard fields
    /// (numeric `level`, `time` in ms, `pid`, `hostname`) plus `event`, `message` and, for
    /// plugin lines, `namespace`, so log shippers that read pino output read ours.
    Json {
        /// The `pid` field.
        pid: u32,
        /// The `hostname` field, read once.
        hostname: String,
    },
}

/// One line of JSON output.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    level: u8,
    time: u128,
    pid: u32,
    hostname: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    namespace: &'a str,
    event: &'a str,
    message: &'a str,
}

impl BuiltinLogger {
    /// The std-out logger.
    pub fn text(level: LogLevel, colors: bool) -> Self {
        BuiltinLogger {
            level: RwLock::new(level),
            format: LineFormat::Text { colors },
        }
    }

    /// The JSON (pino) logger.
    pub fn json(level: LogLevel) -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_default();
        BuiltinLogger {
            level: RwLock::new(level),
            format: LineFormat::Json {
                pid: std::process::id(),
                hostname,
            },
        }
    }

    fn text_line(
        level: LogLevel,
        namespace: &str,
        event: &str,
        message: &str,
        colors: bool,
    ) -> String {
        let mut line = String::with_capacity(namespace.len() + event.len() + message.len() + 16);
        if !namespace.is_empty() {
            line.push_str(namespace);
            line.push_str(" | ");
        }
        line.push_str(event);
        line.push_str(" | ");
        line.push_str(message);
        if colors {
            let colour = match level {
                LogLevel::Debug => "37",
                LogLevel::Info => "32",
                LogLevel::Warn => "33",
                LogLevel::Error => "31",
                LogLevel::Fatal => "34",
            };
            line = format!("\x1b[{colour}m{line}\x1b[0m");
        }
        line.push('\n');
        line
    }
}

impl Lifecycle for BuiltinLogger {
    fn description(&self) -> String {
        let level = format!("{:?}", *self.level.read()).to_uppercase();
        match self.format {
            LineFormat::Text { .. } => format!("STD OUT/ERR AT LEVEL {level}"),
            LineFormat::Json { .. } => format!("JSON lines on stdout at level {level}"),
        }
    }
}

impl Logger for BuiltinLogger {
    fn should_log(&self, level: LogLevel) -> bool {
        level >= *self.level.read()
    }

    fn set_log_level(&self, level: LogLevel) {
        *self.level.write() = level;
    }

    fn log(&self, level: LogLevel, namespace: &str, event: &str, message: &str) {
        if !self.should_log(level) {
            return;
        }
        // One write per line, so lines from several threads never interleave; nothing
        // sensible can be done when stdout/stderr are gone.
        let _ = match &self.format {
            LineFormat::Text { colors } => {
                let line = Self::text_line(level, namespace, event, message, *colors);
                match level {
                    LogLevel::Warn | LogLevel::Error => {
                        std::io::stderr().write_all(line.as_bytes())
                    }
                    _ => std::io::stdout().write_all(line.as_bytes()),
                }
            }
            LineFormat::Json { pid, hostname } => {
                let line = JsonLine {
                    level: pino_level(level),
                    time: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |since| since.as_millis()),
                    pid: *pid,
                    hostname,
                    namespace,
                    event,
                    message,
                };
                let mut text = serde_json::to_vec(&line).unwrap_or_default();
                text.push(b'\n');
                std::io::stdout().write_all(&text)
            }
        };
    }
}

/// pino's numeric level for a deepstream level.
fn pino_level(level: LogLevel) -> u8 {
    match level {
        LogLevel::Debug => 20,
        LogLevel::Info => 30,
        LogLevel::Warn => 40,
        LogLevel::Error => 50,
        LogLevel::Fatal => 60,
    }
}

/// `monitoring: {type: none}`.
pub struct NoMonitoring;

impl Lifecycle for NoMonitoring {
    fn description(&self) -> String {
        "no monitoring".into()
    }
}

impl Monitoring for NoMonitoring {}

/// Every configured monitoring service, called in turn (server.md §2.4.6 combiner).
pub struct CombinedMonitoring(pub Vec<Arc<dyn Monitoring>>);

impl Lifecycle for CombinedMonitoring {
    fn description(&self) -> String {
        self.0
            .iter()
            .map(|m| m.description())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Monitoring for CombinedMonitoring {
    fn on_error_log(&self, level: LogLevel, event: &str, message: &str) {
        self.0
            .iter()
            .for_each(|m| m.on_error_log(level, event, message));
    }

    fn on_login(&self, allowed: bool, endpoint_type: &str) {
        self.0
            .iter()
            .for_each(|m| m.on_login(allowed, endpoint_type));
    }

    fn on_message_received(&self, topic: u8, action: i32) {
        self.0
            .iter()
            .for_each(|m| m.on_message_received(topic, action));
    }

    fn on_message_send(&self, topic: u8, action: i32) {
        self.0.iter().for_each(|m| m.on_message_send(topic, action));
    }

    fn on_broadcast(&self, topic: u8, action: i32, count: u32) {
        self.0
            .iter()
            .for_each(|m| m.on_broadcast(topic, action, count));
    }
}

/// `clusterNode: {type: default}`: a server alone; nothing is sent or received.
pub struct SingleClusterNode;

impl Lifecycle for SingleClusterNode {
    fn description(&self) -> String {
        "single node".into()
    }
}

impl ClusterNode for SingleClusterNode {
    fn send(&self, _frame: bytes::Bytes) {}
    fn send_direct(&self, _server_name: &str, _frame: bytes::Bytes) {}
    fn subscribe(&self, _topic: i32, _handler: ClusterHandler) {}
    fn has_peers(&self) -> bool {
        false
    }
}

/// `locks: {type: default}` on a single server: a lock is granted iff nobody holds it.
#[derive(Default)]
pub struct LocalLockRegistry {
    /// Names of the locks currently held.
    held: Mutex<HashSet<String>>,
}

impl Lifecycle for LocalLockRegistry {
    fn description(&self) -> String {
        "local lock registry".into()
    }
}

impl LockRegistry for LocalLockRegistry {
    fn get(&self, name: &str) -> Answer<bool> {
        Answer::Ready(Ok(self.held.lock().insert(name.to_owned())))
    }

    fn release(&self, name: &str) {
        self.held.lock().remove(name);
    }
}

/// `clusterRegistry: {type: default}` on a single server: this server is the whole cluster.
pub struct SingleClusterRegistry {
    /// This server's name.
    server_name: String,
}

impl SingleClusterRegistry {
    pub fn new(server_name: String) -> Self {
        SingleClusterRegistry { server_name }
    }
}

impl Lifecycle for SingleClusterRegistry {
    fn description(&self) -> String {
        "single node cluster registry".into()
    }
}

impl ClusterRegistry for SingleClusterRegistry {
    fn is_leader(&self) -> bool {
        true
    }

    fn leader(&self) -> String {
        self.server_name.clone()
    }

    fn all(&self) -> Vec<String> {
        vec![self.server_name.clone()]
    }

    fn set_listener(&self, _handler: MembershipHandler) {}
}

/// `clusterStates: {type: default}` on a single server: local reference counts; a name is
/// added on 0 → 1 and removed on 1 → 0.
pub struct SingleStateRegistryFactory {
    /// This server's name, the only possible holder.
    server_name: String,
    /// One registry per registry topic.
    registries: Mutex<HashMap<i32, Arc<SingleStateRegistry>>>,
}

impl SingleStateRegistryFactory {
    pub fn new(server_name: String) -> Self {
        SingleStateRegistryFactory {
            server_name,
            registries: Mutex::default(),
        }
    }
}

impl Lifecycle for SingleStateRegistryFactory {
    fn description(&self) -> String {
        "single node state registry".into()
    }
}

impl StateRegistryFactory for SingleStateRegistryFactory {
    fn registry(&self, topic: i32) -> Result<Arc<dyn StateRegistry>, ServiceError> {
        let mut registries = self.registries.lock();
        let registry = registries.entry(topic).or_insert_with(|| {
            Arc::new(SingleStateRegistry {
                server_name: self.server_name.clone(),
                counts: Mutex::default(),
                listener: RwLock::default(),
            })
        });
        Ok(registry.clone())
    }
}

/// One local reference-counted set.
pub struct SingleStateRegistry {
    /// This server, reported as the holder of every name.
    server_name: String,
    /// name → local reference count (never 0: removed instead).
    counts: Mutex<HashMap<String, usize>>,
    /// Told about 0 → 1 and 1 → 0 transitions.
    listener: RwLock<Option<StateHandler>>,
}

impl SingleStateRegistry {
    fn notify(&self, name: &str, added: bool) {
        if let Some(listener) = self.listener.read().as_ref() {
            listener(name, added);
        }
    }
}

impl StateRegistry for SingleStateRegistry {
    fn add(&self, name: &str) {
        let first = {
            let mut counts = self.counts.lock();
            let count = counts.entry(name.to_owned()).or_insert(0);
            *count += 1;
            *count == 1
        };
        if first {
            self.notify(name, true);
        }
    }

    fn remove(&self, name: &str) {
        let last = {
            let mut counts = self.counts.lock();
            match counts.get_mut(name) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    counts.remove(name);
                    true
                }
                None => false,
            }
        };
        if last {
            self.notify(name, false);
        }
    }

    fn has(&self, name: &str) -> bool {
        self.counts.lock().contains_key(name)
    }

    fn all(&self) -> Vec<String> {
        self.counts.lock().keys().cloned().collect()
    }

    fn all_servers(&self, name: &str) -> Vec<String> {
        if self.has(name) {
            vec![self.server_name.clone()]
        } else {
            Vec::new()
        }
    }

    fn set_listener(&self, handler: StateHandler) {
        *self.listener.write() = Some(handler);
    }
}
