//! Records survive a server restart: what a client wrote with write acknowledgements
//! (protocol.md §5.5–§5.7) is read back by a new server process on the same config, through
//! the `storage-sqlite` library, and through `storage-postgres` with `cache-redis` as the cache
//! (server.md §2.4.3–§2.4.4), also after the cache lost everything.
//!
//! Concurrent writers on shared records (20 clients × 20 pipelined force writes on 10
//! records, three rounds) must end at a version equal to the number of accepted writes: in the
//! broadcasts (versions 1, 2, 3 … without gap), in the cache, in storage (read directly for
//! PostgreSQL) and after a restart. A WRITE_ACKNOWLEDGEMENT promises the write reached storage
//! (§5.6), so storage may never end at an older version than the last acknowledged one,
//! whatever order the storage writes of one record (which the server issues without waiting
//! for each other) complete in.
//!
//! Needs PostgreSQL (`DEEPSTREAM_TEST_PG_URL`) and Redis (`DEEPSTREAM_TEST_REDIS_URL`) for the
//! `postgres_redis_*` tests; they fail naming the service when it is unreachable.

use std::{collections::BTreeMap, path::Path, time::Duration};

use deepstream::protocol::{Message, RecordAction, Topic};
use deepstream_tests::{
    PgTable, RawClient, RedisKeys, ServerProcess, base_config, free_port, library, pg_client,
    pg_url, quoted, redis_connection, redis_url, unique_name,
};
use serde_json::{Value, json};

/// How many writers and how many writes each, in the concurrency tests.
const WRITERS: usize = 20;
const WRITES_EACH: usize = 20;
/// How many records the concurrent writers share.
const SHARED_RECORDS: usize = 10;
/// Records created by a subscription and updated at once, in the restart tests.
const SUBSCRIBED: usize = 20;
/// Rounds of concurrent writes, each on records of its own (the race they look for does not
/// show in every round).
const ROUNDS: usize = 3;

/// A YAML scalar holding `text` exactly (a JSON string is a YAML double-quoted scalar).
fn sqlite_config(port: u16, database: &Path) -> String {
    format!(
        "{}storage:\n  path: {}\n  options:\n    path: {}\n",
        base_config(port),
        quoted(&library("storage_sqlite").display().to_string()),
        quoted(&database.display().to_string()),
    )
}

fn postgres_redis_config(port: u16, table: &PgTable, keys: &RedisKeys) -> String {
    format!(
        "{}storage:\n  path: {}\n  options:\n    url: {}\n    table: {}\n\
         cache:\n  path: {}\n  options:\n    url: {}\n    keyPrefix: {}\n",
        base_config(port),
        quoted(&library("storage_postgres").display().to_string()),
        quoted(&pg_url()),
        quoted(&table.name),
        quoted(&library("cache_redis").display().to_string()),
        quoted(&redis_url()),
        quoted(&keys.prefix),
    )
}

/// A server on `storage-postgres` with `cache-redis`, its records under a table and a key
/// prefix of their own.
struct PostgresRedis {
    /// Where the cache is emptied to make the server read from PostgreSQL.
    redis: redis::aio::MultiplexedConnection,
    /// The storage table, read directly to check what PostgreSQL holds.
    table: PgTable,
    /// The cache's key prefix.
    keys: RedisKeys,
    port: u16,
    config: String,
}

impl PostgresRedis {
    /// Fails naming the service when PostgreSQL or Redis is unreachable.
    async fn new(tag: &str) -> PostgresRedis {
        let redis = redis_connection().await;
        drop(pg_client().await);
        let (table, keys, port) = (PgTable::new(tag), RedisKeys::new(tag), free_port());
        let config = postgres_redis_config(port, &table, &keys);
        PostgresRedis {
            redis,
            table,
            keys,
            port,
            config,
        }
    }

    fn start(&self) -> ServerProcess {
        ServerProcess::start(&self.config, self.port)
    }

