//! deepstream storage plugin: records in an embedded SQLite database (no server, no system
//! library: SQLite is compiled in).
//!
//! ```yaml
//! storage:
//!   path: ./libstorage_sqlite.so
//!   options:
//!     path: /var/lib/deepstream/records.sqlite   # default: deepstream-records.sqlite
//!     table: records                              # default: records
//! ```
//!
//! `path` is used as given: a relative path is relative to the server's working directory (use
//! `file(...)` in the config to make it relative to the config file). Missing folders and the
//! file are created. The table
//! `(name TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL)` is created on start
//! if missing; the version is a column beside the data, never inside it, and the data is the
//! record's JSON text exactly as the server handed it over.
//!
//! ## Durability
//!
//! The database runs in WAL mode with `synchronous=FULL`: every transaction's commit appends
//! to the write-ahead log and fsyncs it before the commit returns. **When `set`, `delete` or
//! `delete_bulk` resolves, the change is on disk** and survives a process crash or power loss
//! (given a disk that honours fsync). `synchronous=NORMAL` would drop the per-commit fsync and
//! could lose the last commits on power loss; batching (below) already makes FULL cheap, so
//! the plugin does not offer it.
//!
//! ## Threading
//!
//! SQLite calls block, so one dedicated thread owns the connection and serves requests from a
//! bounded channel; callers await a reply. The thread takes every request already queued
//! (up to 512) and runs them in one transaction with a single commit (one fsync), so many
//! concurrent writers cost about one fsync per batch, and replies only after the commit. A
//! failed commit fails every request of its batch. `head_bulk` and `delete_bulk` are single
//! statements whatever the number of names (`name IN (SELECT value FROM json_each(?))`).
//!
//! Another process may open the same file (SQLite locks it); a writer waits up to 5 s for
//! the lock before the request fails.

use std::{path::PathBuf, thread, time::Duration};

use deepstream_plugin::sdk::{Context, Plugin, RecordStore, Stored};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

/// The `options:` of the plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// The database file (default `deepstream-records.sqlite`, relative to the working dir).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// The table holding the records (default `records`).
    #[serde(default = "default_table")]
    pub table: String,
}

fn default_path() -> PathBuf {
    PathBuf::from("deepstream-records.sqlite")
}

fn default_table() -> String {
    "records".into()
}

impl Default for Options {
    fn default() -> Self {
        Options {
            path: default_path(),
            table: default_table(),
        }
    }
}

/// Requests the worker takes into one transaction at most.
const MAX_BATCH: usize = 512;
/// Requests that may wait in the channel before callers wait to enqueue.
const QUEUE: usize = 1024;
/// How long a statement waits for another process's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Reply<T> = oneshot::Sender<Result<T, String>>;

/// One request to the worker thread.
enum Op {
    /// Answers once the database is open (or with the reason it is not).
    Ping(Reply<()>),
    Get(String, Reply<Option<Stored>>),
    Set(String, i32, String, Reply<()>),
    Delete(String, Reply<()>),
    DeleteBulk(Vec<String>, Reply<()>),
    Head(String, Reply<Option<i32>>),
    HeadBulk(Vec<String>, Reply<Vec<(String, i32)>>),
}

impl Op {
    fn writes(&self) -> bool {
        matches!(self, Op::Set(..) | Op::Delete(..) | Op::DeleteBulk(..))
    }

