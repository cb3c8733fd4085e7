//! RPC routing on one server: reroute after reject, per-leg ids, refused replies, timeouts,
//! a provider leaving mid-call, and what providers learn about the requestor; regressions of
//! the timeout bookkeeping (a task per timeout, a call registered after its request was sent).

use std::{sync::Arc, time::Duration};

use parking_lot::Mutex;

use super::{RPC_ACTIONS, RpcHandler};
use crate::{
    config::RpcConfig,
    protocol::{self, Message, RpcAction, StateRegistryTopic, Topic},
    server::TopicHandler,
    services::{
        ClusterHandler, ClusterNode, Lifecycle, StateHandler, StateRegistry,
        builtin::{NoMonitoring, SingleClusterNode, SingleStateRegistryFactory},
    },
    subscription_registry::SubscriptionRegistry,
    test_support::{Client, subscription_registry},
};

fn config(ack_ms: u64, response_ms: u64) -> RpcConfig {
    RpcConfig {
        ack_timeout: Duration::from_millis(ack_ms),
        response_timeout: Duration::from_millis(response_ms),
        provide_requestor_name: true,
        provide_requestor_data: true,
    }
}

fn handler(config: RpcConfig) -> Arc<RpcHandler> {
    let states = SingleStateRegistryFactory::new("here".into());
    let providers = subscription_registry(
        &states,
        Topic::Rpc,
        StateRegistryTopic::RpcSubscriptions as i32,
        RPC_ACTIONS,
    );
    RpcHandler::new(
        providers,
        config,
        Arc::new(SingleClusterNode),
        "here".into(),
    )
}

fn provide(handler: &RpcHandler, client: &mut Client, name: &str) {
    let message = Message::new(Topic::Rpc, RpcAction::Provide)
        .with_names([name])
        .with_correlation_id("0");
    handler.handle(&client.connection, message);
    assert!(
        client.messages().iter().all(|m| m.is_ack),
        "PROVIDE is only acked"
    );
}

fn request(handler: &RpcHandler, client: &Client, name: &str, correlation_id: &str) {
    let message = Message::new(Topic::Rpc, RpcAction::Request)
        .with_name(name)
        .with_correlation_id(correlation_id)
        .with_data("1");
    handler.handle(&client.connection, message);
}

/// Sends `action` for the request `provider` received last; returns that request.
fn answer(handler: &RpcHandler, provider: &mut Client, action: RpcAction) -> Message {
    let request = provider.messages().pop().expect("a forwarded request");
    assert_eq!(request.action_as(), Some(RpcAction::Request));
    reply(handler, provider, &request, action);
    request
}

fn reply(handler: &RpcHandler, from: &Client, request: &Message, action: RpcAction) {
    let mut message = Message::new(Topic::Rpc, action);
    message.name = request.name.clone();
    message.correlation_id = request.correlation_id.clone();
    if action == RpcAction::Response {
        message.data = Some("\"done\"".into());
    }
    handler.handle(&from.connection, message);
}

fn actions(messages: &[Message]) -> Vec<(Option<RpcAction>, Option<String>)> {
    messages
        .iter()
        .map(|m| (m.action_as(), m.correlation_id.clone()))
        .collect()
}

#[tokio::test]
async fn a_rejected_request_goes_to_the_other_provider_then_no_provider_is_left() {
    let handler = handler(config(1000, 1000));
    let mut requestor = Client::new(1, "alice", Some(serde_json::json!({"team": "red"})));
    let (mut p1, mut p2) = (Client::new(2, "p1", None), Client::new(3, "p2", None));
    provide(&handler, &mut p1, "job");
    provide(&handler, &mut p2, "job");

    request(&handler, &requestor, "job", "cid2");
    let (m1, m2) = (p1.messages(), p2.messages());
    let (first, mut first_inbox, mut second, second_inbox) = if m1.is_empty() {
        (p2, m2, p1, m1)
    } else {
        (p1, m1, p2, m2)
    };
    assert!(second_inbox.is_empty(), "one provider asked at a time");
    let leg1 = first_inbox.pop().unwrap();
    assert_eq!(leg1.requestor_name.as_deref(), Some("alice"));
    assert_eq!(
        leg1.requestor_data.as_deref(),
        Some(&b"{\"team\":\"red\"}"[..])
    );
    assert_ne!(
        leg1.correlation_id.as_deref(),
        Some("cid2"),
        "providers get an id of the server's own"
    );
    reply(&handler, &first, &leg1, RpcAction::Reject);

    let leg2 = answer(&handler, &mut second, RpcAction::Reject);
    assert_eq!(leg2.data, leg1.data);
    assert_eq!(
        leg2.requestor_data, leg1.requestor_data,
        "requestor data is encoded once (§6.3 quirk)"
    );
    assert_ne!(
        leg2.correlation_id, leg1.correlation_id,
        "every leg has its own id"
    );
    let replies = requestor.messages();
    assert_eq!(
        actions(&replies).last().cloned(),
        Some((Some(RpcAction::NoRpcProvider), Some("cid2".into())))
    );
    assert_eq!(replies.last().unwrap().name.as_deref(), Some("job"));
}

