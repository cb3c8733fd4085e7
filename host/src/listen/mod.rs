//! Listening, i.e. active providers (protocol.md §8), for events and records alike.
//!
//! A [`ListenRegistry`] serves one topic: it handles LISTEN, UNLISTEN, LISTEN_ACCEPT and
//! LISTEN_REJECT (as a [`TopicHandler`] the topic's handler delegates to), and it is the
//! [`SubscriptionListener`] of that topic's subscription registry, so subscriptions appearing
//! and disappearing drive the provider search. The decisions live in the I/O-free
//! [`machine::ListenState`]; this module carries out its effects: messages, response timers,
//! the per-name cluster lock, the published-subscriptions state registry (which also drives
//! the records-only has-provider notices, §8.4) and LISTEN_UNSUCCESSFUL for other servers.

pub mod machine;
#[cfg(test)]
mod tests;

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;

use crate::{
    config::ListenConfig,
    connection::ConnectionHandle,
    protocol::{self, EventAction, Message, RecordAction, StateRegistryTopic, Topic},
    server::{Services, TopicHandler},
    services::{Answer, ClusterNode, LockRegistry, StateRegistry},
    subscription_registry::{SubscriptionListener, SubscriptionRegistry},
    timer::Timers,
};
use machine::{Effect, ListenError, ListenState, Peer, World};

/// Periodic rematching at or below this interval is refused (server.md §1.5 `listen`).
const MIN_REMATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The per-topic numbers listening uses: the topic's own action numbers and state registries.
#[derive(Debug)]
pub struct ListenTopic {
    /// EVENT or RECORD.
    topic: Topic,
    /// LISTEN: echoed as the ack, and the `originalAction` of a duplicate.
    listen: i32,
    /// UNLISTEN.
    unlisten: i32,
    /// LISTEN_ACCEPT.
    accept: i32,
    /// LISTEN_REJECT.
    reject: i32,
    /// SUBSCRIPTION_FOR_PATTERN_FOUND.
    found: i32,
    /// SUBSCRIPTION_FOR_PATTERN_REMOVED.
    removed: i32,
    /// LISTEN_RESPONSE_TIMEOUT.
    response_timeout: i32,
    /// INVALID_LISTEN_REGEX.
    invalid_regex: i32,
    /// LISTEN_UNSUCCESSFUL, server to server.
    unsuccessful: i32,
    /// MULTIPLE_SUBSCRIPTIONS, the reply to a duplicate LISTEN.
    multiple_subscriptions: i32,
    /// (SUBSCRIPTION_HAS_PROVIDER, SUBSCRIPTION_HAS_NO_PROVIDER); records only (§8.4).
    has_provider: Option<(i32, i32)>,
    /// State registry of the patterns listened on anywhere (server.md §2.4.10).
    patterns_registry: StateRegistryTopic,
    /// State registry of the names with an active provider anywhere.
    published_registry: StateRegistryTopic,
}

/// Event listening: no has-provider notices.
pub const EVENTS: ListenTopic = ListenTopic {
    topic: Topic::Event,
    listen: EventAction::Listen as i32,
    unlisten: EventAction::Unlisten as i32,
    accept: EventAction::ListenAccept as i32,
    reject: EventAction::ListenReject as i32,
    found: EventAction::SubscriptionForPatternFound as i32,
    removed: EventAction::SubscriptionForPatternRemoved as i32,
    response_timeout: EventAction::ListenResponseTimeout as i32,
    invalid_regex: EventAction::InvalidListenRegex as i32,
    unsuccessful: EventAction::ListenUnsuccessful as i32,
    multiple_subscriptions: EventAction::MultipleSubscriptions as i32,
    has_provider: None,
    patterns_registry: StateRegistryTopic::EventListenPatterns,
    published_registry: StateRegistryTopic::EventPublishedSubscriptions,
};

