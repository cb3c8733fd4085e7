//! deepstream storage plugin: records in a PostgreSQL table, data as JSONB.
//!
//! ```yaml
//! storage:
//!   path: ./libstorage_postgres.so
//!   options:
//!     url: postgres://deepstream:secret@db.internal:5432/deepstream   # required
//!     schema: public              # default public; created on start if missing
//!     table: deepstream_records   # default deepstream_records; created on start if missing
//!     poolSize: 10                # default 10 connections at most
//!     connectTimeout: 5000        # ms, default 5000: opening a connection / waiting for one
//!     queryTimeout: 10000         # ms, default 10000: one statement
//! ```
//!
//! `url` is a libpq-style connection string (URL or `key=value` form, as `tokio-postgres`
//! reads it; no TLS). The table is
//! `(name TEXT PRIMARY KEY, version INTEGER NOT NULL, data JSONB NOT NULL)`: the version is a
//! column beside the data, never inside it. JSONB stores objects and arrays alike; it
//! normalises the text (whitespace, key order, duplicate keys), so `get` returns equivalent
//! JSON, not byte-identical text. JSON containing `\u0000` cannot be stored (a JSONB limit).
//!
//! ## Durability
//!
//! Each operation is one statement in its own transaction: when `set`/`delete` resolves, the
//! commit has returned, so the change is as durable as the server's settings make a commit
//! (with PostgreSQL's default `synchronous_commit=on`, flushed to its WAL on disk).
//!
//! ## Failures
//!
//! Nothing panics and nothing hangs: waiting for a pool slot is bounded by `queryTimeout`,
//! opening a connection by `connectTimeout`, each statement by `queryTimeout` (a timed-out
//! statement is cancelled on the server and its connection discarded). An operation that
//! fails because its connection broke (server restart, killed backend, network) drops every
//! idle pooled connection and is retried once on a new one — safe because every statement is
//! idempotent (upsert, delete, reads). Other errors are returned as they are; the pool opens
//! new connections on later calls, so the plugin recovers when the server is back.

use std::{str::FromStr, time::Duration};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use deepstream_plugin::sdk::{Context, Plugin, RecordStore, Stored};
use serde::Deserialize;
use tokio_postgres::{NoTls, Row, error::SqlState, types::ToSql};

/// The `options:` of the plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// Connection string, e.g. `postgres://user:password@host:5432/database`. Required.
    pub url: String,
    /// Schema of the table (default `public`).
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Table holding the records (default `deepstream_records`).
    #[serde(default = "default_table")]
    pub table: String,
    /// Most connections kept open (default 10).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Milliseconds allowed to open a connection (default 5000).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: u64,
    /// Milliseconds allowed for one statement, and for waiting for a free connection
    /// (default 10000).
    #[serde(default = "default_query_timeout")]
    pub query_timeout: u64,
}

fn default_schema() -> String {
    "public".into()
}

fn default_table() -> String {
    "deepstream_records".into()
}

fn default_pool_size() -> usize {
    10
}

fn default_connect_timeout() -> u64 {
    5_000
}

fn default_query_timeout() -> u64 {
    10_000
}

impl Options {
    /// The options with every default, for `url`.
    pub fn with_url(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            schema: default_schema(),
            table: default_table(),
            pool_size: default_pool_size(),
            connect_timeout: default_connect_timeout(),
            query_timeout: default_query_timeout(),
        }
    }
}

/// `"name"`, with inner quotes doubled: any schema or table name is safe in SQL.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQL of every operation, with the qualified table name quoted in.
struct Sql {
    get: String,
    set: String,
    delete: String,
    delete_bulk: String,
    head: String,
    head_bulk: String,
    create_schema: String,
    create_table: String,
    /// `schema.table` quoted, for `to_regclass`.
    qualified: String,
}

