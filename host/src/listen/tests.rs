//! The listen state machine against a model of its surroundings: subscriptions, connections,
//! the cluster lock and the published-subscriptions registry. Random operation sequences
//! check the invariants after every step; the bugs deepstream users reported (research
//! peers.md §B5) are pinned as named regressions.

use std::collections::{HashMap, HashSet, VecDeque};

use proptest::prelude::*;

use super::machine::{Candidate, Effect, ListenState, Peer, World};

/// A connection of the model: `slot * 1000 + incarnation`, so a reconnect is a new peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Conn(u64);

impl Peer for Conn {
    fn id(&self) -> u64 {
        self.0
    }
}

const SLOTS: usize = 4;
const NAMES: [&str; 4] = ["news/1", "news/2", "sport/1", "weather"];
/// The last pattern does not compile; `1$` and `^news/` overlap on `news/1`.
const PATTERNS: [&str; 5] = ["^news/", "1$", "sport", "e", "(["];

/// What the machine sees of the model.
struct View<'a> {
    /// name → subscribed connections.
    subscribers: &'a HashMap<String, HashSet<Conn>>,
    /// Names with an active provider.
    published: &'a HashSet<String>,
}

impl World for View<'_> {
    fn has_subscribers(&self, name: &str) -> bool {
        self.subscribers.contains_key(name)
    }

    fn subscribed_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.subscribers.keys().cloned().collect();
        names.sort();
        names
    }

    fn is_published(&self, name: &str) -> bool {
        self.published.contains(name)
    }
}

/// The machine plus everything around it, with the client-visible messages recorded.
struct Model {
    /// The machine under test.
    machine: ListenState<Conn>,
    /// name → subscribed connections (an entry is never empty).
    subscribers: HashMap<String, HashSet<Conn>>,
    /// The current connection of every slot.
    conns: [Conn; SLOTS],
    /// (connection, pattern) pairs registered with the machine.
    listening: HashSet<(Conn, String)>,
    /// The published-subscriptions registry.
    published: HashSet<String>,
    /// Held cluster locks, by subscription name.
    locks: HashSet<String>,
    /// Lock requests not answered yet (only when answers are deferred).
    pending_locks: VecDeque<String>,
    /// Whether lock answers come later (a remote lock leader) or at once.
    deferred_locks: bool,
    /// Every offer made, with its generation, in order.
    offers: Vec<(Candidate<Conn>, String, u64)>,
    /// SUBSCRIPTION_FOR_PATTERN_REMOVED messages: (connection, pattern, name).
    stops: Vec<(Conn, String, String)>,
    /// LISTEN_RESPONSE_TIMEOUT messages: (connection, name).
    timeouts: Vec<(Conn, String)>,
    /// Names whose search failed.
    unsuccessful: Vec<String>,
}

impl Model {
    fn new(shuffle: bool, deferred_locks: bool) -> Self {
        Model {
            machine: ListenState::new(shuffle),
            subscribers: HashMap::new(),
            conns: std::array::from_fn(|slot| Conn(slot as u64 * 1000)),
            listening: HashSet::new(),
            published: HashSet::new(),
            locks: HashSet::new(),
            pending_locks: VecDeque::new(),
            deferred_locks,
            offers: Vec::new(),
            stops: Vec::new(),
            timeouts: Vec::new(),
            unsuccessful: Vec::new(),
        }
    }

