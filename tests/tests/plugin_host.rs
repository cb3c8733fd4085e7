//! The plugin host, tested through the real binary and real plugin libraries.

use std::{path::Path, process::Command, time::Duration};

use deepstream::protocol::AuthAction;
use deepstream_tests::{
    RawClient, ServerProcess, base_config, free_port, library, run, start_expecting_failure,
    target_dir, workspace_root,
};
use serde_json::json;

fn auth_config(port: u16, auth_entries: &str) -> String {
    format!("{}auth:\n{auth_entries}", base_config(port))
}

fn misbehaving_auth(accepted: &str) -> String {
    format!(
        "  - path: {}\n    options:\n      accepted: {accepted}\n",
        library("misbehaving").display()
    )
}

#[test]
fn plugins_command_lists_every_workspace_plugin() {
    let dir = target_dir();
    let (status, stdout, stderr) = run(&["plugins", dir.to_str().unwrap()]);
    assert!(status.success(), "plugins failed: {stdout}{stderr}");
    let plugins_dir = workspace_root().join("plugins");
    let mut expected: Vec<String> = std::fs::read_dir(plugins_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.push("misbehaving".into());
    for name in expected {
        let row = stdout
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(name.as_str()))
            .unwrap_or_else(|| panic!("no row for plugin {name} in:\n{stdout}"));
        assert!(
            row.split_whitespace().nth(3) == Some("1"),
            "api version column: {row}"
        );
    }
}

