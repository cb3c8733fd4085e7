//! The plugin author's side: plain safe Rust traits, one per slot.
//!
//! Implement [`Plugin`] (construction from typed options, lifecycle) and the trait of each slot
//! your type fills, then name the type in [`export_plugin!`](crate::export_plugin). The SDK
//! adapts it to the FFI interface: options are deserialised with unknown fields rejected,
//! futures run on the library's own tokio runtime, panics become errors, `tracing` reaches the
//! host's log.

mod ffi;
mod log;
mod runtime;

use std::{future::Future, pin::Pin};

use abi_stable::std_types::{RArc, RBox, RStr};
use serde::de::DeserializeOwned;

pub use crate::abi::{
    ClusterMembershipListener_TO, ClusterSink_TO, EndpointHost_TO, LogLevel, StateListener_TO,
};
#[doc(hidden)]
pub use ffi::*;
pub use runtime::{panic_message, runtime, spawn};

use crate::abi::HostServices_TO;

/// A boxed future, for answers that are not ready at once.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A sync-first answer: `Ready` for the common case, `Pending` when I/O is needed.
pub enum Check<T> {
    Ready(Result<T, String>),
    Pending(BoxFuture<Result<T, String>>),
}

/// What the host hands a new instance.
pub struct Context {
    /// The config key of the instance (`storage`, `auth[0]`, `plugins.audit`).
    pub instance_name: String,
    /// The host's services.
    host: HostServices_TO<'static, RArc<()>>,
}

impl Context {
    /// This server's name inside a cluster.
    pub fn server_name(&self) -> String {
        self.host.server_name().into()
    }

    /// A context outside any server, for a plugin's own tests: its log lines go to stderr.
    pub fn standalone(instance_name: &str) -> Context {
        Context {
            instance_name: instance_name.to_owned(),
            host: standalone_host(),
        }
    }
}

/// What a slot constructor receives outside any server, for a plugin's own tests of its
/// exported constructors (`sdk::new_storage::<T>(standalone_init("storage", "{}"))`).
pub fn standalone_init(instance_name: &str, options_json: &str) -> crate::abi::PluginInit {
    crate::abi::PluginInit {
        instance_name: instance_name.into(),
        options_json: options_json.into(),
        host: standalone_host(),
    }
}

fn standalone_host() -> HostServices_TO<'static, RArc<()>> {
    HostServices_TO::from_ptr(RArc::new(StandaloneHost), abi_stable::sabi_trait::TD_Opaque)
}

/// Host services when no server is around.
struct StandaloneHost;

impl crate::abi::HostServices for StandaloneHost {
    fn log_enabled(&self, _level: LogLevel) -> bool {
        true
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        eprintln!("{level:?} {target}: {message}");
    }

    fn server_name(&self) -> abi_stable::std_types::RString {
        "standalone".into()
    }
}

/// Construction and lifecycle, shared by every slot (server.md §2.1).
pub trait Plugin: Send + Sync + Sized + 'static {
    /// The `options:` of the config entry. Derive `Deserialize` with
    /// `#[serde(deny_unknown_fields)]` so typos are reported to the operator.
    type Options: DeserializeOwned;

    /// Builds the instance. Must not block; connect in `when_ready`.
    fn new(context: Context, options: Self::Options) -> Result<Self, String>;

    /// Logged as `<slot> ready: <description>`.
    fn description(&self) -> String {
        String::new()
    }

    /// Called once all services exist, right before `when_ready`.
    fn init(&self) -> Result<(), String> {
        Ok(())
    }

    /// Resolves when the instance is usable.
    fn when_ready(&self) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }

    /// Releases resources (connections, background tasks).
    fn close(&self) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }
}

/// The outcome of a login attempt (server.md §2.4.1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Whether the login is accepted.
    pub is_valid: bool,
    /// The user id; `None` lets the server use `"OPEN"`.
    pub id: Option<String>,
    /// Sent to the client with the login answer.
    pub client_data: Option<serde_json::Value>,
    /// Visible to permission rules as `user.data`, never sent to clients.
    pub server_data: Option<serde_json::Value>,
    /// Returned by the HTTP `/api/auth` endpoint; later sent back as `{"token": …}`.
    pub token: Option<String>,
}

/// Authentication slot.
pub trait Authentication: Plugin {
    /// `None` means "no opinion": the next handler is asked.
    fn is_valid_user(
        &self,
        connection_data: &serde_json::Value,
        auth_data: &serde_json::Value,
    ) -> Check<Option<Verdict>>;

    /// An authenticated connection of `user_id` closed.
    fn on_client_disconnect(&self, _user_id: &str) {}
}

/// One message to permission-check.
#[derive(Debug, Clone, Copy)]
pub struct PermissionRequest<'a> {
    /// The connection's user id.
    pub user_id: &'a str,
    /// The user's server data as JSON text.
    pub server_data: Option<&'a str>,
    /// Protocol topic number (EVENT 4, RECORD 5, RPC 6, PRESENCE 7).
    pub topic: u8,
    /// Protocol action number.
    pub action: i32,
    /// Event/record/rpc name or presence user.
    pub name: &'a str,
    /// The message's data as JSON text.
    pub data: Option<&'a str>,
    /// The record path of a patch or erase.
    pub path: Option<&'a str>,
}

/// Permission slot.
pub trait Permission: Plugin {
    /// `true` allows the message. Copy what a `Pending` future needs out of `request`.
    fn can_perform_action(&self, request: &PermissionRequest<'_>) -> Check<bool>;
}

/// A record as stored: version beside the JSON text of its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The record version.
    pub version: i32,
    /// JSON text of the record data.
    pub data: String,
}

