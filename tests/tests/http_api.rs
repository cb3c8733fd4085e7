//! The HTTP side of the shared port: health check, CORS, body handling and the JIF API, with a
//! real HTTP client; mixed cases use WebSocket clients on the other side.

use deepstream::protocol::{EventAction, Message, Topic};
use deepstream_tests::{RawClient, ServerProcess, free_port, library};
use serde_json::{Value, json};

/// A server with the ws-binary and http endpoints; `extra` is appended to the config
/// (permissions are open unless `extra` sets them).
fn server(extra: &str) -> ServerProcess {
    let port = free_port();
    let permission = if extra.contains("permission:") {
        ""
    } else {
        "permission:\n  type: none\n"
    };
    let yaml = format!(
        "httpServer:\n  options:\n    host: 127.0.0.1\n    port: {port}\n    maxMessageSize: 4096\n\
         connectionEndpoints:\n  - type: ws-binary\n  - type: http\n    options:\n      requestTimeout: 2000\n\
         logLevel: WARN\n{permission}{extra}"
    );
    ServerProcess::start(&yaml, port)
}

fn url(server: &ServerProcess, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", server.port)
}

async fn post(server: &ServerProcess, path: &str, body: &Value) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url(server, path))
        .json(body)
        .send()
        .await
        .expect("POST");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

