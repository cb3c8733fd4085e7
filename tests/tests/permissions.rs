//! Valve permissions through the real server: denials reach the client in the protocol's own
//! form, and a reload takes effect for connections that are already open.

use std::time::Duration;

use deepstream::protocol::{EventAction, Message, Topic};
use deepstream_tests::{RawClient, ServerProcess, free_port};
use serde_json::json;

/// Every section Valve requires, allowing everything; the event section is the tests' own.
const OTHER_SECTIONS: &str = "record:\n  \"*\":\n    create: true\n    write: true\n    read: true\n    delete: true\n    listen: true\n    notify: true\n\
rpc:\n  \"*\":\n    provide: true\n    request: true\npresence:\n  \"*\":\n    allow: true\n";
const DENY_PRIVATE: &str = "event:\n  \"*\":\n    publish: true\n    subscribe: true\n    listen: true\n  \"private/*\":\n    subscribe: false\n";
const ALLOW_ALL: &str =
    "event:\n  \"*\":\n    publish: true\n    subscribe: true\n    listen: true\n";

fn server_with_rules(rules: &str) -> ServerProcess {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("permissions.yml"),
        format!("{rules}{OTHER_SECTIONS}"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.yml"),
        format!(
            "httpServer:\n  options:\n    host: 127.0.0.1\n    port: {port}\n\
             connectionEndpoints:\n  - type: ws-binary\nlogLevel: WARN\n\
             permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n"
        ),
    )
    .unwrap();
    ServerProcess::start_in(dir, port)
}

async fn subscribe(client: &mut RawClient, name: &str, id: &str) -> Message {
    client
        .send(
            &Message::new(Topic::Event, EventAction::Subscribe)
                .with_names([name])
                .with_correlation_id(id),
        )
        .await;
    client.recv().await.expect("a reply")
}

fn is_denial_of(reply: &Message, name: &str) -> bool {
    reply.action == EventAction::MessageDenied as i32
        && reply.name.as_deref() == Some(name)
        && reply.original_action == Some(EventAction::Subscribe as i32)
        && reply.is_error
}

/// The reference drops the *last* name of a partly denied bulk subscribe (protocol.md §3.2
/// quirk); here the denied name itself is dropped and the allowed one works.
#[tokio::test]
async fn bulk_subscribe_drops_the_denied_name_not_the_last_one_quirk() {
    let server = server_with_rules(DENY_PRIVATE);
    let mut client = RawClient::logged_in(server.port, &json!({})).await;
    client
        .send(
            &Message::new(Topic::Event, EventAction::Subscribe)
                .with_names(["private/a", "ok"])
                .with_correlation_id("7"),
        )
        .await;
    let denial = client.recv().await.unwrap();
    assert!(is_denial_of(&denial, "private/a"), "{denial:?}");
    assert_eq!(denial.correlation_id.as_deref(), Some("7"));
    assert!(client.recv().await.unwrap().is_ack);

    let mut emitter = RawClient::logged_in(server.port, &json!({})).await;
    emitter
        .send(
            &Message::new(Topic::Event, EventAction::Emit)
                .with_name("ok")
                .with_data(&b"1"[..]),
        )
        .await;
    let event = client.recv().await.unwrap();
    assert_eq!(event.name.as_deref(), Some("ok"));
}

#[tokio::test]
async fn a_reload_applies_to_open_connections_and_a_bad_file_keeps_the_old_rules() {
    let server = server_with_rules(DENY_PRIVATE);
    let mut client = RawClient::logged_in(server.port, &json!({})).await;
    assert!(is_denial_of(
        &subscribe(&mut client, "private/a", "1").await,
        "private/a"
    ));

    std::fs::write(
        server.dir.path().join("permissions.yml"),
        "event:\n  \"*\":\n    subscribe: nonsense(\n",
    )
    .unwrap();
    server.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        is_denial_of(&subscribe(&mut client, "private/b", "2").await, "private/b"),
        "a broken file must not change the rules"
    );

    std::fs::write(
        server.dir.path().join("permissions.yml"),
        format!("{ALLOW_ALL}{OTHER_SECTIONS}"),
    )
    .unwrap();
    server.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reply = subscribe(&mut client, "private/c", "3").await;
    assert!(
        reply.is_ack,
        "after the reload the subscription is allowed: {reply:?}"
    );
}