/// Record listening: subscribers are told whether the record has a provider.
pub const RECORDS: ListenTopic = ListenTopic {
    topic: Topic::Record,
    listen: RecordAction::Listen as i32,
    unlisten: RecordAction::Unlisten as i32,
    accept: RecordAction::ListenAccept as i32,
    reject: RecordAction::ListenReject as i32,
    found: RecordAction::SubscriptionForPatternFound as i32,
    removed: RecordAction::SubscriptionForPatternRemoved as i32,
    response_timeout: RecordAction::ListenResponseTimeout as i32,
    invalid_regex: RecordAction::InvalidListenRegex as i32,
    unsuccessful: RecordAction::ListenUnsuccessful as i32,
    multiple_subscriptions: RecordAction::MultipleSubscriptions as i32,
    has_provider: Some((
        RecordAction::SubscriptionHasProvider as i32,
        RecordAction::SubscriptionHasNoProvider as i32,
    )),
    patterns_registry: StateRegistryTopic::RecordListenPatterns,
    published_registry: StateRegistryTopic::RecordPublishedSubscriptions,
};

impl Peer for ConnectionHandle {
    fn id(&self) -> u64 {
        self.id
    }
}

/// Listening for one topic on this server.
pub struct ListenRegistry {
    /// Handed to timers and pending lock answers, which must not keep the registry alive.
    me: Weak<ListenRegistry>,
    /// Action numbers and registries of the topic.
    topic: &'static ListenTopic,
    /// Patterns, searches and providers; never locked across a call out.
    state: Mutex<ListenState<ConnectionHandle>>,
    /// The topic's subscriptions: which names are subscribed, and who to notify.
    subscriptions: Arc<SubscriptionRegistry>,
    /// Patterns listened on anywhere in the cluster.
    patterns: Arc<dyn StateRegistry>,
    /// Names with an active provider anywhere in the cluster.
    published: Arc<dyn StateRegistry>,
    /// One provider search per name in the whole cluster.
    locks: Arc<dyn LockRegistry>,
    /// Where LISTEN_UNSUCCESSFUL goes to, and comes from.
    cluster: Arc<dyn ClusterNode>,
    /// How long an asked listener has to accept or reject.
    response_timeout: Duration,
    /// Period of the rematch of all names without provider; `None` = disabled.
    rematch_interval: Option<Duration>,
    /// How long after a failed local search another server's failure is not retried here.
    match_cooldown: Duration,
    /// Name → when the last local search for it failed.
    failed: Mutex<HashMap<String, Instant>>,
    /// Whether the rematch loop runs (started with the first listener).
    rematching: AtomicBool,
    /// Response timeouts and pending lock answers.
    timers: Timers,
}

/// The cluster as the state machine sees it.
struct ClusterView<'a> {
    /// Subscribed names anywhere.
    subscriptions: &'a SubscriptionRegistry,
    /// Provided names anywhere.
    published: &'a dyn StateRegistry,
}

impl World for ClusterView<'_> {
    fn has_subscribers(&self, name: &str) -> bool {
        self.subscriptions.has_name(name)
    }

    fn subscribed_names(&self) -> Vec<String> {
        self.subscriptions.names()
    }

    fn is_published(&self, name: &str) -> bool {
        self.published.has(name)
    }
}

impl ListenRegistry {
    /// Builds listening for `topic` and attaches it to the topic's subscription registry.
    /// The topic's handler forwards LISTEN, UNLISTEN, LISTEN_ACCEPT and LISTEN_REJECT to the
    /// result, and calls its `client_disconnected` after removing the closing connection's
    /// subscriptions.
    pub fn new(
        topic: &'static ListenTopic,
        config: &ListenConfig,
        subscriptions: Arc<SubscriptionRegistry>,
        services: &Services,
    ) -> Result<Arc<ListenRegistry>, String> {
        let rematch_interval = if config.rematch_interval > MIN_REMATCH_INTERVAL {
            Some(config.rematch_interval)
        } else {
            tracing::warn!(
                event = "INVALID_CONFIG_DATA",
                "Setting listen.rematchInterval to less than a second is not permitted."
            );
            None
        };
        let patterns = services
            .cluster_states
            .registry(topic.patterns_registry as i32)?;
        let published = services
            .cluster_states
            .registry(topic.published_registry as i32)?;
        let registry = Arc::new_cyclic(|me| ListenRegistry {
            me: me.clone(),
            topic,
            state: Mutex::new(ListenState::new(config.shuffle_providers)),
            subscriptions: subscriptions.clone(),
            patterns,
            published,
            locks: services.locks.clone(),
            cluster: services.cluster_node.clone(),
            response_timeout: config.response_timeout,
            rematch_interval,
            match_cooldown: config.match_cooldown,
            failed: Mutex::default(),
            rematching: AtomicBool::new(false),
            timers: Timers::on_current_runtime(),
        });
        if let Some((has, has_no)) = topic.has_provider {
            // Cluster-wide provider changes reach the local subscribers of every server.
            let notified = subscriptions.clone();
            let record_topic = topic.topic;
            registry
                .published
                .set_listener(Arc::new(move |name: &str, provided: bool| {
                    let action = if provided { has } else { has_no };
                    notified.send_to_subscribers(
                        name,
                        &Message::new(record_topic, action).with_name(name),
                        None,
                    );
                }));
        }
        let me = Arc::downgrade(&registry);
        registry.cluster.subscribe(
            topic.topic as i32,
            Arc::new(move |frame, _origin: &str| {
                if let Some(registry) = me.upgrade() {
                    registry.remote_message(frame);
                }
            }),
        );
        subscriptions.set_listener(registry.clone());
        Ok(registry)
    }