    /// Stops `server` and checks that PostgreSQL holds `expected` (names under `prefix`).
    async fn stop_and_check_storage(
        &self,
        server: ServerProcess,
        prefix: &str,
        expected: &Written,
    ) {
        stop(server);
        assert_holds(&self.table.rows(prefix).await, expected, "PostgreSQL");
    }

    /// Empties the cache, starts a server and reads `expected` back (from PostgreSQL).
    async fn restart_without_cache(&mut self, expected: &Written) -> ServerProcess {
        assert!(
            self.keys.clear(&mut self.redis).await > 0,
            "the records were in Redis"
        );
        let server = self.start();
        assert_read_back(self.port, expected, "after the restart without cache").await;
        server
    }
}

/// Stops `server` with SIGTERM and checks it exited cleanly.
fn stop(server: ServerProcess) {
    let (status, output) = server.stop();
    assert!(
        status.success(),
        "deepstream exited with {status}:\n{output}"
    );
}

/// A record write asking for a write acknowledgement.
fn write(action: RecordAction, name: &str, version: i32, correlation_id: &str) -> Message {
    Message::new(Topic::Record, action)
        .with_name(name)
        .with_version(version)
        .with_correlation_id(correlation_id)
        .with_write_ack(true)
}

/// The reply to the write with `correlation_id` (other messages are skipped).
async fn reply_to(client: &mut RawClient, correlation_id: &str) -> Message {
    loop {
        let message = client
            .recv()
            .await
            .expect("the server closed the connection");
        if message.topic == Topic::Record
            && message.correlation_id.as_deref() == Some(correlation_id)
        {
            return message;
        }
    }
}

/// Sends `message` and asserts the server acknowledges it.
async fn acked(client: &mut RawClient, message: Message) {
    let correlation_id = message.correlation_id.clone().expect("a correlationId");
    client.send(&message).await;
    let reply = reply_to(client, &correlation_id).await;
    assert_eq!(
        (reply.action, reply.is_write_ack, reply.is_error),
        (RecordAction::WriteAcknowledgement as i32, Some(true), false),
        "write {message:?} was not acknowledged: {reply:?}"
    );
    assert_eq!(reply.name, message.name, "{reply:?}");
}

/// What the client knows it wrote: record name → (version, data).
type Written = BTreeMap<String, (i32, Value)>;

