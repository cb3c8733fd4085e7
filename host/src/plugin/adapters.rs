//! Plugin slot objects dressed as native services: the core calls the same traits whether a
//! service is built in or comes from a library.

use std::sync::Arc;

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RBox, ROption, RResult, RSlice, RStr, RString, RVec},
};
use deepstream_plugin::abi::{
    self, AuthenticationPlugin_TO, ClientInfo, ClusterMembershipListener,
    ClusterMembershipListener_TO, ClusterNodePlugin_TO, ClusterRegistryPlugin_TO, ClusterSink,
    ClusterSink_TO, CustomPlugin_TO, Instance, LockRegistryPlugin_TO, LoggerPlugin_TO,
    MonitoringPlugin_TO, PermissionPlugin_TO, PluginFuture, PluginLifecycle_TO,
    RecordStorePlugin_TO, StateListener, StateListener_TO, StateRegistry_TO,
    StateRegistryFactoryPlugin_TO,
};

use crate::services::{
    Answer, AuthVerdict, Authentication, BoxFuture, ClusterHandler, ClusterNode, ClusterRegistry,
    ConnectionListener, Lifecycle, LockRegistry, LogLevel, Logger, MembershipHandler, Monitoring,
    Permission, PermissionRequest, RecordStore, ServiceError, StateHandler, StateRegistry,
    StateRegistryFactory, StoredRecord,
};

/// One plugin instance: its lifecycle object and its slot object.
pub struct PluginService<S> {
    /// init / whenReady / close / description.
    lifecycle: PluginLifecycle_TO<'static, RArc<()>>,
    /// The slot interface.
    slot: S,
}

impl<S> From<Instance<S>> for PluginService<S> {
    fn from(instance: Instance<S>) -> Self {
        PluginService {
            lifecycle: instance.lifecycle,
            slot: instance.slot,
        }
    }
}

/// Awaits a plugin future as a native one.
fn native<T: Send + 'static>(future: PluginFuture<T>) -> BoxFuture<Result<T, ServiceError>> {
    Box::pin(async move { future.await.into_result().map_err(String::from) })
}

/// Converts a sync-first plugin answer, mapping its value.
fn answer<T, U>(answer: abi::Answer<T>, map: fn(T) -> U) -> Answer<U>
where
    T: Send + 'static,
    U: Send + 'static,
{
    match answer {
        abi::Answer::Ready(result) => {
            Answer::Ready(result.into_result().map(map).map_err(String::from))
        }
        abi::Answer::Pending(future) => Answer::Pending(Box::pin(async move {
            future.await.into_result().map(map).map_err(String::from)
        })),
    }
}

fn pending<T: Send + 'static>(future: PluginFuture<T>) -> Answer<T> {
    Answer::Pending(native(future))
}

fn names_of(names: &[String]) -> RVec<RString> {
    names
        .iter()
        .map(|name| RString::from(name.as_str()))
        .collect()
}

impl<S: Send + Sync> Lifecycle for PluginService<S> {
    fn description(&self) -> String {
        self.lifecycle.description().into()
    }

    fn init(&self) -> Result<(), ServiceError> {
        self.lifecycle.init().into_result().map_err(String::from)
    }

    fn when_ready(&self) -> BoxFuture<Result<(), ServiceError>> {
        native(self.lifecycle.when_ready())
    }

    fn close(&self) -> BoxFuture<Result<(), ServiceError>> {
        native(self.lifecycle.close())
    }
}

/// Reads JSON text a plugin produced; a plugin sending broken JSON gets it dropped.
fn json(text: ROption<RString>) -> Option<serde_json::Value> {
    text.into_option()
        .and_then(|text| serde_json::from_str(text.as_str()).ok())
}

impl Authentication for PluginService<AuthenticationPlugin_TO<'static, RArc<()>>> {
    fn is_valid_user(
        &self,
        connection_data: &serde_json::Value,
        auth_data: &serde_json::Value,
    ) -> Answer<Option<AuthVerdict>> {
        let (connection_data, auth_data) = (connection_data.to_string(), auth_data.to_string());
        let verdict = self
            .slot
            .is_valid_user(connection_data.as_str().into(), auth_data.as_str().into());
        answer(verdict, |verdict| {
            verdict.into_option().map(|v| AuthVerdict {
                is_valid: v.is_valid,
                id: v.id.into_option().map(String::from),
                client_data: json(v.client_data),
                server_data: json(v.server_data),
                token: v.token.into_option().map(String::from),
            })
        })
    }

    fn on_client_disconnect(&self, user_id: &str) {
        self.slot.on_client_disconnect(user_id.into());
    }
}

