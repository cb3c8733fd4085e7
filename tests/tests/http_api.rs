//! The HTTP side of the shared port: health check, CORS, body handling and the JIF API, with a
//! real HTTP client; mixed cases use WebSocket clients on the other side.

use deepstream::protocol::{EventAction, Message, Topic};
use deepstream_tests::{RawClient, ServerProcess, free_port, library};
use serde_json::{Value, json};

/// A server with the ws-binary and http endpoints; `extra` is appended to the config.
fn server(extra: &str) -> ServerProcess {
    let port = free_port();
    let yaml = format!(
        "httpServer:\n  options:\n    host: 127.0.0.1\n    port: {port}\n    maxMessageSize: 4096\n\
         connectionEndpoints:\n  - type: ws-binary\n  - type: http\n    options:\n      requestTimeout: 2000\n\
         logLevel: WARN\npermission:\n  type: none\n{extra}"
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
