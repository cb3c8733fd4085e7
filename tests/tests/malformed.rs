//! Every malformed-input path, as raw bytes on the wire: each gets the protocol's own error
//! reply or the close the spec describes, and the server keeps serving everyone else.
//! (The reference server crashes on some of these: protocol.md §1.6, §11, §14.)

use deepstream::protocol::{
    AuthAction, ConnectionAction, EventAction, Message, ParserAction, Topic,
};
use deepstream_tests::{RawClient, ServerProcess, base_config, free_port};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn server() -> ServerProcess {
    let port = free_port();
    ServerProcess::start(
        &format!("{}auth:\n  - type: none\n", base_config(port)),
        port,
    )
}

/// Frames that cannot be decoded: garbage, truncated, lying length prefixes, unknown topics.
fn undecodable_frames() -> Vec<Vec<u8>> {
    vec![
        vec![0xff, 0xff, 0xff],       // garbage (the spec's observed 3-byte case)
        vec![0x06, 0x10, 0x02, 0x1a], // truncated PING
        vec![0x7f, 0x10, 0x02],       // length prefix beyond the frame
        vec![0x02, 0x10, 0x00],       // topic 0
        vec![0x03, 0x10, 0x64, 0x00], // topic 100
        vec![0x04, 0x10, 0xe7, 0x07, 0x00], // topic 999
        vec![0x02, 0x10, 0x0b],       // STATE_REGISTRY from a client
        vec![],                       // empty frame
    ]
}

/// The server still answers PING with PONG on this connection.
async fn still_alive(client: &mut RawClient) {
    client
        .send(&Message::new(Topic::Connection, ConnectionAction::Ping))
        .await;
    let pong = client.recv().await.expect("connection closed");
    assert_eq!(
        (pong.topic, pong.action),
        (Topic::Connection, ConnectionAction::Pong as i32),
        "{pong:?}"
    );
}

#[tokio::test]
async fn undecodable_frames_before_the_challenge_get_connection_invalid_message() {
    let server = server();
    let mut client = RawClient::connect(server.port).await;
    for frame in undecodable_frames() {
        client.send_bytes(frame.clone()).await;
        let reply = client.recv().await.expect("connection closed");
        assert_eq!(
            (reply.topic, reply.action),
            (Topic::Connection, ConnectionAction::InvalidMessage as i32),
            "frame {frame:02x?}"
        );
    }
    client.challenge().await;
}

#[tokio::test]
async fn undecodable_frames_before_login_get_auth_invalid_message() {
    let server = server();
    let mut client = RawClient::connect(server.port).await;
    client.challenge().await;
    for frame in undecodable_frames() {
        client.send_bytes(frame.clone()).await;
        let reply = client.recv().await.expect("connection closed");
        assert_eq!(
            (reply.topic, reply.action),
            (Topic::Auth, AuthAction::InvalidMessage as i32),
            "frame {frame:02x?}"
        );
    }
    let reply = client.login(&json!({})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32);
}

#[tokio::test]
async fn undecodable_frames_after_login_get_unknown_topic_and_the_connection_stays() {
    let server = server();
    let mut client = RawClient::logged_in(server.port, &json!({})).await;
    for frame in undecodable_frames() {
        client.send_bytes(frame.clone()).await;
        let reply = client.recv().await.expect("connection closed");
        assert_eq!(
            (reply.topic, reply.action),
            (Topic::Parser, ParserAction::UnknownTopic as i32),
            "frame {frame:02x?}"
        );
    }
    still_alive(&mut client).await;
}

#[tokio::test]
async fn auth_data_that_is_not_json_is_refused_without_crashing() {
    let server = server();
    for data in [&b"{not json"[..], b"\"a string\"", b"42", b"null", b"true"] {
        let mut client = RawClient::connect(server.port).await;
        client.challenge().await;
        client
            .send(&Message::new(Topic::Auth, AuthAction::Request).with_data(data.to_vec()))
            .await;
        let reply = client.recv().await.expect("a reply before the close");
        assert_eq!(
            reply.action,
            AuthAction::InvalidMessageData as i32,
            "data {:?}",
            String::from_utf8_lossy(data)
        );
        client.expect_closed().await;
    }
    let mut bystander = RawClient::logged_in(server.port, &json!({})).await;
    still_alive(&mut bystander).await;
}

#[tokio::test]
async fn auth_without_data_or_with_another_action_is_refused() {
    let server = server();
    for message in [
        Message::new(Topic::Auth, AuthAction::Request),
        Message::new(Topic::Auth, AuthAction::AuthSuccessful).with_json(&json!({})),
    ] {
        let mut client = RawClient::connect(server.port).await;
        client.challenge().await;
        client.send(&message).await;
        let reply = client.recv().await.expect("a reply before the close");
        assert_eq!(
            reply.action,
            AuthAction::InvalidMessageData as i32,
            "{message:?}"
        );
        client.expect_closed().await;
    }
}