    /// Answers the request with `error`. A caller that gave up (dropped its future) no
    /// longer listens; sending to it does nothing.
    fn fail(self, error: &str) {
        let error = error.to_owned();
        match self {
            Op::Ping(reply)
            | Op::Set(.., reply)
            | Op::Delete(_, reply)
            | Op::DeleteBulk(_, reply) => {
                let _ = reply.send(Err(error));
            }
            Op::Get(_, reply) => {
                let _ = reply.send(Err(error));
            }
            Op::Head(_, reply) => {
                let _ = reply.send(Err(error));
            }
            Op::HeadBulk(_, reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

enum Command {
    Op(Op),
    /// Stop after the requests before it; answered once the database file is closed.
    Close(oneshot::Sender<()>),
}

/// The SQL of every operation, with the table name quoted in.
struct Sql {
    get: String,
    set: String,
    delete: String,
    delete_bulk: String,
    head: String,
    head_bulk: String,
}

impl Sql {
    fn new(table: &str) -> Sql {
        let table = quote_identifier(table);
        Sql {
            get: format!("SELECT version, data FROM {table} WHERE name = ?1"),
            set: format!(
                "INSERT INTO {table} (name, version, data) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version, data = excluded.data"
            ),
            delete: format!("DELETE FROM {table} WHERE name = ?1"),
            delete_bulk: format!(
                "DELETE FROM {table} WHERE name IN (SELECT value FROM json_each(?1))"
            ),
            head: format!("SELECT version FROM {table} WHERE name = ?1"),
            head_bulk: format!(
                "SELECT name, version FROM {table} WHERE name IN (SELECT value FROM json_each(?1))"
            ),
        }
    }
}

/// `"name"`, with inner quotes doubled: any table name is safe in SQL.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The names as a JSON array, for `json_each`.
fn json_names(names: &[String]) -> String {
    // Serialising a list of strings cannot fail.
    serde_json::to_string(names).unwrap_or_else(|_| "[]".into())
}

fn sql_error(error: rusqlite::Error) -> String {
    format!("sqlite: {error}")
}

/// Opens the database, sets the journal and durability modes, creates the table.
fn open(path: &PathBuf, table: &str) -> Result<Connection, String> {
    let describe = |error: rusqlite::Error| format!("sqlite {}: {error}", path.display());
    // A fresh install has no data folder yet; the database file's folder is created.
    if let Some(folder) = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder).map_err(|error| {
            format!(
                "sqlite {}: cannot create {}: {error}",
                path.display(),
                folder.display()
            )
        })?;
    }
    let connection = Connection::open(path).map_err(describe)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(describe)?;
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(describe)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "sqlite could not switch to WAL mode");
    }
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(describe)?;
    connection
        .execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} \
             (name TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL)",
            quote_identifier(table)
        ))
        .map_err(describe)?;
    Ok(connection)
}

/// The thread that owns the connection.
struct Worker {
    connection: Connection,
    sql: Sql,
}

impl Worker {
    /// Serves requests until the channel closes or a `Close` arrives.
    fn serve(mut self, mut requests: mpsc::Receiver<Command>) {
        let mut closers = Vec::new();
        while let Some(first) = requests.blocking_recv() {
            let mut ops = Vec::new();
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Op(op) => ops.push(op),
                    Command::Close(done) => closers.push(done),
                }
                if ops.len() < MAX_BATCH && closers.is_empty() {
                    next = requests.try_recv().ok();
                }
            }
            self.run_batch(ops);
            if !closers.is_empty() {
                break;
            }
        }
        // Requests still queued are dropped: their callers see "closed".
        drop(requests);
        if let Err((_, error)) = self.connection.close() {
            tracing::warn!("sqlite: closing the database failed: {error}");
        }
        for done in closers {
            let _ = done.send(());
        }
    }

    /// Runs a batch; writes go in one transaction and every reply waits for its commit.
    fn run_batch(&mut self, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        if !ops.iter().any(Op::writes) {
            for op in ops {
                let answer = apply(&self.connection, &self.sql, op);
                answer(None);
            }
            return;
        }
        let transaction = match self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(transaction) => transaction,
            Err(error) => {
                let error = sql_error(error);
                for op in ops {
                    op.fail(&error);
                }
                return;
            }
        };
        let answers: Vec<Answer> = ops
            .into_iter()
            .map(|op| apply(&transaction, &self.sql, op))
            .collect();
        let committed = transaction.commit().map_err(sql_error).err();
        if let Some(error) = &committed {
            tracing::error!("{error}: a batch of {} requests failed", answers.len());
        }
        for answer in answers {
            answer(committed.as_deref());
        }
    }
}

/// Sends a computed result, or the commit error if the batch's commit failed.
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

fn answer_with<T: Send + 'static>(reply: Reply<T>, result: Result<T, String>) -> Answer {
    Box::new(move |commit_error| {
        let result = match commit_error {
            Some(error) => Err(error.to_owned()),
            None => result,
        };
        let _ = reply.send(result);
    })
}

