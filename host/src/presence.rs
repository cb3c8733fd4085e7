//! Presence (protocol.md §7): who is online, by user id rather than by connection.
//!
//! A user is online while any of their connections is, on any server: every login adds the
//! user to the reference-counted ONLINE_USERS state registry and every logout removes it, and
//! the registry's cluster-wide first-add / last-remove notifications are the joins and leaves
//! each server announces to its own subscribers.

use std::sync::Arc;

use crate::{
    connection::ConnectionHandle,
    protocol::{Message, PresenceAction, Topic},
    server::TopicHandler,
    services::StateRegistry,
    subscription_registry::{RegistryActions, SubscriptionRegistry},
};

/// The internal name SUBSCRIBE_ALL subscribes to (§7.2).
const EVERYONE: &str = "%_EVERYONE_%";

/// The user id of connections authenticated without one; never reported online (§7.1).
const ANONYMOUS: &str = "OPEN";

/// Reply actions of the presence registry.
pub const PRESENCE_ACTIONS: RegistryActions = RegistryActions {
    multiple_subscriptions: PresenceAction::MultipleSubscriptions as i32,
};

/// The PRESENCE topic handler.
pub struct PresenceHandler {
    /// User id (or [`EVERYONE`]) → connections told about that user's joins and leaves.
    subscriptions: Arc<SubscriptionRegistry>,
    /// Users with at least one logged-in connection anywhere in the cluster.
    online: Arc<dyn StateRegistry>,
}

impl PresenceHandler {
    /// Builds the handler and has it announce the joins and leaves `online` reports.
    pub fn new(subscriptions: Arc<SubscriptionRegistry>, online: Arc<dyn StateRegistry>) -> Self {
        let announced = subscriptions.clone();
        online.set_listener(Arc::new(move |user: &str, joined: bool| {
            announce(&announced, user, joined)
        }));
        PresenceHandler {
            subscriptions,
            online,
        }
    }

    /// QUERY_ALL: everyone online but the requester itself, without correlation id.
    fn query_all(&self, connection: &ConnectionHandle) {
        let mut users: Vec<String> = self
            .online
            .all()
            .into_iter()
            .filter(|user| user != connection.user_id())
            .collect();
        users.sort();
        connection.send(
            &Message::new(Topic::Presence, PresenceAction::QueryAllResponse).with_names(users),
        );
    }

    /// QUERY: `{user: online?}` for each requested user, in request order.
    fn query(&self, connection: &ConnectionHandle, message: &Message) {
        let answer: serde_json::Map<String, serde_json::Value> = message
            .names
            .iter()
            .map(|user| (user.clone(), self.online.has(user).into()))
            .collect();
        let mut reply =
            Message::new(Topic::Presence, PresenceAction::QueryResponse).with_json(&answer.into());
        reply.correlation_id = message.correlation_id.clone();
        connection.send(&reply);
    }
}

/// Tells this server's subscribers that `user` came online or went offline: the
/// subscribe-all subscribers first, then those of the user (§7.1). No sender exclusion.
fn announce(subscriptions: &SubscriptionRegistry, user: &str, joined: bool) {
    let (all, individual) = if joined {
        (
            PresenceAction::PresenceJoinAll,
            PresenceAction::PresenceJoin,
        )
    } else {
        (
            PresenceAction::PresenceLeaveAll,
            PresenceAction::PresenceLeave,
        )
    };
    subscriptions.send_to_subscribers(
        EVERYONE,
        &Message::new(Topic::Presence, all).with_name(user),
        None,
    );
    subscriptions.send_to_subscribers(
        user,
        &Message::new(Topic::Presence, individual).with_name(user),
        None,
    );
}

impl TopicHandler for PresenceHandler {
    fn handle(&self, connection: &ConnectionHandle, message: Message) {
        match message.action_as() {
            Some(PresenceAction::SubscribeAll) => {
                self.subscriptions
                    .subscribe(EVERYONE, connection, message.action);
                connection.send(&message.ack());
            }
            Some(PresenceAction::UnsubscribeAll) => {
                self.subscriptions.unsubscribe(EVERYONE, connection);
                connection.send(&message.ack());
            }
            Some(PresenceAction::Subscribe) => {
                self.subscriptions.subscribe_bulk(connection, &message)
            }
            Some(PresenceAction::Unsubscribe) => {
                self.subscriptions.unsubscribe_bulk(connection, &message)
            }
            Some(PresenceAction::QueryAll) => self.query_all(connection),
            Some(PresenceAction::Query) => self.query(connection, &message),
            _ => tracing::warn!(
                event = "UNKNOWN_ACTION",
                "presence action {} from {}",
                message.action,
                connection.user_id()
            ),
        }
    }