    fn view(&self) -> ClusterView<'_> {
        ClusterView {
            subscriptions: &self.subscriptions,
            published: self.published.as_ref(),
        }
    }

    fn send(
        &self,
        connection: &ConnectionHandle,
        action: i32,
        pattern: Option<&str>,
        name: Option<&str>,
    ) {
        let mut message = Message::new(self.topic.topic, action);
        message.name = pattern.map(str::to_owned);
        message.subscription = name.map(str::to_owned);
        connection.send(&message);
    }

    /// LISTEN: register, offer what already matches, then ack (offers may precede the ack).
    fn listen(&self, connection: &ConnectionHandle, message: &Message, pattern: &str) {
        let result = self.state.lock().listen(connection, pattern, &self.view());
        match result {
            Ok(effects) => {
                self.patterns.add(pattern);
                self.start_rematching();
                self.apply(effects);
                connection.send(&message.clone().with_ack());
            }
            Err(ListenError::InvalidRegex) => {
                self.send(connection, self.topic.invalid_regex, Some(pattern), None)
            }
            Err(ListenError::AlreadyListening) => connection.send(
                &Message::new(self.topic.topic, self.topic.multiple_subscriptions)
                    .with_original_action(self.topic.listen)
                    .with_name(pattern),
            ),
        }
    }

    /// UNLISTEN: ack only when the connection listened on the pattern.
    fn unlisten(&self, connection: &ConnectionHandle, message: &Message, pattern: &str) {
        let effects = self
            .state
            .lock()
            .unlisten(connection, pattern, &self.view());
        if let Some(effects) = effects {
            self.patterns.remove(pattern);
            self.apply(effects);
            connection.send(&message.clone().with_ack());
        }
    }

    /// Carries out effects in order; answers from the lock registry may add more.
    fn apply(&self, effects: Vec<Effect<ConnectionHandle>>) {
        let mut queue = VecDeque::from(effects);
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Lock { name } => match self.locks.get(&self.lock_name(&name)) {
                    Answer::Ready(result) => {
                        let granted = self.granted(&name, result);
                        let more = self.state.lock().lock_result(&name, granted, &self.view());
                        queue.extend(more);
                    }
                    Answer::Pending(answer) => {
                        let me = self.me.clone();
                        self.timers.spawn(async move {
                            let result = answer.await;
                            if let Some(registry) = me.upgrade() {
                                let granted = registry.granted(&name, result);
                                let effects = registry.state.lock().lock_result(
                                    &name,
                                    granted,
                                    &registry.view(),
                                );
                                registry.apply(effects);
                            }
                        });
                    }
                },
                Effect::Unlock { name } => self.locks.release(&self.lock_name(&name)),
                Effect::Offer {
                    to,
                    name,
                    generation,
                } => {
                    self.send(&to.peer, self.topic.found, Some(&to.pattern), Some(&name));
                    let me = self.me.clone();
                    self.timers.after(self.response_timeout, move || {
                        if let Some(registry) = me.upgrade() {
                            let effects = registry.state.lock().timeout(&name, generation);
                            registry.apply(effects);
                        }
                    });
                }
                Effect::TimedOut { to, name } => {
                    self.send(&to, self.topic.response_timeout, None, Some(&name))
                }
                Effect::Stop { to, name } => {
                    self.send(&to.peer, self.topic.removed, Some(&to.pattern), Some(&name))
                }
                Effect::Publish { name } => self.published.add(&name),
                Effect::Unpublish { name } => self.published.remove(&name),
                Effect::Unsuccessful { name } => {
                    self.failed.lock().insert(name.clone(), Instant::now());
                    let notice = Message::new(self.topic.topic, self.topic.unsuccessful)
                        .with_subscription(name);
                    self.cluster.send(protocol::encode(&notice));
                }
            }
        }
    }

    /// `<topic number>_LISTEN_LOCK_<name>`, the lock name other servers use too (server.md §7.2).
    fn lock_name(&self, name: &str) -> String {
        format!("{}_LISTEN_LOCK_{name}", self.topic.topic as i32)
    }

    fn granted(&self, name: &str, result: Result<bool, String>) -> bool {
        result.unwrap_or_else(|error| {
            tracing::error!(
                event = "PLUGIN_ERROR",
                "listen lock for {name} failed: {error}"
            );
            false
        })
    }

    /// Another server's search failed: search here, unless ours failed recently (server.md
    /// §1.5 `matchCooldown`, with the comparison the reference meant).
    fn remote_message(&self, frame: bytes::Bytes) {
        let Ok(message) = protocol::decode(frame) else {
            return;
        };
        let Some(name) = message
            .subscription
            .filter(|_| message.action == self.topic.unsuccessful)
        else {
            return;
        };
        let cooling = self
            .failed
            .lock()
            .get(&name)
            .is_some_and(|failed| failed.elapsed() < self.match_cooldown);
        if !cooling {
            let effects = self.state.lock().subscribed(&name, &self.view());
            self.apply(effects);
        }
    }

    /// Starts the periodic rematch with the first listener; it ends with the registry.
    fn start_rematching(&self) {
        let Some(interval) = self.rematch_interval else {
            return;
        };
        if self.rematching.swap(true, Ordering::Relaxed) {
            return;
        }
        let me = self.me.clone();
        self.timers.spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            loop {
                ticks.tick().await;
                let Some(registry) = me.upgrade() else {
                    return;
                };
                let effects = registry.state.lock().rematch(&registry.view());
                registry.apply(effects);
            }
        });
    }
}

