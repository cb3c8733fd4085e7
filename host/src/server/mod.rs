//! The server: services, topic handlers, the message pipeline, start-up and shutdown.

mod build;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use tokio::sync::broadcast;

pub use build::{BuildError, Services};

use crate::{
    HashMap,
    config::Config,
    connection::ConnectionHandle,
    protocol::{ConnectionAction, Message, Topic},
    services::{Answer, AuthVerdict, Lifecycle, Permission, PermissionRequest},
};

/// A topic's handler (event, record, rpc, presence). Handlers never block the connection's
/// task: work that waits on I/O is spawned.
pub trait TopicHandler: Send + Sync {
    /// A message that passed the permission check.
    fn handle(&self, connection: &ConnectionHandle, message: Message);
    /// A connection logged in (presence joins).
    fn client_connected(&self, _connection: &ConnectionHandle) {}
    /// An authenticated connection closed: drop what it held.
    fn client_disconnected(&self, _connection: &ConnectionHandle) {}
}

/// The denial actions of a topic: (MESSAGE_PERMISSION_ERROR, MESSAGE_DENIED), protocol.md §3.2.
pub(crate) fn denial_actions(topic: Topic) -> Option<(i32, i32)> {
    use crate::protocol::{EventAction, PresenceAction, RecordAction, RpcAction};
    match topic {
        Topic::Event => Some((
            EventAction::MessagePermissionError as i32,
            EventAction::MessageDenied as i32,
        )),
        Topic::Record => Some((
            RecordAction::MessagePermissionError as i32,
            RecordAction::MessageDenied as i32,
        )),
        Topic::Rpc => Some((
            RpcAction::MessagePermissionError as i32,
            RpcAction::MessageDenied as i32,
        )),
        Topic::Presence => Some((
            PresenceAction::MessagePermissionError as i32,
            PresenceAction::MessageDenied as i32,
        )),
        _ => None,
    }
}

/// The running server's shared state.
pub struct Server {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// Every service, built-in or plugin.
    pub services: Services,
    /// Handlers indexed by topic number; a disabled feature has none.
    handlers: Vec<Option<Arc<dyn TopicHandler>>>,
    /// Ids for new connections.
    next_connection_id: AtomicU64,
    /// Open connections, to close them on shutdown.
    connections: Mutex<HashMap<u64, ConnectionHandle>>,
    /// Fires once when the server shuts down.
    shutdown: broadcast::Sender<()>,
    /// Set when shutdown starts; connections registered later close at once.
    shutting_down: AtomicBool,
    /// sdkType → versions seen in challenges (server.md §2.4.12 `getClientVersions`).
    client_versions: Mutex<HashMap<String, Vec<String>>>,
}

/// Removes a connection from the open set when its transport ends.
pub struct Registration {
    /// The server holding the set.
    server: Arc<Server>,
    /// The connection's id.
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.server.connections.lock().remove(&self.id);
    }
}

impl Server {
    /// Builds the services of `config` (loading plugin libraries) and the topic handlers.
    pub fn new(config: Config) -> Result<Arc<Server>, BuildError> {
        let services = build::build(&config)?;
        let config = Arc::new(config);
        let handlers = crate::handlers(&config, &services).map_err(|message| BuildError {
            key: "enabledFeatures".into(),
            message,
        })?;
        let (shutdown, _) = broadcast::channel(1);
        let server = Arc::new(Server {
            config,
            services,
            handlers,
            next_connection_id: AtomicU64::new(1),
            connections: Mutex::default(),
            shutdown,
            shutting_down: AtomicBool::new(false),
            client_versions: Mutex::default(),
        });
        Ok(server)
    }

    fn handler(&self, topic: Topic) -> Option<&Arc<dyn TopicHandler>> {
        self.handlers.get(topic as usize).and_then(Option::as_ref)
    }

    fn all_handlers(&self) -> impl Iterator<Item = &Arc<dyn TopicHandler>> {
        self.handlers.iter().flatten()
    }

    pub fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Tracks an open connection until the returned guard drops; a connection registered
    /// once shutdown has started is closed at once.
    pub fn register_connection(self: &Arc<Self>, connection: &ConnectionHandle) -> Registration {
        self.connections
            .lock()
            .insert(connection.id, connection.clone());
        if self.shutting_down.load(Ordering::SeqCst) {
            connection.close();
        }
        Registration {
            server: self.clone(),
            id: connection.id,
        }
    }

