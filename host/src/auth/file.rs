//! `auth: [{type: file}]` (server.md §4.2): users from the entry's `users` map — normally
//! `fileLoad(users.yml)`, or the legacy `path` option, both read by the config module — with
//! PBKDF2-hashed or plain-text passwords. The users (and hash settings) are replaced at run
//! time by `Lifecycle::reload` (SIGHUP, `deepstream reload`); a login always sees one
//! consistent set.

use std::{collections::HashMap, sync::Arc};

use parking_lot::RwLock;
use serde_json::{Value, json};

use super::{
    SettingsError,
    hash::{self, PasswordHasher, constant_time_eq},
    reports_invalid_parameters,
};
use crate::services::{Answer, AuthVerdict, Authentication, Lifecycle, ServiceError};

/// What a client without a username or password is told (protocol.md §1.8).
const MISSING_PARAMETERS: &str = "missing authentication parameter: username or/and password";

pub struct FileAuthentication {
    /// The users in force; swapped whole by `reload`, never edited in place.
    table: RwLock<Arc<UserTable>>,
    /// Reject bad logins with a reason instead of leaving them to the next handler.
    report: bool,
}

/// One consistent set of users and the settings their passwords were hashed with.
struct UserTable {
    /// `None`: passwords are stored and compared as plain text.
    hasher: Option<PasswordHasher>,
    /// username → entry.
    users: HashMap<String, UserEntry>,
}

struct UserEntry {
    /// Hash + salt, or the plain password when no `hash` is configured.
    password: String,
    /// Sent to the client with AUTH_SUCCESSFUL (`null` when absent, as the reference sends).
    client_data: Value,
    /// Visible to permission rules as `user.data`.
    server_data: Value,
}

impl FileAuthentication {
    /// Checks the entry's `options` (server.md §4.2 start-up checks).
    pub fn new(options: &Value) -> Result<FileAuthentication, SettingsError> {
        Ok(FileAuthentication {
            table: RwLock::new(Arc::new(UserTable::from_options(options)?)),
            report: reports_invalid_parameters(options),
        })
    }
}

impl UserTable {
    fn from_options(options: &Value) -> Result<UserTable, SettingsError> {
        let hasher =
            PasswordHasher::from_options(options).map_err(|source| SettingsError::Hash {
                handler: "file",
                source,
            })?;
        let entries = match options.get("users") {
            Some(Value::Object(entries)) => entries,
            Some(_) => return Err(SettingsError::UsersNotAMap),
            None => return Err(SettingsError::NoUsers),
        };
        if entries.is_empty() {
            return Err(SettingsError::NoUsers);
        }
        let mut users = HashMap::with_capacity(entries.len());
        for (name, entry) in entries {
            let password = entry
                .get("password")
                .and_then(Value::as_str)
                .ok_or_else(|| SettingsError::MissingPassword(name.clone()))?;
            if let Some(hasher) = &hasher
                && password.len() <= hasher.hash_length()
            {
                // Likely a plain password under a `hash` setting: it can never match.
                tracing::warn!(
                    event = "INVALID_CONFIG_DATA",
                    "the password of {name} is not a hash made with these settings (create one with `deepstream hash`)"
                );
            }
            let data = |key| entry.get(key).cloned().unwrap_or(Value::Null);
            users.insert(
                name.clone(),
                UserEntry {
                    password: password.to_owned(),
                    client_data: data("clientData"),
                    server_data: data("serverData"),
                },
            );
        }
        Ok(UserTable { hasher, users })
    }

    /// Steps 3–4 of server.md §4.2 `isValidUser` for a known user.
    fn decide(&self, username: &str, password: &str, report: bool) -> Option<AuthVerdict> {
        let entry = self.users.get(username)?;
        let matches = match &self.hasher {
            Some(hasher) => hasher.verify(password, &entry.password),
            None => constant_time_eq(password, &entry.password),
        };
        if matches {
            Some(AuthVerdict {
                is_valid: true,
                id: Some(username.to_owned()),
                client_data: Some(entry.client_data.clone()),
                server_data: Some(entry.server_data.clone()),
                ..Default::default()
            })
        } else {
            report.then(AuthVerdict::default)
        }
    }
}

impl Lifecycle for FileAuthentication {
    fn description(&self) -> String {
        format!("file with {} users", self.table.read().users.len())
    }

    /// Takes the users and hash settings of the freshly loaded entry; users that fail the
    /// start-up checks are refused and the current ones stay in force.
    fn reload(&self, options: &Value) -> Option<Result<(), ServiceError>> {
        let table = UserTable::from_options(options).map_err(|error| error.to_string());
        Some(table.map(|table| *self.table.write() = Arc::new(table)))
    }
}