async fn api(server: &ServerProcess, body: &Value) -> Value {
    let (status, text) = post(server, "/api", body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("a JSON answer")
}

#[tokio::test]
async fn health_check_and_unknown_paths() {
    let server = server("");
    let client = reqwest::Client::new();
    let health = client
        .get(url(&server, "/health-check"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "");
    let missing = client.get(url(&server, "/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), "Endpoint not found.\r\n\r\n");
    let get_api = client.get(url(&server, "/api")).send().await.unwrap();
    assert_eq!(get_api.status(), 400);
    let put = client.put(url(&server, "/api")).send().await.unwrap();
    assert_eq!(put.status(), 405);
}

#[tokio::test]
async fn malformed_bodies_get_a_4xx_with_the_reason_and_the_server_keeps_serving() {
    let server = server("");
    let client = reqwest::Client::new();
    let not_json = client
        .post(url(&server, "/api"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert!(
        not_json
            .text()
            .await
            .unwrap()
            .starts_with("Failed to parse body of request: ")
    );

    let wrong_type = client
        .post(url(&server, "/api"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);

    let huge = client
        .post(url(&server, "/api"))
        .header("content-type", "application/json")
        .body(format!("{{\"body\": \"{}\"}}", "x".repeat(10_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 400);
    assert_eq!(
        huge.text().await.unwrap(),
        "Failed to parse body of request: request entity too large\r\n\r\n"
    );

    let nested = client
        .post(url(&server, "/api"))
        .header("content-type", "application/json")
        .body(format!("{}{}", "[".repeat(1000), "]".repeat(1000)))
        .send()
        .await
        .unwrap();
    assert_eq!(nested.status(), 400);

    for (body, reason) in [
        (
            json!({}),
            "Invalid message: the \"body\" parameter must exist.",
        ),
        (
            json!({"body": []}),
            "Invalid message: the \"body\" parameter must be a non-empty array of Objects.",
        ),
        (
            json!({"body": [{}], "token": ""}),
            "Invalid message: the \"token\" parameter must be a non-empty string",
        ),
        (
            json!({"body": [{}], "authData": 3}),
            "Invalid message: the \"authData\" parameter must be an object",
        ),
        (
            json!({"body": [{"topic": "event", "action": "emit", "eventName": "e"}, {"topic": "rpc", "action": "make"}]}),
            "Failed to parse JIF object at index 1. Reason: property 'rpcName' is required for topic 'rpc'",
        ),
    ] {
        let (status, text) = post(&server, "/api", &body).await;
        assert_eq!(
            (status, text.as_str()),
            (400, format!("{reason}\r\n\r\n").as_str()),
            "{body}"
        );
    }
    assert_eq!(
        client
            .get(url(&server, "/health-check"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    use std::io::Write;
    let server = server("");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(
            json!({"body": [{"topic": "event", "action": "emit", "eventName": "e"}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    let response = reqwest::Client::new()
        .post(url(&server, "/api"))
        .header("content-type", "application/json; charset=utf-8")
        .header("content-encoding", "gzip")
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"], "SUCCESS");
}

#[tokio::test]
async fn an_event_emitted_over_http_reaches_websocket_subscribers() {
    let server = server("");
    let mut subscriber = RawClient::logged_in(server.port, &json!({})).await;
    subscriber
        .send(
            &Message::new(Topic::Event, EventAction::Subscribe)
                .with_names(["news"])
                .with_correlation_id("1"),
        )
        .await;
    assert!(subscriber.recv().await.unwrap().is_ack);

    let answer = api(
        &server,
        &json!({"body": [{"topic": "event", "action": "emit", "eventName": "news", "data": {"headline": "hi"}}]}),
    )
    .await;
    assert_eq!(
        answer,
        json!({"result": "SUCCESS", "body": [{"success": true}]})
    );
    let event = subscriber.recv().await.unwrap();
    assert_eq!(event.name.as_deref(), Some("news"));
    assert_eq!(event.parse_data().unwrap(), Some(json!({"headline": "hi"})));
}

fn misbehaving_auth() -> String {
    format!(
        "auth:\n  - path: {}\n    options:\n      accepted: fixture\n",
        library("misbehaving").display()
    )
}

#[tokio::test]
async fn auth_endpoint_and_authentication_of_batches() {
    let server = server(&misbehaving_auth());
    let (status, text) = post(&server, "/api/auth", &json!({"username": "fixture"})).await;
    assert_eq!((status, text.as_str()), (200, "{}\r\n\r\n"));
    let (status, text) = post(&server, "/api/auth", &json!({"username": "stranger"})).await;
    assert_eq!(
        (status, text.as_str()),
        (401, "Invalid authentication data.\r\n\r\n")
    );

    let emit = json!([{"topic": "event", "action": "emit", "eventName": "e"}]);
    let (status, text) = post(
        &server,
        "/api",
        &json!({"body": emit, "authData": {"username": "stranger"}}),
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (401, "Unsuccessful authentication attempt.\r\n\r\n")
    );
    let answer = api(
        &server,
        &json!({"body": emit, "authData": {"username": "fixture"}}),
    )
    .await;
    assert_eq!(answer["result"], "SUCCESS");
}

#[tokio::test]
async fn cors_with_listed_origins() {
    let port = free_port();
    let yaml = format!(
        "httpServer:\n  options:\n    host: 127.0.0.1\n    port: {port}\n    allowAllOrigins: false\n    origins: ['https://good.example']\n\
         connectionEndpoints:\n  - type: ws-binary\n  - type: http\nlogLevel: WARN\npermission:\n  type: none\n"
    );
    let server = ServerProcess::start(&yaml, port);
    let client = reqwest::Client::new();
    let health = |origin: Option<&'static str>| {
        let mut request = client.get(url(&server, "/health-check"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let none = health(None).await.unwrap();
    assert_eq!(none.status(), 403);
    let bad = health(Some("https://evil.example")).await.unwrap();
    assert_eq!(bad.status(), 403);
    assert_eq!(
        bad.text().await.unwrap(),
        "Origin \"https://evil.example\" is forbidden.\r\n\r\n"
    );
    let good = health(Some("https://good.example")).await.unwrap();
    assert_eq!(good.status(), 200);
    assert_eq!(
        good.headers()["access-control-allow-origin"],
        "https://good.example"
    );
    assert_eq!(good.headers()["vary"], "Origin");

    let preflight = client
        .request(reqwest::Method::OPTIONS, url(&server, "/api"))
        .header("origin", "https://good.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, x-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    assert!(
        preflight
            .text()
            .await
            .unwrap()
            .starts_with("Header x-secret is forbidden.")
    );
}

/// A raw WebSocket RPC provider of `name`; answers each request through `answer`.
async fn provider(port: u16, name: &str) -> RawClient {
    use deepstream::protocol::RpcAction;
    let mut client = RawClient::logged_in(port, &json!({"username": "provider"})).await;
    client
        .send(
            &Message::new(Topic::Rpc, RpcAction::Provide)
                .with_names([name])
                .with_correlation_id("p"),
        )
        .await;
    assert!(client.recv().await.unwrap().is_ack);
    client
}

#[tokio::test]
async fn rpc_made_over_http_is_served_by_a_websocket_provider() {
    use deepstream::protocol::RpcAction;
    let server = server("");
    let mut provider = provider(server.port, "add").await;
    let serve = tokio::spawn(async move {
        let request = provider.recv().await.unwrap();
        assert_eq!(request.action, RpcAction::Request as i32);
        let data: Value = request.parse_data().unwrap().unwrap();
        let sum = data["a"].as_i64().unwrap() + data["b"].as_i64().unwrap();
        let reply = |action: RpcAction| {
            Message::new(Topic::Rpc, action)
                .with_name("add")
                .with_correlation_id(request.correlation_id.clone().unwrap())
        };
        provider.send(&reply(RpcAction::Accept)).await;
        provider
            .send(&reply(RpcAction::Response).with_json(&json!(sum)))
            .await;
        provider
    });
    let answer = api(&server, &json!({"body": [{"topic": "rpc", "action": "make", "rpcName": "add", "data": {"a": 2, "b": 3}}]})).await;
    assert_eq!(
        answer,
        json!({"result": "SUCCESS", "body": [{"success": true, "data": 5}]})
    );
    serve.await.unwrap();
}

#[tokio::test]
async fn rpc_without_provider_and_provider_error_and_partial_success() {
    use deepstream::protocol::RpcAction;
    let server = server("");
    let mut provider = provider(server.port, "fails").await;
    let serve = tokio::spawn(async move {
        let request = provider.recv().await.unwrap();
        let reply = |action: RpcAction| {
            Message::new(Topic::Rpc, action)
                .with_name("fails")
                .with_correlation_id(request.correlation_id.clone().unwrap())
        };
        provider.send(&reply(RpcAction::Accept)).await;
        provider
            .send(&reply(RpcAction::RequestError).with_json(&json!("it broke")))
            .await;
        provider
    });
    let answer = api(
        &server,
        &json!({"body": [
            {"topic": "rpc", "action": "make", "rpcName": "nobody"},
            {"topic": "rpc", "action": "make", "rpcName": "fails"},
            {"topic": "event", "action": "emit", "eventName": "e"},
        ]}),
    )
    .await;
    assert_eq!(answer["result"], "PARTIAL_SUCCESS");
    assert_eq!(
        answer["body"][0],
        json!({"success": false, "errorTopic": "rpc", "errorEvent": 100, "error": "No provider was available to handle the RPC \"nobody\"."})
    );
    assert_eq!(
        answer["body"][1],
        json!({"success": false, "errorTopic": "rpc", "error": "it broke"})
    );
    assert_eq!(answer["body"][2], json!({"success": true}));
    serve.await.unwrap();
}

#[tokio::test]
async fn a_request_nobody_answers_times_out_with_the_spec_result() {
    let server = server("");
    let _silent = provider(server.port, "silent").await;
    let answer = api(
        &server,
        &json!({"body": [{"topic": "rpc", "action": "make", "rpcName": "silent"}]}),
    )
    .await;
    assert_eq!(answer["result"], "FAILURE");
    let result = &answer["body"][0];
    assert_eq!(result["success"], false);
    // The provider never accepts: the RPC's own ack timeout or the batch timeout ends it.
    assert!(
        result["errorTopic"] == "rpc" || result["errorEvent"] == "HTTP_REQUEST_TIMEOUT",
        "{result}"
    );
}

#[tokio::test]
async fn presence_queries_over_http_see_websocket_users() {
    let server = server("");
    let _alice = RawClient::logged_in(server.port, &json!({"username": "alice"})).await;
    let _bob = RawClient::logged_in(server.port, &json!({"username": "bob"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let answer = api(
        &server,
        &json!({"authData": {"username": "carol"}, "body": [
            {"topic": "presence", "action": "query"},
            {"topic": "presence", "action": "query", "names": ["alice", "zed"]},
        ]}),
    )
    .await;
    let mut users: Vec<String> =
        serde_json::from_value(answer["body"][0]["users"].clone()).unwrap();
    users.sort();
    assert_eq!(users, ["alice", "bob"]);
    assert_eq!(
        answer["body"][1],
        json!({"success": true, "users": {"alice": true, "zed": false}})
    );
}

#[tokio::test]
async fn record_requests_over_http() {
    let server = server("");
    let body = |requests: Value| json!({ "body": requests });

    let written = api(&server, &body(json!([
        {"topic": "record", "action": "write", "recordName": "car/1", "data": {"brand": "vw", "seats": 4}},
        {"topic": "record", "action": "write", "recordName": "car/1", "path": "seats", "data": 5},
        {"topic": "record", "action": "read", "recordName": "car/1"},
        {"topic": "record", "action": "head", "recordName": "car/1"},
        {"topic": "record", "action": "head", "recordName": "car/none"},
        {"topic": "record", "action": "read", "recordName": "car/none"},
    ])))
    .await;
    assert_eq!(written["result"], "PARTIAL_SUCCESS", "{written}");
    assert_eq!(written["body"][0], json!({"success": true}));
    assert_eq!(written["body"][1], json!({"success": true}));
    assert_eq!(
        written["body"][2],
        json!({"success": true, "version": 2, "data": {"brand": "vw", "seats": 5}})
    );
    assert_eq!(written["body"][3], json!({"success": true, "version": 2}));
    assert_eq!(written["body"][4], json!({"success": true, "version": -1}));
    assert_eq!(
        written["body"][5],
        json!({"success": false, "errorTopic": "record", "errorEvent": 107, "error": "Record read failed. Record \"car/none\" could not be found."})
    );

    let conflict = api(&server, &body(json!([
        {"topic": "record", "action": "write", "recordName": "car/1", "data": {"brand": "bmw"}, "version": 2},
    ])))
    .await;
    assert_eq!(
        conflict["body"][0],
        json!({
            "success": false, "errorTopic": "record", "errorEvent": 102,
            "error": "Record update failed. Version 2 exists for record \"car/1\".",
            "currentVersion": 2, "currentData": {"brand": "vw", "seats": 5},
        })
    );

    let lists = api(
        &server,
        &body(json!([
            {"topic": "list", "action": "write", "listName": "cars", "data": ["car/1", "car/2"]},
            {"topic": "list", "action": "read", "listName": "cars"},
            {"topic": "record", "action": "notify", "recordNames": ["car/1"]},
            {"topic": "record", "action": "delete", "recordName": "car/1"},
            {"topic": "record", "action": "head", "recordName": "car/1"},
            {"topic": "list", "action": "delete", "listName": "cars"},
        ])),
    )
    .await;
    assert_eq!(lists["result"], "SUCCESS", "{lists}");
    assert_eq!(
        lists["body"][1],
        json!({"success": true, "version": 1, "data": ["car/1", "car/2"]})
    );
    assert_eq!(lists["body"][4], json!({"success": true, "version": -1}));
}

#[tokio::test]
async fn a_record_written_over_http_reaches_websocket_subscribers() {
    use deepstream::protocol::RecordAction;
    let server = server("");
    let mut subscriber = RawClient::logged_in(server.port, &json!({})).await;
    subscriber
        .send(
            &Message::new(Topic::Record, RecordAction::SubscribeCreateAndRead)
                .with_names(["shared/doc"])
                .with_correlation_id("1"),
        )
        .await;
    // The ack, then the record as it is (created empty).
    let mut seen = Vec::new();
    while seen
        .iter()
        .all(|m: &Message| m.action != RecordAction::ReadResponse as i32)
    {
        seen.push(subscriber.recv().await.unwrap());
    }
    let answer = api(
        &server,
        &json!({"body": [{"topic": "record", "action": "write", "recordName": "shared/doc", "data": {"title": "hi"}}]}),
    )
    .await;
    assert_eq!(answer["result"], "SUCCESS", "{answer}");
    let update = subscriber.recv().await.unwrap();
    assert_eq!(update.action, RecordAction::Update as i32, "{update:?}");
    assert_eq!(update.version, Some(1));
    assert_eq!(update.parse_data().unwrap(), Some(json!({"title": "hi"})));
}

/// Record rules allowing everything.
fn allow_records() -> Value {
    json!({"create": true, "write": true, "read": true, "delete": true, "listen": true, "notify": true})
}

/// A server with Valve permissions: these record and event rules, everything else allowed.
fn valve_server(record: Value, event: Value) -> ServerProcess {
    let permissions = json!({
        "record": record,
        "event": event,
        "rpc": {"*": {"provide": true, "request": true}},
        "presence": {"*": {"allow": true}},
    });
    server(&format!(
        "permission:\n  type: config\n  options:\n    permissions: {permissions}\n"
    ))
}

#[tokio::test]
async fn permission_denials_over_http_use_the_spec_results() {
    let server = valve_server(
        json!({"*": allow_records(), "secret/*": {"read": false}}),
        json!({"*": {"publish": true, "subscribe": true, "listen": true}, "private/*": {"publish": false}}),
    );
    let answer = api(
        &server,
        &json!({"body": [
            {"topic": "event", "action": "emit", "eventName": "private/x"},
            {"topic": "record", "action": "read", "recordName": "secret/x"},
            {"topic": "event", "action": "emit", "eventName": "public/x"},
        ]}),
    )
    .await;
    assert_eq!(answer["result"], "PARTIAL_SUCCESS");
    assert_eq!(
        answer["body"][0],
        json!({"success": false, "error": "Message denied. Action 'emit' is not permitted.", "errorEvent": "MESSAGE_DENIED", "errorAction": "emit", "errorTopic": "event"})
    );
    assert_eq!(
        answer["body"][1],
        json!({"success": false, "errorTopic": "record", "errorEvent": 115, "action": 3, "error": "Message denied. Action \"READ\" is not permitted."})
    );
    assert_eq!(answer["body"][2], json!({"success": true}));
}

/// The reference answers a batch whose event emit is permission-checked asynchronously (a
/// Valve cross-reference) only at the request timeout (server.md §5.4 quirk); here it completes
/// when its last result arrives, so the emit reports its own result, not a timeout.
#[tokio::test]
async fn an_emit_checked_against_a_cross_referenced_record_completes_without_the_timeout_quirk() {
    let server = valve_server(
        json!({"*": allow_records()}),
        json!({"*": {"publish": "_('flags/open').value === true", "subscribe": true, "listen": true}}),
    );
    let closed = api(
        &server,
        &json!({"body": [{"topic": "event", "action": "emit", "eventName": "e"}]}),
    )
    .await;
    assert_eq!(
        closed["body"][0]["errorEvent"], "MESSAGE_DENIED",
        "{closed}"
    );
    let opened = api(
        &server,
        &json!({"body": [
            {"topic": "record", "action": "write", "recordName": "flags/open", "data": {"value": true}},
        ]}),
    )
    .await;
    assert_eq!(opened["result"], "SUCCESS");
    let allowed = api(
        &server,
        &json!({"body": [{"topic": "event", "action": "emit", "eventName": "e"}]}),
    )
    .await;
    assert_eq!(
        allowed,
        json!({"result": "SUCCESS", "body": [{"success": true}]})
    );
}