/// Storage and cache slots (server.md §2.4.3–§2.4.4).
pub trait RecordStore: Plugin {
    /// `None` when the record does not exist.
    fn get(&self, name: String) -> impl Future<Output = Result<Option<Stored>, String>> + Send;

    /// Upserts the record with its version.
    fn set(
        &self,
        name: String,
        version: i32,
        data: String,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Idempotent.
    fn delete(&self, name: String) -> impl Future<Output = Result<(), String>> + Send;

    /// Override when the backend can delete many names at once.
    fn delete_bulk(&self, names: Vec<String>) -> impl Future<Output = Result<(), String>> + Send {
        async move {
            for name in names {
                self.delete(name).await?;
            }
            Ok(())
        }
    }

    /// Override when the backend keeps versions apart from data.
    fn head(&self, name: String) -> impl Future<Output = Result<Option<i32>, String>> + Send {
        async move { Ok(self.get(name).await?.map(|stored| stored.version)) }
    }

    /// Versions of the names that exist.
    fn head_bulk(
        &self,
        names: Vec<String>,
    ) -> impl Future<Output = Result<Vec<(String, i32)>, String>> + Send {
        async move {
            let mut found = Vec::with_capacity(names.len());
            for name in names {
                if let Some(version) = self.head(name.clone()).await? {
                    found.push((name, version));
                }
            }
            Ok(found)
        }
    }
}

/// Logger slot.
pub trait Logger: Plugin {
    fn should_log(&self, level: LogLevel) -> bool;
    fn set_log_level(&self, level: LogLevel);
    /// `namespace` is empty for the root logger.
    fn log(&self, level: LogLevel, namespace: &str, event: &str, message: &str);
}

/// Monitoring slot; every hook defaults to doing nothing.
pub trait Monitoring: Plugin {
    fn on_error_log(&self, _level: LogLevel, _event: &str, _message: &str) {}
    fn on_login(&self, _allowed: bool, _endpoint_type: &str) {}
    fn on_message_received(&self, _topic: u8, _action: i32) {}
    fn on_message_send(&self, _topic: u8, _action: i32) {}
    fn on_broadcast(&self, _topic: u8, _action: i32, _count: u32) {}
}

/// Cluster node slot: the bus between servers. Frames are encoded binary-protocol messages.
pub trait ClusterNode: Plugin {
    fn send(&self, frame: Vec<u8>);
    fn send_direct(&self, server_name: &str, frame: Vec<u8>);
    fn subscribe(&self, topic: i32, sink: ClusterSink_TO<'static, RBox<()>>);
}

/// Lock registry slot.
pub trait LockRegistry: Plugin {
    fn get(&self, name: String) -> impl Future<Output = Result<bool, String>> + Send;
    fn release(&self, name: &str);
}

/// Cluster registry slot.
pub trait ClusterRegistry: Plugin {
    fn is_leader(&self) -> bool;
    fn leader(&self) -> String;
    fn all(&self) -> Vec<String>;
    fn set_listener(&self, listener: ClusterMembershipListener_TO<'static, RBox<()>>);
}

/// One replicated set of names, as a state registry factory hands them out.
pub trait StateRegistry: Send + Sync + 'static {
    fn add(&self, name: &str);
    fn remove(&self, name: &str);
    fn has(&self, name: &str) -> bool;
    fn all(&self) -> Vec<String>;
    fn all_servers(&self, name: &str) -> Vec<String>;
    fn set_listener(&self, listener: StateListener_TO<'static, RBox<()>>);
    fn when_ready(&self) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }
}

/// State registry factory slot.
pub trait StateRegistryFactory: Plugin {
    type Registry: StateRegistry;
    fn registry(&self, topic: i32) -> std::sync::Arc<Self::Registry>;
}

/// Names → local connections for one topic.
pub trait SubscriptionRegistry: Send + Sync + 'static {
    fn subscribe(&self, name: &str, connection: u64) -> bool;
    fn unsubscribe(&self, name: &str, connection: u64) -> bool;
    fn local_subscribers(&self, name: &str) -> Vec<u64>;
    fn remove_connection(&self, connection: u64) -> Vec<String>;
}

/// Subscription registry factory slot.
pub trait SubscriptionRegistryFactory: Plugin {
    type Registry: SubscriptionRegistry;
    fn registry(&self, topic: i32) -> std::sync::Arc<Self::Registry>;
}

/// Connection endpoint slot: a transport that hands the host binary-protocol frames.
pub trait ConnectionEndpoint: Plugin {
    /// Keep `host` to report connections, frames and closes.
    fn attach(&self, host: EndpointHost_TO<'static, RArc<()>>);
    fn send(&self, connection: u64, frame: &[u8]);
    fn close_connection(&self, connection: u64);
}

/// An authenticated connection, as custom plugins see it.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// Host-unique connection id.
    pub connection: u64,
    /// The user id it logged in as.
    pub user_id: &'a str,
    /// The endpoint carrying it (`ws-binary`, …).
    pub endpoint_type: &'a str,
}

/// Custom plugin slot (`plugins:` section).
pub trait Custom: Plugin {
    fn on_client_connected(&self, _client: &Client<'_>) {}
    fn on_client_disconnected(&self, _client: &Client<'_>) {}
}

/// Reads JSON text handed over by the host; the host only sends valid JSON.
fn json_of(text: RStr<'_>) -> serde_json::Value {
    serde_json::from_str(text.as_str()).unwrap_or(serde_json::Value::Null)
}
