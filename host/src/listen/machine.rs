//! The listen state machine (protocol.md §8.2–§8.3), free of I/O so it can be driven by random
//! operation sequences in tests.
//!
//! Per subscription name the state is one of: *no provider* (no entry), *locking* (waiting for
//! the cluster lock that makes this server the only one searching), *searching* (one listener
//! asked, the rest queued, a response timeout running) or *provided* (one active provider).
//! Inputs are subscription changes, listener messages, disconnects and timeouts; outputs are
//! [`Effect`]s the caller carries out, in order, after releasing whatever lock guards the
//! machine. What the cluster knows (which names have subscribers, which are provided
//! elsewhere) is asked through [`World`].

use std::{collections::VecDeque, sync::Arc};

use crate::HashMap;

use rand::seq::SliceRandom;

/// A listener's connection, as the machine needs it: something to address and compare.
pub trait Peer: Clone {
    /// Unique among the connections of this server.
    fn id(&self) -> u64;
}

/// What the machine asks about the cluster.
pub trait World {
    /// Whether `name` has subscribers on any server.
    fn has_subscribers(&self, name: &str) -> bool;
    /// Every name with subscribers on any server.
    fn subscribed_names(&self) -> Vec<String>;
    /// Whether `name` has an active provider on any server (published subscriptions).
    fn is_published(&self, name: &str) -> bool;
}

/// One (pattern, connection) pair that may provide a name.
#[derive(Debug, Clone)]
pub struct Candidate<C> {
    /// The pattern the connection registered; messages to it name the pattern.
    pub pattern: Arc<str>,
    /// The listening connection.
    pub peer: C,
}

impl<C: Peer> Candidate<C> {
    fn is(&self, peer: &C, pattern: &str) -> bool {
        self.peer.id() == peer.id() && &*self.pattern == pattern
    }
}

/// What the caller must do, in order.
#[derive(Debug, Clone)]
pub enum Effect<C> {
    /// Ask for the cluster lock of `name`, then report with [`ListenState::lock_result`].
    Lock { name: String },
    /// Release the cluster lock of `name`.
    Unlock { name: String },
    /// Send SUBSCRIPTION_FOR_PATTERN_FOUND and call [`ListenState::timeout`] with `generation`
    /// after the listen response timeout.
    Offer {
        to: Candidate<C>,
        name: String,
        generation: u64,
    },
    /// Send LISTEN_RESPONSE_TIMEOUT to a listener that did not answer.
    TimedOut { to: C, name: String },
    /// Send SUBSCRIPTION_FOR_PATTERN_REMOVED: the listener does not (or no longer) provide.
    Stop { to: Candidate<C>, name: String },
    /// `name` has an active provider here: add it to the published subscriptions.
    Publish { name: String },
    /// The provision of `name` ended: remove it from the published subscriptions.
    Unpublish { name: String },
    /// No local listener took `name`: tell the other servers so they can try theirs.
    Unsuccessful { name: String },
}

/// Why a LISTEN was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenError {
    /// The pattern is not a valid ECMAScript regular expression.
    InvalidRegex,
    /// The connection already listens on the pattern.
    AlreadyListening,
}

/// Where the search for one subscription name stands (no entry = no provider, no search).
#[derive(Debug)]
enum Phase<C> {
    /// Waiting for the cluster lock; candidates are collected once it is granted.
    Locking,
    /// `asked` was offered the name; `remaining` are asked next, in order.
    Searching {
        asked: Candidate<C>,
        remaining: VecDeque<Candidate<C>>,
        generation: u64,
    },
    /// `provider` accepted and provides the name.
    Provided { provider: Candidate<C> },
}

/// One registered pattern.
struct Pattern<C> {
    /// The pattern text, as the client sent it.
    source: Arc<str>,
    /// Compiled once, shared by every connection listening on it; used unanchored.
    regex: regress::Regex,
    /// Listening connections, in registration order.
    peers: Vec<C>,
}

/// The listen state of one topic on this server.
pub struct ListenState<C> {
    /// Registered patterns in registration order (the unshuffled candidate order).
    patterns: Vec<Pattern<C>>,
    /// Subscription name → its search or provider; absent = no provider.
    names: HashMap<String, Phase<C>>,
    /// Try candidates in random order (`listen.shuffleProviders`).
    shuffle: bool,
    /// Tags each offer so a timeout for an earlier offer is recognised as stale.
    next_generation: u64,
}