    fn client_connected(&self, connection: &ConnectionHandle) {
        if connection.user_id() != ANONYMOUS {
            self.online.add(connection.user_id());
        }
    }

    fn client_disconnected(&self, connection: &ConnectionHandle) {
        self.subscriptions.remove_connection(connection);
        if connection.user_id() != ANONYMOUS {
            self.online.remove(connection.user_id());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PRESENCE_ACTIONS, PresenceHandler};
    use crate::{
        protocol::{Message, PresenceAction, StateRegistryTopic, Topic},
        server::TopicHandler,
        services::builtin::SingleStateRegistryFactory,
        test_support::{Client, state_registry, subscription_registry},
    };

    fn handler() -> PresenceHandler {
        let states = SingleStateRegistryFactory::new("here".into());
        let subscriptions = subscription_registry(
            &states,
            Topic::Presence,
            StateRegistryTopic::PresenceSubscriptions as i32,
            PRESENCE_ACTIONS,
        );
        PresenceHandler::new(
            subscriptions,
            state_registry(&states, StateRegistryTopic::OnlineUsers as i32),
        )
    }

    fn login(handler: &PresenceHandler, id: u64, user: &str) -> Client {
        let client = Client::new(id, user, None);
        handler.client_connected(&client.connection);
        client
    }

    fn notices(client: &mut Client) -> Vec<(Option<PresenceAction>, Option<String>)> {
        client
            .messages()
            .into_iter()
            .map(|m| (m.action_as(), m.name))
            .collect()
    }

    #[test]
    fn a_user_is_online_while_any_connection_is() {
        let handler = handler();
        let mut observer = login(&handler, 1, "observer");
        handler.handle(
            &observer.connection,
            Message::new(Topic::Presence, PresenceAction::SubscribeAll),
        );
        let subscribe = Message::new(Topic::Presence, PresenceAction::Subscribe)
            .with_names(["alice"])
            .with_correlation_id("0");
        handler.handle(&observer.connection, subscribe);
        assert!(observer.messages().iter().all(|m| m.is_ack));

        let alice1 = login(&handler, 2, "alice");
        let alice2 = login(&handler, 3, "alice");
        let joined = |action| (Some(action), Some("alice".to_owned()));
        assert_eq!(
            notices(&mut observer),
            vec![
                joined(PresenceAction::PresenceJoinAll),
                joined(PresenceAction::PresenceJoin)
            ]
        );
        handler.client_disconnected(&alice1.connection);
        assert!(observer.messages().is_empty(), "alice is still online");
        handler.client_disconnected(&alice2.connection);
        assert_eq!(
            notices(&mut observer),
            vec![
                joined(PresenceAction::PresenceLeaveAll),
                joined(PresenceAction::PresenceLeave)
            ]
        );

        // Anonymous connections are never online.
        let anonymous = login(&handler, 4, "OPEN");
        assert!(observer.messages().is_empty());
        handler.client_disconnected(&anonymous.connection);
        assert!(observer.messages().is_empty());
    }

    #[test]
    fn queries_answer_from_the_online_users() {
        let handler = handler();
        let mut alice = login(&handler, 1, "alice");
        let _alice_again = login(&handler, 2, "alice");
        let _bob = login(&handler, 3, "bob");
        handler.handle(
            &alice.connection,
            Message::new(Topic::Presence, PresenceAction::QueryAll),
        );
        let everyone = alice.messages().pop().unwrap();
        assert_eq!(everyone.action_as(), Some(PresenceAction::QueryAllResponse));
        assert_eq!(everyone.names, vec!["bob"]);

        let query = Message::new(Topic::Presence, PresenceAction::Query)
            .with_names(["zed", "alice"])
            .with_correlation_id("7");
        handler.handle(&alice.connection, query);
        let answer = alice.messages().pop().unwrap();
        assert_eq!(answer.correlation_id.as_deref(), Some("7"));
        assert_eq!(
            answer.data.as_deref(),
            Some(&b"{\"zed\":false,\"alice\":true}"[..])
        );
    }
}
