//! Adapts the author-facing traits to the FFI interface. Used by `export_plugin!`; plugin
//! authors never call this directly.

use std::sync::Arc;

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RBox, ROption, RResult, RSlice, RStr, RString, RVec, Tuple2},
};
use serde::Deserialize;

use super::{
    Check, Client, ClusterNode, ClusterRegistry, ConnectionEndpoint, Context, Custom, Logger,
    Monitoring, Permission, PermissionRequest, Plugin, RecordStore,
    StateRegistry as SdkStateRegistry, StateRegistryFactory, Stored,
    SubscriptionRegistry as SdkSubscriptionRegistry, SubscriptionRegistryFactory, json_of,
    log::{self, host_log},
    runtime::{ffi_future, guard},
};
use crate::{
    PLUGIN_API_VERSION,
    abi::{self, *},
};

/// The value behind every FFI object of one instance: the plugin value, shared with futures.
pub struct Adapter<T>(Arc<T>);

/// An empty root module for `export_plugin!` to fill in.
pub fn library(name: &'static str, version: &'static str) -> PluginLibrary {
    PluginLibrary {
        api_version: PLUGIN_API_VERSION,
        name: RStr::from_str(name),
        version: RStr::from_str(version),
        init_library,
        new_authentication: None,
        new_permission: None,
        new_storage: None,
        new_cache: None,
        new_logger: None,
        new_monitoring: None,
        new_cluster_node: None,
        new_lock_registry: None,
        new_cluster_registry: None,
        new_state_registry_factory: None,
        new_subscription_registry_factory: None,
        new_connection_endpoint: None,
        new_custom: None,
    }
}

extern "C" fn init_library(host: HostServices_TO<'static, RArc<()>>) {
    // Installing hooks cannot panic in practice; the guard keeps even that from aborting.
    let _ = guard("init_library", || log::install(host));
}

/// Deserialises options and constructs the plugin value, never letting a panic escape.
fn construct<T: Plugin>(init: PluginInit) -> Result<RArc<Adapter<T>>, RString> {
    let instance_name = init.instance_name.to_string();
    guard("constructor", move || {
        let options: serde_json::Value = serde_json::from_str(init.options_json.as_str())
            .map_err(|error| format!("{instance_name}: options are not JSON: {error}"))?;
        let options = T::Options::deserialize(options)
            .map_err(|error| format!("{instance_name}: bad options: {error}"))?;
        let context = Context {
            instance_name,
            host: init.host,
        };
        T::new(context, options).map(|value| RArc::new(Adapter(Arc::new(value))))
    })
    .and_then(|built| built.map_err(RString::from))
}

/// Builds the lifecycle object and the slot object of one instance.
fn instance<T: Plugin, S>(
    init: PluginInit,
    slot: impl FnOnce(RArc<Adapter<T>>) -> S,
) -> NewInstance<S> {
    construct::<T>(init)
        .map(|shared| Instance {
            lifecycle: PluginLifecycle_TO::from_ptr(shared.clone(), TD_Opaque),
            slot: slot(shared),
        })
        .into()
}

pub extern "C" fn new_authentication<T: super::Authentication>(
    init: PluginInit,
) -> NewInstance<AuthenticationPlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| AuthenticationPlugin_TO::from_ptr(a, TD_Opaque))
}

pub extern "C" fn new_permission<T: Permission>(
    init: PluginInit,
) -> NewInstance<PermissionPlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| PermissionPlugin_TO::from_ptr(a, TD_Opaque))
}

pub extern "C" fn new_storage<T: RecordStore>(
    init: PluginInit,
) -> NewInstance<RecordStorePlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| RecordStorePlugin_TO::from_ptr(a, TD_Opaque))
}

pub extern "C" fn new_cache<T: RecordStore>(
    init: PluginInit,
) -> NewInstance<RecordStorePlugin_TO<'static, RArc<()>>> {
    new_storage::<T>(init)
}

pub extern "C" fn new_logger<T: Logger>(
    init: PluginInit,
) -> NewInstance<LoggerPlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| LoggerPlugin_TO::from_ptr(a, TD_Opaque))
}

pub extern "C" fn new_monitoring<T: Monitoring>(
    init: PluginInit,
) -> NewInstance<MonitoringPlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| MonitoringPlugin_TO::from_ptr(a, TD_Opaque))
}

pub extern "C" fn new_cluster_node<T: ClusterNode>(
    init: PluginInit,
) -> NewInstance<ClusterNodePlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| ClusterNodePlugin_TO::from_ptr(a, TD_Opaque))
}

pub extern "C" fn new_lock_registry<T: super::LockRegistry>(
    init: PluginInit,
) -> NewInstance<LockRegistryPlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| LockRegistryPlugin_TO::from_ptr(a, TD_Opaque))
}

