//! The subscription registry (protocol.md §3.4, server.md §2.4.11): names → local subscriber
//! connections, for one topic. Events, records, RPC providers, presence and listen patterns
//! all use it.
//!
//! Local subscribers live here; which names are subscribed *anywhere in the cluster* is kept
//! in a state registry slot, and broadcasts from local clients also go out on the cluster node
//! slot, so the registry works unchanged once several servers share state.

use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::{
    HashMap, HashSet,
    connection::ConnectionHandle,
    protocol::{Message, Topic},
    services::{ClusterNode, Monitoring, StateRegistry},
};

/// Told about subscriptions, so listening and "has provider" notices can react.
pub trait SubscriptionListener: Send + Sync {
    /// A connection subscribed to `name` (locally).
    fn on_subscription_made(&self, _name: &str, _connection: &ConnectionHandle) {}
    /// A connection unsubscribed from `name` or closed (locally).
    fn on_subscription_removed(&self, _name: &str, _connection: &ConnectionHandle) {}
    /// `name` gained its first subscriber anywhere in the cluster.
    fn on_first_subscription_made(&self, _name: &str) {}
    /// `name` lost its last subscriber anywhere in the cluster.
    fn on_last_subscription_removed(&self, _name: &str) {}
}

/// The actions a registry answers with (listening uses LISTEN/UNLISTEN for its patterns).
#[derive(Debug, Clone, Copy)]
pub struct RegistryActions {
    /// Reply to a duplicate subscription (MULTIPLE_SUBSCRIPTIONS / MULTIPLE_PROVIDERS).
    pub multiple_subscriptions: i32,
}

/// The local subscriptions, both ways round.
#[derive(Default)]
struct Local {
    /// name → subscribed connections, in subscription order.
    by_name: HashMap<String, Vec<ConnectionHandle>>,
    /// connection id → names it is subscribed to, for cleanup on close.
    by_connection: HashMap<u64, HashSet<String>>,
}

/// Local subscribers of one topic.
pub struct SubscriptionRegistry {
    /// The topic whose messages this registry distributes.
    topic: Topic,
    /// Both maps under one lock: a subscription and its removal (unsubscribe, the close
    /// cleanup) can never interleave half-way.
    local: RwLock<Local>,
    /// Cluster-wide view: which names have subscribers on any server.
    state: Arc<dyn StateRegistry>,
    /// Where broadcasts from local clients go to reach other servers.
    cluster: Arc<dyn ClusterNode>,
    /// Told about every broadcast.
    monitoring: Arc<dyn Monitoring>,
    /// Reply actions of this topic.
    actions: RegistryActions,
    /// Set once by the handler that cares (listening, record has-provider).
    listener: OnceLock<Arc<dyn SubscriptionListener>>,
}

impl SubscriptionRegistry {
    pub fn new(
        topic: Topic,
        actions: RegistryActions,
        state: Arc<dyn StateRegistry>,
        cluster: Arc<dyn ClusterNode>,
        monitoring: Arc<dyn Monitoring>,
    ) -> Arc<Self> {
        Arc::new(SubscriptionRegistry {
            topic,
            local: RwLock::default(),
            state,
            cluster,
            monitoring,
            actions,
            listener: OnceLock::new(),
        })
    }

    /// Installs the listener and wires the cluster-wide first/last notifications to it.
    pub fn set_listener(&self, listener: Arc<dyn SubscriptionListener>) {
        let cluster_listener = listener.clone();
        self.state
            .set_listener(Arc::new(move |name: &str, added: bool| {
                if added {
                    cluster_listener.on_first_subscription_made(name);
                } else {
                    cluster_listener.on_last_subscription_removed(name);
                }
            }));
        let _ = self.listener.set(listener);
    }

    /// Subscribes; a duplicate gets MULTIPLE_SUBSCRIPTIONS `{originalAction, name}` and
    /// `false`, a connection already closed (its cleanup may have run) just `false`. Acks are
    /// the caller's (bulk acks differ from single ones).
    pub fn subscribe(
        &self,
        name: &str,
        connection: &ConnectionHandle,
        request_action: i32,
    ) -> bool {
        // Counted cluster-wide before the subscription is visible, so whoever removes it
        // counts down after this count went up.
        self.state.add(name);
        let added = {
            let mut local = self.local.write();
            // `mark_closed` precedes the close cleanup, which takes this lock.
            let added = !connection.is_closed()
                && local
                    .by_connection
                    .entry(connection.id)
                    .or_default()
                    .insert(name.to_owned());
            if added {
                local
                    .by_name
                    .entry(name.to_owned())
                    .or_default()
                    .push(connection.clone());
            }
            added
        };
        if !added {
            self.state.remove(name);
            if !connection.is_closed() {
                connection.send(
                    &Message::new(self.topic, self.actions.multiple_subscriptions)
                        .with_original_action(request_action)
                        .with_name(name),
                );
            }
            return false;
        }
        if let Some(listener) = self.listener.get() {
            listener.on_subscription_made(name, connection);
        }
        true
    }