    /// Resolves when the server starts shutting down.
    pub fn shutdown_signal(&self) -> broadcast::Receiver<()> {
        self.shutdown.subscribe()
    }

    pub fn note_client_version(&self, sdk_type: Option<&str>, sdk_version: Option<&str>) {
        if let (Some(sdk_type), Some(sdk_version)) = (sdk_type, sdk_version) {
            let mut versions = self.client_versions.lock();
            let list = versions.entry(sdk_type.to_owned()).or_default();
            if !list.iter().any(|v| v == sdk_version) {
                list.push(sdk_version.to_owned());
            }
        }
    }

    /// Asks the authentication handlers in order; the first opinion decides (server.md
    /// §2.4.1). `None`: nobody accepted (or a handler failed, which is logged).
    pub async fn authenticate(
        &self,
        connection_data: &serde_json::Value,
        auth_data: &serde_json::Value,
    ) -> Option<AuthVerdict> {
        crate::auth::combine(&self.services.authentication, connection_data, auth_data)
            .await
            .unwrap_or_else(|error| {
                tracing::error!(
                    event = "AUTH_ERROR",
                    "authentication handler failed: {error}"
                );
                None
            })
    }

    /// A connection logged in: presence, custom plugins.
    pub fn on_authenticated(&self, connection: &ConnectionHandle) {
        tracing::info!(
            event = "AUTH_SUCCESSFUL",
            "{} logged in",
            connection.user_id()
        );
        for handler in self.all_handlers() {
            handler.client_connected(connection);
        }
        for plugin in &self.services.plugins {
            plugin.on_client_connected(
                connection.id,
                connection.user_id(),
                connection.endpoint_type,
            );
        }
    }

    /// An authenticated connection closed.
    pub fn on_connection_closed(&self, connection: &ConnectionHandle) {
        for handler in self.all_handlers() {
            handler.client_disconnected(connection);
        }
        for auth in &self.services.authentication {
            auth.on_client_disconnect(connection.user_id());
        }
        for plugin in &self.services.plugins {
            plugin.on_client_disconnected(
                connection.id,
                connection.user_id(),
                connection.endpoint_type,
            );
        }
    }

    /// The pipeline for one message of an authenticated connection (protocol.md §3.1).
    pub async fn process(&self, connection: &ConnectionHandle, mut message: Message) {
        if message.topic == Topic::Connection && message.action_as() == Some(ConnectionAction::Ping)
        {
            connection.send(&Message::new(Topic::Connection, ConnectionAction::Pong));
            return;
        }
        let Some(handler) = self.handler(message.topic) else {
            tracing::warn!(
                event = "UNKNOWN_TOPIC",
                "unhandled topic {:?} from {}",
                message.topic,
                connection.user_id()
            );
            connection.send(&Message::unknown_topic());
            return;
        };
        if message.names.is_empty() {
            let name = message.name.as_deref().unwrap_or_default();
            if !self.permitted(connection, &message, name).await {
                return;
            }
        } else {
            let names = std::mem::take(&mut message.names);
            let mut allowed = Vec::with_capacity(names.len());
            for name in names {
                if self.permitted(connection, &message, &name).await {
                    allowed.push(name);
                }
            }
            // Denied names are removed themselves (the reference drops the last name instead,
            // protocol.md §3.2 quirk); nothing left → no handler, no ack.
            if allowed.is_empty() {
                return;
            }
            message.names = allowed;
        }
        self.services
            .monitoring
            .on_message_received(message.topic as u8, message.action);
        handler.handle(connection, message);
    }

    /// Runs the permission check for `name`, answering a denial or error itself.
    async fn permitted(
        &self,
        connection: &ConnectionHandle,
        message: &Message,
        name: &str,
    ) -> bool {
        check_permission(
            self.services.permission.as_ref(),
            connection,
            message,
            message.action,
            name,
        )
        .await
    }

    /// SERVICE_INIT: init + when_ready for every service, concurrently, each bounded by
    /// `dependencyInitializationTimeout` (server.md §2.2).
    pub async fn start_services(&self) -> Result<(), String> {
        let timeout = self.config.dependency_initialization_timeout;
        let waits = self
            .services
            .lifecycles
            .iter()
            .map(|(key, service)| ready(key, service.as_ref(), timeout));
        for result in futures_util::future::join_all(waits).await {
            result?;
        }
        Ok(())
    }

