//! The FFI-stable types: what actually crosses between the host and a plugin library.
//!
//! Everything here is `#[repr(C)]`/`StableAbi`, so abi_stable can compare the layout the host
//! was built with against the one the plugin was built with before any plugin code runs.
//! Record data, options and auth payloads cross as JSON text; protocol messages cross as
//! encoded binary-protocol frames (the same bytes the official client sends).

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RArc, RBox, ROption, RResult, RSlice, RStr, RString, RVec, Tuple2},
};
use async_ffi::FfiFuture;

/// The future every async plugin operation returns: polled by the host's executor.
pub type PluginFuture<T> = FfiFuture<RResult<T, RString>>;

/// Log levels, numbered as deepstream numbers them (DEBUG 0 … FATAL 4).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
    Fatal = 4,
}

impl From<&tracing::Level> for LogLevel {
    /// `tracing` has no FATAL; TRACE folds into DEBUG.
    fn from(level: &tracing::Level) -> Self {
        match *level {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }
}

/// A sync-first answer: hot-path checks (permission, authentication) usually know the answer
/// at once, so the common case costs no allocation; only real I/O returns a future.
#[repr(u8)]
#[derive(StableAbi)]
pub enum Answer<T> {
    Ready(RResult<T, RString>),
    Pending(PluginFuture<T>),
}

/// What an authentication handler decided (server.md §2.4.1).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthVerdict {
    /// Whether the login is accepted.
    pub is_valid: bool,
    /// The user id; `RNone` lets the core fall back to `"OPEN"`.
    pub id: ROption<RString>,
    /// JSON text sent to the client with the login answer.
    pub client_data: ROption<RString>,
    /// JSON text kept on the server, visible to permission rules as `user.data`.
    pub server_data: ROption<RString>,
    /// A token the HTTP `/api/auth` endpoint hands back (opaque to the server).
    pub token: ROption<RString>,
}

/// One message to permission-check, borrowed from the message being processed.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct PermissionRequest<'a> {
    /// The authenticated user id of the connection.
    pub user_id: RStr<'a>,
    /// The user's server data (JSON text), if authentication gave any.
    pub server_data: ROption<RStr<'a>>,
    /// Protocol topic number (EVENT 4, RECORD 5, RPC 6, PRESENCE 7).
    pub topic: u8,
    /// Protocol action number within the topic.
    pub action: i32,
    /// The subject: event/record/rpc name or presence user; empty when the message has none.
    pub name: RStr<'a>,
    /// The message's `data` as JSON text, if present.
    pub data: ROption<RStr<'a>>,
    /// The record path of a patch or erase, if present.
    pub path: ROption<RStr<'a>>,
}

/// A stored record: version kept beside the data, never inside it (server.md §2.4.3).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record version (0 for a freshly created record).
    pub version: i32,
    /// The record data as JSON text (object or array).
    pub data: RString,
}

/// An authenticated client connection as custom plugins see it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct ClientInfo<'a> {
    /// Host-unique connection id.
    pub connection: u64,
    /// The user id the connection logged in as.
    pub user_id: RStr<'a>,
    /// Which endpoint carries the connection (`ws-binary`, …).
    pub endpoint_type: RStr<'a>,
}

/// Handed to every slot constructor: which config entry this instance is for.
#[repr(C)]
#[derive(StableAbi)]
pub struct PluginInit {
    /// The config key of the instance (`storage`, `auth[1]`, `plugins.audit`, …), for messages.
    pub instance_name: RString,
    /// The `options:` mapping of the config entry as JSON text (`{}` when absent).
    pub options_json: RString,
    /// Services the host offers the instance.
    pub host: HostServices_TO<'static, RArc<()>>,
}

/// A constructed slot instance: its lifecycle object plus the slot's own object, both
/// pointing at the same plugin value.
#[repr(C)]
#[derive(StableAbi)]
pub struct Instance<S> {
    /// init / whenReady / close / description (server.md §2.1).
    pub lifecycle: PluginLifecycle_TO<'static, RArc<()>>,
    /// The slot interface proper.
    pub slot: S,
}

/// What a slot constructor returns.
pub type NewInstance<S> = RResult<Instance<S>, RString>;

/// Services the host provides to plugins. Implemented by the host; only ever grows by
/// appending methods with default bodies, so newer plugins keep working with it.
#[sabi_trait]
pub trait HostServices: Send + Sync {
    /// Whether a log line at `level` would be written (lets plugins skip formatting).
    fn log_enabled(&self, level: LogLevel) -> bool;
    /// Writes one log line through the host's logger, attributed to this plugin.
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);
    /// This server's name inside a cluster.
    #[sabi(last_prefix_field)]
    fn server_name(&self) -> RString;
}

