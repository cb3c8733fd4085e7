//! The `http` connection endpoint (server.md §5.2–§5.3): `POST /api/auth` and `POST /api`.
//!
//! Every JIF element runs as if a client had sent it, on a virtual connection of type `http`
//! logged in as the request's user: the same permission checks and handlers as WebSocket
//! clients, so records, RPCs and events reached over HTTP are the ones WebSocket clients see.
//! The element's result is the first final reply that connection receives.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::jif::{self, Request};
use crate::{
    config::HttpEndpointOptions,
    connection::{Connection, ConnectionHandle, Outbound, User},
    protocol,
    server::Server,
};

/// An HTTP failure: status and plain-text message.
pub type Failure = (hyper::StatusCode, String);

fn bad_request(message: impl Into<String>) -> Failure {
    (hyper::StatusCode::BAD_REQUEST, message.into())
}

/// `POST /api/auth`: authData in, token and clientData out.
pub async fn auth(
    server: &Server,
    options: &HttpEndpointOptions,
    connection_data: &Value,
    body: Value,
) -> Result<Value, Failure> {
    if !body.is_object() {
        return Err(bad_request("Invalid message: the body must be an object."));
    }
    let verdict = server.authenticate(connection_data, &body).await;
    server
        .services
        .monitoring
        .on_login(verdict.as_ref().is_some_and(|v| v.is_valid), "http");
    match verdict {
        Some(verdict) if verdict.is_valid => {
            let mut answer = Map::new();
            if let Some(token) = verdict.token {
                answer.insert("token".into(), token.into());
            }
            if let Some(client_data) = verdict.client_data {
                answer.insert("clientData".into(), client_data);
            }
            Ok(Value::Object(answer))
        }
        _ => {
            if options.log_invalid_auth_data {
                tracing::debug!(event = "AUTH_UNSUCCESSFUL", "http login refused: {body}");
            } else {
                tracing::debug!(event = "AUTH_UNSUCCESSFUL", "http login refused");
            }
            Err((
                hyper::StatusCode::UNAUTHORIZED,
                "Invalid authentication data.".into(),
            ))
        }
    }
}

/// `POST /api`: authenticate, validate every element, run them, answer in request order.
pub async fn batch(
    server: &Arc<Server>,
    options: &HttpEndpointOptions,
    connection_data: &Value,
    body: Value,
) -> Result<Value, Failure> {
    let elements = match body.get("body") {
        None | Some(Value::Null | Value::Bool(false)) => {
            return Err(bad_request(
                "Invalid message: the \"body\" parameter must exist.",
            ));
        }
        Some(Value::Array(elements)) if !elements.is_empty() => elements,
        Some(_) => {
            return Err(bad_request(
                "Invalid message: the \"body\" parameter must be a non-empty array of Objects.",
            ));
        }
    };
    let auth_data = if let Some(auth_data) = body.get("authData") {
        if !options.allow_auth_data {
            return Err(bad_request(
                "Authentication using authData is disabled. Try using a token instead.",
            ));
        }
        if !auth_data.is_object() {
            return Err(bad_request(
                "Invalid message: the \"authData\" parameter must be an object",
            ));
        }
        auth_data.clone()
    } else if let Some(token) = body.get("token") {
        match token.as_str() {
            Some(token) if !token.is_empty() => json!({ "token": token }),
            _ => {
                return Err(bad_request(
                    "Invalid message: the \"token\" parameter must be a non-empty string",
                ));
            }
        }
    } else {
        json!({})
    };
    let verdict = server
        .authenticate(connection_data, &auth_data)
        .await
        .filter(|verdict| verdict.is_valid)
        .ok_or((
            hyper::StatusCode::UNAUTHORIZED,
            "Unsuccessful authentication attempt.".to_owned(),
        ))?;

    let requests = elements
        .iter()
        .enumerate()
        .map(|(index, element)| {
            jif::parse(element).map_err(|reason| {
                bad_request(format!(
                    "Failed to parse JIF object at index {index}. Reason: {reason}"
                ))
            })
        })
        .collect::<Result<Vec<Request>, Failure>>()?;

    let user = Arc::new(User::from(verdict));
    let runs = requests
        .into_iter()
        .map(|request| run(server.clone(), user.clone(), request));
    let deadline = options.request_timeout;
    let results: Vec<Value> = futures_util::future::join_all(runs.map(|run| async move {
        tokio::time::timeout(deadline, run)
            .await
            .unwrap_or_else(|_| {
                tracing::warn!(event = "HTTP_REQUEST_TIMEOUT", "HTTP Request timeout");
                jif::timeout_result()
            })
    }))
    .await;

    let succeeded = results.iter().filter(|r| r["success"] == true).count();
    let overall = match succeeded {
        0 => "FAILURE",
        n if n == results.len() => "SUCCESS",
        _ => "PARTIAL_SUCCESS",
    };
    Ok(json!({ "result": overall, "body": results }))
}

/// Runs one element on its own virtual connection and waits for its final reply.
async fn run(server: Arc<Server>, user: Arc<User>, request: Request) -> Value {
    let id = server.next_connection_id();
    let (connection, replies) = Connection::new(id, "http");
    // Closed however this ends (a result, an emit, the request timeout dropping this future),
    // so that a handler still holding it (an RPC in flight) queues nothing nobody reads.
    let _closed = CloseOnDrop(connection.clone());
    connection.set_user(User::clone(&user));
    let message = request.to_message(&format!("http-{id}"));
    server.process(&connection, message).await;
    if request.answered_at_once() {
        return match replies.try_recv() {
            Some(_) => jif::event_denied(),
            None => json!({ "success": true }),
        };
    }
    loop {
        match replies.recv().await {
            Outbound::Frame(frame) => {
                let Ok(reply) = protocol::decode(frame) else {
                    continue;
                };
                if let Some(result) = request.result(&reply) {
                    return result;
                }
            }
            Outbound::Close => continue,
        }
    }
}

/// Marks a virtual connection closed when dropped.
struct CloseOnDrop(ConnectionHandle);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.mark_closed();
    }
}
