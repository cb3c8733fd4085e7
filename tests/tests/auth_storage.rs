//! `auth: [{type: storage}]` through the real binary, with users persisted by the
//! `storage-file` plugin library: a user registered by one server logs in on the next.

use std::path::Path;

use deepstream::protocol::{AuthAction, Message};
use deepstream_tests::{RawClient, ServerProcess, base_config, free_port, library};
use serde_json::{Value, json};

/// A server storing records as files in `records`, with storage auth on table `users`.
fn storage_auth_config(port: u16, records: &Path, create_user: bool) -> String {
    format!(
        "{}storage:\n  path: {}\n  options:\n    directory: {}\n\
         auth:\n  - type: storage\n    options:\n      table: users\n      createUser: {create_user}\n      hash: sha256\n      iterations: 100\n      keyLength: 32\n",
        base_config(port),
        library("storage_file").display(),
        records.display()
    )
}

async fn attempt(port: u16, auth: Value) -> Message {
    let mut client = RawClient::connect(port).await;
    client.challenge().await;
    client.login(&auth).await
}

fn login(username: &str, password: &str) -> Value {
    json!({"username": username, "password": password})
}

#[tokio::test]
async fn registered_user_is_kept_in_storage_across_restarts() {
    let records = tempfile::tempdir().unwrap();

    let port = free_port();
    let server = ServerProcess::start(&storage_auth_config(port, records.path(), true), port);
    let reply = attempt(port, login("ann", "pw")).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
    let client_data = reply.parse_data().unwrap().expect("clientData");
    let id = client_data["id"].as_str().expect("a uuid").to_owned();
    let reply = attempt(port, login("ann", "wrong")).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );
    let (status, output) = server.stop();
    assert!(status.success(), "{output}");

    let port = free_port();
    let _server = ServerProcess::start(&storage_auth_config(port, records.path(), false), port);
    let reply = attempt(port, login("ann", "pw")).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
    assert_eq!(reply.parse_data().unwrap(), Some(json!({ "id": id })));
    // Without createUser an unknown user finds no handler to accept it.
    let reply = attempt(port, login("ben", "pw")).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );
    let reply = attempt(port, json!({"username": "ann"})).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );
    assert_eq!(
        reply.parse_data().unwrap(),
        Some(json!({"error": "missing authentication parameters: password"}))
    );
}