pub extern "C" fn new_cluster_registry<T: ClusterRegistry>(
    init: PluginInit,
) -> NewInstance<ClusterRegistryPlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| ClusterRegistryPlugin_TO::from_ptr(a, TD_Opaque))
}

pub extern "C" fn new_state_registry_factory<T: StateRegistryFactory>(
    init: PluginInit,
) -> NewInstance<StateRegistryFactoryPlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| {
        StateRegistryFactoryPlugin_TO::from_ptr(a, TD_Opaque)
    })
}

pub extern "C" fn new_subscription_registry_factory<T: SubscriptionRegistryFactory>(
    init: PluginInit,
) -> NewInstance<SubscriptionRegistryFactoryPlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| {
        SubscriptionRegistryFactoryPlugin_TO::from_ptr(a, TD_Opaque)
    })
}

pub extern "C" fn new_connection_endpoint<T: ConnectionEndpoint>(
    init: PluginInit,
) -> NewInstance<ConnectionEndpointPlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| {
        ConnectionEndpointPlugin_TO::from_ptr(a, TD_Opaque)
    })
}

pub extern "C" fn new_custom<T: Custom>(
    init: PluginInit,
) -> NewInstance<CustomPlugin_TO<'static, RArc<()>>> {
    instance::<T, _>(init, |a| CustomPlugin_TO::from_ptr(a, TD_Opaque))
}

/// Runs a sync hook whose failure has nobody to report to but the log.
fn logged(what: &str, body: impl FnOnce()) {
    if let Err(error) = guard(what, body) {
        host_log(LogLevel::Error, "plugin", error.as_str());
    }
}

/// Turns a sync-first SDK answer into the FFI one.
fn answer<T: Send + 'static>(check: Result<Check<T>, RString>) -> Answer<T> {
    match check {
        Ok(Check::Ready(result)) => Answer::Ready(result.map_err(RString::from).into()),
        Ok(Check::Pending(future)) => Answer::Pending(ffi_future("a pending check", future)),
        Err(panicked) => Answer::Ready(RResult::RErr(panicked)),
    }
}

impl<T: Plugin> PluginLifecycle for Adapter<T> {
    fn description(&self) -> RString {
        guard("description", || self.0.description())
            .unwrap_or_default()
            .into()
    }

    fn init(&self) -> RResult<(), RString> {
        guard("init", || self.0.init().map_err(RString::from))
            .and_then(|r| r)
            .into()
    }

    fn when_ready(&self) -> PluginFuture<()> {
        let this = self.0.clone();
        ffi_future("when_ready", async move { this.when_ready().await })
    }

    fn close(&self) -> PluginFuture<()> {
        let this = self.0.clone();
        ffi_future("close", async move { this.close().await })
    }
}

impl<T: super::Authentication> AuthenticationPlugin for Adapter<T> {
    fn is_valid_user(
        &self,
        connection_data: RStr<'_>,
        auth_data: RStr<'_>,
    ) -> Answer<ROption<AuthVerdict>> {
        let check = guard("is_valid_user", || {
            self.0
                .is_valid_user(&json_of(connection_data), &json_of(auth_data))
        });
        let to_ffi = |verdict: Option<super::Verdict>| -> ROption<AuthVerdict> {
            verdict
                .map(|v| AuthVerdict {
                    is_valid: v.is_valid,
                    id: v.id.map(RString::from).into(),
                    client_data: v.client_data.map(|d| RString::from(d.to_string())).into(),
                    server_data: v.server_data.map(|d| RString::from(d.to_string())).into(),
                    token: v.token.map(RString::from).into(),
                })
                .into()
        };
        match check {
            Ok(Check::Ready(result)) => {
                Answer::Ready(result.map(to_ffi).map_err(RString::from).into())
            }
            Ok(Check::Pending(future)) => {
                Answer::Pending(ffi_future("is_valid_user", async move {
                    future.await.map(to_ffi)
                }))
            }
            Err(panicked) => Answer::Ready(RResult::RErr(panicked)),
        }
    }

    fn on_client_disconnect(&self, user_id: RStr<'_>) {
        logged("on_client_disconnect", || {
            self.0.on_client_disconnect(user_id.as_str())
        });
    }
}

impl<T: Permission> PermissionPlugin for Adapter<T> {
    fn can_perform_action(&self, request: abi::PermissionRequest<'_>) -> Answer<bool> {
        let request = PermissionRequest {
            user_id: request.user_id.as_str(),
            server_data: request.server_data.map(|d| d.as_str()).into_option(),
            topic: request.topic,
            action: request.action,
            name: request.name.as_str(),
            data: request.data.map(|d| d.as_str()).into_option(),
            path: request.path.map(|p| p.as_str()).into_option(),
        };
        answer(guard("can_perform_action", || {
            self.0.can_perform_action(&request)
        }))
    }
}

