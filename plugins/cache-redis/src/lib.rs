//! deepstream cache (and storage) plugin: records in Redis, laid out like deepstream's redis
//! connector — key `<keyPrefix><name>_v` holds the version, `<keyPrefix><name>_d` the data's
//! JSON text — so `head`/`head_bulk` read versions only.
//!
//! ```yaml
//! cache:
//!   path: ./libcache_redis.so
//!   options:
//!     url: redis://:password@127.0.0.1:6379/0   # default redis://127.0.0.1:6379/
//!     keyPrefix: "ds:"                          # default empty
//!     ttl: 3600                                 # seconds; default none (keys never expire)
//!     connectTimeout: 5000                      # ms, default 5000
//!     responseTimeout: 5000                     # ms, default 5000
//! ```
//!
//! The same library fills the `storage` slot too (`storage: {path: ./libcache_redis.so}`),
//! for a Redis that persists (AOF/RDB).
//!
//! * `set` writes both keys in one `MULTI`/`EXEC` transaction (with `EX ttl` when `ttl` is
//!   set), so readers never see a version with another write's data.
//! * `get` reads both with one `MGET`; a record missing either key is missing.
//! * `head` is one `GET`, `head_bulk` one `MGET` of version keys, `delete` and `delete_bulk`
//!   one `DEL` of every key involved.
//!
//! One multiplexed connection (redis-rs `ConnectionManager`) carries every call and is
//! re-established in the background when it breaks. A call that failed because the
//! connection dropped is retried once (every call is idempotent); other errors are returned.
//! Each call is bounded by `connectTimeout + responseTimeout`, so a dead server yields an error,
//! never a hang. The keys of one record share no hash tag, so this is for a single Redis (or a
//! replicated primary), not Redis Cluster.
//!
//! Durability is Redis's: a resolved `set` is in the server's memory, on disk only as its
//! persistence settings (AOF `appendfsync`) say.

use std::time::Duration;

use deepstream_plugin::sdk::{Context, Plugin, RecordStore, Stored};
use redis::{
    Client, Cmd, FromRedisValue, Pipeline, RedisError,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use serde::Deserialize;
use tokio::sync::OnceCell;

/// The `options:` of the plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// Redis URL (default `redis://127.0.0.1:6379/`); `rediss://` is not supported (no TLS).
    #[serde(default = "default_url")]
    pub url: String,
    /// Prepended to every key (default empty).
    #[serde(default)]
    pub key_prefix: String,
    /// Expiry of both keys of a record, in seconds, renewed by every `set` (default: none).
    #[serde(default)]
    pub ttl: Option<u64>,
    /// Milliseconds allowed to open the connection (default 5000).
    #[serde(default = "default_timeout")]
    pub connect_timeout: u64,
    /// Milliseconds allowed for an answer (default 5000).
    #[serde(default = "default_timeout")]
    pub response_timeout: u64,
}

fn default_url() -> String {
    "redis://127.0.0.1:6379/".into()
}

fn default_timeout() -> u64 {
    5_000
}

impl Default for Options {
    fn default() -> Self {
        Options {
            url: default_url(),
            key_prefix: String::new(),
            ttl: None,
            connect_timeout: default_timeout(),
            response_timeout: default_timeout(),
        }
    }
}

/// Reconnection attempts the connection manager makes before reporting an error.
const RECONNECT_RETRIES: usize = 2;

/// The plugin: the client, the lazily built connection, the key layout.
pub struct RedisCache {
    client: Client,
    connection: OnceCell<ConnectionManager>,
    key_prefix: String,
    ttl: Option<u64>,
    connect_timeout: Duration,
    response_timeout: Duration,
    /// The server address, without credentials.
    target: String,
}

/// `scheme://host…` with any `user:password@` removed, for messages.
fn without_credentials(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Whether the connection (not the command) failed, so a retry on a new one may succeed.
fn is_connection_error(error: &RedisError) -> bool {
    error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal()
}

impl RedisCache {
    /// Parses the options (what [`Plugin::new`] does, minus the host context). Connects
    /// nothing: the connection is opened by `when_ready` or the first call.
    pub fn from_options(options: Options) -> Result<Self, String> {
        let target = without_credentials(&options.url);
        let client = Client::open(options.url.as_str())
            .map_err(|error| format!("cache-redis: bad `url` {target}: {error}"))?;
        if options.ttl == Some(0) {
            return Err("cache-redis: `ttl` must be positive (leave it out for no expiry)".into());
        }
        if options.connect_timeout == 0 || options.response_timeout == 0 {
            return Err(
                "cache-redis: `connectTimeout` and `responseTimeout` must be positive".into(),
            );
        }
        Ok(RedisCache {
            client,
            connection: OnceCell::new(),
            key_prefix: options.key_prefix,
            ttl: options.ttl,
            connect_timeout: Duration::from_millis(options.connect_timeout),
            response_timeout: Duration::from_millis(options.response_timeout),
            target,
        })
    }

    fn version_key(&self, name: &str) -> String {
        format!("{}{name}_v", self.key_prefix)
    }

    fn data_key(&self, name: &str) -> String {
        format!("{}{name}_d", self.key_prefix)
    }

    /// The shared connection manager, built on first use (it needs the runtime).
    async fn connection(&self) -> Result<ConnectionManager, String> {
        self.connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.response_timeout))
                    .set_number_of_retries(RECONNECT_RETRIES)
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await
            .cloned()
            .map_err(|error| format!("redis {}: {error}", self.target))
    }

    /// Runs one command or pipeline, bounded in time, retried once if the connection broke.
    async fn run<T: FromRedisValue>(&self, request: Request<'_>) -> Result<T, String> {
        let limit = self.connect_timeout + self.response_timeout;
        let attempt = || async {
            let mut connection = self.connection().await.map_err(Error::Other)?;
            let result = match request {
                Request::Cmd(cmd) => {
                    tokio::time::timeout(limit, cmd.query_async(&mut connection)).await
                }
                Request::Pipeline(pipe) => {
                    tokio::time::timeout(limit, pipe.query_async(&mut connection)).await
                }
            };
            match result {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) if is_connection_error(&error) => {
                    Err(Error::Connection(format!("redis {}: {error}", self.target)))
                }
                Ok(Err(error)) => Err(Error::Other(format!("redis {}: {error}", self.target))),
                Err(_) => Err(Error::Other(format!(
                    "redis {}: no answer within {} ms",
                    self.target,
                    limit.as_millis()
                ))),
            }
        };
        match attempt().await {
            Err(Error::Connection(message)) => {
                tracing::warn!("{message}; retrying once on a new connection");
                attempt().await.map_err(Error::message)
            }
            other => other.map_err(Error::message),
        }
    }
}

