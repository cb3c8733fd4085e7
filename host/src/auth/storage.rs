//! `auth: [{type: storage}]` (server.md §4.4): users are records of the storage service, keyed
//! `<table>/<username>`, holding `{username, password, clientData, serverData}`; with
//! `createUser` an unknown user is registered on first login. The user id is the uuid stored
//! in `clientData.id`, so renaming a user keeps their identity in permission rules.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

use super::{
    RequiredOptions, SettingsError,
    hash::{self, PasswordHasher},
    reports_invalid_parameters,
};
use crate::{
    config::random_uuid,
    services::{
        Answer, AuthVerdict, Authentication, Lifecycle, RecordStore, ServiceError, StoredRecord,
    },
};

/// Told to the client when the storage could not be read.
const RETRIEVAL_FAILED: &str = "Error retrieving user from storage";

/// Told to the client when a new user could not be stored.
const CREATION_FAILED: &str = "Error creating user";

pub struct StorageAuthentication {
    /// Settings and the storage service, shared with the logins in flight.
    users: Arc<UserStore>,
}

struct UserStore {
    /// The storage service the users are kept in.
    storage: Arc<dyn RecordStore>,
    /// Key prefix: a user is the record `<table>/<username>`.
    table: String,
    /// Register unknown users on their first login.
    create_user: bool,
    /// The settings passwords are hashed with (required: no plain-text mode here).
    hasher: Arc<PasswordHasher>,
    /// Reject bad logins with a reason instead of leaving them to the next handler.
    report: bool,
}

impl StorageAuthentication {
    /// Checks the entry's `options`; users are read from and written to `storage`.
    pub fn new(
        options: &Value,
        storage: Arc<dyn RecordStore>,
    ) -> Result<StorageAuthentication, SettingsError> {
        let table = RequiredOptions::new(options).string("table")?.to_owned();
        let hasher = PasswordHasher::from_options(options)
            .map_err(|source| SettingsError::Hash {
                handler: "storage",
                source,
            })?
            .ok_or(SettingsError::MissingKey("hash"))?;
        Ok(StorageAuthentication {
            users: Arc::new(UserStore {
                storage,
                table,
                create_user: options
                    .get("createUser")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                hasher: Arc::new(hasher),
                report: reports_invalid_parameters(options),
            }),
        })
    }
}

impl Lifecycle for StorageAuthentication {
    fn description(&self) -> String {
        format!("Storage using table: {}", self.users.table)
    }
}

impl Authentication for StorageAuthentication {
    fn is_valid_user(
        &self,
        _connection_data: &Value,
        auth_data: &Value,
    ) -> Answer<Option<AuthVerdict>> {
        let field = |key| auth_data.get(key).and_then(Value::as_str);
        let (username, password) = match (field("username"), field("password")) {
            (Some(username), Some(password)) => (username.to_owned(), password.to_owned()),
            (username, password) => {
                return Answer::Ready(Ok(self
                    .users
                    .report
                    .then(|| missing_parameters(username.is_none(), password.is_none()))));
            }
        };
        let users = self.users.clone();
        Answer::Pending(Box::pin(
            async move { users.login(username, password).await },
        ))
    }
}

/// *Quirk* (server.md §4.4): the reference's text prints `false` for the parameter that is
/// present (`missing authentication parameters: false password`). Here the text names only
/// what is missing.
fn missing_parameters(username: bool, password: bool) -> AuthVerdict {
    let missing: Vec<&str> = [(username, "username"), (password, "password")]
        .into_iter()
        .filter_map(|(missing, name)| missing.then_some(name))
        .collect();
    failure(&format!(
        "missing authentication parameters: {}",
        missing.join(" ")
    ))
}

/// A rejection with `{error: <reason>}` for the client.
fn failure(reason: &str) -> AuthVerdict {
    AuthVerdict {
        is_valid: false,
        client_data: Some(json!({ "error": reason })),
        ..Default::default()
    }
}

impl UserStore {
    /// Steps 2–4 of server.md §4.4 `isValidUser`.
    async fn login(
        &self,
        username: String,
        password: String,
    ) -> Result<Option<AuthVerdict>, ServiceError> {
        let key = format!("{}/{username}", self.table);
        match self.storage.get(&key).resolve().await {
            Err(error) => {
                tracing::error!(
                    event = "AUTH_ERROR",
                    "cannot read user {key} from storage: {error}"
                );
                Ok(Some(failure(RETRIEVAL_FAILED)))
            }
            Ok(None) if self.create_user => self.register(key, username, password).await.map(Some),
            Ok(None) => Ok(None),
            Ok(Some(record)) => self.verify(&key, &record, username, password).await,
        }
    }

