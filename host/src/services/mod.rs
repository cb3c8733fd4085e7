//! The services the core uses, as native async Rust traits (server.md §2.3–§2.4).
//!
//! Built-in defaults implement these traits directly; plugin libraries are wrapped in adapters
//! (`crate::plugin::adapters`) that implement the same traits, so the core never sees FFI types
//! and does not care where a service comes from. Cluster state (which names other servers
//! hold, who leads, the message bus) is reached only through these slots, so a cluster plugin
//! can replace the single-node built-ins without touching the handlers.

pub mod builtin;

use std::{future::Future, pin::Pin, sync::Arc};

pub use deepstream_plugin::abi::LogLevel;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A service failure, as text for the log and for error replies.
pub type ServiceError = String;

/// A sync-first answer: the common case (memory cache hit, open permission) is `Ready` and
/// allocates nothing; services that do I/O return `Pending`.
pub enum Answer<T> {
    Ready(Result<T, ServiceError>),
    Pending(BoxFuture<Result<T, ServiceError>>),
}

impl<T: Send + 'static> Answer<T> {
    /// Waits for the answer, whichever kind it is.
    pub async fn resolve(self) -> Result<T, ServiceError> {
        match self {
            Answer::Ready(result) => result,
            Answer::Pending(future) => future.await,
        }
    }
}

/// Lifecycle shared by every service (server.md §2.1).
pub trait Lifecycle: Send + Sync {
    /// Logged as `<slot> ready: <description>`.
    fn description(&self) -> String;

    /// Called once after every service exists, right before `when_ready`.
    fn init(&self) -> Result<(), ServiceError> {
        Ok(())
    }

    fn when_ready(&self) -> BoxFuture<Result<(), ServiceError>> {
        Box::pin(async { Ok(()) })
    }

    fn close(&self) -> BoxFuture<Result<(), ServiceError>> {
        Box::pin(async { Ok(()) })
    }

    /// Takes new `options` from a reloaded config without a restart. `None`: this service
    /// cannot reload (a restart is needed); `Some(Err)`: the new options were refused and the
    /// old ones stay in force.
    fn reload(&self, _options: &serde_json::Value) -> Option<Result<(), ServiceError>> {
        None
    }
}

/// The outcome of one authentication handler.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthVerdict {
    /// Whether the login is accepted.
    pub is_valid: bool,
    /// User id; `None` → `"OPEN"`.
    pub id: Option<String>,
    /// Sent to the client with the login answer.
    pub client_data: Option<serde_json::Value>,
    /// Visible to permission rules as `user.data`; never sent to clients.
    pub server_data: Option<serde_json::Value>,
    /// Handed out by `POST /api/auth`; opaque to the server.
    pub token: Option<String>,
}

/// An authentication handler (server.md §2.4.1).
pub trait Authentication: Lifecycle {
    /// `None` = no opinion: the next handler is asked.
    fn is_valid_user(
        &self,
        connection_data: &serde_json::Value,
        auth_data: &serde_json::Value,
    ) -> Answer<Option<AuthVerdict>>;

    fn on_client_disconnect(&self, _user_id: &str) {}
}

/// What a permission check is about.
#[derive(Debug, Clone, Copy)]
pub struct PermissionRequest<'a> {
    /// The connection's user id.
    pub user_id: &'a str,
    /// The user's server data.
    pub server_data: Option<&'a serde_json::Value>,
    /// Protocol topic.
    pub topic: crate::protocol::Topic,
    /// Protocol action number.
    pub action: i32,
    /// Event/record/rpc name or presence user.
    pub name: &'a str,
    /// The message's data as JSON text.
    pub data: Option<&'a str>,
    /// The record path of a patch or erase.
    pub path: Option<&'a str>,
}