impl Authentication for FileAuthentication {
    fn is_valid_user(
        &self,
        _connection_data: &Value,
        auth_data: &Value,
    ) -> Answer<Option<AuthVerdict>> {
        let field = |key| auth_data.get(key).and_then(Value::as_str);
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            return Answer::Ready(Ok(self.report.then(|| AuthVerdict {
                is_valid: false,
                client_data: Some(json!({ "error": MISSING_PARAMETERS })),
                ..Default::default()
            })));
        };
        let table = self.table.read().clone();
        // Unknown users are left to the next handler whatever `reportInvalidParameters` says.
        if !table.users.contains_key(username) {
            return Answer::Ready(Ok(None));
        }
        if table.hasher.is_none() {
            return Answer::Ready(Ok(table.decide(username, password, self.report)));
        }
        let (username, password, report) = (username.to_owned(), password.to_owned(), self.report);
        Answer::Pending(Box::pin(hash::off_runtime(move || {
            table.decide(&username, &password, report)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// userA of conf/users.yml: password "password", md5/100/32 (the spec's test vector).
    fn hashed_options(report: bool) -> Value {
        json!({
            "hash": "md5",
            "iterations": 100,
            "keyLength": 32,
            "reportInvalidParameters": report,
            "users": {
                "userA": {
                    "password": "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg==",
                    "serverData": {"role": "admin"},
                    "clientData": {"favouriteColor": "red"},
                },
            },
        })
    }

    async fn ask(auth: &FileAuthentication, data: Value) -> Option<AuthVerdict> {
        auth.is_valid_user(&json!({}), &data)
            .resolve()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn hashed_password_logs_in_with_client_and_server_data() {
        let auth = FileAuthentication::new(&hashed_options(true)).unwrap();
        let verdict = ask(&auth, json!({"username": "userA", "password": "password"})).await;
        assert_eq!(
            verdict,
            Some(AuthVerdict {
                is_valid: true,
                id: Some("userA".into()),
                client_data: Some(json!({"favouriteColor": "red"})),
                server_data: Some(json!({"role": "admin"})),
                ..Default::default()
            })
        );
    }

    #[tokio::test]
    async fn wrong_password_is_rejected_when_reporting_and_passed_on_otherwise() {
        let wrong = json!({"username": "userA", "password": "Password"});
        let reporting = FileAuthentication::new(&hashed_options(true)).unwrap();
        assert_eq!(
            ask(&reporting, wrong.clone()).await,
            Some(AuthVerdict::default())
        );
        let quiet = FileAuthentication::new(&hashed_options(false)).unwrap();
        assert_eq!(ask(&quiet, wrong).await, None);
    }

    #[tokio::test]
    async fn unknown_user_is_passed_on_even_when_reporting() {
        let auth = FileAuthentication::new(&hashed_options(true)).unwrap();
        let verdict = ask(
            &auth,
            json!({"username": "mallory", "password": "password"}),
        )
        .await;
        assert_eq!(verdict, None);
    }

    #[tokio::test]
    async fn missing_parameters_are_reported_with_the_reference_message() {
        let reporting = FileAuthentication::new(&hashed_options(true)).unwrap();
        for data in [
            json!({}),
            json!({"username": "userA"}),
            json!({"username": "userA", "password": 7}),
        ] {
            let verdict = ask(&reporting, data).await.unwrap();
            assert!(!verdict.is_valid);
            assert_eq!(
                verdict.client_data,
                Some(
                    json!({"error": "missing authentication parameter: username or/and password"})
                )
            );
        }
        let quiet = FileAuthentication::new(&hashed_options(false)).unwrap();
        assert_eq!(ask(&quiet, json!({"password": "x"})).await, None);
    }

    #[tokio::test]
    async fn plain_text_passwords_without_hash() {
        let auth = FileAuthentication::new(&json!({"users": {"bob": {"password": "pw"}}})).unwrap();
        let good = ask(&auth, json!({"username": "bob", "password": "pw"})).await;
        assert_eq!(
            good.map(|v| (v.is_valid, v.client_data, v.server_data)),
            Some((true, Some(Value::Null), Some(Value::Null)))
        );
        let bad = ask(&auth, json!({"username": "bob", "password": "pw "})).await;
        assert_eq!(bad.map(|v| v.is_valid), Some(false));
    }

    #[test]
    fn start_up_checks() {
        let error = |options: Value| FileAuthentication::new(&options).err().unwrap().to_string();
        assert_eq!(error(json!({"users": {}})), "no users present in user file");
        assert_eq!(
            error(json!({"users": {"a": {"password": "x"}, "b": {"clientData": {}}}})),
            "missing password for b"
        );
        assert_eq!(
            error(json!({"users": {"a": {"password": 5}}})),
            "missing password for a"
        );
        assert!(
            error(json!({"hash": "rot13", "iterations": 1, "keyLength": 1, "users": {"a": {"password": "x"}}}))
                .starts_with("Validating settings failed for file auth: unknown hash \"rot13\"")
        );
    }

    #[tokio::test]
    async fn reload_replaces_users_and_a_bad_reload_keeps_them() {
        let auth = FileAuthentication::new(&json!({"users": {"ann": {"password": "1"}}})).unwrap();
        let login = |name: &str, password: &str| json!({"username": name, "password": password});

        assert_eq!(
            auth.reload(&json!({"users": {"ann": {"password": "1"}, "ben": {"password": "2"}}})),
            Some(Ok(()))
        );
        assert!(ask(&auth, login("ben", "2")).await.unwrap().is_valid);

        assert_eq!(
            auth.reload(&json!({"users": {"ann": {}}})),
            Some(Err("missing password for ann".into()))
        );
        assert_eq!(
            auth.reload(&json!({"users": {}})),
            Some(Err("no users present in user file".into()))
        );
        assert!(ask(&auth, login("ann", "1")).await.unwrap().is_valid);
        assert!(ask(&auth, login("ben", "2")).await.unwrap().is_valid);
        assert_eq!(auth.description(), "file with 2 users");
    }

    #[tokio::test]
    async fn reload_can_switch_to_hashed_passwords() {
        let auth = FileAuthentication::new(&json!({"users": {"userA": {"password": "password"}}}))
            .unwrap();
        assert_eq!(auth.reload(&hashed_options(true)), Some(Ok(())));
        let verdict = ask(&auth, json!({"username": "userA", "password": "password"})).await;
        assert!(verdict.unwrap().is_valid);
    }
}