impl<C: Peer> ListenState<C> {
    pub fn new(shuffle: bool) -> Self {
        ListenState {
            patterns: Vec::new(),
            names: HashMap::default(),
            shuffle,
            next_generation: 0,
        }
    }

    /// LISTEN: registers the pattern, then offers every subscribed name it matches that has
    /// no provider yet, or queues the listener in a running search for it (§8.1 reconcile).
    pub fn listen(
        &mut self,
        peer: &C,
        source: &str,
        world: &dyn World,
    ) -> Result<Vec<Effect<C>>, ListenError> {
        match self.patterns.iter_mut().find(|p| &*p.source == source) {
            Some(pattern) if pattern.peers.iter().any(|p| p.id() == peer.id()) => {
                return Err(ListenError::AlreadyListening);
            }
            Some(pattern) => pattern.peers.push(peer.clone()),
            None => {
                let regex = regress::Regex::new(source).map_err(|_| ListenError::InvalidRegex)?;
                self.patterns.push(Pattern {
                    source: source.into(),
                    regex,
                    peers: vec![peer.clone()],
                });
            }
        }
        let pattern = self
            .patterns
            .iter()
            .find(|p| &*p.source == source)
            .expect("just registered");
        let candidate = Candidate {
            pattern: pattern.source.clone(),
            peer: peer.clone(),
        };
        let matching: Vec<String> = world
            .subscribed_names()
            .into_iter()
            .filter(|name| pattern.regex.find(name).is_some())
            .collect();
        let mut effects = Vec::new();
        for name in matching {
            match self.names.get_mut(&name) {
                Some(Phase::Searching { remaining, .. }) => remaining.push_back(candidate.clone()),
                Some(_) => {}
                None => self.start(&name, world, &mut effects),
            }
        }
        Ok(effects)
    }

    /// UNLISTEN: `None` when the connection did not listen on the pattern. Names it provided
    /// through the pattern lose their provider silently and are searched for again (§8.1).
    pub fn unlisten(
        &mut self,
        peer: &C,
        source: &str,
        world: &dyn World,
    ) -> Option<Vec<Effect<C>>> {
        let index = self.patterns.iter().position(|p| &*p.source == source)?;
        let pattern = &mut self.patterns[index];
        let before = pattern.peers.len();
        pattern.peers.retain(|p| p.id() != peer.id());
        if pattern.peers.len() == before {
            return None;
        }
        if pattern.peers.is_empty() {
            self.patterns.remove(index);
        }
        Some(self.drop_candidates(|c| c.is(peer, source), world))
    }

    /// The patterns a connection listens on (to unregister them cluster-wide on close).
    pub fn patterns_of(&self, peer: &C) -> Vec<Arc<str>> {
        self.patterns
            .iter()
            .filter(|p| p.peers.iter().any(|q| q.id() == peer.id()))
            .map(|p| p.source.clone())
            .collect()
    }

    /// A connection closed: it stops listening everywhere, as if it unlistened each pattern.
    pub fn remove_peer(&mut self, peer: &C, world: &dyn World) -> Vec<Effect<C>> {
        for pattern in &mut self.patterns {
            pattern.peers.retain(|p| p.id() != peer.id());
        }
        self.patterns.retain(|p| !p.peers.is_empty());
        self.drop_candidates(|c| c.peer.id() == peer.id(), world)
    }

    /// A name gained its first subscriber anywhere (also: another server's search failed,
    /// periodic rematch): search for a provider unless one exists or a search runs.
    pub fn subscribed(&mut self, name: &str, world: &dyn World) -> Vec<Effect<C>> {
        let mut effects = Vec::new();
        if !self.names.contains_key(name) {
            self.start(name, world, &mut effects);
        }
        effects
    }

    /// A name lost its last subscriber anywhere: the provider is told to stop, a running
    /// search ends, and nothing about the name is kept.
    pub fn unsubscribed(&mut self, name: &str) -> Vec<Effect<C>> {
        match self.names.remove(name) {
            Some(Phase::Provided { provider }) => vec![
                Effect::Stop {
                    to: provider,
                    name: name.to_owned(),
                },
                Effect::Unpublish {
                    name: name.to_owned(),
                },
            ],
            Some(Phase::Searching { .. }) => vec![Effect::Unlock {
                name: name.to_owned(),
            }],
            // The lock answer is still to come; `lock_result` releases it.
            Some(Phase::Locking) | None => Vec::new(),
        }
    }

