//! `auth: [{type: http}]` (server.md §4.3): every login is POSTed to a webhook as
//! `{"connectionData": …, "authData": …}`; the status code decides, the body supplies the
//! user's id, clientData and serverData. Requests run on the runtime (`Answer::Pending`), so a
//! slow or dead webhook delays only the logins waiting on it.

use std::{sync::Arc, time::Duration};

use reqwest::{
    Client, Url,
    header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue},
    redirect,
};
use serde_json::{Value, json};

use super::{RequiredOptions, SettingsError, reports_invalid_parameters};
use crate::services::{Answer, AuthVerdict, Authentication, Lifecycle};

/// Redirects followed per request, as the reference does.
const MAX_REDIRECTS: usize = 2;

/// What a client is told when the webhook could not be reached often enough.
const RETRIES_EXCEEDED: &str = "AUTH_RETRY_ATTEMPTS_EXCEEDED";

pub struct HttpAuthentication {
    /// Settings and connection pool, shared with the requests in flight.
    webhook: Arc<Webhook>,
}

struct Webhook {
    /// POST target.
    url: Url,
    /// Statuses meaning "accepted".
    permitted: Vec<u16>,
    /// Statuses that trigger another attempt.
    retry_statuses: Vec<u16>,
    /// Requests made per login at most: 1 + `retryAttempts`.
    attempts: u64,
    /// Pause between attempts.
    retry_interval: Duration,
    /// authData fields copied into request headers (names checked at start-up).
    promote_to_header: Vec<(String, HeaderName)>,
    /// Reject with a reason instead of leaving the login to the next handler.
    report: bool,
    /// Connection pool carrying the request timeout and the redirect limit.
    client: Client,
}

/// The result of one request.
enum Attempt {
    /// The webhook answered; this is the handler's opinion.
    Decided(Option<AuthVerdict>),
    /// Transport error, timeout or a retry status: try again (the text says why).
    Retry(String),
}

impl HttpAuthentication {
    /// Checks the entry's `options` and builds the HTTP client (server.md §4.3 table).
    pub fn new(options: &Value) -> Result<HttpAuthentication, SettingsError> {
        let required = RequiredOptions::new(options);
        let url = required.string("endpointUrl")?;
        let url = Url::parse(url)
            .ok()
            .filter(|url| url.has_host())
            .ok_or_else(|| SettingsError::InvalidValue {
                key: "endpointUrl",
                reason: format!("{url:?} is not a URL with a host"),
            })?;
        let request_timeout = Duration::from_millis(required.integer("requestTimeout")?);
        let promote_to_header = match options.get("promoteToHeader") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(names)) => names
                .iter()
                .map(|name| {
                    let field = name.as_str().unwrap_or_default();
                    HeaderName::from_bytes(field.as_bytes())
                        .map(|header| (field.to_owned(), header))
                        .map_err(|_| SettingsError::InvalidValue {
                            key: "promoteToHeader",
                            reason: format!("{name} is not a valid header name"),
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(super::invalid_type("promoteToHeader", other)),
        };
        let client = Client::builder()
            .timeout(request_timeout)
            .connect_timeout(request_timeout)
            .redirect(redirect::Policy::limited(MAX_REDIRECTS))
            // Like the reference, ignore HTTP(S)_PROXY: the webhook is addressed directly.
            .no_proxy()
            .build()
            .map_err(|error| SettingsError::InvalidValue {
                key: "endpointUrl",
                reason: format!("cannot create the HTTP client: {error}"),
            })?;
        Ok(HttpAuthentication {
            webhook: Arc::new(Webhook {
                url,
                permitted: required.status_codes("permittedStatusCodes")?,
                retry_statuses: required.status_codes("retryStatusCodes")?,
                attempts: required.integer("retryAttempts")?.saturating_add(1),
                retry_interval: Duration::from_millis(required.integer("retryInterval")?),
                promote_to_header,
                report: reports_invalid_parameters(options),
                client,
            }),
        })
    }
}

impl Lifecycle for HttpAuthentication {
    fn description(&self) -> String {
        format!("http webhook to {}", self.webhook.url)
    }
}

impl Authentication for HttpAuthentication {
    fn is_valid_user(
        &self,
        connection_data: &Value,
        auth_data: &Value,
    ) -> Answer<Option<AuthVerdict>> {
        let webhook = self.webhook.clone();
        let headers = webhook.promoted_headers(auth_data);
        let body = json!({"connectionData": connection_data, "authData": auth_data}).to_string();
        Answer::Pending(Box::pin(
            async move { Ok(webhook.ask(body, headers).await) },
        ))
    }
}

impl Webhook {
    /// Asks until the webhook decides or the attempts run out (server.md §4.3 steps 1–7).
    async fn ask(&self, body: String, headers: HeaderMap) -> Option<AuthVerdict> {
        let mut last_failure = String::new();
        for attempt in 1..=self.attempts {
            match self.attempt(&body, &headers).await {
                Attempt::Decided(verdict) => return verdict,
                Attempt::Retry(why) => {
                    tracing::debug!(
                        event = "AUTH_ERROR",
                        "http auth attempt {attempt}/{} to {} failed: {why}",
                        self.attempts,
                        self.url
                    );
                    last_failure = why;
                }
            }
            if attempt < self.attempts {
                tokio::time::sleep(self.retry_interval).await;
            }
        }
        // One line per failed login, however many attempts it took.
        tracing::warn!(
            event = "AUTH_ERROR",
            "http auth error: {last_failure} ({} attempts to {}): {RETRIES_EXCEEDED}",
            self.attempts,
            self.url
        );
        self.report.then(|| AuthVerdict {
            is_valid: false,
            client_data: Some(json!({ "error": RETRIES_EXCEEDED })),
            ..Default::default()
        })
    }

    async fn attempt(&self, body: &str, headers: &HeaderMap) -> Attempt {
        let request = self
            .client
            .post(self.url.clone())
            .headers(headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Attempt::Retry(describe(&error)),
        };
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("json"));
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => return Attempt::Retry(describe(&error)),
        };
        let body = parse_body(&text, is_json);
        if self.retry_statuses.contains(&status.as_u16()) {
            return Attempt::Retry(format!("status {status}, body {body}"));
        }
        if status.is_server_error() {
            tracing::warn!(event = "AUTH_ERROR", "http auth server error: {body}");
        }
        Attempt::Decided(if self.permitted.contains(&status.as_u16()) {
            Some(accepted(body))
        } else {
            self.report.then(|| rejected(body))
        })
    }

