//! The PostgreSQL store against the real server named by `DEEPSTREAM_TEST_PG_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`). Every test uses its own table (or
//! schema) and drops it afterwards; an unreachable server fails the tests, naming it.

use std::{sync::Arc, time::Duration};

use deepstream_plugin::sdk::{Plugin, RecordStore};
use serde_json::json;
use storage_postgres::{Options, PostgresStorage};
// `conformance::Store` is called by path: its method names are `RecordStore`'s too.
use store_conformance::{self as conformance, BreakingProxy, Hosted, unique};
use tokio_postgres::NoTls;

fn pg_url() -> String {
    std::env::var("DEEPSTREAM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A direct connection for setting up and inspecting; panics naming PostgreSQL if it is down.
async fn admin() -> tokio_postgres::Client {
    let url = pg_url();
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_postgres::connect(&url, NoTls),
    )
    .await
    .unwrap_or_else(|_| {
        panic!("PostgreSQL at {url} did not answer within 10 s (set DEEPSTREAM_TEST_PG_URL)")
    })
    .unwrap_or_else(|error| {
        let cause = std::error::Error::source(&error)
            .map(|cause| format!(": {cause}"))
            .unwrap_or_default();
        panic!(
            "PostgreSQL at {url} is unreachable: {error}{cause} (start it or set DEEPSTREAM_TEST_PG_URL)"
        )
    });
    let (client, connection) = connected;
    tokio::spawn(connection);
    client
}

/// Runs its SQL when dropped (also when the test failed), on a thread of its own.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let statements = std::mem::take(&mut self.0);
        let url = pg_url();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async {
                let connect = tokio_postgres::connect(&url, NoTls);
                if let Ok(Ok((client, connection))) =
                    tokio::time::timeout(Duration::from_secs(10), connect).await
                {
                    tokio::spawn(connection);
                    for statement in statements {
                        let _ = client.batch_execute(&statement).await;
                    }
                }
            });
        })
        .join();
    }
}

fn drop_table(table: &str) -> Cleanup {
    Cleanup(vec![format!("DROP TABLE IF EXISTS public.\"{table}\"")])
}

/// Options for a new table of its own.
fn options(table: &str) -> Options {
    let mut options = Options::with_url(pg_url());
    options.table = table.to_owned();
    options
}

async fn fresh() -> (Cleanup, PostgresStorage, String) {
    admin().await;
    let table = unique("ds_test");
    let cleanup = drop_table(&table);
    let store = PostgresStorage::from_options(options(&table)).expect("store builds");
    store.when_ready().await.expect("table created");
    (cleanup, store, table)
}

/// Every shared storage check, in one run (as the other storage plugins).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let (_cleanup, store, _) = fresh().await;
    conformance::all(Arc::new(store), "ns").await;
}