impl Sql {
    fn new(schema: &str, table: &str) -> Sql {
        let qualified = format!("{}.{}", quote_identifier(schema), quote_identifier(table));
        let t = &qualified;
        Sql {
            get: format!("SELECT version, data::text FROM {t} WHERE name = $1"),
            set: format!(
                "INSERT INTO {t} (name, version, data) VALUES ($1, $2, $3::text::jsonb) \
                 ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, data = EXCLUDED.data"
            ),
            delete: format!("DELETE FROM {t} WHERE name = $1"),
            delete_bulk: format!("DELETE FROM {t} WHERE name = ANY($1)"),
            head: format!("SELECT version FROM {t} WHERE name = $1"),
            head_bulk: format!("SELECT name, version FROM {t} WHERE name = ANY($1)"),
            create_schema: format!("CREATE SCHEMA IF NOT EXISTS {}", quote_identifier(schema)),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} \
                 (name TEXT PRIMARY KEY, version INTEGER NOT NULL, data JSONB NOT NULL)"
            ),
            qualified,
        }
    }
}

/// Why one attempt failed.
enum Failure {
    /// The connection broke: worth one retry on a new connection.
    Connection(String),
    /// Anything else: reported as is.
    Other(String),
}

impl Failure {
    fn message(self) -> String {
        match self {
            Failure::Connection(message) | Failure::Other(message) => message,
        }
    }
}

/// The error with its causes (tokio-postgres keeps the server's message in the source).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether `error` means the connection is gone (rather than a bad statement).
fn is_connection_error(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        return code.code().starts_with("08") // connection_exception class
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW;
    }
    // No SQLSTATE: an I/O error, or a protocol failure on a half-dead connection.
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The plugin: a connection pool and the prepared SQL.
pub struct PostgresStorage {
    pool: Pool,
    sql: Sql,
    query_timeout: Duration,
    /// `host:port/database schema.table`, without credentials.
    target: String,
}

impl PostgresStorage {
    /// Builds the pool (what [`Plugin::new`] does, minus the host context). Connects nothing:
    /// connections are opened on first use, and `when_ready` opens the first one.
    pub fn from_options(options: Options) -> Result<Self, String> {
        if options.schema.is_empty() || options.table.is_empty() {
            return Err("storage-postgres: `schema` and `table` must not be empty".into());
        }
        if options.pool_size == 0 {
            return Err("storage-postgres: `poolSize` must be at least 1".into());
        }
        if options.connect_timeout == 0 || options.query_timeout == 0 {
            return Err(
                "storage-postgres: `connectTimeout` and `queryTimeout` must be positive".into(),
            );
        }
        let connect_timeout = Duration::from_millis(options.connect_timeout);
        let query_timeout = Duration::from_millis(options.query_timeout);

        let mut config = tokio_postgres::Config::from_str(&options.url)
            .map_err(|error| format!("storage-postgres: bad `url`: {}", describe(&error)))?;
        config.connect_timeout(connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("deepstream");
        }
        let target = describe_target(&config, &options.schema, &options.table);

        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(query_timeout))
            .create_timeout(Some(connect_timeout))
            .recycle_timeout(Some(connect_timeout))
            .build()
            .map_err(|error| format!("storage-postgres: cannot build the pool: {error}"))?;
        Ok(PostgresStorage {
            pool,
            sql: Sql::new(&options.schema, &options.table),
            query_timeout,
            target,
        })
    }

    /// A column of a result row; a type mismatch (a table created with other column types)
    /// is an error, not a panic.
    fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
        &self,
        row: &'a Row,
        index: usize,
    ) -> Result<T, String> {
        row.try_get(index)
            .map_err(|error| format!("postgres {}: {}", self.target, describe(&error)))
    }

    /// A pooled connection, or why none could be had in time.
    async fn client(&self) -> Result<Object, String> {
        self.pool.get().await.map_err(|error| {
            let reason = match &error {
                PoolError::Backend(backend) => describe(backend),
                other => other.to_string(),
            };
            format!("postgres {}: no connection: {reason}", self.target)
        })
    }

    /// One try: a connection from the pool, the statement under `queryTimeout`.
    async fn attempt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Failure> {
        let client = self.client().await.map_err(Failure::Other)?;
        let run = async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        };
        match tokio::time::timeout(self.query_timeout, run).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(error)) => {
                let message = format!("postgres {}: {}", self.target, describe(&error));
                if is_connection_error(&error) {
                    // Never hand this connection out again.
                    drop(Object::take(client));
                    Err(Failure::Connection(message))
                } else {
                    Err(Failure::Other(message))
                }
            }
            Err(_) => {
                // Stop the statement on the server and discard the connection (its state is
                // unknown).
                let cancel = client.cancel_token();
                drop(Object::take(client));
                tokio::spawn(async move {
                    let _ = cancel.cancel_query(NoTls).await;
                });
                Err(Failure::Other(format!(
                    "postgres {}: statement timed out after {} ms",
                    self.target,
                    self.query_timeout.as_millis()
                )))
            }
        }
    }

    /// Runs one statement; retried once on a fresh connection if the connection broke.
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, String> {
        match self.attempt(sql, params).await {
            Err(Failure::Connection(message)) => {
                tracing::warn!("{message}; retrying once on a new connection");
                // Idle connections most likely broke the same way (server restart): drop them
                // so the retry opens a new one.
                self.pool.retain(|_, _| false);
                self.attempt(sql, params).await.map_err(Failure::message)
            }
            other => other.map_err(Failure::message),
        }
    }

    /// Creates the schema and table when missing. Checks first, so a user without CREATE
    /// rights can use an existing table.
    async fn create_table(&self) -> Result<(), String> {
        let exists = self
            .query("SELECT to_regclass($1) IS NOT NULL", &[&self.sql.qualified])
            .await?
            .first()
            .map(|row| self.column::<bool>(row, 0))
            .transpose()?
            .unwrap_or(false);
        if exists {
            return Ok(());
        }
        let client = self.client().await?;
        let create = async {
            client.batch_execute(&self.sql.create_schema).await?;
            client.batch_execute(&self.sql.create_table).await
        };
        match tokio::time::timeout(self.query_timeout, create).await {
            Ok(Ok(())) => Ok(()),
            // Another server created it at the same moment: the catalog's unique index
            // reports the race; the table is there either way.
            Ok(Err(error))
                if error.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    || error.code() == Some(&SqlState::DUPLICATE_SCHEMA)
                    || error.code() == Some(&SqlState::DUPLICATE_TABLE) =>
            {
                Ok(())
            }
            Ok(Err(error)) => Err(format!(
                "postgres {}: cannot create the table: {}",
                self.target,
                describe(&error)
            )),
            Err(_) => Err(format!(
                "postgres {}: creating the table timed out",
                self.target
            )),
        }
    }
}