#[tokio::test]
async fn event_data_that_is_not_json_is_refused_and_never_forwarded() {
    let server = server();
    let mut subscriber = RawClient::logged_in(server.port, &json!({})).await;
    subscriber
        .send(
            &Message::new(Topic::Event, EventAction::Subscribe)
                .with_names(["e"])
                .with_correlation_id("1"),
        )
        .await;
    assert!(subscriber.recv().await.expect("ack").is_ack);

    let mut emitter = RawClient::logged_in(server.port, &json!({})).await;
    emitter
        .send(
            &Message::new(Topic::Event, EventAction::Emit)
                .with_name("e")
                .with_data(&b"{broken"[..]),
        )
        .await;
    let reply = emitter.recv().await.expect("a reply");
    assert_eq!(
        reply.action,
        EventAction::InvalidMessageData as i32,
        "{reply:?}"
    );
    assert_eq!(reply.original_action, Some(EventAction::Emit as i32));

    emitter
        .send(
            &Message::new(Topic::Event, EventAction::Emit)
                .with_name("e")
                .with_data(&b"{\"ok\":1}"[..]),
        )
        .await;
    let delivered = subscriber.recv().await.expect("the valid event");
    assert_eq!(
        delivered.data.as_deref(),
        Some(&b"{\"ok\":1}"[..]),
        "the broken event must not arrive first"
    );
}

#[tokio::test]
async fn unknown_actions_get_no_reply_and_break_nothing() {
    let server = server();
    let mut client = RawClient::logged_in(server.port, &json!({})).await;
    client.send(&Message::new(Topic::Event, 77)).await;
    client
        .send(&Message::new(
            Topic::Connection,
            ConnectionAction::Challenge,
        ))
        .await;
    let reply = client.recv().await.expect("reply to the second CHALLENGE");
    assert_eq!(
        (reply.topic, reply.action),
        (Topic::Parser, ParserAction::UnknownTopic as i32),
        "{reply:?}"
    );
    still_alive(&mut client).await;
}

#[tokio::test]
async fn a_second_login_after_authentication_is_an_unknown_topic() {
    let server = server();
    let mut client = RawClient::logged_in(server.port, &json!({})).await;
    let reply = client.login(&json!({"username": "other"})).await;
    assert_eq!(
        (reply.topic, reply.action),
        (Topic::Parser, ParserAction::UnknownTopic as i32)
    );
    still_alive(&mut client).await;
}

#[tokio::test]
async fn oversize_frames_close_the_connection_with_1009_and_others_are_served() {
    let port = free_port();
    let yaml = format!(
        "httpServer:\n  options:\n    host: 127.0.0.1\n    port: {port}\n\
         connectionEndpoints:\n  - type: ws-binary\n    options:\n      maxMessageSize: 1024\n\
         logLevel: WARN\npermission:\n  type: none\n"
    );
    let _server = ServerProcess::start(&yaml, port);
    let mut client = RawClient::logged_in(port, &json!({})).await;
    let mut bystander = RawClient::logged_in(port, &json!({})).await;
    let big = Message::new(Topic::Event, EventAction::Emit)
        .with_name("e")
        .with_json(&json!("x".repeat(4096)));
    client.send(&big).await;
    assert_eq!(client.close_code().await, Some(1009));
    still_alive(&mut bystander).await;
}

#[tokio::test]
async fn text_frames_on_the_binary_endpoint_close_the_connection() {
    let server = server();
    let mut client = RawClient::logged_in(server.port, &json!({})).await;
    let mut bystander = RawClient::logged_in(server.port, &json!({})).await;
    client.send_raw(WsMessage::Text("hello".into())).await;
    client.expect_closed().await;
    still_alive(&mut bystander).await;
}

#[tokio::test]
async fn thousands_of_random_frames_never_take_the_server_down() {
    let server = server();
    let mut client = RawClient::logged_in(server.port, &json!({})).await;
    // A fixed linear congruential generator: the same frames every run.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u8
    };
    for _ in 0..3000 {
        let length = next() as usize % 48;
        let mut frame: Vec<u8> = (0..length).map(|_| next()).collect();
        // Half of them inside a valid envelope, so the per-topic decoders are exercised too.
        if next() % 2 == 0 && !frame.is_empty() {
            let topic = 1 + next() % 11;
            let mut envelope = vec![0x10, topic, 0x1a, frame.len() as u8];
            envelope.append(&mut frame);
            frame = std::iter::once(envelope.len() as u8)
                .chain(envelope)
                .collect();
        }
        client.send_bytes(frame).await;
    }
    let mut fresh = RawClient::logged_in(server.port, &json!({})).await;
    still_alive(&mut fresh).await;
}