    /// `promoteToHeader` fields of authData with a truthy value, as headers.
    fn promoted_headers(&self, auth_data: &Value) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (field, header) in &self.promote_to_header {
            let value = match auth_data.get(field) {
                None | Some(Value::Null | Value::Bool(false)) => continue,
                Some(Value::String(text)) if text.is_empty() => continue,
                Some(Value::Number(n)) if n.as_f64() == Some(0.0) => continue,
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
            };
            match HeaderValue::from_str(&value) {
                Ok(value) => {
                    headers.insert(header.clone(), value);
                }
                // Client-supplied text: not worth more than a debug line.
                Err(_) => tracing::debug!(
                    event = "AUTH_ERROR",
                    "authData.{field} cannot be sent as a header; left out"
                ),
            }
        }
        headers
    }
}

/// reqwest's error plus its cause ("error sending request" alone does not say what failed).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// The response body: JSON when the response says so (and parses), else the text itself.
/// An empty body is `null`.
fn parse_body(text: &str, is_json: bool) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    is_json
        .then(|| serde_json::from_str(text).ok())
        .flatten()
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

/// A permitted status (step 6): a text body is the user id; an object body supplies `id`,
/// `clientData`, `serverData` and `token`; anything else accepts without an id (`OPEN`).
///
/// *Quirk* (server.md §4.3): the reference spreads the whole body over the verdict, so a body
/// `isValid` overrides the status. Here only `"isValid": false` counts — a webhook can still
/// veto in the body, which is the safe reading — and any other value is ignored.
fn accepted(body: Value) -> AuthVerdict {
    match body {
        Value::String(id) if !id.is_empty() => AuthVerdict {
            is_valid: true,
            id: Some(id),
            ..Default::default()
        },
        Value::Object(mut fields) => AuthVerdict {
            is_valid: fields.get("isValid") != Some(&Value::Bool(false)),
            id: match fields.remove("id") {
                Some(Value::String(id)) => Some(id),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            },
            client_data: fields.remove("clientData"),
            server_data: fields.remove("serverData"),
            token: match fields.remove("token") {
                Some(Value::String(token)) => Some(token),
                _ => None,
            },
        },
        _ => AuthVerdict {
            is_valid: true,
            ..Default::default()
        },
    }
}