    fn view(&self) -> View<'_> {
        View {
            subscribers: &self.subscribers,
            published: &self.published,
        }
    }

    fn subscribe(&mut self, slot: usize, name: &str) {
        let conn = self.conns[slot];
        let entry = self.subscribers.entry(name.to_owned()).or_default();
        let first = entry.is_empty();
        if entry.insert(conn) && first {
            let view = View {
                subscribers: &self.subscribers,
                published: &self.published,
            };
            let effects = self.machine.subscribed(name, &view);
            self.apply(effects);
        }
    }

    fn unsubscribe(&mut self, slot: usize, name: &str) {
        let conn = self.conns[slot];
        let Some(entry) = self.subscribers.get_mut(name) else {
            return;
        };
        if entry.remove(&conn) && entry.is_empty() {
            self.subscribers.remove(name);
            let effects = self.machine.unsubscribed(name);
            self.apply(effects);
        }
    }

    fn listen(&mut self, slot: usize, pattern: &str) {
        let conn = self.conns[slot];
        let view = View {
            subscribers: &self.subscribers,
            published: &self.published,
        };
        if let Ok(effects) = self.machine.listen(&conn, pattern, &view) {
            assert!(
                self.listening.insert((conn, pattern.to_owned())),
                "duplicate LISTEN accepted"
            );
            self.apply(effects);
        } else {
            assert!(
                pattern == "([" || self.listening.contains(&(conn, pattern.to_owned())),
                "LISTEN {pattern} refused"
            );
        }
    }

    fn unlisten(&mut self, slot: usize, pattern: &str) {
        let conn = self.conns[slot];
        let view = View {
            subscribers: &self.subscribers,
            published: &self.published,
        };
        let effects = self.machine.unlisten(&conn, pattern, &view);
        assert_eq!(
            effects.is_some(),
            self.listening.remove(&(conn, pattern.to_owned()))
        );
        self.apply(effects.unwrap_or_default());
    }

    /// Closes the slot's connection (subscriptions first, as the handlers do) and opens a new one.
    fn disconnect(&mut self, slot: usize) {
        let conn = self.conns[slot];
        let names: Vec<String> = self
            .subscribers
            .iter()
            .filter(|(_, subs)| subs.contains(&conn))
            .map(|(name, _)| name.clone())
            .collect();
        for name in names {
            self.unsubscribe(slot, &name);
        }
        let view = View {
            subscribers: &self.subscribers,
            published: &self.published,
        };
        let mut patterns = self.machine.patterns_of(&conn);
        patterns.sort();
        let mut expected: Vec<String> = self
            .listening
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, p)| p.clone())
            .collect();
        expected.sort();
        assert_eq!(
            patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            expected
        );
        let effects = self.machine.remove_peer(&conn, &view);
        self.listening.retain(|(c, _)| *c != conn);
        self.conns[slot] = Conn(conn.0 + 1);
        self.apply(effects);
    }

    fn accept(&mut self, conn: Conn, pattern: &str, name: &str) {
        let effects = self.machine.accept(&conn, pattern, name);
        self.apply(effects);
    }

    fn reject(&mut self, conn: Conn, pattern: &str, name: &str) {
        let effects = self.machine.reject(&conn, pattern, name);
        self.apply(effects);
    }

    fn timeout(&mut self, name: &str, generation: u64) {
        let effects = self.machine.timeout(name, generation);
        self.apply(effects);
    }

    fn rematch(&mut self) {
        let view = View {
            subscribers: &self.subscribers,
            published: &self.published,
        };
        let effects = self.machine.rematch(&view);
        self.apply(effects);
    }

    /// Answers the oldest deferred lock request.
    fn answer_lock(&mut self) {
        if let Some(name) = self.pending_locks.pop_front() {
            let granted = self.locks.insert(name.clone());
            let view = View {
                subscribers: &self.subscribers,
                published: &self.published,
            };
            let effects = self.machine.lock_result(&name, granted, &view);
            self.apply(effects);
        }
    }

    /// Carries out effects like the registry does, checking each against the model.
    fn apply(&mut self, effects: Vec<Effect<Conn>>) {
        let mut queue = VecDeque::from(effects);
        let mut steps = 0;
        while let Some(effect) = queue.pop_front() {
            steps += 1;
            assert!(steps < 1000, "effects do not settle");
            match effect {
                Effect::Lock { name } if self.deferred_locks => self.pending_locks.push_back(name),
                Effect::Lock { name } => {
                    let granted = self.locks.insert(name.clone());
                    let view = View {
                        subscribers: &self.subscribers,
                        published: &self.published,
                    };
                    queue.extend(self.machine.lock_result(&name, granted, &view));
                }
                Effect::Unlock { name } => {
                    assert!(self.locks.remove(&name), "released {name}, not held")
                }
                Effect::Offer {
                    to,
                    name,
                    generation,
                } => {
                    assert!(
                        self.is_listener(to.peer, &to.pattern),
                        "offer to a non-listener {to:?}"
                    );
                    assert!(
                        regress::Regex::new(&to.pattern)
                            .unwrap()
                            .find(&name)
                            .is_some(),
                        "{name} offered to {to:?}"
                    );
                    assert!(
                        self.subscribers.contains_key(&name),
                        "offer of unsubscribed {name}"
                    );
                    self.offers.push((to, name, generation));
                }
                Effect::TimedOut { to, name } => self.timeouts.push((to, name)),
                Effect::Stop { to, name } => {
                    self.stops.push((to.peer, to.pattern.to_string(), name))
                }
                Effect::Publish { name } => assert!(self.published.insert(name), "published twice"),
                Effect::Unpublish { name } => {
                    assert!(self.published.remove(&name), "unpublished, not published")
                }
                Effect::Unsuccessful { name } => self.unsuccessful.push(name),
            }
        }
    }

    fn is_listener(&self, conn: Conn, pattern: &str) -> bool {
        self.conns.contains(&conn) && self.listening.contains(&(conn, pattern.to_owned()))
    }

    /// The invariants that hold after every step.
    fn check(&self) {
        let mut provided = HashSet::new();
        let mut searching = HashSet::new();
        for name in self.machine.active_names() {
            assert!(
                self.subscribers.contains_key(name),
                "state kept for unsubscribed {name}"
            );
        }
        for name in NAMES {
            if let Some(provider) = self.machine.provider(name) {
                assert!(
                    self.is_listener(provider.peer, &provider.pattern),
                    "{name} provided by a non-listener"
                );
                assert!(
                    self.machine
                        .is_listener(&provider.peer, &provider.pattern, name),
                    "pattern does not match {name}"
                );
                provided.insert(name.to_owned());
            }
            if let Some((asked, _)) = self.machine.asked(name) {
                assert!(
                    self.is_listener(asked.peer, &asked.pattern),
                    "{name} asks a non-listener"
                );
                searching.insert(name.to_owned());
            }
        }
        assert_eq!(
            provided, self.published,
            "published subscriptions differ from providers"
        );
        assert_eq!(
            searching, self.locks,
            "locks held other than by running searches"
        );
    }

    /// Lets every search finish by accepting, then rematches, until nothing changes: every
    /// subscribed name with a matching listener must then have a provider.
    fn settle(&mut self) {
        for _ in 0..20 {
            while !self.pending_locks.is_empty() {
                self.answer_lock();
            }
            let asked: Vec<(Candidate<Conn>, String)> = NAMES
                .iter()
                .filter_map(|name| {
                    self.machine
                        .asked(name)
                        .map(|(c, _)| (c.clone(), name.to_string()))
                })
                .collect();
            for (candidate, name) in asked {
                self.accept(candidate.peer, &candidate.pattern, &name);
            }
            self.rematch();
            self.check();
        }
        for name in self.subscribers.keys() {
            let matched = self
                .listening
                .iter()
                .any(|(_, pattern)| regress::Regex::new(pattern).unwrap().find(name).is_some());
            assert_eq!(
                self.machine.provider(name).is_some(),
                matched,
                "{name}: provider iff a listener matches"
            );
        }
    }

    /// Closes every connection: nothing may remain.
    fn close_all(&mut self) {
        for slot in 0..SLOTS {
            self.disconnect(slot);
            self.check();
        }
        while !self.pending_locks.is_empty() {
            self.answer_lock();
        }
        assert!(
            self.machine.is_empty(),
            "listen state left after every connection closed"
        );
        assert!(self.published.is_empty() && self.locks.is_empty());
    }

    fn offers_of(&self, name: &str) -> Vec<Conn> {
        self.offers
            .iter()
            .filter(|(_, n, _)| n == name)
            .map(|(c, _, _)| c.peer)
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe(usize, usize),
    Unsubscribe(usize, usize),
    Listen(usize, usize),
    Unlisten(usize, usize),
    /// Answer the offer with this index (of all made), possibly long after it moved on.
    AcceptOffer(usize),
    RejectOffer(usize),
    /// An accept nobody asked for.
    AcceptUnasked(usize, usize, usize),
    Disconnect(usize),
    /// Fire the response timer of the offer with this index.
    Timeout(usize),
    AnswerLock,
    Rematch,
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let name = 0..NAMES.len();
    let pattern = 0..PATTERNS.len();
    prop_oneof![
        3 => (slot.clone(), name.clone()).prop_map(|(s, n)| Op::Subscribe(s, n)),
        2 => (slot.clone(), name.clone()).prop_map(|(s, n)| Op::Unsubscribe(s, n)),
        3 => (slot.clone(), pattern.clone()).prop_map(|(s, p)| Op::Listen(s, p)),
        1 => (slot.clone(), pattern.clone()).prop_map(|(s, p)| Op::Unlisten(s, p)),
        3 => any::<usize>().prop_map(Op::AcceptOffer),
        2 => any::<usize>().prop_map(Op::RejectOffer),
        1 => (slot.clone(), pattern, name).prop_map(|(s, p, n)| Op::AcceptUnasked(s, p, n)),
        1 => slot.prop_map(Op::Disconnect),
        2 => any::<usize>().prop_map(Op::Timeout),
        2 => Just(Op::AnswerLock),
        1 => Just(Op::Rematch),
    ]
}

