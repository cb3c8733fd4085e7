//! `auth: [{type: file}]` through the real binary: logins, the attempt limit, reloading the
//! users file on SIGHUP and `deepstream hash`.

use std::{path::Path, time::Duration};

use deepstream::protocol::{AuthAction, Message};
use deepstream_tests::{
    RawClient, ServerProcess, base_config, free_port, run, start_expecting_failure, write_config,
};
use serde_json::{Value, json};

/// userA of conf/users.yml: the spec's test vector (password "password", md5/100/32).
const USER_A: &str = "userA:\n  password: \"rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg==\"\n  clientData: {favouriteColor: red}\n  serverData: {role: admin}\n";

/// How long a test waits for the server to act on a signal.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// A config with one file-auth entry reading `users`, plus `hash_settings` (YAML lines of the
/// entry's options, indented by six spaces).
fn file_auth_config(port: u16, users: &Path, hash_settings: &str) -> String {
    format!(
        "{}auth:\n  - type: file\n    options:\n      users: fileLoad({})\n{hash_settings}",
        base_config(port),
        users.display()
    )
}

const MD5_100_32: &str = "      hash: md5\n      iterations: 100\n      keyLength: 32\n";

fn data(reply: &Message) -> Option<Value> {
    reply.parse_data().expect("JSON data")
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
async fn good_password_logs_in_with_client_data_and_bad_ones_run_out_of_attempts() {
    let users = tempfile::tempdir().unwrap();
    let users_file = users.path().join("users.yml");
    std::fs::write(&users_file, USER_A).unwrap();
    let port = free_port();
    let _server = ServerProcess::start(&file_auth_config(port, &users_file, MD5_100_32), port);

    let reply = attempt(port, login("userA", "password")).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
    assert_eq!(data(&reply), Some(json!({"favouriteColor": "red"})));

    let mut client = RawClient::connect(port).await;
    client.challenge().await;
    let reply = client.login(&json!({"username": "userA"})).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );
    assert_eq!(
        data(&reply),
        Some(json!({"error": "missing authentication parameter: username or/and password"}))
    );
    let reply = client.login(&login("userA", "wrong")).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );
    assert_eq!(data(&reply), None);
    // The third failure (default maxAuthAttempts 3) ends the connection.
    let reply = client.login(&login("nobody", "password")).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );
    let last = client.recv().await.expect("TOO_MANY_AUTH_ATTEMPTS");
    assert_eq!(
        last.action,
        AuthAction::TooManyAuthAttempts as i32,
        "{last:?}"
    );
    client.expect_closed().await;
}

/// Logs in until it works (the server reloads asynchronously after the signal).
async fn eventually_logs_in(port: u16, auth: Value) {
    let deadline = tokio::time::Instant::now() + SIGNAL_TIMEOUT;
    loop {
        let reply = attempt(port, auth.clone()).await;
        if reply.action == AuthAction::AuthSuccessful as i32 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{auth} could not log in after the reload: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assert_logs_in(port: u16, auth: Value) {
    let reply = attempt(port, auth.clone()).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthSuccessful as i32,
        "{auth}: {reply:?}"
    );
}

#[tokio::test]
async fn sighup_reloads_the_users_file_and_a_broken_file_keeps_the_old_users() {
    let users = tempfile::tempdir().unwrap();
    let users_file = users.path().join("users.yml");
    std::fs::write(&users_file, "ann: {password: a1}\n").unwrap();
    let port = free_port();
    let server = ServerProcess::start(&file_auth_config(port, &users_file, ""), port);

    assert_logs_in(port, login("ann", "a1")).await;
    let reply = attempt(port, login("ben", "b2")).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );

    std::fs::write(&users_file, "ann: {password: a1}\nben: {password: b2}\n").unwrap();
    server.signal("HUP");
    eventually_logs_in(port, login("ben", "b2")).await;

    // Not YAML: the config does not load.
    std::fs::write(&users_file, "ann: {password: [a1\n").unwrap();
    server.signal("HUP");
    assert!(server.wait_for_output("reload refused", SIGNAL_TIMEOUT));
    // YAML, but no users: the handler refuses it.
    std::fs::write(&users_file, "{}\n").unwrap();
    server.signal("HUP");
    assert!(server.wait_for_output("no users present in user file", SIGNAL_TIMEOUT));

    assert_logs_in(port, login("ann", "a1")).await;
    assert_logs_in(port, login("ben", "b2")).await;
    let (status, output) = server.stop();
    assert!(status.success(), "{output}");
}

#[tokio::test]
async fn hash_command_output_is_accepted_by_file_auth() {
    let users = tempfile::tempdir().unwrap();
    let users_file = users.path().join("users.yml");
    std::fs::write(&users_file, USER_A).unwrap();
    let settings = "      hash: sha256\n      iterations: 1000\n      keyLength: 24\n";
    let (_dir, config) = write_config(&file_auth_config(free_port(), &users_file, settings));

    let (status, stdout, stderr) = run(&["hash", "s3cret", "-c", config.to_str().unwrap()]);
    assert!(status.success(), "{stdout}{stderr}");
    let hash = stdout
        .trim()
        .strip_prefix("Password hash: ")
        .unwrap_or_else(|| panic!("unexpected output: {stdout}"));
    assert_eq!(hash.len(), 32 + 24, "hash of 24 bytes + salt: {hash}");

    std::fs::write(&users_file, format!("carl:\n  password: \"{hash}\"\n")).unwrap();
    let port = free_port();
    let _server = ServerProcess::start(&file_auth_config(port, &users_file, settings), port);
    assert_logs_in(port, login("carl", "s3cret")).await;
    let reply = attempt(port, login("carl", "s3cret ")).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );
}

#[test]
fn hash_command_needs_file_auth_with_a_hash() {
    let (_dir, open) = write_config(&base_config(free_port()));
    let (status, _, stderr) = run(&["hash", "pw", "-c", open.to_str().unwrap()]);
    assert!(!status.success());
    assert!(
        stderr.contains("Can only use hash with file authentication as auth type"),
        "{stderr}"
    );

    let users = tempfile::tempdir().unwrap();
    let users_file = users.path().join("users.yml");
    std::fs::write(&users_file, USER_A).unwrap();
    let (_dir, plain) = write_config(&file_auth_config(free_port(), &users_file, ""));
    let (status, _, stderr) = run(&["hash", "pw", "-c", plain.to_str().unwrap()]);
    assert!(!status.success());
    assert!(
        stderr.contains("Can only use hash with file authentication"),
        "{stderr}"
    );

    let (_dir, hashed) = write_config(&file_auth_config(free_port(), &users_file, MD5_100_32));
    let (status, _, stderr) = run(&["hash", "-c", hashed.to_str().unwrap()]);
    assert!(!status.success());
    assert!(stderr.contains("Must provide password to hash"), "{stderr}");
}

#[test]
fn unknown_digest_stops_the_start_naming_the_entry() {
    let users = tempfile::tempdir().unwrap();
    let users_file = users.path().join("users.yml");
    std::fs::write(&users_file, USER_A).unwrap();
    let settings = "      hash: rot13\n      iterations: 1\n      keyLength: 1\n";
    let (status, stderr) =
        start_expecting_failure(&file_auth_config(free_port(), &users_file, settings));
    assert!(!status.success());
    assert!(
        stderr
            .contains("auth[0]: Validating settings failed for file auth: unknown hash \"rot13\""),
        "{stderr}"
    );
}
