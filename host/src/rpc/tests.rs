//! RPC routing on one server: reroute after reject, per-leg ids, refused replies, timeouts,
//! a provider leaving mid-call, and what providers learn about the requestor.

use std::{sync::Arc, time::Duration};

use super::{RPC_ACTIONS, RpcHandler};
use crate::{
    config::RpcConfig,
    protocol::{Message, RpcAction, StateRegistryTopic, Topic},
    server::TopicHandler,
    services::builtin::{SingleClusterNode, SingleStateRegistryFactory},
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