/// The lifecycle every slot instance has (server.md §2.1–§2.2).
#[sabi_trait]
pub trait PluginLifecycle: Send + Sync {
    /// Human description, logged as `<slot> ready: <description>`.
    fn description(&self) -> RString;
    /// Called once after every service is constructed, right before `when_ready`.
    fn init(&self) -> RResult<(), RString>;
    /// Resolves once the instance is usable (connected, listening…).
    fn when_ready(&self) -> PluginFuture<()>;
    /// Releases resources; the instance is not called again afterwards.
    fn close(&self) -> PluginFuture<()>;
}

/// Authentication slot (server.md §2.4.1).
#[sabi_trait]
pub trait AuthenticationPlugin: Send + Sync {
    /// `connection_data` and `auth_data` are JSON text. `RNone` = no opinion, ask the next handler.
    fn is_valid_user(
        &self,
        connection_data: RStr<'_>,
        auth_data: RStr<'_>,
    ) -> Answer<ROption<AuthVerdict>>;
    /// An authenticated stateful connection of `user_id` closed.
    fn on_client_disconnect(&self, user_id: RStr<'_>);
}

/// Permission slot (server.md §2.4.2): `true` allows the message.
#[sabi_trait]
pub trait PermissionPlugin: Send + Sync {
    fn can_perform_action(&self, request: PermissionRequest<'_>) -> Answer<bool>;
}

/// Storage and cache slots (server.md §2.4.3–§2.4.4) share this interface.
#[sabi_trait]
pub trait RecordStorePlugin: Send + Sync {
    /// `RNone` when the record does not exist.
    fn get(&self, name: RString) -> PluginFuture<ROption<StoredRecord>>;
    /// Upserts the record with its version.
    fn set(&self, name: RString, version: i32, data: RString) -> PluginFuture<()>;
    /// Idempotent delete.
    fn delete(&self, name: RString) -> PluginFuture<()>;
    fn delete_bulk(&self, names: RVec<RString>) -> PluginFuture<()>;
    /// The version of a record, `RNone` when missing.
    fn head(&self, name: RString) -> PluginFuture<ROption<i32>>;
    /// Versions of the records that exist; missing names are left out.
    fn head_bulk(&self, names: RVec<RString>) -> PluginFuture<RVec<Tuple2<RString, i32>>>;
}

/// Logger slot (server.md §2.4.5).
#[sabi_trait]
pub trait LoggerPlugin: Send + Sync {
    fn should_log(&self, level: LogLevel) -> bool;
    fn set_log_level(&self, level: LogLevel);
    /// `namespace` is empty for the root logger; `event` is a deepstream EVENT name or free text.
    fn log(&self, level: LogLevel, namespace: RStr<'_>, event: RStr<'_>, message: RStr<'_>);
}

/// Monitoring slot (server.md §2.4.6); every call is fire-and-forget.
#[sabi_trait]
pub trait MonitoringPlugin: Send + Sync {
    fn on_error_log(&self, level: LogLevel, event: RStr<'_>, message: RStr<'_>);
    fn on_login(&self, allowed: bool, endpoint_type: RStr<'_>);
    fn on_message_received(&self, topic: u8, action: i32);
    fn on_message_send(&self, topic: u8, action: i32);
    fn on_broadcast(&self, topic: u8, action: i32, count: u32);
}

/// Receives cluster messages for one topic. Implemented by the host.
#[sabi_trait]
pub trait ClusterSink: Send + Sync {
    /// `frame` is one encoded binary-protocol message.
    fn deliver(&self, frame: RSlice<'_, u8>, origin_server: RStr<'_>);
}

/// Cluster node slot: the message bus between servers (server.md §2.4.7).
#[sabi_trait]
pub trait ClusterNodePlugin: Send + Sync {
    /// Broadcasts to every other server (never back to this one).
    fn send(&self, frame: RVec<u8>);
    fn send_direct(&self, server_name: RStr<'_>, frame: RVec<u8>);
    /// Delivers messages of `topic` (a TOPIC or STATE_REGISTRY_TOPIC number) to `sink`.
    fn subscribe(&self, topic: i32, sink: ClusterSink_TO<'static, RBox<()>>);
}

/// Lock registry slot (server.md §2.4.8).
#[sabi_trait]
pub trait LockRegistryPlugin: Send + Sync {
    /// Resolves to whether the lock was granted.
    fn get(&self, name: RString) -> PluginFuture<bool>;
    fn release(&self, name: RString);
}

/// Told about servers joining and leaving. Implemented by the host.
#[sabi_trait]
pub trait ClusterMembershipListener: Send + Sync {
    fn server_added(&self, server_name: RStr<'_>);
    fn server_removed(&self, server_name: RStr<'_>);
}

/// Cluster registry slot: membership and leader election (server.md §2.4.9).
#[sabi_trait]
pub trait ClusterRegistryPlugin: Send + Sync {
    fn is_leader(&self) -> bool;
    fn leader(&self) -> RString;
    /// Every known server, this one included.
    fn all(&self) -> RVec<RString>;
    fn set_listener(&self, listener: ClusterMembershipListener_TO<'static, RBox<()>>);
}

/// Told when a name gains its first holder or loses its last, cluster-wide. Implemented by the host.
#[sabi_trait]
pub trait StateListener: Send + Sync {
    fn on_add(&self, name: RStr<'_>);
    fn on_remove(&self, name: RStr<'_>);
}

/// One replicated, reference-counted set of names (server.md §2.4.10).
#[sabi_trait]
pub trait StateRegistry: Send + Sync {
    fn add(&self, name: RStr<'_>);
    fn remove(&self, name: RStr<'_>);
    fn has(&self, name: RStr<'_>) -> bool;
    fn all(&self) -> RVec<RString>;
    fn all_servers(&self, name: RStr<'_>) -> RVec<RString>;
    fn set_listener(&self, listener: StateListener_TO<'static, RBox<()>>);
    fn when_ready(&self) -> PluginFuture<()>;
}

/// State registry factory slot: one registry per registry topic.
#[sabi_trait]
pub trait StateRegistryFactoryPlugin: Send + Sync {
    fn registry(&self, topic: i32) -> RResult<StateRegistry_TO<'static, RArc<()>>, RString>;
}

/// Names → local subscriber connections, for one topic (server.md §2.4.11).
#[sabi_trait]
pub trait SubscriptionRegistry: Send + Sync {
    /// `false` when the connection was already subscribed.
    fn subscribe(&self, name: RStr<'_>, connection: u64) -> bool;
    /// `false` when the connection was not subscribed.
    fn unsubscribe(&self, name: RStr<'_>, connection: u64) -> bool;
    fn local_subscribers(&self, name: RStr<'_>) -> RVec<u64>;
    /// Removes the connection everywhere; returns the names it was subscribed to.
    fn remove_connection(&self, connection: u64) -> RVec<RString>;
}

/// Subscription registry factory slot.
#[sabi_trait]
pub trait SubscriptionRegistryFactoryPlugin: Send + Sync {
    fn registry(&self, topic: i32) -> RResult<SubscriptionRegistry_TO<'static, RArc<()>>, RString>;
}

/// What a connection endpoint plugin reports to the host. Implemented by the host, which runs
/// the connection state machine (challenge, login, permissions) for every connection.
#[sabi_trait]
pub trait EndpointHost: Send + Sync {
    /// A client connected; `handshake` is JSON `{remoteAddress, headers}`. Returns its id.
    fn open(&self, handshake: RStr<'_>) -> u64;
    /// One binary-protocol frame from the client.
    fn receive(&self, connection: u64, frame: RSlice<'_, u8>);
    fn closed(&self, connection: u64);
}

/// Connection endpoint slot (server.md §2.4.12): speaks some transport, hands the host
/// binary-protocol frames.
#[sabi_trait]
pub trait ConnectionEndpointPlugin: Send + Sync {
    /// Called once before `when_ready`; the endpoint keeps `host` to report its clients.
    fn attach(&self, host: EndpointHost_TO<'static, RArc<()>>);
    fn send(&self, connection: u64, frame: RSlice<'_, u8>);
    fn close_connection(&self, connection: u64);
}

/// Custom plugin slot (`plugins:` section, server.md §2.6).
#[sabi_trait]
pub trait CustomPlugin: Send + Sync {
    fn on_client_connected(&self, client: ClientInfo<'_>);
    fn on_client_disconnected(&self, client: ClientInfo<'_>);
}

/// The root module every plugin library exports (through [`export_plugin!`](crate::export_plugin)).
/// One library may provide any set of slots; `None` means "not provided".
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginLibraryRef)))]
#[sabi(missing_field(panic))]
pub struct PluginLibrary {
    /// The plugin API version the library was built against; must equal the host's.
    pub api_version: u32,
    /// The library's name, e.g. `storage-sqlite`.
    pub name: RStr<'static>,
    /// The library's own version.
    pub version: RStr<'static>,
    /// Called once per loaded file, before any constructor: installs logging and panic hooks.
    pub init_library: extern "C" fn(HostServices_TO<'static, RArc<()>>),
    pub new_authentication: Option<
        extern "C" fn(PluginInit) -> NewInstance<AuthenticationPlugin_TO<'static, RArc<()>>>,
    >,
    pub new_permission:
        Option<extern "C" fn(PluginInit) -> NewInstance<PermissionPlugin_TO<'static, RArc<()>>>>,
    pub new_storage:
        Option<extern "C" fn(PluginInit) -> NewInstance<RecordStorePlugin_TO<'static, RArc<()>>>>,
    pub new_cache:
        Option<extern "C" fn(PluginInit) -> NewInstance<RecordStorePlugin_TO<'static, RArc<()>>>>,
    pub new_logger:
        Option<extern "C" fn(PluginInit) -> NewInstance<LoggerPlugin_TO<'static, RArc<()>>>>,
    pub new_monitoring:
        Option<extern "C" fn(PluginInit) -> NewInstance<MonitoringPlugin_TO<'static, RArc<()>>>>,
    pub new_cluster_node:
        Option<extern "C" fn(PluginInit) -> NewInstance<ClusterNodePlugin_TO<'static, RArc<()>>>>,
    pub new_lock_registry:
        Option<extern "C" fn(PluginInit) -> NewInstance<LockRegistryPlugin_TO<'static, RArc<()>>>>,
    pub new_cluster_registry: Option<
        extern "C" fn(PluginInit) -> NewInstance<ClusterRegistryPlugin_TO<'static, RArc<()>>>,
    >,
    pub new_state_registry_factory: Option<
        extern "C" fn(PluginInit) -> NewInstance<StateRegistryFactoryPlugin_TO<'static, RArc<()>>>,
    >,
    pub new_subscription_registry_factory: Option<
        extern "C" fn(
            PluginInit,
        )
            -> NewInstance<SubscriptionRegistryFactoryPlugin_TO<'static, RArc<()>>>,
    >,
    pub new_connection_endpoint: Option<
        extern "C" fn(PluginInit) -> NewInstance<ConnectionEndpointPlugin_TO<'static, RArc<()>>>,
    >,
    pub new_custom:
        Option<extern "C" fn(PluginInit) -> NewInstance<CustomPlugin_TO<'static, RArc<()>>>>,
}

impl RootModule for PluginLibraryRef {
    declare_root_module_statics! {PluginLibraryRef}
    const BASE_NAME: &'static str = "deepstream_plugin";
    const NAME: &'static str = "deepstream plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The slots a library can fill, in deepstream's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Authentication,
    Permission,
    Storage,
    Cache,
    Logger,
    Monitoring,
    ClusterNode,
    LockRegistry,
    ClusterRegistry,
    StateRegistryFactory,
    SubscriptionRegistryFactory,
    ConnectionEndpoint,
    Custom,
}

impl Slot {
    /// The name used in messages and in `deepstream plugins` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Authentication => "authentication",
            Slot::Permission => "permission",
            Slot::Storage => "storage",
            Slot::Cache => "cache",
            Slot::Logger => "logger",
            Slot::Monitoring => "monitoring",
            Slot::ClusterNode => "clusterNode",
            Slot::LockRegistry => "locks",
            Slot::ClusterRegistry => "clusterRegistry",
            Slot::StateRegistryFactory => "clusterStates",
            Slot::SubscriptionRegistryFactory => "subscriptions",
            Slot::ConnectionEndpoint => "connectionEndpoint",
            Slot::Custom => "plugin",
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PluginLibraryRef {
    /// The slots this library provides.
    pub fn slots(self) -> Vec<Slot> {
        let provided = [
            (self.new_authentication().is_some(), Slot::Authentication),
            (self.new_permission().is_some(), Slot::Permission),
            (self.new_storage().is_some(), Slot::Storage),
            (self.new_cache().is_some(), Slot::Cache),
            (self.new_logger().is_some(), Slot::Logger),
            (self.new_monitoring().is_some(), Slot::Monitoring),
            (self.new_cluster_node().is_some(), Slot::ClusterNode),
            (self.new_lock_registry().is_some(), Slot::LockRegistry),
            (self.new_cluster_registry().is_some(), Slot::ClusterRegistry),
            (
                self.new_state_registry_factory().is_some(),
                Slot::StateRegistryFactory,
            ),
            (
                self.new_subscription_registry_factory().is_some(),
                Slot::SubscriptionRegistryFactory,
            ),
            (
                self.new_connection_endpoint().is_some(),
                Slot::ConnectionEndpoint,
            ),
            (self.new_custom().is_some(), Slot::Custom),
        ];
        provided
            .into_iter()
            .filter(|(has, _)| *has)
            .map(|(_, slot)| slot)
            .collect()
    }
}