/// A status that is neither permitted nor retried, when reporting (step 5): a text body
/// becomes `{error: <text>}`, a non-empty object body is passed to the client as it is.
fn rejected(body: Value) -> AuthVerdict {
    AuthVerdict {
        is_valid: false,
        client_data: match body {
            Value::String(text) if !text.is_empty() => Some(json!({ "error": text })),
            Value::Object(fields) if !fields.is_empty() => Some(Value::Object(fields)),
            _ => None,
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Value {
        json!({
            "endpointUrl": "http://127.0.0.1:1/auth",
            "permittedStatusCodes": [200],
            "requestTimeout": 100,
            "retryStatusCodes": [504],
            "retryAttempts": 2,
            "retryInterval": 10,
            "promoteToHeader": ["token", "n", "empty", "off"],
        })
    }

    #[test]
    fn missing_and_mistyped_options_use_the_reference_texts() {
        let error = |options: Value| HttpAuthentication::new(&options).err().unwrap().to_string();
        let mut without = options();
        without.as_object_mut().unwrap().remove("retryInterval");
        assert_eq!(error(without), "Missing key retryInterval");
        let mut mistyped = options();
        mistyped["requestTimeout"] = json!("soon");
        assert_eq!(error(mistyped), "Invalid type string for requestTimeout");
        let mut no_host = options();
        no_host["endpointUrl"] = json!("file:///tmp/x");
        assert!(error(no_host).starts_with("Invalid value for endpointUrl"));
    }

    #[test]
    fn description_names_the_webhook() {
        let auth = HttpAuthentication::new(&options()).unwrap();
        assert_eq!(
            auth.description(),
            "http webhook to http://127.0.0.1:1/auth"
        );
        assert_eq!(auth.webhook.attempts, 3);
    }

    #[test]
    fn only_truthy_fields_are_promoted_to_headers() {
        let auth = HttpAuthentication::new(&options()).unwrap();
        let headers = auth.webhook.promoted_headers(
            &json!({"token": "abc", "n": 42, "empty": "", "off": false, "other": "x"}),
        );
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["token"], "abc");
        assert_eq!(headers["n"], "42");
    }

    #[test]
    fn bodies_are_json_only_when_the_response_says_so() {
        assert_eq!(parse_body("", true), Value::Null);
        assert_eq!(parse_body(r#"{"id":"a"}"#, true), json!({"id": "a"}));
        assert_eq!(parse_body(r#"{"id":"a"}"#, false), json!(r#"{"id":"a"}"#));
        assert_eq!(parse_body("not json", true), json!("not json"));
    }

    #[test]
    fn accepted_bodies_map_to_the_verdict() {
        assert_eq!(accepted(json!("alice")).id, Some("alice".into()));
        assert_eq!(
            accepted(Value::Null),
            AuthVerdict {
                is_valid: true,
                ..Default::default()
            }
        );
        let verdict = accepted(json!({
            "id": "u1", "clientData": {"c": 1}, "serverData": {"s": 2}, "token": "t"
        }));
        assert_eq!(
            verdict,
            AuthVerdict {
                is_valid: true,
                id: Some("u1".into()),
                client_data: Some(json!({"c": 1})),
                server_data: Some(json!({"s": 2})),
                token: Some("t".into()),
            }
        );
    }

    /// The quirk decision: a permitted status with `"isValid": false` in the body rejects;
    /// `"isValid": "yes"` or `0` does not turn into a rejection.
    #[test]
    fn quirk_body_is_valid_false_vetoes_a_permitted_status() {
        let veto = accepted(json!({"isValid": false, "clientData": {"error": "locked"}}));
        assert!(!veto.is_valid);
        assert_eq!(veto.client_data, Some(json!({"error": "locked"})));
        assert!(accepted(json!({"isValid": 0, "id": "x"})).is_valid);
    }

    #[test]
    fn rejected_bodies_become_client_data() {
        assert_eq!(
            rejected(json!("nope")).client_data,
            Some(json!({"error": "nope"}))
        );
        assert_eq!(
            rejected(json!({"why": 1})).client_data,
            Some(json!({"why": 1}))
        );
        assert_eq!(rejected(json!({})).client_data, None);
        assert_eq!(rejected(Value::Null).client_data, None);
    }
}