#[tokio::test]
async fn accept_and_response_reach_the_requestor_under_its_own_id() {
    let handler = handler(config(1000, 1000));
    let mut requestor = Client::new(1, "alice", None);
    let mut provider = Client::new(2, "bob", None);
    provide(&handler, &mut provider, "job");
    request(&handler, &requestor, "job", "cid");
    let leg = answer(&handler, &mut provider, RpcAction::Accept);
    assert_eq!(
        leg.requestor_data, None,
        "no client data, no requestor data"
    );
    reply(&handler, &provider, &leg, RpcAction::Accept);
    assert_eq!(
        actions(&provider.messages()),
        vec![(Some(RpcAction::MultipleAccept), leg.correlation_id.clone())]
    );

    // Only the asked provider may answer, and only while the call runs.
    let stranger = Client::new(3, "eve", None);
    reply(&handler, &stranger, &leg, RpcAction::Response);
    reply(&handler, &provider, &leg, RpcAction::Response);
    reply(&handler, &provider, &leg, RpcAction::Response);
    let refused = provider.messages();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0].action_as(),
        Some(RpcAction::InvalidRpcCorrelationId)
    );
    assert_eq!(refused[0].original_action, Some(RpcAction::Response as i32));
    assert!(refused[0].is_error);

    let replies = requestor.messages();
    assert_eq!(
        actions(&replies),
        vec![
            (Some(RpcAction::Accept), Some("cid".into())),
            (Some(RpcAction::Response), Some("cid".into()))
        ]
    );
    assert_eq!(replies[1].data.as_deref(), Some(&b"\"done\""[..]));
}

#[tokio::test]
async fn equal_correlation_ids_of_two_requestors_do_not_collide() {
    let handler = handler(config(1000, 1000));
    let (mut alice, mut bob) = (Client::new(1, "alice", None), Client::new(2, "bob", None));
    let mut provider = Client::new(3, "p", None);
    provide(&handler, &mut provider, "job");
    request(&handler, &alice, "job", "0");
    request(&handler, &bob, "job", "0");
    let legs = provider.messages();
    assert_eq!(legs.len(), 2);
    reply(&handler, &provider, &legs[1], RpcAction::Response);
    reply(&handler, &provider, &legs[0], RpcAction::RequestError);
    assert_eq!(
        actions(&bob.messages()),
        vec![(Some(RpcAction::Response), Some("0".into()))]
    );
    assert_eq!(
        actions(&alice.messages()),
        vec![(Some(RpcAction::RequestError), Some("0".into()))]
    );
}