impl Permission for PluginService<PermissionPlugin_TO<'static, RArc<()>>> {
    fn can_perform_action(&self, request: &PermissionRequest<'_>) -> Answer<bool> {
        let server_data = request.server_data.map(|data| data.to_string());
        let request = abi::PermissionRequest {
            user_id: request.user_id.into(),
            server_data: server_data.as_deref().map(RStr::from).into(),
            topic: request.topic as u8,
            action: request.action,
            name: request.name.into(),
            data: request.data.map(RStr::from).into(),
            path: request.path.map(RStr::from).into(),
        };
        answer(self.slot.can_perform_action(request), |allowed| allowed)
    }
}

impl RecordStore for PluginService<RecordStorePlugin_TO<'static, RArc<()>>> {
    fn get(&self, name: &str) -> Answer<Option<StoredRecord>> {
        let future = self.slot.get(name.into());
        Answer::Pending(Box::pin(async move {
            let stored = future.await.into_result().map_err(String::from)?;
            Ok(stored.into_option().map(|stored| StoredRecord {
                version: stored.version,
                data: Arc::from(stored.data.as_str()),
            }))
        }))
    }

    fn set(&self, name: &str, version: i32, data: Arc<str>) -> Answer<()> {
        pending(self.slot.set(name.into(), version, RString::from(&*data)))
    }

    fn delete(&self, name: &str) -> Answer<()> {
        pending(self.slot.delete(name.into()))
    }

    fn delete_bulk(&self, names: &[String]) -> Answer<()> {
        pending(self.slot.delete_bulk(names_of(names)))
    }

    fn head(&self, name: &str) -> Answer<Option<i32>> {
        let future = self.slot.head(name.into());
        Answer::Pending(Box::pin(async move {
            Ok(future
                .await
                .into_result()
                .map_err(String::from)?
                .into_option())
        }))
    }

    fn head_bulk(&self, names: &[String]) -> Answer<Vec<(String, i32)>> {
        let future = self.slot.head_bulk(names_of(names));
        Answer::Pending(Box::pin(async move {
            let found = future.await.into_result().map_err(String::from)?;
            Ok(found
                .into_iter()
                .map(|pair| (pair.0.into(), pair.1))
                .collect())
        }))
    }
}

impl Logger for PluginService<LoggerPlugin_TO<'static, RArc<()>>> {
    fn should_log(&self, level: LogLevel) -> bool {
        self.slot.should_log(level)
    }

    fn set_log_level(&self, level: LogLevel) {
        self.slot.set_log_level(level);
    }

    fn log(&self, level: LogLevel, namespace: &str, event: &str, message: &str) {
        self.slot
            .log(level, namespace.into(), event.into(), message.into());
    }
}

impl Monitoring for PluginService<MonitoringPlugin_TO<'static, RArc<()>>> {
    fn on_error_log(&self, level: LogLevel, event: &str, message: &str) {
        self.slot.on_error_log(level, event.into(), message.into());
    }

    fn on_login(&self, allowed: bool, endpoint_type: &str) {
        self.slot.on_login(allowed, endpoint_type.into());
    }

    fn on_message_received(&self, topic: u8, action: i32) {
        self.slot.on_message_received(topic, action);
    }

    fn on_message_send(&self, topic: u8, action: i32) {
        self.slot.on_message_send(topic, action);
    }

    fn on_broadcast(&self, topic: u8, action: i32, count: u32) {
        self.slot.on_broadcast(topic, action, count);
    }
}

/// Runs host code a plugin called back into (from its own threads, through an `extern "C"`
/// vtable): a panic unwinding into the plugin's frames would abort the server, so it is
/// logged and the call dropped.
fn host_callback(what: &str, handler: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(handler)) {
        tracing::error!(
            event = "PLUGIN_ERROR",
            "the host's handler for {what} from a plugin panicked: {}",
            deepstream_plugin::sdk::panic_message(&*payload)
        );
    }
}

/// Hands cluster messages from a plugin to a native handler.
struct ClusterSinkAdapter(ClusterHandler);

impl ClusterSink for ClusterSinkAdapter {
    fn deliver(&self, frame: RSlice<'_, u8>, origin_server: RStr<'_>) {
        host_callback("a cluster message", || {
            (self.0)(
                bytes::Bytes::copy_from_slice(frame.as_slice()),
                origin_server.as_str(),
            );
        });
    }
}

