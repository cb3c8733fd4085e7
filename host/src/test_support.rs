//! Helpers for handler tests: logged-in connections whose outgoing messages can be read back,
//! and single-server services.

use std::sync::Arc;

use crate::{
    connection::{Connection, ConnectionHandle, Outbound, Outbox, User},
    protocol::{self, Topic},
    services::{
        StateRegistry, StateRegistryFactory,
        builtin::{NoMonitoring, SingleClusterNode, SingleStateRegistryFactory},
    },
    subscription_registry::{RegistryActions, SubscriptionRegistry},
};

/// A logged-in connection and what was sent to it.
pub struct Client {
    /// The handle handlers get.
    pub connection: ConnectionHandle,
    /// Frames queued for the transport.
    outbound: Outbox,
}

impl Client {
    /// Connection `id`, logged in as `user` with `client_data`.
    pub fn new(id: u64, user: &str, client_data: Option<serde_json::Value>) -> Self {
        let (connection, outbound) = Connection::new(id, "test");
        connection.set_user(User {
            id: user.to_owned(),
            client_data,
            server_data: None,
        });
        Client {
            connection,
            outbound,
        }
    }

    /// Every message sent to the connection since the last call, decoded.
    pub fn messages(&mut self) -> Vec<protocol::Message> {
        let mut messages = Vec::new();
        while let Some(outbound) = self.outbound.try_recv() {
            if let Outbound::Frame(frame) = outbound {
                messages.push(protocol::decode(frame).expect("server frames decode"));
            }
        }
        messages
    }

    /// The connection closes.
    pub fn close(&self) {
        self.connection.mark_closed();
    }
}

/// A single server's state registry of `topic`.
pub fn state_registry(states: &SingleStateRegistryFactory, topic: i32) -> Arc<dyn StateRegistry> {
    states
        .registry(topic)
        .expect("built-in state registries always exist")
}

/// A subscription registry of a single server.
pub fn subscription_registry(
    states: &SingleStateRegistryFactory,
    topic: Topic,
    state_topic: i32,
    actions: RegistryActions,
) -> Arc<SubscriptionRegistry> {
    SubscriptionRegistry::new(
        topic,
        actions,
        state_registry(states, state_topic),
        Arc::new(SingleClusterNode),
        Arc::new(NoMonitoring),
    )
}
