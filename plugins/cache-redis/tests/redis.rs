//! The Redis store against the real server named by `DEEPSTREAM_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`). Every test uses its own key prefix and deletes its keys
//! afterwards; an unreachable server fails the tests, naming it.

use std::{sync::Arc, time::Duration};

use cache_redis::{Options, RedisCache};
use deepstream_plugin::sdk::{Plugin, RecordStore, Stored};
use redis::Commands;
use serde_json::json;
// `conformance::Store` is called by path: its method names are `RecordStore`'s too.
use store_conformance::{self as conformance, BreakingProxy, Hosted, unique};

fn redis_url() -> String {
    std::env::var("DEEPSTREAM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// A direct (blocking) connection for inspecting; panics naming Redis if it is down.
fn admin() -> redis::Connection {
    let url = redis_url();
    let client = redis::Client::open(url.as_str())
        .unwrap_or_else(|error| panic!("bad DEEPSTREAM_TEST_REDIS_URL {url}: {error}"));
    let mut connection = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap_or_else(|error| {
            panic!(
                "Redis at {url} is unreachable: {error} (start it or set DEEPSTREAM_TEST_REDIS_URL)"
            )
        });
    let _: String = redis::cmd("PING")
        .query(&mut connection)
        .unwrap_or_else(|error| panic!("Redis at {url} does not answer PING: {error}"));
    connection
}

/// The keys under `prefix`.
fn keys(prefix: &str) -> Vec<String> {
    let mut connection = admin();
    let mut found: Vec<String> = connection
        .scan_match::<_, String>(format!("{prefix}*"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    found.sort();
    found
}

/// Deletes every key under its prefix when dropped (also when the test failed).
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Never panics (a panic while a failed test unwinds would abort the run).
        let Ok(client) = redis::Client::open(redis_url().as_str()) else {
            return;
        };
        let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_secs(5)) else {
            return;
        };
        let doomed: Vec<String> = match connection.scan_match::<_, String>(format!("{}*", self.0)) {
            Ok(keys) => keys.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        if !doomed.is_empty() {
            let _: redis::RedisResult<()> = connection.del(doomed);
        }
    }
}

fn options(prefix: &str) -> Options {
    Options {
        url: redis_url(),
        key_prefix: prefix.to_owned(),
        ..Options::default()
    }
}

async fn fresh() -> (Cleanup, RedisCache, String) {
    admin();
    let prefix = format!("{}:", unique("ds_test"));
    let store = RedisCache::from_options(options(&prefix)).expect("store builds");
    store.when_ready().await.expect("redis answers");
    (Cleanup(prefix.clone()), store, prefix)
}

/// Every shared storage check, in one run (as the other storage plugins).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let (_cleanup, store, prefix) = fresh().await;
    conformance::all(Arc::new(store), "ns").await;
    assert_eq!(
        keys(&prefix),
        Vec::<String>::new(),
        "deleted records leave no keys"
    );
}

#[tokio::test]
async fn key_layout_matches_deepstreams_connector() {
    let (_cleanup, store, prefix) = fresh().await;
    store
        .set("a/b c".into(), 3, r#"{"x": [1]}"#.into())
        .await
        .unwrap();
    assert_eq!(
        keys(&prefix),
        vec![format!("{prefix}a/b c_d"), format!("{prefix}a/b c_v")]
    );
    let mut connection = admin();
    let version: String = connection.get(format!("{prefix}a/b c_v")).unwrap();
    let data: String = connection.get(format!("{prefix}a/b c_d")).unwrap();
    assert_eq!(version, "3");
    assert_eq!(data, r#"{"x": [1]}"#, "data text kept verbatim");
    let ttl: i64 = connection.ttl(format!("{prefix}a/b c_v")).unwrap();
    assert_eq!(ttl, -1, "no expiry without the ttl option");

    // head and head_bulk read version keys only.
    let _: () = connection
        .set(format!("{prefix}only-version_v"), 8)
        .unwrap();
    assert_eq!(store.head("only-version".into()).await.unwrap(), Some(8));
    assert_eq!(
        store
            .head_bulk(vec!["only-version".into(), "a/b c".into()])
            .await
            .unwrap(),
        vec![("only-version".into(), 8), ("a/b c".into(), 3)]
    );
    // A record needs both keys to be read.
    assert_eq!(store.get("only-version".into()).await.unwrap(), None);
    // A version key that is not a number is an error, not a panic.
    let _: () = connection.set(format!("{prefix}garbage_v"), "x1").unwrap();
    assert!(store.head("garbage".into()).await.is_err());
    store
        .delete_bulk(vec![
            "only-version".into(),
            "garbage".into(),
            "a/b c".into(),
        ])
        .await
        .unwrap();
    assert_eq!(keys(&prefix), Vec::<String>::new());
}

#[tokio::test]
async fn ttl_expires_both_keys() {
    admin();
    let prefix = format!("{}:", unique("ds_test"));
    let _cleanup = Cleanup(prefix.clone());
    let store = RedisCache::from_options(Options {
        ttl: Some(1),
        ..options(&prefix)
    })
    .unwrap();
    store.set("short".into(), 1, "[]".into()).await.unwrap();
    let mut connection = admin();
    for suffix in ["_v", "_d"] {
        let ttl: i64 = connection.ttl(format!("{prefix}short{suffix}")).unwrap();
        assert!((0..=1).contains(&ttl), "ttl {ttl}");
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(store.get("short".into()).await.unwrap(), None);
    assert_eq!(keys(&prefix), Vec::<String>::new());
}

#[tokio::test]
async fn prefixes_keep_stores_apart() {
    let (_cleanup_a, first, _) = fresh().await;
    let (_cleanup_b, second, _) = fresh().await;
    first.set("r".into(), 1, "[1]".into()).await.unwrap();
    second.set("r".into(), 2, "[2]".into()).await.unwrap();
    assert_eq!(
        first.get("r".into()).await.unwrap(),
        Some(Stored {
            version: 1,
            data: "[1]".into()
        })
    );
    second.delete("r".into()).await.unwrap();
    assert_eq!(first.head("r".into()).await.unwrap(), Some(1));
}

#[tokio::test]
async fn through_the_host_interface_as_cache_and_storage() {
    admin();
    let prefix = format!("{}:", unique("ds_test"));
    let _cleanup = Cleanup(prefix.clone());
    let options = json!({
        "url": redis_url(),
        "keyPrefix": prefix,
        "ttl": 600,
        "connectTimeout": 2000,
        "responseTimeout": 2000,
    })
    .to_string();
    let cache = Hosted::cache::<RedisCache>(&options).expect("cache instance builds");
    cache.when_ready().await.expect("ready");
    conformance::all(Arc::new(cache), "as-cache").await;

    let storage = Hosted::storage::<RedisCache>(&options).expect("storage instance builds");
    storage.when_ready().await.expect("ready");
    assert!(storage.description().contains(&prefix));
    conformance::Store::set(&storage, "both", 4, "{}")
        .await
        .unwrap();
    let cache = Hosted::cache::<RedisCache>(&options).unwrap();
    assert_eq!(
        conformance::Store::head(&cache, "both").await.unwrap(),
        Some(4)
    );
    conformance::all(Arc::new(storage), "as-storage").await;

    let error = Hosted::cache::<RedisCache>(r#"{"prefix": "x"}"#)
        .err()
        .expect("unknown option refused");
    assert!(error.contains("prefix"), "{error}");
}

#[tokio::test]
async fn dead_server_gives_errors_in_bounded_time() {
    let store = RedisCache::from_options(Options {
        url: "redis://127.0.0.1:1/".into(),
        connect_timeout: 500,
        response_timeout: 500,
        ..Options::default()
    })
    .expect("building connects nothing");
    let error = tokio::time::timeout(Duration::from_secs(10), store.when_ready())
        .await
        .expect("when_ready must not hang")
        .expect_err("no server");
    assert!(error.contains("127.0.0.1:1"), "{error}");
    for _ in 0..2 {
        let result = tokio::time::timeout(Duration::from_secs(10), store.get("x".into()))
            .await
            .expect("get must not hang");
        assert!(result.is_err());
    }
}

#[tokio::test]
async fn silent_server_gives_errors_in_bounded_time() {
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
    let store = RedisCache::from_options(Options {
        url: format!("redis://127.0.0.1:{port}/"),
        connect_timeout: 300,
        response_timeout: 300,
        ..Options::default()
    })
    .unwrap();
    for _ in 0..2 {
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            store.set("x".into(), 1, "{}".into()),
        )
        .await
        .expect("set must not hang");
        assert!(result.is_err());
    }
    holder.abort();
}

#[tokio::test]
async fn recovers_when_the_connection_breaks() {
    admin();
    let prefix = format!("{}:", unique("ds_test"));
    let _cleanup = Cleanup(prefix.clone());
    let (upstream, db) = upstream();
    let proxy = BreakingProxy::start(upstream).await;
    let store = RedisCache::from_options(Options {
        url: format!("redis://127.0.0.1:{}/{db}", proxy.port),
        ..options(&prefix)
    })
    .unwrap();
    store.when_ready().await.unwrap();
    store.set("r".into(), 1, "[1]".into()).await.unwrap();
    assert_eq!(proxy.opened(), 1);

    for round in 0..3 {
        proxy.break_open_connections();
        assert_eq!(
            store.head("r".into()).await.unwrap(),
            Some(1),
            "round {round}"
        );
        assert_eq!(
            proxy.opened(),
            round + 2,
            "a new connection in round {round}"
        );
    }
    proxy.break_open_connections();
    store.set("r".into(), 2, "[2]".into()).await.unwrap();
    assert_eq!(
        store.get("r".into()).await.unwrap(),
        Some(Stored {
            version: 2,
            data: "[2]".into()
        })
    );
}

#[tokio::test]
async fn recovers_when_the_server_comes_back() {
    admin();
    let prefix = format!("{}:", unique("ds_test"));
    let _cleanup = Cleanup(prefix.clone());
    let upstream = upstream();
    let port = BreakingProxy::free_port().await;
    let store = RedisCache::from_options(Options {
        url: format!("redis://127.0.0.1:{port}/{}", upstream.1),
        connect_timeout: 500,
        response_timeout: 500,
        ..options(&prefix)
    })
    .unwrap();
    // Down at start: errors, in bounded time.
    assert!(store.when_ready().await.is_err());
    assert!(store.set("r".into(), 1, "[]".into()).await.is_err());
    // The server appears on that address; the plugin reconnects by itself.
    let _proxy = BreakingProxy::start_on(port, upstream.0).await;
    let mut recovered = false;
    for _ in 0..20 {
        if store.set("r".into(), 1, "[]".into()).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the plugin reconnected once the server was back");
    store.when_ready().await.unwrap();
    assert_eq!(store.head("r".into()).await.unwrap(), Some(1));
}

/// The Redis server's TCP address and database number, from the test URL.
fn upstream() -> ((String, u16), i64) {
    let info: redis::ConnectionInfo =
        redis::IntoConnectionInfo::into_connection_info(redis_url().as_str()).unwrap();
    let address = match info.addr() {
        redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        other => panic!("the test proxy needs a TCP address, not {other:?}"),
    };
    (address, info.redis_settings().db())
}

#[test]
fn options_and_defaults() {
    let parsed: Options = serde_json::from_value(json!({})).unwrap();
    assert_eq!(parsed.url, "redis://127.0.0.1:6379/");
    assert_eq!(parsed.key_prefix, "");
    assert_eq!(parsed.ttl, None);
    assert_eq!(parsed.connect_timeout, 5_000);
    assert_eq!(parsed.response_timeout, 5_000);
    assert!(serde_json::from_value::<Options>(json!({"key_prefix": "x"})).is_err());
    assert!(
        RedisCache::from_options(Options {
            ttl: Some(0),
            ..Options::default()
        })
        .is_err()
    );
    assert!(
        RedisCache::from_options(Options {
            url: "http://nope".into(),
            ..Options::default()
        })
        .is_err()
    );
}

#[test]
fn description_hides_the_password() {
    let store = RedisCache::from_options(Options {
        url: "redis://user:hunter2@cache.example:6380/2".into(),
        key_prefix: "ds:".into(),
        ..Options::default()
    })
    .unwrap();
    assert_eq!(
        store.description(),
        "redis redis://cache.example:6380/2 (keys ds:…)"
    );
}