/// The permission service (server.md §2.4.2): `Ok(true)` allows.
pub trait Permission: Lifecycle {
    fn can_perform_action(&self, request: &PermissionRequest<'_>) -> Answer<bool>;
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record version.
    pub version: i32,
    /// JSON text of the record data.
    pub data: Arc<str>,
}

/// Storage and cache (server.md §2.4.3–§2.4.4).
pub trait RecordStore: Lifecycle {
    fn get(&self, name: &str) -> Answer<Option<StoredRecord>>;
    fn set(&self, name: &str, version: i32, data: Arc<str>) -> Answer<()>;
    fn delete(&self, name: &str) -> Answer<()>;
    fn delete_bulk(&self, names: &[String]) -> Answer<()>;
    fn head(&self, name: &str) -> Answer<Option<i32>>;
    /// Versions of the names that exist.
    fn head_bulk(&self, names: &[String]) -> Answer<Vec<(String, i32)>>;
}

/// The logger slot (server.md §2.4.5). The host's `tracing` output is routed into it.
pub trait Logger: Lifecycle {
    fn should_log(&self, level: LogLevel) -> bool;
    fn set_log_level(&self, level: LogLevel);
    fn log(&self, level: LogLevel, namespace: &str, event: &str, message: &str);
}

/// Monitoring hooks (server.md §2.4.6), all fire-and-forget.
pub trait Monitoring: Lifecycle {
    fn on_error_log(&self, _level: LogLevel, _event: &str, _message: &str) {}
    fn on_login(&self, _allowed: bool, _endpoint_type: &str) {}
    fn on_message_received(&self, _topic: u8, _action: i32) {}
    fn on_message_send(&self, _topic: u8, _action: i32) {}
    fn on_broadcast(&self, _topic: u8, _action: i32, _count: u32) {}
}

/// Receives cluster messages of one topic.
pub type ClusterHandler = Arc<dyn Fn(bytes::Bytes, &str) + Send + Sync>;

/// The message bus between servers (server.md §2.4.7). Frames are encoded protocol messages.
pub trait ClusterNode: Lifecycle {
    /// Broadcast to every other server.
    fn send(&self, frame: bytes::Bytes);
    fn send_direct(&self, server_name: &str, frame: bytes::Bytes);
    fn subscribe(&self, topic: i32, handler: ClusterHandler);
    /// Whether [`send`](Self::send) can reach anyone: `false` lets broadcasts skip encoding a
    /// frame when no local client receives it either.
    fn has_peers(&self) -> bool {
        true
    }
}

/// Cluster-wide locks (server.md §2.4.8).
pub trait LockRegistry: Lifecycle {
    fn get(&self, name: &str) -> Answer<bool>;
    fn release(&self, name: &str);
}

/// Told about servers joining and leaving.
pub type MembershipHandler = Arc<dyn Fn(&str, bool) + Send + Sync>;

/// Membership and leader election (server.md §2.4.9).
pub trait ClusterRegistry: Lifecycle {
    fn is_leader(&self) -> bool;
    fn leader(&self) -> String;
    fn all(&self) -> Vec<String>;
    /// `handler(server, true)` on join, `(server, false)` on leave.
    fn set_listener(&self, handler: MembershipHandler);
}

/// Told when a name gains its first holder (`true`) or loses its last (`false`), cluster-wide.
pub type StateHandler = Arc<dyn Fn(&str, bool) + Send + Sync>;

/// A cluster-wide reference-counted set of names (server.md §2.4.10).
pub trait StateRegistry: Send + Sync {
    fn add(&self, name: &str);
    fn remove(&self, name: &str);
    fn has(&self, name: &str) -> bool;
    fn all(&self) -> Vec<String>;
    fn all_servers(&self, name: &str) -> Vec<String>;
    fn set_listener(&self, handler: StateHandler);
}

/// Hands out one state registry per registry topic.
pub trait StateRegistryFactory: Lifecycle {
    fn registry(&self, topic: i32) -> Result<Arc<dyn StateRegistry>, ServiceError>;
}

/// Custom plugins (`plugins:` section) told about authenticated connections.
pub trait ConnectionListener: Lifecycle {
    fn on_client_connected(&self, _connection: u64, _user_id: &str, _endpoint_type: &str) {}
    fn on_client_disconnected(&self, _connection: u64, _user_id: &str, _endpoint_type: &str) {}
}
