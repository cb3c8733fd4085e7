//! `auth: [{type: http}]` through the real binary against a real webhook started by the test.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use deepstream::protocol::{AuthAction, Message};
use deepstream_tests::{RawClient, ServerProcess, base_config, free_port};
use http_body_util::{BodyExt, Full};
use hyper::{
    Request, Response, StatusCode, body::Incoming, header::HeaderMap, server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The webhook's request timeout in the server config.
const REQUEST_TIMEOUT_MS: u64 = 400;

/// A request the webhook received.
#[derive(Clone)]
struct Seen {
    /// Its headers.
    headers: HeaderMap,
    /// Its JSON body.
    body: Value,
}

/// A webhook on 127.0.0.1 whose answer depends on `authData.username`.
struct Webhook {
    /// Where it listens.
    port: u16,
    /// Requests so far, per username.
    seen: Arc<Mutex<HashMap<String, Vec<Seen>>>>,
}

impl Webhook {
    async fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<HashMap<String, Vec<Seen>>>> = Arc::default();
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(record.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Webhook { port, seen }
    }

    fn requests(&self, username: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .get(username)
            .cloned()
            .unwrap_or_default()
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn json_reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    reply(status, "application/json", body.to_string())
}

/// The webhook contract of server.md §4.3, one username per case.
async fn answer(
    seen: Arc<Mutex<HashMap<String, Vec<Seen>>>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let headers = request.headers().clone();
    let bytes = request.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let username = body["authData"]["username"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let count = {
        let mut seen = seen.lock().unwrap();
        let requests = seen.entry(username.clone()).or_default();
        requests.push(Seen { headers, body });
        requests.len()
    };
    Ok(match username.as_str() {
        "alice" => json_reply(
            StatusCode::OK,
            json!({"id": "alice-id", "clientData": {"colour": "red"}, "serverData": {"role": "admin"}}),
        ),
        "bob" => json_reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "wrong password for bob"}),
        ),
        "carol" => reply(StatusCode::FORBIDDEN, "text/plain", "go away".into()),
        "flaky" if count == 1 => json_reply(StatusCode::GATEWAY_TIMEOUT, json!({})),
        "flaky" => reply(StatusCode::OK, "text/plain", "flaky-id".into()),
        "slow" => std::future::pending().await,
        _ => json_reply(StatusCode::NOT_FOUND, json!({})),
    })
}

/// A server whose only auth entry is the webhook at `url`.
fn http_auth_config(port: u16, url: &str) -> String {
    format!(
        "{}auth:\n  - type: http\n    options:\n      endpointUrl: {url}\n      permittedStatusCodes: [200]\n      requestTimeout: {REQUEST_TIMEOUT_MS}\n      retryStatusCodes: [504]\n      retryAttempts: 1\n      retryInterval: 50\n      promoteToHeader: [token]\n",
        base_config(port)
    )
}

/// A webhook and a server that authenticates against it.
async fn with_webhook() -> (Webhook, ServerProcess) {
    let webhook = Webhook::start().await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{}/auth", webhook.port);
    let server = ServerProcess::start(&http_auth_config(port, &url), port);
    (webhook, server)
}

async fn attempt(port: u16, auth: Value) -> Message {
    let mut client = RawClient::connect(port).await;
    client.challenge().await;
    client.login(&auth).await
}

fn data(reply: &Message) -> Option<Value> {
    reply.parse_data().expect("JSON data")
}

#[tokio::test]
async fn accepted_login_gets_the_webhooks_client_data() {
    let (webhook, server) = with_webhook().await;
    let port = server.port;

    let reply = attempt(
        port,
        json!({"username": "alice", "password": "pw", "token": "tok-1"}),
    )
    .await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
    assert_eq!(data(&reply), Some(json!({"colour": "red"})));

    let requests = webhook.requests("alice");
    assert_eq!(requests.len(), 1);
    let Seen { headers, body } = &requests[0];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["token"], "tok-1");
    assert_eq!(
        body["authData"],
        json!({"username": "alice", "password": "pw", "token": "tok-1"})
    );
    assert!(
        body["connectionData"]["remoteAddress"].is_string(),
        "{body}"
    );
    assert!(body["connectionData"]["headers"].is_object(), "{body}");
}

#[tokio::test]
async fn rejection_passes_the_webhooks_reason_to_the_client() {
    let (webhook, server) = with_webhook().await;
    let port = server.port;

    let reply = attempt(port, json!({"username": "bob"})).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );
    assert_eq!(
        data(&reply),
        Some(json!({"error": "wrong password for bob"}))
    );

    let reply = attempt(port, json!({"username": "carol"})).await;
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );
    assert_eq!(data(&reply), Some(json!({"error": "go away"})));
    assert_eq!(
        webhook.requests("carol").len(),
        1,
        "a rejection is not retried"
    );
}

#[tokio::test]
async fn retry_status_is_asked_again() {
    let (webhook, server) = with_webhook().await;
    let port = server.port;

    let reply = attempt(port, json!({"username": "flaky"})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
    assert_eq!(webhook.requests("flaky").len(), 2);
}

#[tokio::test]
async fn webhook_that_never_answers_times_out_without_holding_up_other_logins() {
    let (webhook, server) = with_webhook().await;
    let port = server.port;

    let slow = tokio::spawn(attempt(port, json!({"username": "slow"})));
    // While the slow login waits on the webhook, another one goes through.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reply = attempt(port, json!({"username": "alice"})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
    assert!(!slow.is_finished(), "the slow login was answered too early");

    let reply = slow.await.unwrap();
    assert_eq!(
        reply.action,
        AuthAction::AuthUnsuccessful as i32,
        "{reply:?}"
    );
    assert_eq!(
        data(&reply),
        Some(json!({"error": "AUTH_RETRY_ATTEMPTS_EXCEEDED"}))
    );
    // Both requests timed out (the webhook never answers), so two were made.
    assert_eq!(
        webhook.requests("slow").len(),
        2,
        "1 + retryAttempts requests"
    );
}

#[tokio::test]
async fn webhook_down_fails_logins_with_one_warning_each_and_the_server_keeps_running() {
    let closed = free_port();
    let port = free_port();
    let url = format!("http://127.0.0.1:{closed}/auth");
    let mut server = ServerProcess::start(&http_auth_config(port, &url), port);

    for _ in 0..2 {
        let reply = attempt(port, json!({"username": "alice"})).await;
        assert_eq!(
            reply.action,
            AuthAction::AuthUnsuccessful as i32,
            "{reply:?}"
        );
        assert_eq!(
            data(&reply),
            Some(json!({"error": "AUTH_RETRY_ATTEMPTS_EXCEEDED"}))
        );
    }
    assert!(server.is_running());
    let (_, output) = server.stop();
    let warnings: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("http auth error"))
        .collect();
    assert_eq!(warnings.len(), 2, "one warning per failed login:\n{output}");
    assert!(
        warnings[0].contains("AUTH_RETRY_ATTEMPTS_EXCEEDED") && warnings[0].contains("2 attempts"),
        "{}",
        warnings[0]
    );
}
