//! Remote procedure calls (protocol.md §6, server.md §7.2 "RPC routing").
//!
//! Providers are the subscribers of the RPC registry. A request goes to a random local
//! provider, else to a random other server that has one; each attempt ("leg") gets an id of
//! our own that the provider echoes, so concurrent calls with equal client correlation ids never
//! collide and a reply from anyone but the asked provider is refused (§11.6 allows this: the
//! provider only echoes the id). The requestor always sees its own correlation id.
//!
//! Accept and response timeouts are not tasks of their own: see [`Calls`].

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Weak},
};

use parking_lot::Mutex;
use rand::seq::IndexedRandom;
use tokio::time::Instant;

use crate::{
    config::RpcConfig,
    connection::ConnectionHandle,
    protocol::{self, Message, RpcAction, Topic},
    server::TopicHandler,
    services::ClusterNode,
    subscription_registry::{RegistryActions, SubscriptionRegistry},
    timer::Timers,
};

/// Reply actions of the provider registry.
pub const RPC_ACTIONS: RegistryActions = RegistryActions {
    multiple_subscriptions: RpcAction::MultipleProviders as i32,
};

/// One side of a call: a local connection, or another server acting for its client.
#[derive(Clone)]
enum Endpoint {
    Local(ConnectionHandle),
    /// The server's name; messages go there with `send_direct`.
    Remote(String),
}

impl Endpoint {
    fn is(&self, other: &Endpoint) -> bool {
        match (self, other) {
            (Endpoint::Local(a), other) => other.is_local(a),
            (Endpoint::Remote(a), Endpoint::Remote(b)) => a == b,
            _ => false,
        }
    }

    fn is_local(&self, connection: &ConnectionHandle) -> bool {
        matches!(self, Endpoint::Local(local) if local.id == connection.id)
    }
}

/// An RPC in flight, keyed by the id of its current leg.
struct Call {
    /// When the current leg was sent; its timeouts count from here (§6.2 step 4).
    started: Instant,
    /// The request as providers receive it (requestor name/data included); its
    /// `correlation_id` is the requestor's.
    request: Message,
    /// Who gets the replies.
    requestor: Endpoint,
    /// The provider asked on the current leg; only it may answer.
    provider: Endpoint,
    /// Providers asked so far, never asked again after a reject.
    tried: Vec<Endpoint>,
    /// Requests proxied for another server only try local providers (no second hop).
    may_forward: bool,
}

impl Call {
    fn name(&self) -> &str {
        self.request.name.as_deref().unwrap_or_default()
    }

    /// A message to the requestor about this call.
    fn reply(&self, action: RpcAction) -> Message {
        Message {
            name: self.request.name.clone(),
            correlation_id: self.request.correlation_id.clone(),
            ..Message::new(Topic::Rpc, action)
        }
    }
}

/// The calls in flight, which are also their own timeouts.
///
/// Both timeouts are the same for every call and leg ids are handed out in start order under
/// this table's lock, so ascending leg ids are ascending deadlines: the first call is the next
/// response timeout and the first unaccepted leg the next accept timeout. One sweeper task per
/// handler sleeps until the earlier of the two. That is the cheapest per call there is: no
/// task, timer entry or channel message per call (a task per timeout, even one aborted on
/// completion, costs two spawns and two timer-wheel entries per call; a `DelayQueue` still needs
/// a slab entry and a message to its task), and a finished call takes its timeouts with it
/// the moment it leaves the table.
#[derive(Default)]
struct Calls {
    /// Leg id → call in flight, oldest (next to time out) first. Boxed: a B-tree node shifts
    /// its entries on every removal, and a call (with its whole request) is large.
    by_leg: BTreeMap<u64, Box<Call>>,
    /// Legs whose provider has not sent ACCEPT, oldest first; ACCEPT stops the accept timeout.
    unaccepted: BTreeSet<u64>,
    /// The id of the next leg.
    next_leg: u64,
    /// Whether a sweeper task runs; it ends when no call is left, the next call starts another.
    sweeping: bool,
}

impl Calls {
    /// Registers a new leg; true when a sweeper must be started for it.
    fn start(&mut self, mut call: Box<Call>) -> (u64, bool) {
        let leg = self.next_leg;
        self.next_leg += 1;
        // Taken under the lock with the id, so deadlines ascend with leg ids.
        call.started = Instant::now();
        self.by_leg.insert(leg, call);
        self.unaccepted.insert(leg);
        let start_sweeper = !self.sweeping;
        self.sweeping = true;
        (leg, start_sweeper)
    }

    fn remove(&mut self, leg: u64) -> Option<Box<Call>> {
        self.unaccepted.remove(&leg);
        self.by_leg.remove(&leg)
    }
}