impl<T: RecordStore> RecordStorePlugin for Adapter<T> {
    fn get(&self, name: RString) -> PluginFuture<ROption<StoredRecord>> {
        let this = self.0.clone();
        ffi_future("get", async move {
            let stored = this.get(name.into()).await?;
            Ok(stored
                .map(|Stored { version, data }| StoredRecord {
                    version,
                    data: data.into(),
                })
                .into())
        })
    }

    fn set(&self, name: RString, version: i32, data: RString) -> PluginFuture<()> {
        let this = self.0.clone();
        ffi_future("set", async move {
            this.set(name.into(), version, data.into()).await
        })
    }

    fn delete(&self, name: RString) -> PluginFuture<()> {
        let this = self.0.clone();
        ffi_future("delete", async move { this.delete(name.into()).await })
    }

    fn delete_bulk(&self, names: RVec<RString>) -> PluginFuture<()> {
        let this = self.0.clone();
        let names = names.into_iter().map(String::from).collect();
        ffi_future("delete_bulk", async move { this.delete_bulk(names).await })
    }

    fn head(&self, name: RString) -> PluginFuture<ROption<i32>> {
        let this = self.0.clone();
        ffi_future(
            "head",
            async move { Ok(this.head(name.into()).await?.into()) },
        )
    }

    fn head_bulk(&self, names: RVec<RString>) -> PluginFuture<RVec<Tuple2<RString, i32>>> {
        let this = self.0.clone();
        let names = names.into_iter().map(String::from).collect();
        ffi_future("head_bulk", async move {
            let found = this.head_bulk(names).await?;
            Ok(found
                .into_iter()
                .map(|(n, v)| Tuple2(n.into(), v))
                .collect())
        })
    }
}

impl<T: Logger> LoggerPlugin for Adapter<T> {
    fn should_log(&self, level: LogLevel) -> bool {
        guard("should_log", || self.0.should_log(level)).unwrap_or(true)
    }

    fn set_log_level(&self, level: LogLevel) {
        logged("set_log_level", || self.0.set_log_level(level));
    }

    fn log(&self, level: LogLevel, namespace: RStr<'_>, event: RStr<'_>, message: RStr<'_>) {
        // Reporting a logger's panic through the logger could loop; it is dropped instead.
        let _ = guard("log", || {
            self.0
                .log(level, namespace.as_str(), event.as_str(), message.as_str())
        });
    }
}

impl<T: Monitoring> MonitoringPlugin for Adapter<T> {
    fn on_error_log(&self, level: LogLevel, event: RStr<'_>, message: RStr<'_>) {
        logged("on_error_log", || {
            self.0.on_error_log(level, event.as_str(), message.as_str())
        });
    }

    fn on_login(&self, allowed: bool, endpoint_type: RStr<'_>) {
        logged("on_login", || {
            self.0.on_login(allowed, endpoint_type.as_str())
        });
    }

    fn on_message_received(&self, topic: u8, action: i32) {
        logged("on_message_received", || {
            self.0.on_message_received(topic, action)
        });
    }

    fn on_message_send(&self, topic: u8, action: i32) {
        logged("on_message_send", || self.0.on_message_send(topic, action));
    }

    fn on_broadcast(&self, topic: u8, action: i32, count: u32) {
        logged("on_broadcast", || self.0.on_broadcast(topic, action, count));
    }
}

impl<T: ClusterNode> ClusterNodePlugin for Adapter<T> {
    fn send(&self, frame: RVec<u8>) {
        logged("send", || self.0.send(frame.into()));
    }

    fn send_direct(&self, server_name: RStr<'_>, frame: RVec<u8>) {
        logged("send_direct", || {
            self.0.send_direct(server_name.as_str(), frame.into())
        });
    }

    fn subscribe(&self, topic: i32, sink: ClusterSink_TO<'static, RBox<()>>) {
        logged("subscribe", || self.0.subscribe(topic, sink));
    }
}

impl<T: super::LockRegistry> LockRegistryPlugin for Adapter<T> {
    fn get(&self, name: RString) -> PluginFuture<bool> {
        let this = self.0.clone();
        ffi_future("lock get", async move { this.get(name.into()).await })
    }

    fn release(&self, name: RString) {
        logged("lock release", || self.0.release(name.as_str()));
    }
}

impl<T: ClusterRegistry> ClusterRegistryPlugin for Adapter<T> {
    fn is_leader(&self) -> bool {
        guard("is_leader", || self.0.is_leader()).unwrap_or(false)
    }

    fn leader(&self) -> RString {
        guard("leader", || self.0.leader())
            .map(RString::from)
            .unwrap_or_default()
    }

