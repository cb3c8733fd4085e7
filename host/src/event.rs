//! Events (protocol.md §4): subscribe, unsubscribe, emit. Listening on events is §8.

use std::sync::Arc;

use crate::{
    connection::ConnectionHandle,
    protocol::{EventAction, Message, Topic},
    server::TopicHandler,
    subscription_registry::{RegistryActions, SubscriptionRegistry},
};

/// The EVENT topic handler.
pub struct EventHandler {
    /// Event name → subscribed connections.
    subscriptions: Arc<SubscriptionRegistry>,
}

/// Reply actions of the event registry.
pub const EVENT_ACTIONS: RegistryActions = RegistryActions {
    multiple_subscriptions: EventAction::MultipleSubscriptions as i32,
};

impl EventHandler {
    pub fn new(subscriptions: Arc<SubscriptionRegistry>) -> Self {
        EventHandler { subscriptions }
    }

    /// Bulk subscribe: each name silently, then one ack `{correlationId, isAck}` (§3.4).
    fn subscribe(&self, connection: &ConnectionHandle, message: &Message) {
        for name in &message.names {
            self.subscriptions
                .subscribe(name, connection, message.action);
        }
        connection.send(&message.ack());
    }

    /// Bulk unsubscribe: names not subscribed are skipped silently, then one ack.
    fn unsubscribe(&self, connection: &ConnectionHandle, message: &Message) {
        for name in &message.names {
            self.subscriptions.unsubscribe(name, connection);
        }
        connection.send(&message.ack());
    }

    /// Forwards the emit, unchanged, to every other subscriber (§4.2). Data that is not JSON
    /// is refused: the official client throws on every message whose data does not parse, so
    /// forwarding it would break every subscriber.
    fn emit(&self, connection: &ConnectionHandle, message: &Message) {
        let Some(name) = message.name.as_deref() else {
            return;
        };
        if let Some(data) = &message.data
            && serde_json::from_slice::<serde::de::IgnoredAny>(data).is_err()
        {
            connection.send(
                &Message::new(Topic::Event, EventAction::InvalidMessageData)
                    .with_original_action(EventAction::Emit)
                    .with_name(name)
                    .with_error(),
            );
            return;
        }
        let mut forwarded = Message::new(Topic::Event, EventAction::Emit).with_name(name);
        forwarded.data = message.data.clone();
        self.subscriptions
            .send_to_subscribers(name, &forwarded, Some(connection));
    }
}

impl TopicHandler for EventHandler {
    fn handle(&self, connection: &ConnectionHandle, message: Message) {
        match message.action_as() {
            Some(EventAction::Emit) => self.emit(connection, &message),
            Some(EventAction::Subscribe) => self.subscribe(connection, &message),
            Some(EventAction::Unsubscribe) => self.unsubscribe(connection, &message),
            _ => tracing::warn!(
                event = "UNKNOWN_ACTION",
                "event action {} from {}",
                message.action,
                connection.user_id()
            ),
        }
    }

    fn client_disconnected(&self, connection: &ConnectionHandle) {
        self.subscriptions.remove_connection(connection);
    }
}