/// The RPC topic handler.
pub struct RpcHandler {
    /// Handed to the sweeper, which must not keep the handler alive.
    me: Weak<RpcHandler>,
    /// RPC name → providing connections; cluster-wide, which servers provide it.
    providers: Arc<SubscriptionRegistry>,
    /// Calls in flight and their timeouts.
    calls: Mutex<Calls>,
    /// Timeouts and what providers learn about the requestor.
    config: RpcConfig,
    /// Requests to and replies from providers on other servers.
    cluster: Arc<dyn ClusterNode>,
    /// This server, never chosen as a remote provider.
    server_name: String,
    /// Runs the sweeper that times calls out.
    timers: Timers,
}

impl RpcHandler {
    /// Builds the handler and subscribes it to RPC traffic from other servers.
    pub fn new(
        providers: Arc<SubscriptionRegistry>,
        config: RpcConfig,
        cluster: Arc<dyn ClusterNode>,
        server_name: String,
    ) -> Arc<RpcHandler> {
        let handler = Arc::new_cyclic(|me| RpcHandler {
            me: me.clone(),
            providers,
            calls: Mutex::default(),
            config,
            cluster: cluster.clone(),
            server_name,
            timers: Timers::on_current_runtime(),
        });
        let me = Arc::downgrade(&handler);
        cluster.subscribe(
            Topic::Rpc as i32,
            Arc::new(move |frame, origin: &str| {
                if let (Some(handler), Ok(message)) = (me.upgrade(), protocol::decode(frame)) {
                    handler.dispatch(Endpoint::Remote(origin.to_owned()), message);
                }
            }),
        );
        handler
    }

    fn send(&self, to: &Endpoint, message: &Message) {
        match to {
            Endpoint::Local(connection) => connection.send(message),
            Endpoint::Remote(server) => self.cluster.send_direct(server, protocol::encode(message)),
        }
    }

    /// Messages of requestors and providers, local or from other servers.
    fn dispatch(&self, sender: Endpoint, message: Message) {
        match message.action_as() {
            Some(RpcAction::Request) => self.request(sender, message),
            Some(
                action @ (RpcAction::Accept
                | RpcAction::Response
                | RpcAction::RequestError
                | RpcAction::Reject
                | RpcAction::NoRpcProvider),
            ) => self.provider_reply(sender, action, message),
            _ => tracing::warn!(event = "UNKNOWN_ACTION", "rpc action {}", message.action),
        }
    }

    /// REQUEST (§6.2): remember the call and route it to a first provider.
    fn request(&self, requestor: Endpoint, message: Message) {
        let (Some(name), Some(correlation_id)) = (message.name, message.correlation_id) else {
            return;
        };
        let mut request = Message::new(Topic::Rpc, RpcAction::Request)
            .with_name(name)
            .with_correlation_id(correlation_id);
        request.data = message.data;
        match &requestor {
            Endpoint::Local(connection) => {
                if self.config.provide_requestor_name {
                    request.requestor_name = Some(connection.user_id().to_owned());
                }
                if self.config.provide_requestor_data {
                    let client_data = connection.user().and_then(|user| user.client_data.as_ref());
                    // Encoded once: a rerouted request carries the same text (§6.3 quirk).
                    request.requestor_data = client_data.map(|data| data.to_string().into());
                }
            }
            // The requestor's server already added what its configuration asks for.
            Endpoint::Remote(_) => {
                request.requestor_name = message.requestor_name;
                request.requestor_data = message.requestor_data;
            }
        }
        let may_forward = matches!(requestor, Endpoint::Local(_));
        // `started` and `provider` are set by `route` before anyone can answer.
        let call = Box::new(Call {
            started: Instant::now(),
            request,
            provider: requestor.clone(),
            requestor,
            tried: Vec::new(),
            may_forward,
        });
        self.route(call);
    }

    /// Gives the call to a provider not tried yet, or answers NO_RPC_PROVIDER.
    fn route(&self, mut call: Box<Call>) {
        let Some(provider) = self.next_provider(&call) else {
            tracing::warn!(
                event = "NO_RPC_PROVIDER",
                "no provider for rpc {}",
                call.name()
            );
            self.send(&call.requestor, &call.reply(RpcAction::NoRpcProvider));
            return;
        };
        let mut request = call.request.clone();
        call.tried.push(provider.clone());
        call.provider = provider.clone();
        // Registered before it is sent: the provider may answer (on another thread) before
        // `send` returns, and an answer to an unknown leg is refused.
        let (leg, start_sweeper) = self.calls.lock().start(call);
        if start_sweeper {
            self.sweep();
        }
        request.correlation_id = Some(leg.to_string());
        self.send(&provider, &request);
    }

    /// A random local provider, else (for our own clients) a random other server with one.
    fn next_provider(&self, call: &Call) -> Option<Endpoint> {
        let untried = |endpoint: &Endpoint| !call.tried.iter().any(|tried| tried.is(endpoint));
        let local = self
            .providers
            .random_local_subscriber(call.name(), |provider| {
                !call.tried.iter().any(|tried| tried.is_local(provider))
            });
        if let Some(provider) = local {
            return Some(Endpoint::Local(provider));
        }
        if !call.may_forward {
            return None;
        }
        let remote: Vec<Endpoint> = self
            .providers
            .servers(call.name())
            .into_iter()
            .filter(|server| *server != self.server_name)
            .map(Endpoint::Remote)
            .filter(untried)
            .collect();
        remote.choose(&mut rand::rng()).cloned()
    }

