//! Authentication built-ins (server.md §4) and the combiner that asks them (§2.4.1).
//!
//! `type: none` lives with the other defaults (`services::builtin::OpenAuthentication`); the
//! handlers here need options: `file` (users from the config, reloadable through
//! `Lifecycle::reload` on SIGHUP / `deepstream reload`), `http` (a
//! webhook) and `storage` (users kept in the storage service). Every handler answers `None`
//! ("no opinion") where the spec says so, letting the next entry of the `auth` list decide.

pub mod file;
pub mod hash;
pub mod http;
pub mod storage;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::services::{AuthVerdict, Authentication, ServiceError};

pub use file::FileAuthentication;
pub use http::HttpAuthentication;
pub use storage::StorageAuthentication;

/// Why a built-in refuses its options; startup aborts naming the `auth[i]` key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("Validating settings failed for {handler} auth: {source}")]
    Hash {
        /// `file` or `storage`.
        handler: &'static str,
        source: hash::HashSettingsError,
    },
    #[error("no users present in user file")]
    NoUsers,
    #[error("users must be a mapping of user names to {{password, clientData, serverData}}")]
    UsersNotAMap,
    #[error("missing password for {0}")]
    MissingPassword(String),
    #[error("Missing key {0}")]
    MissingKey(&'static str),
    #[error("Invalid type {found} for {key}")]
    InvalidType {
        /// The option.
        key: &'static str,
        /// JavaScript `typeof` of the value, as the reference words it.
        found: &'static str,
    },
    #[error("Invalid value for {key}: {reason}")]
    InvalidValue {
        /// The option.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// `reportInvalidParameters` (server.md §4): reject with a reason instead of passing to the
/// next handler. The config already forces `false` onto entries of a multi-handler list.
fn reports_invalid_parameters(options: &Value) -> bool {
    options
        .get("reportInvalidParameters")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// Required options, read with the reference's error texts (`Missing key k`,
/// `Invalid type <typeof> for k`).
struct RequiredOptions<'a> {
    /// The entry's `options`.
    map: &'a Map<String, Value>,
}

impl<'a> RequiredOptions<'a> {
    fn new(options: &'a Value) -> Self {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        RequiredOptions {
            map: options.as_object().unwrap_or(&EMPTY),
        }
    }

    fn get(&self, key: &'static str) -> Result<&'a Value, SettingsError> {
        self.map.get(key).ok_or(SettingsError::MissingKey(key))
    }

    fn string(&self, key: &'static str) -> Result<&'a str, SettingsError> {
        let value = self.get(key)?;
        value.as_str().ok_or_else(|| invalid_type(key, value))
    }

    fn integer(&self, key: &'static str) -> Result<u64, SettingsError> {
        let value = self.get(key)?;
        match value {
            Value::Number(n) => n.as_u64().ok_or_else(|| SettingsError::InvalidValue {
                key,
                reason: format!("must be a whole number >= 0, got {n}"),
            }),
            other => Err(invalid_type(key, other)),
        }
    }

    fn status_codes(&self, key: &'static str) -> Result<Vec<u16>, SettingsError> {
        match self.get(key)? {
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    item.as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .ok_or_else(|| SettingsError::InvalidValue {
                            key,
                            reason: format!("{item} is not an HTTP status code"),
                        })
                })
                .collect(),
            other => Err(invalid_type(key, other)),
        }
    }
}

fn invalid_type(key: &'static str, value: &Value) -> SettingsError {
    SettingsError::InvalidType {
        key,
        found: match value {
            Value::Null | Value::Array(_) | Value::Object(_) => "object",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
        },
    }
}

/// The combiner (server.md §2.4.1): handlers are asked in config order, one after the other;
/// the first opinion decides. `Ok(None)` when every handler passed. A handler error ends the
/// round: the login fails rather than falling through to a more permissive handler.
pub async fn combine(
    handlers: &[Arc<dyn Authentication>],
    connection_data: &Value,
    auth_data: &Value,
) -> Result<Option<AuthVerdict>, ServiceError> {
    for handler in handlers {
        if let Some(verdict) = handler
            .is_valid_user(connection_data, auth_data)
            .resolve()
            .await?
        {
            return Ok(Some(verdict));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;
    use serde_json::json;

    use super::*;
    use crate::services::{Answer, Lifecycle, builtin::OpenAuthentication};

    /// Answers a fixed opinion and notes that it was asked.
    struct Scripted {
        /// Shared log of who was asked, in order.
        asked: Arc<Mutex<Vec<&'static str>>>,
        /// This handler's name in the log.
        name: &'static str,
        /// What it answers.
        answer: Result<Option<AuthVerdict>, ServiceError>,
    }

    impl Lifecycle for Scripted {
        fn description(&self) -> String {
            self.name.into()
        }
    }

    impl Authentication for Scripted {
        fn is_valid_user(&self, _: &Value, _: &Value) -> Answer<Option<AuthVerdict>> {
            self.asked.lock().push(self.name);
            let answer = self.answer.clone();
            Answer::Pending(Box::pin(async move { answer }))
        }
    }

    fn scripted(
        asked: &Arc<Mutex<Vec<&'static str>>>,
        name: &'static str,
        answer: Result<Option<AuthVerdict>, ServiceError>,
    ) -> Arc<dyn Authentication> {
        Arc::new(Scripted {
            asked: asked.clone(),
            name,
            answer,
        })
    }

    fn rejection() -> AuthVerdict {
        AuthVerdict {
            is_valid: false,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn combiner_asks_in_order_and_the_first_opinion_decides() {
        let asked = Arc::default();
        let handlers = vec![
            scripted(&asked, "silent", Ok(None)),
            scripted(&asked, "rejects", Ok(Some(rejection()))),
            scripted(&asked, "never asked", Ok(None)),
        ];
        let verdict = combine(&handlers, &json!({}), &json!({})).await;
        assert_eq!(verdict, Ok(Some(rejection())));
        assert_eq!(*asked.lock(), ["silent", "rejects"]);
    }

    #[tokio::test]
    async fn combiner_without_an_opinion_is_none() {
        let asked = Arc::default();
        let handlers = vec![
            scripted(&asked, "a", Ok(None)),
            scripted(&asked, "b", Ok(None)),
        ];
        assert_eq!(combine(&handlers, &json!({}), &json!({})).await, Ok(None));
        assert_eq!(*asked.lock(), ["a", "b"]);
    }

    #[tokio::test]
    async fn combiner_stops_at_a_failing_handler() {
        let asked = Arc::default();
        let mut handlers = vec![scripted(&asked, "fails", Err("down".into()))];
        handlers.push(Arc::new(OpenAuthentication));
        assert_eq!(
            combine(&handlers, &json!({}), &json!({"username": "x"})).await,
            Err("down".into())
        );
    }

    /// server.md §4.5: without reporting, the file handler has no opinion on unknown users
    /// *and* on wrong passwords, so an open handler after it admits both as claimed.
    #[tokio::test]
    async fn file_then_open_passes_what_the_file_does_not_accept_on() {
        let file = FileAuthentication::new(&json!({
            "users": {"alice": {"password": "pw"}},
            "reportInvalidParameters": false,
        }))
        .unwrap();
        let handlers: Vec<Arc<dyn Authentication>> =
            vec![Arc::new(file), Arc::new(OpenAuthentication)];
        let ask = |auth: Value| {
            let handlers = handlers.clone();
            async move {
                combine(&handlers, &json!({}), &auth)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        let alice = ask(json!({"username": "alice", "password": "pw"})).await;
        assert_eq!(
            alice.client_data,
            Some(Value::Null),
            "answered by the file handler"
        );
        let guest = ask(json!({"username": "bob", "password": "x"})).await;
        assert_eq!((guest.is_valid, guest.id), (true, Some("bob".into())));
        let claimed = ask(json!({"username": "alice", "password": "wrong"})).await;
        assert_eq!((claimed.is_valid, claimed.client_data), (true, None));
    }
}