#[tokio::test(start_paused = true)]
async fn timeouts_end_calls_and_a_provider_leaving_mid_call_ends_by_timeout() {
    let handler = handler(config(40, 120));
    let mut requestor = Client::new(1, "alice", None);
    let mut provider = Client::new(2, "bob", None);
    provide(&handler, &mut provider, "job");

    request(&handler, &requestor, "job", "silent");
    request(&handler, &requestor, "job", "slow");
    let legs = provider.messages();
    reply(&handler, &provider, &legs[1], RpcAction::Accept);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(
        actions(&requestor.messages()),
        vec![
            (Some(RpcAction::Accept), Some("slow".into())),
            (Some(RpcAction::AcceptTimeout), Some("silent".into()))
        ]
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(
        actions(&requestor.messages()),
        vec![(Some(RpcAction::ResponseTimeout), Some("slow".into()))]
    );

    // The provider accepts, then its connection closes: no reroute, the response timeout ends it.
    request(&handler, &requestor, "job", "orphan");
    answer(&handler, &mut provider, RpcAction::Accept);
    provider.close();
    handler.client_disconnected(&provider.connection);
    tokio::time::sleep(Duration::from_millis(160)).await;
    assert_eq!(
        actions(&requestor.messages()),
        vec![
            (Some(RpcAction::Accept), Some("orphan".into())),
            (Some(RpcAction::ResponseTimeout), Some("orphan".into()))
        ]
    );
    request(&handler, &requestor, "job", "gone");
    assert_eq!(
        actions(&requestor.messages()),
        vec![(Some(RpcAction::NoRpcProvider), Some("gone".into()))]
    );
}

/// Frees the handler's timeouts: 1000 answered calls leave no task behind, and the sweeper
/// ends once no call is left (it was two tasks per call, alive for the whole timeouts).
#[tokio::test(start_paused = true)]
async fn answered_calls_leave_no_timeout_task_behind() {
    let handler = handler(config(1000, 10_000));
    let mut requestor = Client::new(1, "alice", None);
    let mut provider = Client::new(2, "bob", None);
    provide(&handler, &mut provider, "job");
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    for n in 0..1000 {
        request(&handler, &requestor, "job", &n.to_string());
        let leg = answer(&handler, &mut provider, RpcAction::Accept);
        reply(&handler, &provider, &leg, RpcAction::Response);
    }
    assert_eq!(requestor.messages().len(), 2000, "ACCEPT and RESPONSE each");
    assert!(tasks() <= 1, "one sweeper at most, not {}", tasks());
    tokio::time::sleep(Duration::from_millis(1001)).await;
    assert_eq!(tasks(), 0, "the sweeper ends with the last call");
    assert!(
        requestor.messages().is_empty(),
        "no timeout for answered calls"
    );

    // The next call starts a sweeper again, and its timeouts still fire.
    request(&handler, &requestor, "job", "late");
    tokio::time::sleep(Duration::from_millis(1001)).await;
    assert_eq!(
        actions(&requestor.messages()),
        vec![(Some(RpcAction::AcceptTimeout), Some("late".into()))]
    );
}

/// Server "there" provides every RPC and answers a request with ACCEPT and RESPONSE before
/// `send_direct` returns, as a provider on another thread may before `route` returns.
#[derive(Default)]
struct EagerRemoteProvider {
    /// The RPC handler's cluster subscription.
    handler: Mutex<Option<ClusterHandler>>,
}

impl Lifecycle for EagerRemoteProvider {
    fn description(&self) -> String {
        "a remote provider that answers at once".into()
    }
}

impl ClusterNode for EagerRemoteProvider {
    fn send(&self, _frame: bytes::Bytes) {}

    fn send_direct(&self, server_name: &str, frame: bytes::Bytes) {
        assert_eq!(server_name, "there");
        let request = protocol::decode(frame).unwrap();
        let handler = self.handler.lock().clone().unwrap();
        for action in [RpcAction::Accept, RpcAction::Response] {
            let mut answer = Message::new(Topic::Rpc, action);
            answer.name = request.name.clone();
            answer.correlation_id = request.correlation_id.clone();
            handler(protocol::encode(&answer), "there");
        }
    }

    fn subscribe(&self, _topic: i32, handler: ClusterHandler) {
        *self.handler.lock() = Some(handler);
    }
}

impl StateRegistry for EagerRemoteProvider {
    fn add(&self, _name: &str) {}
    fn remove(&self, _name: &str) {}
    fn has(&self, _name: &str) -> bool {
        true
    }
    fn all(&self) -> Vec<String> {
        Vec::new()
    }
    fn all_servers(&self, _name: &str) -> Vec<String> {
        vec!["there".into()]
    }
    fn set_listener(&self, _handler: StateHandler) {}
}

/// The late-accept bug: the request went out before its call was registered, so a provider
/// answering at once got INVALID_RPC_CORRELATION_ID for both ACCEPT and RESPONSE and the
/// requestor ACCEPT_TIMEOUT (0.01–0.02 % of calls under load).
#[tokio::test(start_paused = true)]
async fn late_accept_provider_answering_before_the_call_is_registered_is_not_refused() {
    let remote = Arc::new(EagerRemoteProvider::default());
    let providers = SubscriptionRegistry::new(
        Topic::Rpc,
        RPC_ACTIONS,
        remote.clone(),
        remote.clone(),
        Arc::new(NoMonitoring),
    );
    let handler = RpcHandler::new(providers, config(40, 120), remote, "here".into());
    let mut requestor = Client::new(1, "alice", None);
    request(&handler, &requestor, "job", "cid");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        actions(&requestor.messages()),
        vec![
            (Some(RpcAction::Accept), Some("cid".into())),
            (Some(RpcAction::Response), Some("cid".into()))
        ]
    );
}