    /// The answer to an [`Effect::Lock`].
    pub fn lock_result(&mut self, name: &str, granted: bool, world: &dyn World) -> Vec<Effect<C>> {
        let mut effects = Vec::new();
        let locking = matches!(self.names.get(name), Some(Phase::Locking));
        if !locking {
            // The search was called off meanwhile, or a newer lock request already won.
            if granted && !matches!(self.names.get(name), Some(Phase::Searching { .. })) {
                effects.push(Effect::Unlock {
                    name: name.to_owned(),
                });
            }
            return effects;
        }
        if !granted {
            // Another server searches; it reports LISTEN_UNSUCCESSFUL if nobody takes it.
            self.names.remove(name);
            return effects;
        }
        if world.is_published(name) || !world.has_subscribers(name) {
            self.names.remove(name);
            effects.push(Effect::Unlock {
                name: name.to_owned(),
            });
            return effects;
        }
        let candidates = self.candidates(name);
        if candidates.is_empty() {
            self.names.remove(name);
            effects.push(Effect::Unlock {
                name: name.to_owned(),
            });
        } else {
            self.ask_next(name, candidates, &mut effects);
        }
        effects
    }

    /// LISTEN_ACCEPT. Accepted while a search for the name runs, from any of its listeners
    /// (a late answer after a timeout counts, §8.2). A listener that accepts when the name
    /// cannot be given to it is told to stop, so it never believes it provides.
    pub fn accept(&mut self, peer: &C, pattern: &str, name: &str) -> Vec<Effect<C>> {
        let Some(candidate) = self.listener(peer, pattern, name) else {
            return Vec::new();
        };
        match self.names.get(name) {
            Some(Phase::Searching { .. }) => {
                self.names.insert(
                    name.to_owned(),
                    Phase::Provided {
                        provider: candidate,
                    },
                );
                vec![
                    Effect::Unlock {
                        name: name.to_owned(),
                    },
                    Effect::Publish {
                        name: name.to_owned(),
                    },
                ]
            }
            Some(Phase::Provided { provider }) if provider.is(peer, pattern) => Vec::new(),
            _ => vec![Effect::Stop {
                to: candidate,
                name: name.to_owned(),
            }],
        }
    }

    /// LISTEN_REJECT: the asked listener declining moves on to the next; a queued one
    /// declining in advance is dropped from the queue.
    pub fn reject(&mut self, peer: &C, pattern: &str, name: &str) -> Vec<Effect<C>> {
        let mut effects = Vec::new();
        if let Some(Phase::Searching {
            asked, remaining, ..
        }) = self.names.get_mut(name)
        {
            if asked.is(peer, pattern) {
                let remaining = std::mem::take(remaining);
                self.ask_next(name, remaining, &mut effects);
            } else {
                remaining.retain(|c| !c.is(peer, pattern));
            }
        }
        effects
    }

    /// The response timeout of the offer tagged `generation` expired.
    pub fn timeout(&mut self, name: &str, generation: u64) -> Vec<Effect<C>> {
        let mut effects = Vec::new();
        if let Some(Phase::Searching {
            asked,
            remaining,
            generation: current,
        }) = self.names.get_mut(name)
            && *current == generation
        {
            effects.push(Effect::TimedOut {
                to: asked.peer.clone(),
                name: name.to_owned(),
            });
            let remaining = std::mem::take(remaining);
            self.ask_next(name, remaining, &mut effects);
        }
        effects
    }

    /// Periodic rematch: search again for every subscribed name without a provider.
    pub fn rematch(&mut self, world: &dyn World) -> Vec<Effect<C>> {
        let mut effects = Vec::new();
        for name in world.subscribed_names() {
            if !self.names.contains_key(&name) {
                self.start(&name, world, &mut effects);
            }
        }
        effects
    }

    /// The active provider of `name` on this server.
    pub fn provider(&self, name: &str) -> Option<&Candidate<C>> {
        match self.names.get(name) {
            Some(Phase::Provided { provider }) => Some(provider),
            _ => None,
        }
    }