    /// Starts the sweeper: it times calls out until none is left, and stops with the handler.
    fn sweep(&self) {
        let me = self.me.clone();
        self.timers.spawn(async move {
            loop {
                let Some(handler) = me.upgrade() else {
                    return;
                };
                let Some(next) = handler.expire(Instant::now()) else {
                    return;
                };
                drop(handler);
                tokio::time::sleep_until(next).await;
            }
        });
    }

    /// Ends the legs whose accept (no ACCEPT yet) or response timeout passed by `now`, earliest
    /// deadline first, and returns the next deadline; `None` ends the sweeper (no call left).
    /// Timeouts of proxied calls stay silent: the requestor's server runs its own.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut expired = Vec::new();
        let next = {
            let mut calls = self.calls.lock();
            loop {
                let accept = calls.unaccepted.first().map(|leg| {
                    let deadline = calls.by_leg[leg].started + self.config.ack_timeout;
                    (deadline, *leg, RpcAction::AcceptTimeout)
                });
                let response = calls.by_leg.first_key_value().map(|(leg, call)| {
                    let deadline = call.started + self.config.response_timeout;
                    (deadline, *leg, RpcAction::ResponseTimeout)
                });
                match accept.into_iter().chain(response).min_by_key(|due| due.0) {
                    Some((deadline, leg, action)) if deadline <= now => {
                        let call = calls.remove(leg).expect("queued legs are in flight");
                        expired.push((call, action));
                    }
                    Some((deadline, ..)) => break Some(deadline),
                    None => {
                        calls.sweeping = false;
                        break None;
                    }
                }
            }
        };
        for (call, action) in expired {
            if let Endpoint::Local(_) = call.requestor {
                self.send(&call.requestor, &call.reply(action));
            }
        }
        next
    }

    /// ACCEPT, RESPONSE, REQUEST_ERROR, REJECT, NO_RPC_PROVIDER from a provider (§6.3).
    fn provider_reply(&self, sender: Endpoint, action: RpcAction, message: Message) {
        let leg = message
            .correlation_id
            .as_deref()
            .and_then(|id| id.parse::<u64>().ok());
        let mut calls = self.calls.lock();
        let Some((leg, call)) = leg
            .and_then(|leg| Some((leg, calls.by_leg.get(&leg)?)))
            .filter(|(_, call)| call.provider.is(&sender))
        else {
            drop(calls);
            self.invalid_correlation_id(&sender, message);
            return;
        };
        match action {
            RpcAction::Accept if !calls.unaccepted.contains(&leg) => {
                let mut again = Message::new(Topic::Rpc, RpcAction::MultipleAccept);
                again.name = message.name;
                again.correlation_id = message.correlation_id;
                drop(calls);
                self.send(&sender, &again);
            }
            RpcAction::Accept => {
                let accepted = call.reply(RpcAction::Accept);
                let requestor = call.requestor.clone();
                calls.unaccepted.remove(&leg);
                drop(calls);
                self.send(&requestor, &accepted);
            }
            RpcAction::Response | RpcAction::RequestError => {
                let call = calls.remove(leg).expect("found above");
                drop(calls);
                let mut reply = call.reply(action);
                reply.data = message.data;
                self.send(&call.requestor, &reply);
            }
            _ => {
                let call = calls.remove(leg).expect("found above");
                drop(calls);
                self.route(call);
            }
        }
    }

    /// A reply for no call in flight (finished, timed out, or not this sender's).
    fn invalid_correlation_id(&self, sender: &Endpoint, message: Message) {
        tracing::warn!(
            event = "INVALID_RPC_CORRELATION_ID",
            "no rpc {:?} for this reply",
            message.correlation_id
        );
        if let Endpoint::Local(connection) = sender {
            let mut reply = Message::new(Topic::Rpc, RpcAction::InvalidRpcCorrelationId)
                .with_original_action(message.action)
                .with_error();
            reply.name = message.name;
            reply.correlation_id = message.correlation_id;
            connection.send(&reply);
        }
    }
}

impl TopicHandler for RpcHandler {
    fn handle(&self, connection: &ConnectionHandle, message: Message) {
        match message.action_as() {
            Some(RpcAction::Provide) => self.providers.subscribe_bulk(connection, &message),
            Some(RpcAction::Unprovide) => self.providers.unsubscribe_bulk(connection, &message),
            _ => self.dispatch(Endpoint::Local(connection.clone()), message),
        }
    }

    /// Calls in flight are left to their timeouts (§6.3): a provider leaving does not reroute
    /// and a requestor leaving cancels nothing.
    fn client_disconnected(&self, connection: &ConnectionHandle) {
        self.providers.remove_connection(connection);
    }
}

#[cfg(test)]
mod tests;