fn run(model: &mut Model, op: &Op) {
    match *op {
        Op::Subscribe(slot, name) => model.subscribe(slot, NAMES[name]),
        Op::Unsubscribe(slot, name) => model.unsubscribe(slot, NAMES[name]),
        Op::Listen(slot, pattern) => model.listen(slot, PATTERNS[pattern]),
        Op::Unlisten(slot, pattern) => model.unlisten(slot, PATTERNS[pattern]),
        Op::AcceptOffer(index) | Op::RejectOffer(index) | Op::Timeout(index)
            if !model.offers.is_empty() =>
        {
            let (candidate, name, generation) = model.offers[index % model.offers.len()].clone();
            match op {
                Op::AcceptOffer(_) => model.accept(candidate.peer, &candidate.pattern, &name),
                Op::RejectOffer(_) => model.reject(candidate.peer, &candidate.pattern, &name),
                _ => model.timeout(&name, generation),
            }
        }
        Op::AcceptUnasked(slot, pattern, name) => {
            model.accept(model.conns[slot], PATTERNS[pattern], NAMES[name])
        }
        Op::Disconnect(slot) => model.disconnect(slot),
        Op::AnswerLock => model.answer_lock(),
        Op::Rematch => model.rematch(),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// At most one provider per name, providers are connected listeners whose pattern matches,
    /// locks and published names follow the searches and providers, nothing is kept for names
    /// without subscribers; eventually every subscribed name with a matching listener is
    /// provided; once everyone left, nothing remains.
    #[test]
    fn random_sequences_keep_the_invariants(
        ops in proptest::collection::vec(op(), 0..80),
        shuffle in any::<bool>(),
        deferred_locks in any::<bool>(),
    ) {
        let mut model = Model::new(shuffle, deferred_locks);
        for op in &ops {
            run(&mut model, op);
            model.check();
        }
        model.settle();
        model.close_all();
    }
}

/// Stops sent to `conn` for `name`.
fn stops(model: &Model, conn: Conn, name: &str) -> usize {
    model
        .stops
        .iter()
        .filter(|(c, _, n)| *c == conn && n == name)
        .count()
}

const LISTENER: usize = 0;
const OTHER_LISTENER: usize = 1;
const SUBSCRIBER: usize = 2;

/// deepstream.io#865: the listener must be asked again for every new subscription of a name,
/// not only the first time it was subscribed.
#[test]
fn regression_865_listener_is_asked_again_for_each_new_subscription() {
    let mut model = Model::new(false, false);
    model.listen(LISTENER, "^news/");
    let listener = model.conns[LISTENER];
    for round in 1..=3 {
        model.subscribe(SUBSCRIBER, "news/1");
        assert_eq!(
            model.offers_of("news/1").len(),
            round,
            "offered in round {round}"
        );
        model.accept(listener, "^news/", "news/1");
        assert_eq!(
            model.machine.provider("news/1").map(|c| c.peer),
            Some(listener)
        );
        model.unsubscribe(SUBSCRIBER, "news/1");
        assert_eq!(
            stops(&model, listener, "news/1"),
            round,
            "told to stop in round {round}"
        );
        model.check();
    }
    // A rejection only holds for that subscription: the next one is offered again.
    model.subscribe(SUBSCRIBER, "news/1");
    model.reject(listener, "^news/", "news/1");
    model.unsubscribe(SUBSCRIBER, "news/1");
    model.subscribe(SUBSCRIBER, "news/1");
    assert_eq!(model.offers_of("news/1").len(), 5);
    model.check();
}

/// deepstream.io#891: after a client disconnects nothing stale remains, whichever role it had.
#[test]
fn regression_891_no_stale_state_after_disconnects() {
    let mut model = Model::new(false, false);
    model.listen(LISTENER, "^news/");
    model.listen(OTHER_LISTENER, "^news/");
    model.subscribe(SUBSCRIBER, "news/1");
    let (first, second) = (model.conns[LISTENER], model.conns[OTHER_LISTENER]);
    model.accept(first, "^news/", "news/1");

    // The provider leaves: the other listener is asked and takes over.
    model.disconnect(LISTENER);
    model.check();
    assert_eq!(model.offers_of("news/1"), vec![first, second]);
    model.accept(second, "^news/", "news/1");
    assert_eq!(
        model.machine.provider("news/1").map(|c| c.peer),
        Some(second)
    );

    // The subscriber leaves: the provider is told and the name is forgotten.
    model.disconnect(SUBSCRIBER);
    model.check();
    assert_eq!(stops(&model, second, "news/1"), 1);
    assert!(model.machine.active_names().next().is_none());
    assert!(model.published.is_empty());

    // The listener leaves while asked: the search ends, its late answer changes nothing.
    model.subscribe(SUBSCRIBER, "news/2");
    model.disconnect(OTHER_LISTENER);
    model.accept(second, "^news/", "news/2");
    model.check();
    assert!(model.machine.is_empty());
    model.close_all();
}

/// deepstream.io-client-js#322/#306: deleting a record inside the listen callback looped
/// forever. Modelled as the provider unsubscribing and resubscribing the name from inside its
/// callback, before accepting: every round costs exactly one new offer and it settles.
#[test]
fn regression_client_322_resubscribing_inside_the_listen_callback_settles() {
    let mut model = Model::new(false, false);
    model.listen(LISTENER, "^news/");
    let listener = model.conns[LISTENER];
    model.subscribe(LISTENER, "news/1");
    let mut handled = 0;
    while handled < model.offers.len() {
        handled += 1;
        assert!(handled <= 4, "offers keep coming: {:?}", model.offers);
        // The callback: three times it deletes (unsubscribes) and recreates (resubscribes) …
        if handled <= 3 {
            model.unsubscribe(LISTENER, "news/1");
            model.subscribe(LISTENER, "news/1");
        }
        // … and then accepts the offer it was called for.
        model.accept(listener, "^news/", "news/1");
        model.check();
    }
    assert_eq!(model.offers_of("news/1").len(), 4);
    assert_eq!(
        model.machine.provider("news/1").map(|c| c.peer),
        Some(listener)
    );
    model.close_all();
}

/// protocol.md §8.5: the reference kept only the leaving listener's candidates in running
/// searches. Its candidates must be the ones removed.
#[test]
fn a_listener_leaving_during_a_search_is_no_longer_asked() {
    let mut model = Model::new(false, false);
    model.listen(LISTENER, "^news/");
    model.listen(OTHER_LISTENER, "^news/");
    model.listen(SUBSCRIBER, "1$");
    model.subscribe(3, "news/1");
    let first = model.conns[LISTENER];
    assert_eq!(model.offers_of("news/1"), vec![first]);
    model.unlisten(OTHER_LISTENER, "^news/");
    model.reject(first, "^news/", "news/1");
    assert_eq!(
        model.offers_of("news/1"),
        vec![first, model.conns[SUBSCRIBER]]
    );
    model.check();
}

/// §8.2: a timeout tells the asked listener and moves on; a stale timer is ignored.
#[test]
fn timeouts_move_on_and_stale_timers_do_nothing() {
    let mut model = Model::new(false, false);
    model.listen(LISTENER, "^news/");
    model.listen(OTHER_LISTENER, "^news/");
    model.subscribe(SUBSCRIBER, "news/1");
    let (first, second) = (model.conns[LISTENER], model.conns[OTHER_LISTENER]);
    let stale = model.offers[0].2;
    model.timeout("news/1", stale);
    assert_eq!(model.timeouts, vec![(first, "news/1".to_owned())]);
    model.timeout("news/1", stale);
    assert_eq!(model.timeouts.len(), 1);
    // The slow first listener accepts late: still welcome, the search is running.
    model.accept(first, "^news/", "news/1");
    assert_eq!(
        model.machine.provider("news/1").map(|c| c.peer),
        Some(first)
    );
    // The second one, asked meanwhile, accepts too: told to stop at once.
    model.accept(second, "^news/", "news/1");
    assert_eq!(stops(&model, second, "news/1"), 1);
    model.check();
}

/// Reconcile (§8.1): a listener registering during a search joins its queue; an invalid
/// pattern and a duplicate LISTEN are refused.
#[test]
fn listening_during_a_search_queues_the_listener() {
    let mut model = Model::new(false, false);
    model.listen(LISTENER, "^news/");
    model.subscribe(SUBSCRIBER, "news/1");
    model.listen(OTHER_LISTENER, "news");
    model.reject(model.conns[LISTENER], "^news/", "news/1");
    assert_eq!(
        model.offers_of("news/1"),
        vec![model.conns[LISTENER], model.conns[OTHER_LISTENER]]
    );
    let view = model.view();
    let mut machine = ListenState::new(false);
    assert_eq!(
        machine.listen(&Conn(1), "([", &view).err(),
        Some(super::machine::ListenError::InvalidRegex)
    );
    assert!(machine.listen(&Conn(1), "a", &view).is_ok());
    assert_eq!(
        machine.listen(&Conn(1), "a", &view).err(),
        Some(super::machine::ListenError::AlreadyListening)
    );
}

/// The registry wired to a real subscription registry, in record mode (has-provider notices).
mod registry {
    use std::{path::Path, sync::Arc};

    use crate::{
        config::{Config, Overrides},
        listen::{ListenRegistry, RECORDS},
        protocol::{Message, RecordAction, StateRegistryTopic, Topic},
        server::{Server, TopicHandler},
        subscription_registry::{RegistryActions, SubscriptionRegistry},
        test_support::Client,
    };

    const ACTIONS: RegistryActions = RegistryActions {
        multiple_subscriptions: RecordAction::MultipleSubscriptions as i32,
    };

    fn record_listening() -> (Arc<SubscriptionRegistry>, Arc<ListenRegistry>) {
        let settings = serde_json::json!({ "listen": { "shuffleProviders": false }, "enabledFeatures": { "record": false } });
        let config = Config::from_value(settings, Path::new("."), &Overrides::default())
            .expect("valid config");
        let server = Server::new(config).expect("server builds");
        let states = &server.services.cluster_states;
        let subscriptions = SubscriptionRegistry::new(
            Topic::Record,
            ACTIONS,
            states
                .registry(StateRegistryTopic::RecordSubscriptions as i32)
                .unwrap(),
            server.services.cluster_node.clone(),
            server.services.monitoring.clone(),
        );
        let listen = ListenRegistry::new(
            &RECORDS,
            &server.config.listen,
            subscriptions.clone(),
            &server.services,
        )
        .expect("listening builds");
        (subscriptions, listen)
    }

    fn listen_message(action: RecordAction, pattern: &str, subscription: Option<&str>) -> Message {
        let mut message = Message::new(Topic::Record, action).with_name(pattern);
        message.subscription = subscription.map(str::to_owned);
        message
    }

    fn actions(client: &mut Client) -> Vec<(Option<RecordAction>, Option<String>, Option<String>)> {
        client
            .messages()
            .into_iter()
            .map(|m| (m.action_as(), m.name, m.subscription))
            .collect()
    }

    fn notice(
        action: RecordAction,
        name: &str,
    ) -> (Option<RecordAction>, Option<String>, Option<String>) {
        (Some(action), Some(name.to_owned()), None)
    }

    #[tokio::test]
    async fn records_subscribers_learn_about_providers_coming_and_going() {
        let (subscriptions, listen) = record_listening();
        let (mut p, mut q) = (Client::new(1, "p", None), Client::new(2, "q", None));
        let (mut a, mut c) = (Client::new(3, "a", None), Client::new(4, "c", None));
        let found = |pattern: &str| {
            (
                Some(RecordAction::SubscriptionForPatternFound),
                Some(pattern.to_owned()),
                Some("weather/berlin".to_owned()),
            )
        };

        listen.handle(
            &p.connection,
            listen_message(RecordAction::Listen, "^weather/", None),
        );
        let ack = p.messages();
        assert_eq!(
            (ack[0].action_as(), ack[0].is_ack),
            (Some(RecordAction::Listen), true)
        );
        listen.handle(
            &p.connection,
            listen_message(RecordAction::Listen, "^weather/", None),
        );
        let duplicate = p.messages();
        assert_eq!(
            duplicate[0].action_as(),
            Some(RecordAction::MultipleSubscriptions)
        );
        assert_eq!(
            duplicate[0].original_action,
            Some(RecordAction::Listen as i32)
        );
        listen.handle(
            &q.connection,
            listen_message(RecordAction::Listen, "([", None),
        );
        assert_eq!(
            actions(&mut q),
            vec![(
                Some(RecordAction::InvalidListenRegex),
                Some("([".into()),
                None
            )]
        );

        subscriptions.subscribe(
            "weather/berlin",
            &a.connection,
            RecordAction::Subscribe as i32,
        );
        assert_eq!(actions(&mut p), vec![found("^weather/")]);
        listen.handle(
            &p.connection,
            listen_message(
                RecordAction::ListenAccept,
                "^weather/",
                Some("weather/berlin"),
            ),
        );
        assert_eq!(
            actions(&mut a),
            vec![notice(
                RecordAction::SubscriptionHasProvider,
                "weather/berlin"
            )]
        );

        // Subscribed while provided: told at subscription time.
        subscriptions.subscribe(
            "weather/berlin",
            &c.connection,
            RecordAction::Subscribe as i32,
        );
        assert_eq!(
            actions(&mut c),
            vec![notice(
                RecordAction::SubscriptionHasProvider,
                "weather/berlin"
            )]
        );

        // The provider leaves: subscribers are told, the new listener is asked and accepts.
        listen.handle(
            &q.connection,
            listen_message(RecordAction::Listen, "weather", None),
        );
        q.messages();
        p.close();
        listen.client_disconnected(&p.connection);
        assert_eq!(
            actions(&mut a),
            vec![notice(
                RecordAction::SubscriptionHasNoProvider,
                "weather/berlin"
            )]
        );
        assert_eq!(actions(&mut q), vec![found("weather")]);
        listen.handle(
            &q.connection,
            listen_message(
                RecordAction::ListenAccept,
                "weather",
                Some("weather/berlin"),
            ),
        );
        assert_eq!(
            actions(&mut c),
            vec![
                notice(RecordAction::SubscriptionHasNoProvider, "weather/berlin"),
                notice(RecordAction::SubscriptionHasProvider, "weather/berlin"),
            ]
        );

        // Only the last subscriber leaving stops the provider.
        subscriptions.unsubscribe("weather/berlin", &a.connection);
        assert!(q.messages().is_empty());
        subscriptions.remove_connection(&c.connection);
        let removed = (
            Some(RecordAction::SubscriptionForPatternRemoved),
            Some("weather".to_owned()),
            Some("weather/berlin".to_owned()),
        );
        assert_eq!(actions(&mut q), vec![removed]);

        listen.handle(
            &q.connection,
            listen_message(RecordAction::Unlisten, "weather", None),
        );
        assert_eq!(q.messages()[0].action_as(), Some(RecordAction::Unlisten));
        listen.handle(
            &q.connection,
            listen_message(RecordAction::Unlisten, "weather", None),
        );
        assert!(q.messages().is_empty(), "no ack when not listening");
    }
}