#[tokio::test]
async fn two_authentication_libraries_side_by_side() {
    let port = free_port();
    let token_auth = format!(
        "  - path: {}\n    options:\n      tokens:\n        tok-alice:\n          id: alice\n",
        library("auth_token").display()
    );
    let server = ServerProcess::start(
        &auth_config(port, &(misbehaving_auth("fixture") + &token_auth)),
        port,
    );

    let mut via_first = RawClient::connect(server.port).await;
    via_first.challenge().await;
    let reply = via_first.login(&json!({"username": "fixture"})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");

    let mut via_second = RawClient::connect(server.port).await;
    via_second.challenge().await;
    let reply = via_second.login(&json!({"token": "tok-alice"})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
}

async fn assert_panic_is_contained(kind: &str) {
    let port = free_port();
    let mut server = ServerProcess::start(&auth_config(port, &misbehaving_auth("fixture")), port);

    let mut victim = RawClient::connect(port).await;
    victim.challenge().await;
    let reply = victim.login(&json!({"panic": kind})).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );

    let mut bystander = RawClient::connect(port).await;
    bystander.challenge().await;
    let reply = bystander.login(&json!({"username": "fixture"})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
    assert!(server.is_running(), "the server died after a plugin panic");
    let (_, output) = server.stop();
    assert!(
        output.contains("plugin panicked"),
        "the panic was not reported:\n{output}"
    );
}

#[tokio::test]
async fn panic_in_a_sync_plugin_call_is_an_error_and_the_server_keeps_serving() {
    assert_panic_is_contained("sync").await;
}

#[tokio::test]
async fn panic_in_an_async_plugin_call_is_an_error_and_the_server_keeps_serving() {
    assert_panic_is_contained("async").await;
}

/// The single `deepstream:` line a failed start prints.
fn error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("deepstream:"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
    lines[0]
}

#[test]
fn missing_plugin_file_names_the_config_key() {
    let yaml = format!(
        "{}storage:\n  path: /nonexistent/libnothing.so\n",
        base_config(free_port())
    );
    let (status, stderr) = start_expecting_failure(&yaml);
    assert!(!status.success());
    let line = error_line(&stderr);
    assert!(line.starts_with("deepstream: storage:"), "{line}");
    assert!(line.contains("/nonexistent/libnothing.so"), "{line}");
}

#[test]
fn library_without_the_slot_names_key_and_what_it_provides() {
    let yaml = format!(
        "{}storage:\n  path: {}\n",
        base_config(free_port()),
        library("logger_buffered").display()
    );
    let (status, stderr) = start_expecting_failure(&yaml);
    assert!(!status.success());
    let line = error_line(&stderr);
    assert!(line.starts_with("deepstream: storage:"), "{line}");
    assert!(
        line.contains("provides no storage (it provides: logger)"),
        "{line}"
    );
}

#[test]
fn bad_plugin_options_name_the_key_and_the_field() {
    let yaml = format!(
        "{}logger:\n  path: {}\n  options:\n    bufferSize: 3\n    bogus: 1\n",
        base_config(free_port()),
        library("logger_buffered").display()
    );
    let (status, stderr) = start_expecting_failure(&yaml);
    assert!(!status.success());
    let line = error_line(&stderr);
    assert!(line.starts_with("deepstream: logger:"), "{line}");
    assert!(
        line.contains("bad options: unknown field `bogus`"),
        "{line}"
    );
}

#[test]
fn library_built_for_another_plugin_api_is_refused_with_one_line() {
    let other_target = workspace_root().join("target").join("api-mismatch");
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["build", "-p", "misbehaving", "--target-dir"])
        .arg(&other_target)
        .env("DEEPSTREAM_TEST_PLUGIN_API_VERSION", "999")
        .status()
        .expect("building the mismatched plugin");
    assert!(status.success());
    let file = other_target
        .join("debug")
        .join(Path::new(&library("misbehaving")).file_name().unwrap());

    let yaml = format!(
        "{}auth:\n  - path: {}\n    options:\n      accepted: x\n",
        base_config(free_port()),
        file.display()
    );
    let (status, stderr) = start_expecting_failure(&yaml);
    assert!(!status.success());
    let line = error_line(&stderr);
    assert!(line.starts_with("deepstream: auth[0]:"), "{line}");
    assert!(
        line.ends_with("built for plugin API 999, this server speaks 1 — rebuild the plugin"),
        "{line}"
    );

    let (status, stdout, _) = run(&["plugins", file.to_str().unwrap()]);
    assert!(!status.success());
    assert!(stdout.contains("built for plugin API 999"), "{stdout}");
}

#[tokio::test]
async fn logger_buffered_writes_nothing_until_an_error_then_the_buffer() {
    let port = free_port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let yaml = format!(
        "httpServer:\n  options:\n    host: 127.0.0.1\n    port: {port}\n\
         connectionEndpoints:\n  - type: ws-binary\n\
         logLevel: INFO\n\
         logger:\n  path: {}\n  options:\n    bufferSize: 3\n    file: {}\n\
         auth:\n{}",
        library("logger_buffered").display(),
        log.path().display(),
        misbehaving_auth("fixture")
    );
    let _server = ServerProcess::start(&yaml, port);
    let mut client = RawClient::logged_in(port, &json!({"username": "fixture"})).await;
    drop(client);
    assert_eq!(
        std::fs::read_to_string(log.path()).unwrap(),
        "",
        "lines were written before any error"
    );

    client = RawClient::connect(port).await;
    client.challenge().await;
    client.login(&json!({"panic": "sync"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = std::fs::read_to_string(log.path()).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert!(
        lines.len() >= 4,
        "expected 3 buffered lines and the error:\n{written}"
    );
    assert!(
        lines[..3].iter().all(|l| l.starts_with("INFO")),
        "{written}"
    );
    assert!(lines[3].starts_with("ERROR"), "{written}");
    let info_lines = lines.iter().filter(|l| l.starts_with("INFO")).count();
    assert_eq!(
        info_lines, 3,
        "only the last 3 buffered lines may be flushed:\n{written}"
    );
}

#[tokio::test]
async fn plugins_install_replaces_a_library_under_a_running_server() {
    let lib_dir = tempfile::tempdir().unwrap();
    let logger = library("logger_buffered");
    let (status, stdout, stderr) = run(&[
        "plugins",
        "install",
        logger.to_str().unwrap(),
        "--dir",
        lib_dir.path().to_str().unwrap(),
    ]);
    assert!(status.success(), "{stdout}{stderr}");
    let installed = lib_dir.path().join(logger.file_name().unwrap());

    let port = free_port();
    let yaml = format!(
        "{}logger:\n  path: {}\n",
        base_config(port),
        installed.display()
    );
    let mut server = ServerProcess::start(&yaml, port);
    RawClient::logged_in(port, &json!({})).await;

    // A different library under the same file name, placed while the server has it mapped
    // (overwriting the mapped file in place would crash the server).
    let replacement_dir = tempfile::tempdir().unwrap();
    let replacement = replacement_dir.path().join(logger.file_name().unwrap());
    std::fs::copy(library("misbehaving"), &replacement).unwrap();
    let (status, stdout, stderr) = run(&[
        "plugins",
        "install",
        replacement.to_str().unwrap(),
        "--dir",
        lib_dir.path().to_str().unwrap(),
    ]);
    assert!(status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("restart the server"), "{stdout}");

    for _ in 0..3 {
        RawClient::logged_in(port, &json!({})).await;
    }
    assert!(
        server.is_running(),
        "the server crashed after the library was replaced"
    );
}

/// Nothing configured is silently ignored: a slot this server cannot fill yet is refused,
/// naming the key.
#[test]
fn sections_this_server_cannot_serve_yet_are_refused_naming_the_key() {
    let yaml = format!(
        "{}subscriptions:\n  path: {}\n",
        base_config(free_port()),
        library("logger_buffered").display()
    );
    let (status, stderr) = start_expecting_failure(&yaml);
    assert!(!status.success());
    let line = error_line(&stderr);
    assert!(
        line.starts_with(
            "deepstream: subscriptions: subscription registry plugins are not supported"
        ),
        "{line}"
    );
}
