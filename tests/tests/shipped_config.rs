//! The shipped `conf/config.yml` as a user runs it: it loads the SQLite storage plugin, and
//! records written with acknowledgement survive a restart.

use std::ffi::OsStr;

use deepstream::protocol::{Message, RecordAction, Topic};
use deepstream_tests::{RawClient, ServerProcess, free_port, target_dir, workspace_root};
use serde_json::json;

/// A copy of `conf/` in a fresh directory, so the records file lands there.
fn copy_of_conf() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    for entry in std::fs::read_dir(workspace_root().join("conf")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("conf").join(entry.file_name()),
        )
        .unwrap();
    }
    dir
}

fn start(dir: tempfile::TempDir, port: u16) -> ServerProcess {
    deepstream_tests::ensure_built();
    let config = dir.path().join("conf").join("config.yml");
    let lib_dir = target_dir();
    let port_text = port.to_string();
    let args: [&OsStr; 6] = [
        OsStr::new("-c"),
        config.as_os_str(),
        OsStr::new("--lib-dir"),
        lib_dir.as_os_str(),
        OsStr::new("--port"),
        OsStr::new(&port_text),
    ];
    ServerProcess::start_with(dir, &args, port)
}

async fn read(port: u16, name: &str) -> Message {
    let mut client = RawClient::logged_in(port, &json!({})).await;
    client
        .send(&Message::new(Topic::Record, RecordAction::Read).with_name(name))
        .await;
    client.recv().await.expect("a read reply")
}

#[tokio::test]
async fn acknowledged_writes_survive_a_restart_with_the_shipped_config() {
    let port = free_port();
    let server = start(copy_of_conf(), port);
    let mut writer = RawClient::logged_in(port, &json!({"username": "writer"})).await;
    for version in 1..=3 {
        writer
            .send(
                &Message::new(Topic::Record, RecordAction::CreateAndUpdate)
                    .with_name("persisted/doc")
                    .with_version(-1)
                    .with_json(&json!({"step": version}))
                    .with_write_ack(true)
                    .with_correlation_id(version.to_string()),
            )
            .await;
        let ack = writer.recv().await.expect("a write acknowledgement");
        assert_eq!(
            ack.action,
            RecordAction::WriteAcknowledgement as i32,
            "{ack:?}"
        );
    }
    let (status, output, dir) = server.stop_keeping_dir();
    assert!(status.success(), "{output}");
    assert!(
        output.contains("storage ready: sqlite storage"),
        "the shipped config uses SQLite:\n{output}"
    );
    assert!(
        dir.path().join("data").join("records.sqlite").is_file(),
        "records live beside conf/"
    );

    let port = free_port();
    let _restarted = start(dir, port);
    let reply = read(port, "persisted/doc").await;
    assert_eq!(reply.action, RecordAction::ReadResponse as i32, "{reply:?}");
    assert_eq!(reply.version, Some(3));
    assert_eq!(reply.parse_data().unwrap(), Some(json!({"step": 3})));
}