/// `host:port/database schema.table`, for messages (never the password).
fn describe_target(config: &tokio_postgres::Config, schema: &str, table: &str) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{database} {schema}.{table}")
}

impl Plugin for PostgresStorage {
    type Options = Options;

    fn new(_context: Context, options: Options) -> Result<Self, String> {
        Self::from_options(options)
    }

    fn description(&self) -> String {
        format!("postgres storage {}", self.target)
    }

    async fn when_ready(&self) -> Result<(), String> {
        self.create_table().await
    }

    async fn close(&self) -> Result<(), String> {
        self.pool.close();
        Ok(())
    }
}

impl RecordStore for PostgresStorage {
    async fn get(&self, name: String) -> Result<Option<Stored>, String> {
        let rows = self.query(&self.sql.get, &[&name]).await?;
        rows.first()
            .map(|row| {
                Ok(Stored {
                    version: self.column(row, 0)?,
                    data: self.column(row, 1)?,
                })
            })
            .transpose()
    }

    async fn set(&self, name: String, version: i32, data: String) -> Result<(), String> {
        self.query(&self.sql.set, &[&name, &version, &data]).await?;
        Ok(())
    }

    async fn delete(&self, name: String) -> Result<(), String> {
        self.query(&self.sql.delete, &[&name]).await?;
        Ok(())
    }

    async fn delete_bulk(&self, names: Vec<String>) -> Result<(), String> {
        if names.is_empty() {
            return Ok(());
        }
        self.query(&self.sql.delete_bulk, &[&names]).await?;
        Ok(())
    }

    async fn head(&self, name: String) -> Result<Option<i32>, String> {
        let rows = self.query(&self.sql.head, &[&name]).await?;
        rows.first().map(|row| self.column(row, 0)).transpose()
    }

    async fn head_bulk(&self, names: Vec<String>) -> Result<Vec<(String, i32)>, String> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.query(&self.sql.head_bulk, &[&names]).await?;
        rows.iter()
            .map(|row| Ok((self.column(row, 0)?, self.column(row, 1)?)))
            .collect()
    }
}

deepstream_plugin::export_plugin! {
    name: "storage-postgres",
    storage: PostgresStorage,
}