    /// Bulk subscribe (`names`, §3.4): each name silently, then one ack `{correlationId,
    /// isAck}`, even when every name was a duplicate or `names` was empty.
    pub fn subscribe_bulk(&self, connection: &ConnectionHandle, message: &Message) {
        for name in &message.names {
            self.subscribe(name, connection, message.action);
        }
        connection.send(&message.ack());
    }

    /// Bulk unsubscribe: names not subscribed are skipped silently, then one ack.
    pub fn unsubscribe_bulk(&self, connection: &ConnectionHandle, message: &Message) {
        for name in &message.names {
            self.unsubscribe(name, connection);
        }
        connection.send(&message.ack());
    }

    /// Unsubscribes; `false` when the connection was not subscribed.
    pub fn unsubscribe(&self, name: &str, connection: &ConnectionHandle) -> bool {
        let removed = {
            let mut local = self.local.write();
            let removed = match local.by_connection.get_mut(&connection.id) {
                Some(names) => {
                    let removed = names.remove(name);
                    if names.is_empty() {
                        local.by_connection.remove(&connection.id);
                    }
                    removed
                }
                None => false,
            };
            if removed {
                local.drop_subscriber(name, connection.id);
            }
            removed
        };
        if removed {
            self.removed(name, connection);
        }
        removed
    }

    /// Drops every subscription of a closed connection, running the same hooks.
    pub fn remove_connection(&self, connection: &ConnectionHandle) {
        let names = {
            let mut local = self.local.write();
            let names = local.by_connection.remove(&connection.id);
            for name in names.iter().flatten() {
                local.drop_subscriber(name, connection.id);
            }
            names
        };
        for name in names.into_iter().flatten() {
            self.removed(&name, connection);
        }
    }

    /// Drops every local subscription of `name` (the record was deleted), running the same
    /// hooks.
    pub fn remove_name(&self, name: &str) {
        let subscribers = {
            let mut local = self.local.write();
            let subscribers = local.by_name.remove(name).unwrap_or_default();
            for subscriber in &subscribers {
                if let Some(names) = local.by_connection.get_mut(&subscriber.id) {
                    names.remove(name);
                    if names.is_empty() {
                        local.by_connection.remove(&subscriber.id);
                    }
                }
            }
            subscribers
        };
        for subscriber in &subscribers {
            self.removed(name, subscriber);
        }
    }

    /// The hooks of one removed subscription.
    fn removed(&self, name: &str, connection: &ConnectionHandle) {
        if let Some(listener) = self.listener.get() {
            listener.on_subscription_removed(name, connection);
        }
        self.state.remove(name);
    }

    /// The local subscribers of `name`, in subscription order.
    pub fn local_subscribers(&self, name: &str) -> Vec<ConnectionHandle> {
        self.local
            .read()
            .by_name
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// A random local subscriber of `name` that `eligible` accepts, picked without copying
    /// the subscriber list (RPC routing does this on every call).
    pub fn random_local_subscriber(
        &self,
        name: &str,
        eligible: impl Fn(&ConnectionHandle) -> bool,
    ) -> Option<ConnectionHandle> {
        use rand::seq::IteratorRandom;
        let local = self.local.read();
        local
            .by_name
            .get(name)?
            .iter()
            .filter(|subscriber| eligible(subscriber))
            .choose(&mut rand::rng())
            .cloned()
    }

    pub fn has_local_subscribers(&self, name: &str) -> bool {
        self.local.read().by_name.contains_key(name)
    }

    /// Names with subscribers anywhere in the cluster.
    pub fn names(&self) -> Vec<String> {
        self.state.all()
    }

    /// The servers with subscribers of `name` (this one included).
    pub fn servers(&self, name: &str) -> Vec<String> {
        self.state.all_servers(name)
    }

    /// Whether `name` has subscribers anywhere in the cluster.
    pub fn has_name(&self, name: &str) -> bool {
        self.state.has(name)
    }

    /// Sends `message` to every local subscriber of `name` except `sender`, encoding it once
    /// (and not at all when nobody receives it); a message from a local client also goes to
    /// the other servers.
    pub fn send_to_subscribers(
        &self,
        name: &str,
        message: &Message,
        sender: Option<&ConnectionHandle>,
    ) {
        let except = sender.map(|s| s.id);
        let to_cluster = sender.is_some() && self.cluster.has_peers();
        let mut count = 0;
        let mut frame = None;
        {
            let local = self.local.read();
            let recipients = local
                .by_name
                .get(name)
                .into_iter()
                .flatten()
                .filter(|subscriber| Some(subscriber.id) != except);
            for subscriber in recipients {
                let frame = frame.get_or_insert_with(|| crate::protocol::encode(message));
                subscriber.send_frame(frame.clone());
                count += 1;
            }
        }
        if to_cluster {
            self.cluster
                .send(frame.unwrap_or_else(|| crate::protocol::encode(message)));
        }
        self.monitoring
            .on_broadcast(self.topic as u8, message.action, count);
    }
}

impl Local {
    /// Removes `connection` from `name`'s subscribers (and `name` when none is left).
    fn drop_subscriber(&mut self, name: &str, connection: u64) {
        if let Some(list) = self.by_name.get_mut(name) {
            list.retain(|subscriber| subscriber.id != connection);
            if list.is_empty() {
                self.by_name.remove(name);
            }
        }
    }
}
