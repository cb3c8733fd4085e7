//! The deepstream host: the server binary's library. It loads the config, builds the services
//! (built-in or from plugin libraries), and runs the protocol core natively: connections, the
//! subscription registry and the topic handlers.
//!
//! The key design choice: the core codes against native async traits (`services`), and plugin
//! libraries are adapted to those traits (`plugin::adapters`), so FFI types never reach the
//! handlers and a built-in and a plugin are interchangeable.

pub mod auth;
pub mod config;
pub mod connection;
pub mod event;
pub mod http;
pub mod listen;
pub mod logging;
pub mod permission;
pub mod plugin;
pub mod presence;
pub mod protocol;
pub mod record;
pub mod rpc;
pub mod server;
pub mod services;
pub mod subscription_registry;
#[cfg(test)]
mod test_support;
pub mod timer;

/// Hash maps keyed by what clients choose (record, event and RPC names) or by connection ids,
/// on every message's path: foldhash hashes a short name several times faster than the
/// standard SipHash and is still seeded per process, so clients cannot pick colliding names.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The set counterpart of [`HashMap`].
pub type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

use std::sync::Arc;

use crate::{
    config::Config,
    listen::ListenRegistry,
    protocol::{StateRegistryTopic, Topic},
    server::{Services, TopicHandler},
    subscription_registry::SubscriptionRegistry,
};

/// Builds the handler of every enabled feature, indexed by topic number.
pub fn handlers(
    config: &Config,
    services: &Services,
) -> Result<Vec<Option<Arc<dyn TopicHandler>>>, String> {
    let mut handlers: Vec<Option<Arc<dyn TopicHandler>>> = vec![None; 12];
    let registry = |topic: Topic,
                    state_topic: StateRegistryTopic,
                    actions|
     -> Result<Arc<SubscriptionRegistry>, String> {
        Ok(SubscriptionRegistry::new(
            topic,
            actions,
            services.cluster_states.registry(state_topic as i32)?,
            services.cluster_node.clone(),
            services.monitoring.clone(),
        ))
    };
    if config.enabled_features.event {
        let subscriptions = registry(
            Topic::Event,
            StateRegistryTopic::EventSubscriptions,
            event::EVENT_ACTIONS,
        )?;
        let listen = ListenRegistry::new(
            &listen::EVENTS,
            &config.listen,
            subscriptions.clone(),
            services,
        )?;
        handlers[Topic::Event as usize] =
            Some(Arc::new(event::EventHandler::new(subscriptions, listen)));
    }
    if config.enabled_features.rpc {
        let providers = registry(
            Topic::Rpc,
            StateRegistryTopic::RpcSubscriptions,
            rpc::RPC_ACTIONS,
        )?;
        handlers[Topic::Rpc as usize] = Some(rpc::RpcHandler::new(
            providers,
            config.rpc.clone(),
            services.cluster_node.clone(),
            config.server_name.clone(),
        ));
    }
    if config.enabled_features.presence {
        let subscriptions = registry(
            Topic::Presence,
            StateRegistryTopic::PresenceSubscriptions,
            presence::PRESENCE_ACTIONS,
        )?;
        let online = services
            .cluster_states
            .registry(StateRegistryTopic::OnlineUsers as i32)?;
        handlers[Topic::Presence as usize] = Some(Arc::new(presence::PresenceHandler::new(
            subscriptions,
            online,
        )));
    }
    if config.enabled_features.record {
        let subscriptions = registry(
            Topic::Record,
            StateRegistryTopic::RecordSubscriptions,
            record::RECORD_ACTIONS,
        )?;
        // Record listening attaches to the registry itself and takes the listen actions.
        let listen = ListenRegistry::new(
            &listen::RECORDS,
            &config.listen,
            subscriptions.clone(),
            services,
        )?;
        let handler = record::RecordHandler::new(
            services.records.clone(),
            services.permission.clone(),
            subscriptions,
            Some(listen),
        );
        handlers[Topic::Record as usize] = Some(Arc::new(handler));
    }
    Ok(handlers)
}