impl ClusterNode for PluginService<ClusterNodePlugin_TO<'static, RArc<()>>> {
    fn send(&self, frame: bytes::Bytes) {
        self.slot.send(RVec::from(frame.as_ref()));
    }

    fn send_direct(&self, server_name: &str, frame: bytes::Bytes) {
        self.slot
            .send_direct(server_name.into(), RVec::from(frame.as_ref()));
    }

    fn subscribe(&self, topic: i32, handler: ClusterHandler) {
        let sink = ClusterSink_TO::from_value(ClusterSinkAdapter(handler), TD_Opaque);
        self.slot.subscribe(topic, sink);
    }
}

impl LockRegistry for PluginService<LockRegistryPlugin_TO<'static, RArc<()>>> {
    fn get(&self, name: &str) -> Answer<bool> {
        pending(self.slot.get(name.into()))
    }

    fn release(&self, name: &str) {
        self.slot.release(name.into());
    }
}

/// Hands membership changes from a plugin to a native handler.
struct MembershipAdapter(MembershipHandler);

impl ClusterMembershipListener for MembershipAdapter {
    fn server_added(&self, server_name: RStr<'_>) {
        host_callback("a server joining", || (self.0)(server_name.as_str(), true));
    }

    fn server_removed(&self, server_name: RStr<'_>) {
        host_callback("a server leaving", || (self.0)(server_name.as_str(), false));
    }
}

impl ClusterRegistry for PluginService<ClusterRegistryPlugin_TO<'static, RArc<()>>> {
    fn is_leader(&self) -> bool {
        self.slot.is_leader()
    }

    fn leader(&self) -> String {
        self.slot.leader().into()
    }

    fn all(&self) -> Vec<String> {
        self.slot.all().into_iter().map(String::from).collect()
    }

    fn set_listener(&self, handler: MembershipHandler) {
        let listener: ClusterMembershipListener_TO<'static, RBox<()>> =
            ClusterMembershipListener_TO::from_value(MembershipAdapter(handler), TD_Opaque);
        self.slot.set_listener(listener);
    }
}

/// Hands state changes from a plugin registry to a native handler.
struct StateAdapter(StateHandler);

impl StateListener for StateAdapter {
    fn on_add(&self, name: RStr<'_>) {
        host_callback("a cluster-wide first subscription", || {
            (self.0)(name.as_str(), true)
        });
    }

    fn on_remove(&self, name: RStr<'_>) {
        host_callback("a cluster-wide last unsubscription", || {
            (self.0)(name.as_str(), false)
        });
    }
}

/// A registry handed out by a plugin factory.
struct PluginStateRegistry(StateRegistry_TO<'static, RArc<()>>);

impl StateRegistry for PluginStateRegistry {
    fn add(&self, name: &str) {
        self.0.add(name.into());
    }

    fn remove(&self, name: &str) {
        self.0.remove(name.into());
    }

    fn has(&self, name: &str) -> bool {
        self.0.has(name.into())
    }

    fn all(&self) -> Vec<String> {
        self.0.all().into_iter().map(String::from).collect()
    }

    fn all_servers(&self, name: &str) -> Vec<String> {
        self.0
            .all_servers(name.into())
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn set_listener(&self, handler: StateHandler) {
        self.0.set_listener(StateListener_TO::from_value(
            StateAdapter(handler),
            TD_Opaque,
        ));
    }
}

impl StateRegistryFactory for PluginService<StateRegistryFactoryPlugin_TO<'static, RArc<()>>> {
    fn registry(&self, topic: i32) -> Result<Arc<dyn StateRegistry>, ServiceError> {
        match self.slot.registry(topic) {
            RResult::ROk(registry) => Ok(Arc::new(PluginStateRegistry(registry))),
            RResult::RErr(error) => Err(error.into()),
        }
    }
}

impl ConnectionListener for PluginService<CustomPlugin_TO<'static, RArc<()>>> {
    fn on_client_connected(&self, connection: u64, user_id: &str, endpoint_type: &str) {
        self.slot.on_client_connected(ClientInfo {
            connection,
            user_id: user_id.into(),
            endpoint_type: endpoint_type.into(),
        });
    }

    fn on_client_disconnected(&self, connection: u64, user_id: &str, endpoint_type: &str) {
        self.slot.on_client_disconnected(ClientInfo {
            connection,
            user_id: user_id.into(),
            endpoint_type: endpoint_type.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_host_handler_returns_to_the_plugin() {
        let mut after = false;
        host_callback("a test", || panic!("boom"));
        host_callback("a test", || after = true);
        assert!(after, "the next callback still runs");
    }
}