    /// Hands every reloadable service its options from `config` (SIGHUP, `deepstream
    /// reload`); a service that refuses them keeps its old ones. Returns one line per service.
    pub fn reload(&self, config: &Config) -> Vec<Result<String, String>> {
        let mut outcomes = Vec::new();
        for (key, service) in &self.services.lifecycles {
            let Some(decl) = config.declaration(key) else {
                continue;
            };
            match service.reload(&decl.options) {
                Some(Ok(())) => outcomes.push(Ok(format!("{key}: reloaded"))),
                Some(Err(error)) => outcomes.push(Err(format!(
                    "{key}: reload refused, old settings stay: {error}"
                ))),
                None => {}
            }
        }
        outcomes
    }

    /// Stops accepting, closes every connection, then closes services in reverse order.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.shutdown.send(());
        let open: Vec<ConnectionHandle> = self.connections.lock().values().cloned().collect();
        for connection in &open {
            connection.close();
        }
        // Give transports a moment to flush and run their close hooks.
        for _ in 0..50 {
            if self.connections.lock().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A service that never finishes closing must not keep the process from exiting; it
        // gets as long as it had to start.
        let limit = self.config.dependency_initialization_timeout;
        for (key, service) in self.services.lifecycles.iter().rev() {
            match tokio::time::timeout(limit, service.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(event = "PLUGIN_ERROR", "{key}: close failed: {error}");
                }
                Err(_) => tracing::error!(
                    event = "PLUGIN_ERROR",
                    "{key}: did not close within {} ms (dependencyInitializationTimeout); \
                     going on without it",
                    limit.as_millis()
                ),
            }
        }
    }
}

/// Asks `permission` whether `connection` may perform `action` on `name` with `message`'s data.
/// A denial or a failed check is answered here, as a denial of `message` (its action becomes
/// `originalAction`, protocol.md §3.2). The pipeline checks the client's action; handlers make
/// secondary checks with another action (records: CREATE, READ, UPDATE, PATCH, §5.3, §5.7).
pub async fn check_permission(
    permission: &dyn Permission,
    connection: &ConnectionHandle,
    message: &Message,
    action: i32,
    name: &str,
) -> bool {
    let user = connection.user();
    let request = PermissionRequest {
        user_id: connection.user_id(),
        server_data: user.and_then(|u| u.server_data.as_ref()),
        topic: message.topic,
        action,
        name,
        data: message
            .data
            .as_deref()
            .and_then(|d| std::str::from_utf8(d).ok()),
        path: message.path.as_deref(),
    };
    let verdict = match permission.can_perform_action(&request) {
        Answer::Ready(result) => result,
        Answer::Pending(future) => future.await,
    };
    let denied_action = match verdict {
        Ok(true) => return true,
        Ok(false) => denial_actions(message.topic).map(|(_, denied)| denied),
        Err(error) => {
            tracing::warn!(
                event = "MESSAGE_PERMISSION_ERROR",
                "permission check for {name} failed: {error}"
            );
            denial_actions(message.topic).map(|(error, _)| error)
        }
    };
    if let Some(action) = denied_action {
        let mut reply = Message::new(message.topic, action)
            .with_original_action(message.action)
            .with_name(name)
            .with_error();
        reply.correlation_id = message.correlation_id.clone();
        if message.is_write_ack == Some(true) {
            reply.is_write_ack = Some(true);
        }
        connection.send(&reply);
    }
    false
}

/// Readiness-tracks one service.
async fn ready(key: &str, service: &dyn Lifecycle, timeout: Duration) -> Result<(), String> {
    service
        .init()
        .map_err(|error| format!("{key}: init failed: {error}"))?;
    match tokio::time::timeout(timeout, service.when_ready()).await {
        Ok(Ok(())) => {
            let description = service.description();
            let description = if description.is_empty() {
                "no dependency description provided".into()
            } else {
                description
            };
            tracing::info!(event = "INFO", "{key} ready: {description}");
            Ok(())
        }
        Ok(Err(error)) => Err(format!("{key}: failed to start: {error}")),
        Err(_) => Err(format!(
            "{key} wasn't initialised in time ({} ms, dependencyInitializationTimeout)",
            timeout.as_millis()
        )),
    }
}