/// What [`RedisCache::run`] sends.
#[derive(Clone, Copy)]
enum Request<'a> {
    Cmd(&'a Cmd),
    Pipeline(&'a Pipeline),
}

/// Why one attempt failed.
enum Error {
    /// The connection broke: worth one retry.
    Connection(String),
    Other(String),
}

impl Error {
    fn message(self) -> String {
        match self {
            Error::Connection(message) | Error::Other(message) => message,
        }
    }
}

fn parse_version(text: &str, key: &str) -> Result<i32, String> {
    text.parse()
        .map_err(|_| format!("redis: {key} holds {text:?}, not a record version"))
}

impl Plugin for RedisCache {
    type Options = Options;

    fn new(_context: Context, options: Options) -> Result<Self, String> {
        Self::from_options(options)
    }

    fn description(&self) -> String {
        if self.key_prefix.is_empty() {
            format!("redis {}", self.target)
        } else {
            format!("redis {} (keys {}…)", self.target, self.key_prefix)
        }
    }

    async fn when_ready(&self) -> Result<(), String> {
        let pong: String = self.run(Request::Cmd(&redis::cmd("PING"))).await?;
        if pong != "PONG" {
            return Err(format!("redis {}: PING answered {pong:?}", self.target));
        }
        Ok(())
    }
}

impl RecordStore for RedisCache {
    async fn get(&self, name: String) -> Result<Option<Stored>, String> {
        let version_key = self.version_key(&name);
        let mut cmd = redis::cmd("MGET");
        cmd.arg(&version_key).arg(self.data_key(&name));
        let values: Vec<Option<String>> = self.run(Request::Cmd(&cmd)).await?;
        match values.as_slice() {
            [Some(version), Some(data)] => Ok(Some(Stored {
                version: parse_version(version, &version_key)?,
                data: data.clone(),
            })),
            // Missing, or half expired / half deleted by someone else: not a record.
            [_, _] => Ok(None),
            other => Err(format!(
                "redis {}: MGET of 2 keys answered {} values",
                self.target,
                other.len()
            )),
        }
    }

    async fn set(&self, name: String, version: i32, data: String) -> Result<(), String> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (key, value) in [
            (self.version_key(&name), version.to_string()),
            (self.data_key(&name), data),
        ] {
            let command = pipe.cmd("SET").arg(key).arg(value);
            if let Some(ttl) = self.ttl {
                command.arg("EX").arg(ttl);
            }
            command.ignore();
        }
        self.run::<()>(Request::Pipeline(&pipe)).await
    }

    async fn delete(&self, name: String) -> Result<(), String> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.version_key(&name)).arg(self.data_key(&name));
        self.run::<()>(Request::Cmd(&cmd)).await
    }

    async fn delete_bulk(&self, names: Vec<String>) -> Result<(), String> {
        if names.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("DEL");
        for name in &names {
            cmd.arg(self.version_key(name)).arg(self.data_key(name));
        }
        self.run::<()>(Request::Cmd(&cmd)).await
    }

    async fn head(&self, name: String) -> Result<Option<i32>, String> {
        let key = self.version_key(&name);
        let mut cmd = redis::cmd("GET");
        cmd.arg(&key);
        let version: Option<String> = self.run(Request::Cmd(&cmd)).await?;
        version.map(|text| parse_version(&text, &key)).transpose()
    }

    async fn head_bulk(&self, names: Vec<String>) -> Result<Vec<(String, i32)>, String> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = names.iter().map(|name| self.version_key(name)).collect();
        let mut cmd = redis::cmd("MGET");
        cmd.arg(&keys);
        let versions: Vec<Option<String>> = self.run(Request::Cmd(&cmd)).await?;
        if versions.len() != names.len() {
            return Err(format!(
                "redis {}: MGET of {} keys answered {} values",
                self.target,
                names.len(),
                versions.len()
            ));
        }
        let mut found = Vec::new();
        for ((name, key), version) in names.into_iter().zip(&keys).zip(versions) {
            if let Some(text) = version {
                found.push((name, parse_version(&text, key)?));
            }
        }
        Ok(found)
    }
}

deepstream_plugin::export_plugin! {
    name: "cache-redis",
    cache: RedisCache,
    storage: RedisCache,
}