    async fn register(
        &self,
        key: String,
        username: String,
        password: String,
    ) -> Result<AuthVerdict, ServiceError> {
        tracing::info!(event = "REGISTERING_USER", "Adding new user {username}");
        let hasher = self.hasher.clone();
        let password = hash::off_runtime(move || hasher.create(&password)).await?;
        let id = random_uuid();
        let client_data = json!({ "id": id });
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        let server_data = json!({ "created": created });
        let record = json!({
            "username": username,
            "password": password,
            "clientData": client_data,
            "serverData": server_data,
        });
        Ok(
            match self
                .storage
                .set(&key, 1, record.to_string().into())
                .resolve()
                .await
            {
                Ok(()) => AuthVerdict {
                    is_valid: true,
                    id: Some(id),
                    client_data: Some(client_data),
                    server_data: Some(server_data),
                    ..Default::default()
                },
                Err(error) => {
                    tracing::error!(event = "AUTH_ERROR", "cannot store new user {key}: {error}");
                    failure(CREATION_FAILED)
                }
            },
        )
    }

    async fn verify(
        &self,
        key: &str,
        record: &StoredRecord,
        username: String,
        password: String,
    ) -> Result<Option<AuthVerdict>, ServiceError> {
        let mut user = match serde_json::from_str::<Value>(&record.data) {
            Ok(user @ Value::Object(_)) => user,
            _ => {
                tracing::error!(event = "AUTH_ERROR", "user {key} is not a JSON object");
                return Ok(Some(failure(RETRIEVAL_FAILED)));
            }
        };
        let Some(stored) = user["password"].as_str().map(str::to_owned) else {
            tracing::error!(event = "AUTH_ERROR", "user {key} has no password");
            return Ok(Some(failure(RETRIEVAL_FAILED)));
        };
        let hasher = self.hasher.clone();
        if !hash::off_runtime(move || hasher.verify(&password, &stored)).await? {
            return Ok(self.report.then(AuthVerdict::default));
        }
        let client_data = user.get_mut("clientData").map(Value::take);
        let id = match client_data.as_ref().and_then(|data| data.get("id")) {
            Some(Value::String(id)) => id.clone(),
            // A record written by hand without a uuid: the username is the identity rather
            // than the anonymous `OPEN` the reference would give.
            _ => username,
        };
        Ok(Some(AuthVerdict {
            is_valid: true,
            id: Some(id),
            client_data: Some(client_data.unwrap_or(Value::Null)),
            server_data: Some(user.get_mut("serverData").map_or(Value::Null, Value::take)),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::builtin::MemoryCache;

    fn options(create_user: bool, report: bool) -> Value {
        json!({
            "table": "users",
            "createUser": create_user,
            "hash": "sha256",
            "iterations": 10,
            "keyLength": 32,
            "reportInvalidParameters": report,
        })
    }

    fn login(username: &str, password: &str) -> Value {
        json!({"username": username, "password": password})
    }

    async fn ask(auth: &StorageAuthentication, data: Value) -> Option<AuthVerdict> {
        auth.is_valid_user(&json!({}), &data)
            .resolve()
            .await
            .unwrap()
    }

    fn stored(store: &MemoryCache, key: &str) -> (i32, Value) {
        let record = store.get(key).resolve_now().unwrap();
        (record.version, serde_json::from_str(&record.data).unwrap())
    }

    trait ResolveNow<T> {
        fn resolve_now(self) -> T;
    }

    impl<T> ResolveNow<T> for Answer<T> {
        fn resolve_now(self) -> T {
            match self {
                Answer::Ready(result) => result.unwrap(),
                Answer::Pending(_) => panic!("the memory cache answers at once"),
            }
        }
    }

    #[tokio::test]
    async fn create_user_registers_then_checks_the_password() {
        let store = Arc::new(MemoryCache::default());
        let auth = StorageAuthentication::new(&options(true, true), store.clone()).unwrap();

        let first = ask(&auth, login("ann", "pw")).await.unwrap();
        assert!(first.is_valid);
        let id = first.id.clone().unwrap();
        assert_eq!(id.len(), 36, "a uuid: {id}");
        assert_eq!(first.client_data, Some(json!({"id": id})));

        let (version, user) = stored(&store, "users/ann");
        assert_eq!(version, 1);
        assert_eq!(user["username"], "ann");
        assert_eq!(user["clientData"], json!({"id": id}));
        assert!(user["serverData"]["created"].as_u64().unwrap() > 1_600_000_000_000);
        let password = user["password"].as_str().unwrap();
        assert_eq!(password.len(), 44 + 24, "hash + salt: {password}");

        let again = ask(&auth, login("ann", "pw")).await.unwrap();
        assert_eq!((again.is_valid, again.id), (true, Some(id)));
        assert_eq!(
            ask(&auth, login("ann", "PW")).await,
            Some(AuthVerdict::default())
        );
    }

    #[tokio::test]
    async fn unknown_user_without_create_user_is_passed_on() {
        let auth =
            StorageAuthentication::new(&options(false, true), Arc::new(MemoryCache::default()))
                .unwrap();
        assert_eq!(ask(&auth, login("ann", "pw")).await, None);
    }

    #[tokio::test]
    async fn wrong_password_without_reporting_is_passed_on() {
        let store = Arc::new(MemoryCache::default());
        let creating = StorageAuthentication::new(&options(true, true), store.clone()).unwrap();
        ask(&creating, login("ann", "pw")).await;
        let quiet = StorageAuthentication::new(&options(false, false), store).unwrap();
        assert_eq!(ask(&quiet, login("ann", "nope")).await, None);
        assert!(ask(&quiet, login("ann", "pw")).await.unwrap().is_valid);
    }

    #[tokio::test]
    async fn hand_written_user_without_uuid_is_identified_by_username() {
        let store = Arc::new(MemoryCache::default());
        let hasher = PasswordHasher::from_options(&options(false, true))
            .unwrap()
            .unwrap();
        let record = json!({"password": hasher.create("pw"), "serverData": {"role": "ops"}});
        store
            .set("users/bo", 3, record.to_string().into())
            .resolve_now();
        let auth = StorageAuthentication::new(&options(false, true), store).unwrap();
        let verdict = ask(&auth, login("bo", "pw")).await.unwrap();
        assert_eq!(
            verdict,
            AuthVerdict {
                is_valid: true,
                id: Some("bo".into()),
                client_data: Some(Value::Null),
                server_data: Some(json!({"role": "ops"})),
                ..Default::default()
            }
        );
    }

    #[tokio::test]
    async fn quirk_missing_parameters_names_only_what_is_missing() {
        let auth =
            StorageAuthentication::new(&options(true, true), Arc::new(MemoryCache::default()))
                .unwrap();
        let error =
            |verdict: Option<AuthVerdict>| verdict.unwrap().client_data.unwrap()["error"].clone();
        assert_eq!(
            error(ask(&auth, json!({"username": "ann"})).await),
            "missing authentication parameters: password"
        );
        assert_eq!(
            error(ask(&auth, json!({"password": "x"})).await),
            "missing authentication parameters: username"
        );
        assert_eq!(
            error(ask(&auth, json!({})).await),
            "missing authentication parameters: username password"
        );
    }

    /// A storage whose reads or writes fail.
    struct Broken {
        /// Fail `get` (else only `set` fails).
        reads: bool,
    }

    impl Lifecycle for Broken {
        fn description(&self) -> String {
            "broken".into()
        }
    }

    impl RecordStore for Broken {
        fn get(&self, _: &str) -> Answer<Option<StoredRecord>> {
            Answer::Ready(if self.reads {
                Err("disk on fire".into())
            } else {
                Ok(None)
            })
        }
        fn set(&self, _: &str, _: i32, _: Arc<str>) -> Answer<()> {
            Answer::Ready(Err("disk full".into()))
        }
        fn delete(&self, _: &str) -> Answer<()> {
            Answer::Ready(Err("unused".into()))
        }
        fn delete_bulk(&self, _: &[String]) -> Answer<()> {
            Answer::Ready(Err("unused".into()))
        }
        fn head(&self, _: &str) -> Answer<Option<i32>> {
            Answer::Ready(Err("unused".into()))
        }
        fn head_bulk(&self, _: &[String]) -> Answer<Vec<(String, i32)>> {
            Answer::Ready(Err("unused".into()))
        }
    }

    #[tokio::test]
    async fn storage_failures_reject_with_the_reference_reasons() {
        let unreadable =
            StorageAuthentication::new(&options(true, false), Arc::new(Broken { reads: true }))
                .unwrap();
        assert_eq!(
            ask(&unreadable, login("ann", "pw")).await,
            Some(failure(RETRIEVAL_FAILED))
        );
        let unwritable =
            StorageAuthentication::new(&options(true, false), Arc::new(Broken { reads: false }))
                .unwrap();
        assert_eq!(
            ask(&unwritable, login("ann", "pw")).await,
            Some(failure(CREATION_FAILED))
        );
    }

    #[test]
    fn table_and_hash_are_required() {
        let store: Arc<dyn RecordStore> = Arc::new(MemoryCache::default());
        let error = |options: Value| {
            StorageAuthentication::new(&options, store.clone())
                .err()
                .unwrap()
                .to_string()
        };
        assert_eq!(error(json!({"hash": "md5"})), "Missing key table");
        assert_eq!(error(json!({"table": "t"})), "Missing key hash");
        let auth = StorageAuthentication::new(&options(false, true), store.clone()).unwrap();
        assert_eq!(auth.description(), "Storage using table: users");
    }
}