    fn all(&self) -> RVec<RString> {
        guard("all", || {
            self.0.all().into_iter().map(RString::from).collect()
        })
        .unwrap_or_default()
    }

    fn set_listener(&self, listener: ClusterMembershipListener_TO<'static, RBox<()>>) {
        logged("set_listener", || self.0.set_listener(listener));
    }
}

/// Wraps one registry handed out by a factory, with the same guards.
pub struct RegistryAdapter<R>(Arc<R>);

impl<R: SdkStateRegistry> abi::StateRegistry for RegistryAdapter<R> {
    fn add(&self, name: RStr<'_>) {
        logged("state add", || self.0.add(name.as_str()));
    }

    fn remove(&self, name: RStr<'_>) {
        logged("state remove", || self.0.remove(name.as_str()));
    }

    fn has(&self, name: RStr<'_>) -> bool {
        guard("state has", || self.0.has(name.as_str())).unwrap_or(false)
    }

    fn all(&self) -> RVec<RString> {
        guard("state all", || {
            self.0.all().into_iter().map(RString::from).collect()
        })
        .unwrap_or_default()
    }

    fn all_servers(&self, name: RStr<'_>) -> RVec<RString> {
        guard("state all_servers", || {
            self.0
                .all_servers(name.as_str())
                .into_iter()
                .map(RString::from)
                .collect()
        })
        .unwrap_or_default()
    }

    fn set_listener(&self, listener: StateListener_TO<'static, RBox<()>>) {
        logged("state set_listener", || self.0.set_listener(listener));
    }

    fn when_ready(&self) -> PluginFuture<()> {
        let this = self.0.clone();
        ffi_future("state when_ready", async move { this.when_ready().await })
    }
}

impl<T: StateRegistryFactory> StateRegistryFactoryPlugin for Adapter<T> {
    fn registry(&self, topic: i32) -> RResult<StateRegistry_TO<'static, RArc<()>>, RString> {
        guard("state registry factory", || self.0.registry(topic))
            .map(|r| StateRegistry_TO::from_ptr(RArc::new(RegistryAdapter(r)), TD_Opaque))
            .into()
    }
}

impl<R: SdkSubscriptionRegistry> abi::SubscriptionRegistry for RegistryAdapter<R> {
    fn subscribe(&self, name: RStr<'_>, connection: u64) -> bool {
        guard("subscribe", || self.0.subscribe(name.as_str(), connection)).unwrap_or(false)
    }

    fn unsubscribe(&self, name: RStr<'_>, connection: u64) -> bool {
        guard("unsubscribe", || {
            self.0.unsubscribe(name.as_str(), connection)
        })
        .unwrap_or(false)
    }

    fn local_subscribers(&self, name: RStr<'_>) -> RVec<u64> {
        guard("local_subscribers", || {
            self.0.local_subscribers(name.as_str()).into()
        })
        .unwrap_or_default()
    }

    fn remove_connection(&self, connection: u64) -> RVec<RString> {
        guard("remove_connection", || {
            self.0
                .remove_connection(connection)
                .into_iter()
                .map(RString::from)
                .collect()
        })
        .unwrap_or_default()
    }
}

impl<T: SubscriptionRegistryFactory> SubscriptionRegistryFactoryPlugin for Adapter<T> {
    fn registry(&self, topic: i32) -> RResult<SubscriptionRegistry_TO<'static, RArc<()>>, RString> {
        guard("subscription registry factory", || self.0.registry(topic))
            .map(|r| SubscriptionRegistry_TO::from_ptr(RArc::new(RegistryAdapter(r)), TD_Opaque))
            .into()
    }
}

impl<T: ConnectionEndpoint> ConnectionEndpointPlugin for Adapter<T> {
    fn attach(&self, host: EndpointHost_TO<'static, RArc<()>>) {
        logged("attach", || self.0.attach(host));
    }

    fn send(&self, connection: u64, frame: RSlice<'_, u8>) {
        logged("send", || self.0.send(connection, frame.as_slice()));
    }

    fn close_connection(&self, connection: u64) {
        logged("close_connection", || self.0.close_connection(connection));
    }
}

impl<T: Custom> CustomPlugin for Adapter<T> {
    fn on_client_connected(&self, client: ClientInfo<'_>) {
        let client = Client {
            connection: client.connection,
            user_id: client.user_id.as_str(),
            endpoint_type: client.endpoint_type.as_str(),
        };
        logged("on_client_connected", || {
            self.0.on_client_connected(&client)
        });
    }

    fn on_client_disconnected(&self, client: ClientInfo<'_>) {
        let client = Client {
            connection: client.connection,
            user_id: client.user_id.as_str(),
            endpoint_type: client.endpoint_type.as_str(),
        };
        logged("on_client_disconnected", || {
            self.0.on_client_disconnected(&client)
        });
    }
}
