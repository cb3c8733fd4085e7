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
pub mod logging;
pub mod plugin;
pub mod protocol;
pub mod server;
pub mod services;
pub mod subscription_registry;

use std::sync::Arc;

use crate::{
    config::Config,
    protocol::Topic,
    server::{Services, TopicHandler},
    subscription_registry::SubscriptionRegistry,
};

/// State registry topics of the core's registries (server.md §2.4.10).
const EVENT_SUBSCRIPTIONS: i32 = 11;

/// Builds the handler of every enabled feature, indexed by topic number.
pub fn handlers(
    config: &Config,
    services: &Services,
) -> Result<Vec<Option<Arc<dyn TopicHandler>>>, String> {
    let mut handlers: Vec<Option<Arc<dyn TopicHandler>>> = vec![None; 12];
    let registry =
        |topic: Topic, state_topic: i32, actions| -> Result<Arc<SubscriptionRegistry>, String> {
            Ok(SubscriptionRegistry::new(
                topic,
                actions,
                services.cluster_states.registry(state_topic)?,
                services.cluster_node.clone(),
                services.monitoring.clone(),
            ))
        };
    if config.enabled_features.event {
        let subscriptions = registry(Topic::Event, EVENT_SUBSCRIPTIONS, event::EVENT_ACTIONS)?;
        handlers[Topic::Event as usize] = Some(Arc::new(event::EventHandler::new(subscriptions)));
    }
    Ok(handlers)
}
