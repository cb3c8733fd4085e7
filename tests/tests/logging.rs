//! The built-in loggers as an operator sees them: what `deepstream start` prints.

use deepstream_tests::{RawClient, ServerProcess, base_config, free_port};
use serde_json::{Value, json};

#[tokio::test]
async fn the_pino_logger_prints_one_json_object_per_line_with_pino_fields() {
    let port = free_port();
    let server = ServerProcess::start(
        &format!(
            "{}auth:\n  - type: none\nlogger:\n  name: pino\n  options:\n    logLevel: INFO\n",
            base_config(port)
        ),
        port,
    );
    let pid = server.pid();
    // An undecodable frame is logged as a warning.
    let mut client = RawClient::logged_in(port, &json!({})).await;
    client.send_bytes(vec![0xffu8, 0xff, 0xff]).await;
    let _ = client.recv().await;
    let (_, output) = server.stop();

    let lines: Vec<Value> = output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line:?}"))
        })
        .collect();
    for line in &lines {
        assert_eq!(line["pid"], pid, "{line}");
        assert!(line["time"].as_u64().is_some_and(|t| t > 0), "{line}");
        assert!(line["hostname"].is_string(), "{line}");
        assert!(line["event"].is_string(), "{line}");
        assert!(line["message"].is_string(), "{line}");
    }
    let started = lines
        .iter()
        .find(|line| line["message"] == "Deepstream started")
        .unwrap_or_else(|| panic!("no start line in {lines:?}"));
    assert_eq!(started["level"], 30, "INFO is pino's 30: {started}");
    let warning = lines
        .iter()
        .find(|line| line["event"] == "MESSAGE_PARSE_ERROR")
        .unwrap_or_else(|| panic!("no parse warning in {lines:?}"));
    assert_eq!(warning["level"], 40, "WARN is pino's 40: {warning}");
}
