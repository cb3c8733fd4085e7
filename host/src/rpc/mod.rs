//! Remote procedure calls (protocol.md §6, server.md §7.2 "RPC routing").
//!
//! Providers are the subscribers of the RPC registry. A request goes to a random local
//! provider, else to a random other server that has one; each attempt ("leg") gets an id of
//! our own that the provider echoes, so concurrent calls with equal client correlation ids never
//! collide and a reply from anyone but the asked provider is refused (§11.6 allows this: the
//! provider only echoes the id). The requestor always sees its own correlation id.

use std::{
    collections::HashMap,
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use rand::seq::IndexedRandom;

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
            (Endpoint::Local(a), Endpoint::Local(b)) => a.id == b.id,
            (Endpoint::Remote(a), Endpoint::Remote(b)) => a == b,
            _ => false,
        }
    }
}

/// An RPC in flight, keyed by the id of its current leg.
struct Call {
    /// The request as providers receive it (requestor name/data included); its
    /// `correlation_id` is the requestor's.
    request: Message,
    /// Who gets the replies.
    requestor: Endpoint,
    /// The provider asked on the current leg; only it may answer.
    provider: Endpoint,
    /// Providers asked so far, never asked again after a reject.
    tried: Vec<Endpoint>,
    /// Whether the current provider sent ACCEPT (stops the accept timeout).
    accepted: bool,
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

/// The RPC topic handler.
pub struct RpcHandler {
    /// Handed to timers, which must not keep the handler alive.
    me: Weak<RpcHandler>,
    /// RPC name → providing connections; cluster-wide, which servers provide it.
    providers: Arc<SubscriptionRegistry>,
    /// Leg id → call in flight.
    calls: Mutex<HashMap<String, Call>>,
    /// Source of leg ids.
    next_leg: AtomicU64,
    /// Timeouts and what providers learn about the requestor.
    config: RpcConfig,
    /// Requests to and replies from providers on other servers.
    cluster: Arc<dyn ClusterNode>,
    /// This server, never chosen as a remote provider.
    server_name: String,
    /// Accept and response timeouts.
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
            next_leg: AtomicU64::new(1),
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
        // `provider` is set by `route` before anyone can answer.
        let call = Call {
            request,
            provider: requestor.clone(),
            requestor,
            tried: Vec::new(),
            accepted: false,
            may_forward,
        };
        self.route(call);
    }

    /// Gives the call to a provider not tried yet, or answers NO_RPC_PROVIDER.
    fn route(&self, mut call: Call) {
        let Some(provider) = self.next_provider(&call) else {
            tracing::warn!(
                event = "NO_RPC_PROVIDER",
                "no provider for rpc {}",
                call.name()
            );
            self.send(&call.requestor, &call.reply(RpcAction::NoRpcProvider));
            return;
        };
        let leg = self.next_leg.fetch_add(1, Ordering::Relaxed).to_string();
        let mut request = call.request.clone();
        request.correlation_id = Some(leg.clone());
        call.tried.push(provider.clone());
        call.provider = provider.clone();
        call.accepted = false;
        // Remembered before it is sent: the provider's ACCEPT can arrive before `send` returns.
        self.calls.lock().insert(leg.clone(), call);
        self.send(&provider, &request);
        self.expire(
            leg.clone(),
            self.config.ack_timeout,
            RpcAction::AcceptTimeout,
        );
        self.expire(
            leg,
            self.config.response_timeout,
            RpcAction::ResponseTimeout,
        );
    }

    /// A random local provider, else (for our own clients) a random other server with one.
    fn next_provider(&self, call: &Call) -> Option<Endpoint> {
        let untried = |endpoint: &Endpoint| !call.tried.iter().any(|tried| tried.is(endpoint));
        let local: Vec<Endpoint> = self
            .providers
            .local_subscribers(call.name())
            .into_iter()
            .map(Endpoint::Local)
            .filter(untried)
            .collect();
        if let Some(provider) = local.choose(&mut rand::rng()) {
            return Some(provider.clone());
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

    /// Ends the leg with `action` after `delay` unless it finished (or, for the accept
    /// timeout, was accepted). Timeouts of proxied calls stay silent: the requestor's server
    /// runs its own.
    fn expire(&self, leg: String, delay: Duration, action: RpcAction) {
        let me = self.me.clone();
        self.timers.after(delay, move || {
            let Some(handler) = me.upgrade() else {
                return;
            };
            let call = {
                let mut calls = handler.calls.lock();
                let pending = calls
                    .get(&leg)
                    .is_some_and(|call| action == RpcAction::ResponseTimeout || !call.accepted);
                if pending { calls.remove(&leg) } else { None }
            };
            if let Some(call) = call
                && let Endpoint::Local(_) = call.requestor
            {
                handler.send(&call.requestor, &call.reply(action));
            }
        });
    }

    /// ACCEPT, RESPONSE, REQUEST_ERROR, REJECT, NO_RPC_PROVIDER from a provider (§6.3).
    fn provider_reply(&self, sender: Endpoint, action: RpcAction, message: Message) {
        let leg = message.correlation_id.clone().unwrap_or_default();
        let mut calls = self.calls.lock();
        let Some(call) = calls.get_mut(&leg).filter(|call| call.provider.is(&sender)) else {
            drop(calls);
            self.invalid_correlation_id(&sender, message);
            return;
        };
        match action {
            RpcAction::Accept if call.accepted => {
                let mut again =
                    Message::new(Topic::Rpc, RpcAction::MultipleAccept).with_correlation_id(leg);
                again.name = message.name;
                drop(calls);
                self.send(&sender, &again);
            }
            RpcAction::Accept => {
                call.accepted = true;
                let accepted = call.reply(RpcAction::Accept);
                let requestor = call.requestor.clone();
                drop(calls);
                self.send(&requestor, &accepted);
            }
            RpcAction::Response | RpcAction::RequestError => {
                let call = calls.remove(&leg).expect("found above");
                drop(calls);
                let mut reply = call.reply(action);
                reply.data = message.data;
                self.send(&call.requestor, &reply);
            }
            _ => {
                let call = calls.remove(&leg).expect("found above");
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