#[tokio::test]
async fn table_layout_version_column_jsonb_data() {
    let (_cleanup, store, table) = fresh().await;
    store
        .set("look".into(), 42, r#"{"a": [1, {"b": 2}]}"#.into())
        .await
        .unwrap();
    let row = admin()
        .await
        .query_one(
            &format!(
                "SELECT version, data::text, pg_typeof(data)::text FROM public.\"{table}\" WHERE name = 'look'"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    let data: serde_json::Value = serde_json::from_str(row.get::<_, &str>(1)).unwrap();
    assert_eq!(data, json!({"a": [1, {"b": 2}]}));
    assert_eq!(row.get::<_, &str>(2), "jsonb");
}

#[tokio::test]
async fn through_the_host_interface_with_own_schema() {
    admin().await;
    let schema = unique("ds_test_schema");
    let _cleanup = Cleanup(vec![format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")]);
    let options = json!({
        "url": pg_url(),
        "schema": schema,
        "table": "records",
        "poolSize": 4,
        "connectTimeout": 3000,
        "queryTimeout": 5000,
    });
    let hosted = Hosted::storage::<PostgresStorage>(&options.to_string()).expect("instance builds");
    assert!(hosted.description().contains(&format!("{schema}.records")));
    hosted.when_ready().await.expect("schema and table created");
    conformance::all(Arc::new(hosted), "hosted").await;

    // A second instance finds the table and sees the same rows.
    let other = Hosted::storage::<PostgresStorage>(&options.to_string()).unwrap();
    other.when_ready().await.unwrap();
    conformance::Store::set(&other, "shared", 3, "[1,2,3]")
        .await
        .unwrap();
    let third = Hosted::storage::<PostgresStorage>(&options.to_string()).unwrap();
    third.when_ready().await.unwrap();
    assert_eq!(
        conformance::Store::head(&third, "shared").await.unwrap(),
        Some(3)
    );
    other.close().await.unwrap();
    third.close().await.unwrap();
}

#[tokio::test]
async fn existing_table_is_used() {
    let client = admin().await;
    let table = unique("ds_test");
    let _cleanup = drop_table(&table);
    client
        .batch_execute(&format!(
            "CREATE TABLE public.\"{table}\" (name TEXT PRIMARY KEY, version INTEGER NOT NULL, data JSONB NOT NULL);
             INSERT INTO public.\"{table}\" VALUES ('old', 7, '[\"kept\"]');"
        ))
        .await
        .unwrap();
    let store = PostgresStorage::from_options(options(&table)).unwrap();
    store.when_ready().await.unwrap();
    let stored = store.get("old".into()).await.unwrap().expect("row found");
    assert_eq!(stored.version, 7);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored.data).unwrap(),
        json!(["kept"])
    );
}

#[tokio::test]
async fn dead_server_gives_errors_in_bounded_time() {
    // Nothing listens on port 1.
    let mut options = Options::with_url("postgres://postgres@127.0.0.1:1/test");
    options.connect_timeout = 1_000;
    options.query_timeout = 1_000;
    let store = PostgresStorage::from_options(options).expect("building connects nothing");

    let error = tokio::time::timeout(Duration::from_secs(10), store.when_ready())
        .await
        .expect("when_ready must not hang")
        .expect_err("no server");
    assert!(error.contains("127.0.0.1:1"), "{error}");

    for _ in 0..3 {
        let error = tokio::time::timeout(Duration::from_secs(10), store.get("x".into()))
            .await
            .expect("get must not hang")
            .expect_err("no server");
        assert!(error.contains("no connection"), "{error}");
        let error = tokio::time::timeout(
            Duration::from_secs(10),
            store.set("x".into(), 1, "{}".into()),
        )
        .await
        .expect("set must not hang");
        assert!(error.is_err());
    }
}

#[tokio::test]
async fn silent_server_gives_errors_within_connect_timeout() {
    // A listener that accepts connections and never answers: the startup handshake hangs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        let deadline = tokio::time::sleep(Duration::from_secs(30));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => held.push(socket),
                    Err(_) => break,
                },
                _ = &mut deadline => break,
            }
        }
    });

    let mut options = Options::with_url(format!("postgres://postgres@127.0.0.1:{port}/test"));
    options.connect_timeout = 500;
    options.query_timeout = 500;
    let store = PostgresStorage::from_options(options).unwrap();
    for _ in 0..2 {
        let result = tokio::time::timeout(Duration::from_secs(10), store.get("x".into()))
            .await
            .expect("get must not hang");
        assert!(result.is_err(), "{result:?}");
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(10), store.when_ready())
            .await
            .expect("when_ready must not hang")
            .is_err()
    );
    holder.abort();
}