    /// The listener currently asked about `name` and the offer's generation.
    pub fn asked(&self, name: &str) -> Option<(&Candidate<C>, u64)> {
        match self.names.get(name) {
            Some(Phase::Searching {
                asked, generation, ..
            }) => Some((asked, *generation)),
            _ => None,
        }
    }

    /// Whether the connection listens on `pattern` and the pattern matches `name`.
    pub fn is_listener(&self, peer: &C, pattern: &str, name: &str) -> bool {
        self.listener(peer, pattern, name).is_some()
    }

    /// Names with a search or a provider.
    pub fn active_names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// Nothing registered, nothing searched, nothing provided.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty() && self.names.is_empty()
    }

    fn listener(&self, peer: &C, source: &str, name: &str) -> Option<Candidate<C>> {
        let pattern = self.patterns.iter().find(|p| &*p.source == source)?;
        let listening = pattern.peers.iter().any(|p| p.id() == peer.id());
        (listening && pattern.regex.find(name).is_some()).then(|| Candidate {
            pattern: pattern.source.clone(),
            peer: peer.clone(),
        })
    }

    /// Every (pattern, connection) whose pattern matches `name`, in the configured order.
    fn candidates(&self, name: &str) -> VecDeque<Candidate<C>> {
        let mut candidates: Vec<Candidate<C>> = self
            .patterns
            .iter()
            .filter(|p| p.regex.find(name).is_some())
            .flat_map(|p| {
                p.peers.iter().map(|peer| Candidate {
                    pattern: p.source.clone(),
                    peer: peer.clone(),
                })
            })
            .collect();
        if self.shuffle {
            candidates.shuffle(&mut rand::rng());
        }
        candidates.into()
    }

    /// Starts a search for a subscribed name this server has local listeners for.
    fn start(&mut self, name: &str, world: &dyn World, effects: &mut Vec<Effect<C>>) {
        let has_listener = self.patterns.iter().any(|p| p.regex.find(name).is_some());
        if has_listener && world.has_subscribers(name) {
            self.names.insert(name.to_owned(), Phase::Locking);
            effects.push(Effect::Lock {
                name: name.to_owned(),
            });
        }
    }

    /// Offers the name to the next candidate; none left → the search failed.
    fn ask_next(
        &mut self,
        name: &str,
        mut remaining: VecDeque<Candidate<C>>,
        effects: &mut Vec<Effect<C>>,
    ) {
        match remaining.pop_front() {
            Some(asked) => {
                self.next_generation += 1;
                let generation = self.next_generation;
                effects.push(Effect::Offer {
                    to: asked.clone(),
                    name: name.to_owned(),
                    generation,
                });
                self.names.insert(
                    name.to_owned(),
                    Phase::Searching {
                        asked,
                        remaining,
                        generation,
                    },
                );
            }
            None => {
                self.names.remove(name);
                effects.push(Effect::Unlock {
                    name: name.to_owned(),
                });
                effects.push(Effect::Unsuccessful {
                    name: name.to_owned(),
                });
            }
        }
    }

    /// Forgets the candidates `gone` selects: their provisions end silently and are searched
    /// for again while subscribed; searches asking them move on.
    fn drop_candidates(
        &mut self,
        gone: impl Fn(&Candidate<C>) -> bool,
        world: &dyn World,
    ) -> Vec<Effect<C>> {
        let mut effects = Vec::new();
        let mut affected: Vec<String> = Vec::new();
        for (name, phase) in &mut self.names {
            match phase {
                Phase::Provided { provider } if gone(provider) => affected.push(name.clone()),
                Phase::Searching {
                    asked, remaining, ..
                } => {
                    remaining.retain(|c| !gone(c));
                    if gone(asked) {
                        affected.push(name.clone());
                    }
                }
                _ => {}
            }
        }
        for name in affected {
            match self.names.remove(&name) {
                Some(Phase::Provided { .. }) => {
                    effects.push(Effect::Unpublish { name: name.clone() });
                    self.start(&name, world, &mut effects);
                }
                Some(Phase::Searching { remaining, .. }) => {
                    self.ask_next(&name, remaining, &mut effects)
                }
                _ => {}
            }
        }
        effects
    }
}