impl TopicHandler for ListenRegistry {
    fn handle(&self, connection: &ConnectionHandle, message: Message) {
        let Some(pattern) = message.name.as_deref() else {
            return;
        };
        let action = message.action;
        let topic = self.topic;
        if action == topic.listen {
            self.listen(connection, &message, pattern);
        } else if action == topic.unlisten {
            self.unlisten(connection, &message, pattern);
        } else if let Some(name) = message
            .subscription
            .as_deref()
            .filter(|_| action == topic.accept || action == topic.reject)
        {
            let effects = if action == topic.accept {
                self.state.lock().accept(connection, pattern, name)
            } else {
                self.state.lock().reject(connection, pattern, name)
            };
            self.apply(effects);
        }
    }

    fn client_disconnected(&self, connection: &ConnectionHandle) {
        let (patterns, effects) = {
            let mut state = self.state.lock();
            (
                state.patterns_of(connection),
                state.remove_peer(connection, &self.view()),
            )
        };
        for pattern in patterns {
            self.patterns.remove(&pattern);
        }
        self.apply(effects);
    }
}

impl SubscriptionListener for ListenRegistry {
    /// A record subscribed to while provided learns it at once (§8.4).
    fn on_subscription_made(&self, name: &str, connection: &ConnectionHandle) {
        if let Some((has, _)) = self.topic.has_provider
            && self.published.has(name)
        {
            connection.send(&Message::new(self.topic.topic, has).with_name(name));
        }
    }

    fn on_first_subscription_made(&self, name: &str) {
        let effects = self.state.lock().subscribed(name, &self.view());
        self.apply(effects);
    }

    fn on_last_subscription_removed(&self, name: &str) {
        self.failed.lock().remove(name);
        let effects = self.state.lock().unsubscribed(name);
        self.apply(effects);
    }
}