#[tokio::test]
async fn recovers_when_connections_are_killed() {
    let client = admin().await;
    let table = unique("ds_test");
    let _cleanup = drop_table(&table);
    let application = unique("ds_test_app");
    let url = pg_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut options = options(&table);
    options.url = format!("{url}{separator}application_name={application}");
    options.pool_size = 3;
    let store = Arc::new(PostgresStorage::from_options(options).unwrap());
    store.when_ready().await.unwrap();

    // Open a few pooled connections.
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..6 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .set(format!("r{index}"), index, json!({"i": index}).to_string())
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }

    let kill =
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1";
    let killed: i64 = client
        .query_one(kill, &[&application])
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "backends of the pool were found");
    // Let the pool's connections notice (or not) — either way the next calls must succeed.
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(store.head("r2".into()).await.unwrap(), Some(2));
    store.set("after".into(), 1, "[]".into()).await.unwrap();
    for index in 0..6 {
        assert_eq!(store.head(format!("r{index}")).await.unwrap(), Some(index));
    }

    // Again, killing only after the connection is idle in the pool (a half-noticed break).
    let killed: i64 = client
        .query_one(kill, &[&application])
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1);
    let found = store
        .head_bulk(vec!["r0".into(), "after".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
}

#[tokio::test]
async fn slow_statement_times_out() {
    let (_cleanup, store, table) = fresh().await;
    store.set("x".into(), 1, "{}".into()).await.unwrap();
    drop(store);

    let mut options = options(&table);
    options.query_timeout = 500;
    let store = PostgresStorage::from_options(options).unwrap();
    store.when_ready().await.unwrap();

    // Another session locks the table, so the plugin's read waits.
    let mut locker = admin().await;
    let transaction = locker.transaction().await.unwrap();
    transaction
        .batch_execute(&format!(
            "LOCK TABLE public.\"{table}\" IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();

    let error = tokio::time::timeout(Duration::from_secs(10), store.get("x".into()))
        .await
        .expect("get must not hang")
        .expect_err("the lock outlasts the timeout");
    assert!(error.contains("timed out"), "{error}");

    transaction.rollback().await.unwrap();
    assert_eq!(store.head("x".into()).await.unwrap(), Some(1));
}

#[test]
fn options_and_defaults() {
    let parsed: Options = serde_json::from_value(json!({"url": "postgres://h/db"})).unwrap();
    assert_eq!(parsed.schema, "public");
    assert_eq!(parsed.table, "deepstream_records");
    assert_eq!(parsed.pool_size, 10);
    assert_eq!(parsed.connect_timeout, 5_000);
    assert_eq!(parsed.query_timeout, 10_000);
    assert!(
        serde_json::from_value::<Options>(json!({})).is_err(),
        "url is required"
    );
    assert!(
        serde_json::from_value::<Options>(json!({"url": "postgres://h/db", "host": "h"})).is_err(),
        "unknown fields are rejected"
    );
    assert!(PostgresStorage::from_options(Options::with_url("not a url at all ===")).is_err());
    let mut zero = Options::with_url("postgres://h/db");
    zero.pool_size = 0;
    assert!(PostgresStorage::from_options(zero).is_err());
}

#[test]
fn description_hides_the_password() {
    let store = PostgresStorage::from_options(Options::with_url(
        "postgres://user:hunter2@db.example:6543/records",
    ))
    .unwrap();
    let description = store.description();
    assert_eq!(
        description,
        "postgres storage db.example:6543/records public.deepstream_records"
    );
    assert!(!description.contains("hunter2"));
}

/// The server's TCP address, and a connection string for the same database via `port`.
fn via_port(port: u16) -> ((String, u16), String) {
    let config: tokio_postgres::Config = pg_url().parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("the test proxy needs a TCP host, not {other:?}"),
    };
    let upstream_port = config.get_ports().first().copied().unwrap_or(5432);
    let mut url = format!(
        "host=127.0.0.1 port={port} user={} dbname={}",
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or("postgres"),
    );
    if let Some(password) = config.get_password() {
        url.push_str(&format!(" password={}", String::from_utf8_lossy(password)));
    }
    ((host, upstream_port), url)
}

#[tokio::test]
async fn recovers_when_the_server_comes_back() {
    admin().await;
    let table = unique("ds_test");
    let _cleanup = drop_table(&table);
    let port = BreakingProxy::free_port().await;
    let (upstream, url) = via_port(port);
    let mut options = options(&table);
    options.url = url;
    options.connect_timeout = 500;
    options.query_timeout = 1_000;
    let store = PostgresStorage::from_options(options).unwrap();
    // Down at start: errors, in bounded time.
    assert!(store.when_ready().await.is_err());
    assert!(store.get("r".into()).await.is_err());
    // The server appears on that address; the next calls connect.
    let _proxy = BreakingProxy::start_on(port, upstream).await;
    store
        .when_ready()
        .await
        .expect("table created once the server is back");
    store.set("r".into(), 1, "{}".into()).await.unwrap();
    assert_eq!(store.head("r".into()).await.unwrap(), Some(1));
}

#[tokio::test]
async fn retries_once_when_a_pooled_connection_broke() {
    admin().await;
    let table = unique("ds_test");
    let _cleanup = drop_table(&table);
    let (upstream, _) = via_port(0);
    let proxy = BreakingProxy::start(upstream).await;
    let (_, url) = via_port(proxy.port);
    let mut options = options(&table);
    options.url = url;
    options.pool_size = 2;
    let store = PostgresStorage::from_options(options).unwrap();
    store.when_ready().await.unwrap();
    store.set("r".into(), 1, "[1]".into()).await.unwrap();
    let before = proxy.opened();
    assert!(before >= 1);

    // Every pooled connection now dies on its next statement; each call still succeeds,
    // through exactly one retry on a new connection.
    for round in 0..3 {
        proxy.break_open_connections();
        let opened = proxy.opened();
        assert_eq!(
            store.head("r".into()).await.unwrap(),
            Some(1),
            "round {round}"
        );
        assert_eq!(
            proxy.opened(),
            opened + 1,
            "one new connection in round {round}"
        );
    }
    proxy.break_open_connections();
    store.set("r".into(), 2, "[2]".into()).await.unwrap();
    assert_eq!(store.head("r".into()).await.unwrap(), Some(2));
}