/// Writes records of every shape through every write action, each acknowledged, and returns
/// what must be read back.
async fn write_some_records(port: u16, prefix: &str) -> Written {
    let mut client = RawClient::logged_in(port, &json!({})).await;
    let mut written = Written::new();
    let mut next_id = 0;
    let mut cid = || {
        next_id += 1;
        next_id.to_string()
    };

    // Whole-record upserts, ending in nested data with text that needs escaping.
    let plain = format!("{prefix}/plain");
    let versions = [
        json!({"a": 1}),
        json!({"a": 2, "b": [1, 2, 3]}),
        json!({
            "nested": {"text": "é ü \"quoted\" \\ /", "n": 1.5, "none": null},
            "list": [true, {}]
        }),
    ];
    for (version, data) in (1..).zip(&versions) {
        let message = write(RecordAction::CreateAndUpdate, &plain, version, &cid())
            .with_data(data.to_string());
        acked(&mut client, message).await;
    }
    written.insert(plain, (3, versions[2].clone()));

    // A list: a record whose data is an array.
    let list = format!("{prefix}/list");
    for (version, data) in [(1, json!(["x", "y"])), (2, json!(["x", "y", "z"]))] {
        let message = write(RecordAction::CreateAndUpdate, &list, version, &cid())
            .with_data(data.to_string());
        acked(&mut client, message).await;
    }
    written.insert(list, (2, json!(["x", "y", "z"])));

    // Paths: upsert, CREATEANDPATCH, PATCH, ERASE.
    let patched = format!("{prefix}/patched");
    let steps = [
        write(RecordAction::CreateAndUpdate, &patched, 1, &cid()).with_data(r#"{"a":{"b":1}}"#),
        write(RecordAction::CreateAndPatch, &patched, 2, &cid())
            .with_path("a.c")
            .with_data("2"),
        write(RecordAction::Patch, &patched, 3, &cid())
            .with_path("d[1]")
            .with_data(r#""second""#),
        write(RecordAction::Erase, &patched, 4, &cid()).with_path("a.b"),
    ];
    for message in steps {
        acked(&mut client, message).await;
    }
    written.insert(patched, (4, json!({"a": {"c": 2}, "d": [null, "second"]})));

    // Created by a subscription (version 0, whose storage write nobody waits for) and updated
    // with an ack as soon as it is read, as `getRecord(name).setWithAck(…)` does; one more is
    // only created.
    let subscribed: Vec<String> = (0..SUBSCRIBED)
        .map(|i| format!("{prefix}/subscribed{i}"))
        .collect();
    let created = format!("{prefix}/created");
    client
        .send(
            &Message::new(Topic::Record, RecordAction::SubscribeCreateAndRead)
                .with_names(subscribed.iter().chain([&created]).map(String::as_str))
                .with_correlation_id("subscribe"),
        )
        .await;
    let (mut responses, mut acks) = (0, 0);
    while responses <= SUBSCRIBED || acks < SUBSCRIBED {
        let message = client
            .recv()
            .await
            .expect("the server closed the connection");
        match message.action_as::<RecordAction>() {
            Some(RecordAction::SubscribeCreateAndRead) if message.is_ack => {}
            Some(RecordAction::ReadResponse) => {
                assert_eq!(message.version, Some(0), "{message:?}");
                responses += 1;
                let name = message.name.expect("a name");
                if name != created {
                    let update = write(RecordAction::Update, &name, 1, &format!("u/{name}"))
                        .with_data(r#"{"after":"subscribe"}"#);
                    client.send(&update).await;
                }
            }
            Some(RecordAction::WriteAcknowledgement) => acks += 1,
            _ => panic!("unexpected reply while creating and updating: {message:?}"),
        }
    }
    for name in subscribed {
        written.insert(name, (1, json!({"after": "subscribe"})));
    }
    written.insert(created, (0, json!({})));
    written
}

/// READ of every record in `expected`: the same version and data.
async fn assert_read_back(port: u16, expected: &Written, when: &str) {
    let mut client = RawClient::logged_in(port, &json!({})).await;
    for (name, (version, data)) in expected {
        client
            .send(&Message::new(Topic::Record, RecordAction::Read).with_name(name.as_str()))
            .await;
        let reply = client.recv().await.expect("a READ reply");
        assert_eq!(
            (reply.action, reply.name.as_deref(), reply.version),
            (
                RecordAction::ReadResponse as i32,
                Some(name.as_str()),
                Some(*version)
            ),
            "{when}: READ {name} must give the last acknowledged version {version}; got {reply:?}"
        );
        assert_eq!(
            reply.parse_data().expect("JSON data").as_ref(),
            Some(data),
            "{when}: data of {name}"
        );
    }
}

/// After a restart: SUBSCRIBECREATEANDREAD finds the stored version instead of creating the
/// record again, and writes continue from it (the next version is accepted, the stored one is
/// taken).
async fn assert_writes_continue(port: u16, name: &str, stored: i32) {
    let mut client = RawClient::logged_in(port, &json!({})).await;
    client
        .send(
            &Message::new(Topic::Record, RecordAction::SubscribeCreateAndRead)
                .with_names([name])
                .with_correlation_id("s"),
        )
        .await;
    let response = loop {
        let message = client.recv().await.expect("READ_RESPONSE");
        if message.action == RecordAction::ReadResponse as i32 {
            break message;
        }
    };
    assert_eq!(response.version, Some(stored), "{response:?}");

    let stale = write(RecordAction::Update, name, stored, "stale").with_data(r#"{"stale":1}"#);
    client.send(&stale).await;
    let reply = reply_to(&mut client, "stale").await;
    assert_eq!(
        (reply.action, reply.version),
        (RecordAction::VersionExists as i32, Some(stored)),
        "{reply:?}"
    );
    let next = write(RecordAction::Update, name, stored + 1, "next").with_data(r#"{"next":1}"#);
    acked(&mut client, next).await;
}

#[tokio::test]
async fn sqlite_records_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("records.sqlite");
    let port = free_port();
    let config = sqlite_config(port, &database);
    let prefix = unique_name("persist");

    let server = ServerProcess::start(&config, port);
    let written = write_some_records(port, &prefix).await;
    assert_read_back(port, &written, "before the restart").await;
    stop(server);

    let server = ServerProcess::start(&config, port);
    assert_read_back(port, &written, "after the restart").await;
    assert_writes_continue(port, &format!("{prefix}/plain"), 3).await;
    stop(server);

    let server = ServerProcess::start(&config, port);
    let mut expected = written.clone();
    expected.insert(format!("{prefix}/plain"), (4, json!({"next": 1})));
    assert_read_back(port, &expected, "after the second restart").await;
    stop(server);
}

/// `found` (read from `backend`) must equal `expected`; the failure lists only the records that
/// differ.
fn assert_holds(found: &Written, expected: &Written, backend: &str) {
    let differences: Vec<String> = expected
        .iter()
        .filter(|(name, want)| found.get(*name) != Some(*want))
        .map(|(name, (version, data))| match found.get(name) {
            Some((got, stored)) => format!(
                "{name}: version {got} {stored}, but version {version} {data} was acknowledged"
            ),
            None => format!("{name}: missing, but version {version} {data} was acknowledged"),
        })
        .chain(
            found
                .keys()
                .filter(|name| !expected.contains_key(*name))
                .map(|name| format!("{name}: never written")),
        )
        .collect();
    assert!(
        differences.is_empty(),
        "{backend} does not hold the last acknowledged version of {} of {} records:\n{}",
        differences.len(),
        expected.len(),
        differences.join("\n")
    );
}

#[tokio::test]
async fn postgres_redis_records_survive_a_restart_and_the_loss_of_the_cache() {
    let mut backends = PostgresRedis::new("ds_persist").await;
    let (port, prefix) = (backends.port, unique_name("persist"));

    let server = backends.start();
    let written = write_some_records(port, &prefix).await;
    assert_read_back(port, &written, "before the restart").await;
    backends
        .stop_and_check_storage(server, &prefix, &written)
        .await;

    // The cache survives the restart: read back from Redis.
    let server = backends.start();
    assert_read_back(port, &written, "after the restart").await;
    stop(server);

    // Redis loses everything: read back from PostgreSQL, which refills the cache.
    let server = backends.restart_without_cache(&written).await;
    // A subscription loads the record through its queue, which copies a storage hit into the
    // cache. (A one-off READ does not: host/src/record/request.rs `lookup` promotes only for
    // the queue, so that a copy can never land after a newer write.)
    let list = format!("{prefix}/list");
    let mut client = RawClient::logged_in(port, &json!({})).await;
    client
        .send(
            &Message::new(Topic::Record, RecordAction::SubscribeCreateAndRead)
                .with_names([list.as_str()])
                .with_correlation_id("s"),
        )
        .await;
    let response = loop {
        let message = client.recv().await.expect("READ_RESPONSE");
        if message.action == RecordAction::ReadResponse as i32 {
            break message;
        }
    };
    assert_eq!(response.version, Some(2), "{response:?}");
    let cached: Vec<Option<String>> = redis::cmd("MGET")
        .arg(format!("{}{list}_v", backends.keys.prefix))
        .arg(format!("{}{list}_d", backends.keys.prefix))
        .query_async(&mut backends.redis)
        .await
        .unwrap();
    assert_eq!(
        cached[0].as_deref(),
        Some("2"),
        "the storage hit was copied to Redis"
    );
    let cached_data: Value = serde_json::from_str(cached[1].as_deref().unwrap()).unwrap();
    assert_eq!(cached_data, json!(["x", "y", "z"]));
    assert_writes_continue(port, &format!("{prefix}/plain"), 3).await;
    stop(server);
    let rows = backends.table.rows(&prefix).await;
    assert_eq!(
        rows[&format!("{prefix}/plain")],
        (4, json!({"next": 1})),
        "the write after the restart is stored"
    );
}

/// What the concurrent writers leave behind, per record: the accepted writes and the broadcast
/// an observer received for each version.
struct Contention {
    /// Record names.
    names: Vec<String>,
    /// Write acks per record.
    acks: Vec<i32>,
    /// Broadcast data per record, index = version − 1.
    broadcasts: Vec<Vec<Value>>,
}

impl Contention {
    /// The final state each record must have: version = accepted writes, data = the data of
    /// that version's broadcast.
    fn expected(&self) -> Written {
        self.names
            .iter()
            .zip(&self.acks)
            .zip(&self.broadcasts)
            .map(|((name, &acks), broadcasts)| {
                (
                    name.clone(),
                    (acks, broadcasts.last().cloned().unwrap_or(json!({}))),
                )
            })
            .collect()
    }
}

/// `WRITERS` clients each send `WRITES_EACH` force writes (version −1, as `setData` sends
/// them) with write acks, all pipelined, round-robin over `SHARED_RECORDS` records, while an
/// observer subscribed to all of them collects the broadcasts. Every write must be accepted
/// and acknowledged, and the broadcasts must show versions 1, 2, 3 … without gap or repeat.
async fn contend(port: u16, prefix: &str) -> Contention {
    let names: Vec<String> = (0..SHARED_RECORDS)
        .map(|r| format!("{prefix}/shared{r}"))
        .collect();
    let mut observer = RawClient::logged_in(port, &json!({"username": "observer"})).await;
    observer
        .send(
            &Message::new(Topic::Record, RecordAction::SubscribeCreateAndRead)
                .with_names(names.iter().map(String::as_str))
                .with_correlation_id("observe"),
        )
        .await;
    let mut created = 0;
    while created < SHARED_RECORDS {
        let message = observer.recv().await.expect("READ_RESPONSE");
        if message.action == RecordAction::ReadResponse as i32 {
            assert_eq!(message.version, Some(0), "{message:?}");
            created += 1;
        }
    }
    let total = WRITERS * WRITES_EACH;
    let observing = tokio::spawn(async move {
        let mut seen: Vec<(String, i32, Value)> = Vec::new();
        while seen.len() < total {
            let message = observer
                .recv_within(Duration::from_secs(15))
                .await
                .unwrap_or_else(|e| panic!("observer, after {} broadcasts: {e}", seen.len()))
                .expect("the observer's connection closed");
            assert_eq!(
                message.action,
                RecordAction::Update as i32,
                "observer got {message:?}"
            );
            seen.push((
                message.name.clone().expect("name"),
                message.version.expect("version"),
                message.parse_data().unwrap().expect("data"),
            ));
        }
        seen
    });

    let writers = (0..WRITERS).map(|w| {
        let names = names.clone();
        tokio::spawn(async move {
            let mut client =
                RawClient::logged_in(port, &json!({"username": format!("w{w}")})).await;
            for s in 0..WRITES_EACH {
                let name = &names[(w + s) % SHARED_RECORDS];
                let message = write(RecordAction::CreateAndUpdate, name, -1, &s.to_string())
                    .with_data(json!({"writer": w, "seq": s}).to_string());
                client.send(&message).await;
            }
            let mut acks = vec![0; SHARED_RECORDS];
            for _ in 0..WRITES_EACH {
                let reply = client
                    .recv_within(Duration::from_secs(15))
                    .await
                    .unwrap_or_else(|e| panic!("writer {w}: {e}"))
                    .expect("the writer's connection closed");
                assert_eq!(
                    (reply.action, reply.is_error),
                    (RecordAction::WriteAcknowledgement as i32, false),
                    "writer {w}: a forced write was not acknowledged: {reply:?}"
                );
                let name = reply.name.as_deref().expect("the ack names the record");
                let r = names
                    .iter()
                    .position(|n| n == name)
                    .expect("a shared record");
                let s: usize = reply.correlation_id.as_deref().unwrap().parse().unwrap();
                assert_eq!(
                    &names[(w + s) % SHARED_RECORDS],
                    name,
                    "ack for the right record"
                );
                acks[r] += 1;
            }
            acks
        })
    });
    let mut acks = vec![0; SHARED_RECORDS];
    for writer in writers.collect::<Vec<_>>() {
        for (total, n) in acks.iter_mut().zip(writer.await.expect("a writer failed")) {
            *total += n;
        }
    }
    assert_eq!(
        acks.iter().sum::<i32>() as usize,
        total,
        "every write accepted"
    );

    let seen = observing.await.expect("the observer failed");
    let mut broadcasts = vec![Vec::new(); SHARED_RECORDS];
    for (name, version, data) in seen {
        let r = names
            .iter()
            .position(|n| *n == name)
            .expect("a shared record");
        assert_eq!(
            version as usize,
            broadcasts[r].len() + 1,
            "{name}: broadcast versions must be consecutive"
        );
        broadcasts[r].push(data);
    }
    for r in 0..SHARED_RECORDS {
        assert_eq!(
            broadcasts[r].len() as i32,
            acks[r],
            "{}: one version per accepted write",
            names[r]
        );
    }
    Contention {
        names,
        acks,
        broadcasts,
    }
}

/// `ROUNDS` runs of [`contend`], each on new records; what they must leave behind, together.
async fn contend_rounds(port: u16, prefix: &str) -> Written {
    let mut expected = Written::new();
    for round in 0..ROUNDS {
        expected.extend(
            contend(port, &format!("{prefix}/round{round}"))
                .await
                .expected(),
        );
    }
    expected
}

/// `contend` against a server on `config` with the memory cache, then a restart: the storage
/// must hand back the last accepted version of every record.
async fn contend_and_restart(port: u16, config: &str) {
    let prefix = unique_name("contend");
    let server = ServerProcess::start(config, port);
    let expected = contend_rounds(port, &prefix).await;
    assert_read_back(port, &expected, "after the writes").await;
    stop(server);

    let server = ServerProcess::start(config, port);
    assert_read_back(port, &expected, "after the restart").await;
    stop(server);
}

#[tokio::test]
async fn sqlite_concurrent_writers_end_at_the_number_of_accepted_writes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    contend_and_restart(
        port,
        &sqlite_config(port, &dir.path().join("records.sqlite")),
    )
    .await;
}

/// The same with `storage-file`, whose writes run on a thread pool: storage writes of one record
/// that overlap may finish in any order.
#[tokio::test]
async fn file_concurrent_writers_end_at_the_number_of_accepted_writes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "{}storage:\n  path: {}\n  options:\n    directory: {}\n",
        base_config(port),
        quoted(&library("storage_file").display().to_string()),
        quoted(&dir.path().display().to_string()),
    );
    contend_and_restart(port, &config).await;
}

#[tokio::test]
async fn postgres_redis_concurrent_writers_end_at_the_number_of_accepted_writes() {
    let mut backends = PostgresRedis::new("ds_contend").await;
    let prefix = unique_name("contend");

    let server = backends.start();
    let expected = contend_rounds(backends.port, &prefix).await;
    assert_read_back(backends.port, &expected, "after the writes").await;
    backends
        .stop_and_check_storage(server, &prefix, &expected)
        .await;

    stop(backends.restart_without_cache(&expected).await);
}