/// Runs one request's statement; its reply is held until the batch is committed.
fn apply(connection: &Connection, sql: &Sql, op: Op) -> Answer {
    match op {
        Op::Ping(reply) => answer_with(reply, Ok(())),
        Op::Get(name, reply) => {
            let result = connection
                .prepare_cached(&sql.get)
                .and_then(|mut statement| {
                    statement
                        .query_row(params![name], |row| {
                            Ok(Stored {
                                version: row.get(0)?,
                                data: row.get(1)?,
                            })
                        })
                        .optional()
                });
            answer_with(reply, result.map_err(sql_error))
        }
        Op::Set(name, version, data, reply) => {
            let result = connection
                .prepare_cached(&sql.set)
                .and_then(|mut statement| statement.execute(params![name, version, data]));
            answer_with(reply, result.map(drop).map_err(sql_error))
        }
        Op::Delete(name, reply) => {
            let result = connection
                .prepare_cached(&sql.delete)
                .and_then(|mut statement| statement.execute(params![name]));
            answer_with(reply, result.map(drop).map_err(sql_error))
        }
        Op::DeleteBulk(names, reply) => {
            let result = connection
                .prepare_cached(&sql.delete_bulk)
                .and_then(|mut statement| statement.execute(params![json_names(&names)]));
            answer_with(reply, result.map(drop).map_err(sql_error))
        }
        Op::Head(name, reply) => {
            let result = connection
                .prepare_cached(&sql.head)
                .and_then(|mut statement| {
                    statement
                        .query_row(params![name], |row| row.get(0))
                        .optional()
                });
            answer_with(reply, result.map_err(sql_error))
        }
        Op::HeadBulk(names, reply) => {
            let result = connection
                .prepare_cached(&sql.head_bulk)
                .and_then(|mut statement| {
                    statement
                        .query_map(params![json_names(&names)], |row| {
                            Ok((row.get(0)?, row.get(1)?))
                        })?
                        .collect::<Result<Vec<(String, i32)>, _>>()
                });
            answer_with(reply, result.map_err(sql_error))
        }
    }
}

/// When the database could not be opened: every request gets the reason.
fn refuse(error: String, mut requests: mpsc::Receiver<Command>) {
    while let Some(command) = requests.blocking_recv() {
        match command {
            Command::Op(op) => op.fail(&error),
            Command::Close(done) => {
                let _ = done.send(());
                return;
            }
        }
    }
}

/// The plugin: a handle to the worker thread.
pub struct SqliteStorage {
    requests: mpsc::Sender<Command>,
    path: PathBuf,
    table: String,
}

impl SqliteStorage {
    /// Starts the worker thread, which opens the database (what [`Plugin::new`] does, minus
    /// the host context). Never blocks; open errors surface from `when_ready` and every call.
    pub fn from_options(options: Options) -> Result<Self, String> {
        if options.table.is_empty() {
            return Err("storage-sqlite: `table` must not be empty".into());
        }
        let (requests, receiver) = mpsc::channel(QUEUE);
        let path = options.path.clone();
        let table = options.table.clone();
        thread::Builder::new()
            .name("deepstream-sqlite".into())
            .spawn(move || match open(&path, &table) {
                Ok(connection) => Worker {
                    connection,
                    sql: Sql::new(&table),
                }
                .serve(receiver),
                Err(error) => {
                    tracing::error!("{error}");
                    refuse(error, receiver);
                }
            })
            .map_err(|error| format!("storage-sqlite: cannot start its thread: {error}"))?;
        Ok(SqliteStorage {
            requests,
            path: options.path,
            table: options.table,
        })
    }

    /// Sends one request and waits for its answer.
    async fn call<T>(&self, request: impl FnOnce(Reply<T>) -> Op) -> Result<T, String> {
        let closed = || format!("sqlite storage {} is closed", self.path.display());
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Command::Op(request(reply)))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

impl Plugin for SqliteStorage {
    type Options = Options;

    fn new(_context: Context, options: Options) -> Result<Self, String> {
        Self::from_options(options)
    }

    fn description(&self) -> String {
        format!(
            "sqlite storage {} (table {})",
            self.path.display(),
            self.table
        )
    }

    async fn when_ready(&self) -> Result<(), String> {
        self.call(Op::Ping).await
    }

    async fn close(&self) -> Result<(), String> {
        let (done, closed) = oneshot::channel();
        if self.requests.send(Command::Close(done)).await.is_ok() {
            // The worker drops `done` only when it already stopped; closed either way.
            let _ = closed.await;
        }
        Ok(())
    }
}

impl RecordStore for SqliteStorage {
    async fn get(&self, name: String) -> Result<Option<Stored>, String> {
        self.call(|reply| Op::Get(name, reply)).await
    }

    async fn set(&self, name: String, version: i32, data: String) -> Result<(), String> {
        self.call(|reply| Op::Set(name, version, data, reply)).await
    }

    async fn delete(&self, name: String) -> Result<(), String> {
        self.call(|reply| Op::Delete(name, reply)).await
    }

    async fn delete_bulk(&self, names: Vec<String>) -> Result<(), String> {
        if names.is_empty() {
            return Ok(());
        }
        self.call(|reply| Op::DeleteBulk(names, reply)).await
    }

    async fn head(&self, name: String) -> Result<Option<i32>, String> {
        self.call(|reply| Op::Head(name, reply)).await
    }

    async fn head_bulk(&self, names: Vec<String>) -> Result<Vec<(String, i32)>, String> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.call(|reply| Op::HeadBulk(names, reply)).await
    }
}

deepstream_plugin::export_plugin! {
    name: "storage-sqlite",
    storage: SqliteStorage,
}
