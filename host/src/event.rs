//! Events (protocol.md §4): subscribe, unsubscribe, emit. Listening on events (§8) is
//! delegated to the topic's [`ListenRegistry`].

use std::sync::Arc;

use crate::{
    connection::ConnectionHandle,
    listen::ListenRegistry,
    protocol::{EventAction, Message, Topic},
    server::TopicHandler,
    subscription_registry::{RegistryActions, SubscriptionRegistry},
};

/// The EVENT topic handler.
pub struct EventHandler {
    /// Event name → subscribed connections.
    subscriptions: Arc<SubscriptionRegistry>,
    /// Listen patterns and active providers of events; attached to `subscriptions`.
    listen: Arc<ListenRegistry>,
}

/// Reply actions of the event registry.
pub const EVENT_ACTIONS: RegistryActions = RegistryActions {
    multiple_subscriptions: EventAction::MultipleSubscriptions as i32,
};

impl EventHandler {
    pub fn new(subscriptions: Arc<SubscriptionRegistry>, listen: Arc<ListenRegistry>) -> Self {
        EventHandler {
            subscriptions,
            listen,
        }
    }

    /// Forwards the emit, unchanged, to every other subscriber (§4.2). Data that is not JSON
    /// is refused: the official client throws on every message whose data does not parse, so
    /// forwarding it would break every subscriber.
    fn emit(&self, connection: &ConnectionHandle, message: Message) {
        let Message {
            name: Some(name),
            data,
            ..
        } = message
        else {
            return;
        };
        if let Some(data) = &data
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
        // The client's name and data move into the forwarded message; nothing else is kept.
        let forwarded = Message {
            name: Some(name),
            data,
            ..Message::new(Topic::Event, EventAction::Emit)
        };
        let name = forwarded.name.as_deref().unwrap_or_default();
        self.subscriptions
            .send_to_subscribers(name, &forwarded, Some(connection));
    }
}

impl TopicHandler for EventHandler {
    fn handle(&self, connection: &ConnectionHandle, message: Message) {
        match message.action_as() {
            Some(EventAction::Emit) => self.emit(connection, message),
            Some(EventAction::Subscribe) => self.subscriptions.subscribe_bulk(connection, &message),
            Some(EventAction::Unsubscribe) => {
                self.subscriptions.unsubscribe_bulk(connection, &message)
            }
            Some(
                EventAction::Listen
                | EventAction::Unlisten
                | EventAction::ListenAccept
                | EventAction::ListenReject,
            ) => self.listen.handle(connection, message),
            _ => tracing::warn!(
                event = "UNKNOWN_ACTION",
                "event action {} from {}",
                message.action,
                connection.user_id()
            ),
        }
    }

    /// Subscriptions first: a provider that also subscribed is then not offered its own
    /// names again on its way out.
    fn client_disconnected(&self, connection: &ConnectionHandle) {
        self.subscriptions.remove_connection(connection);
        self.listen.client_disconnected(connection);
    }
}
