//! Test support for storage and cache plugins — not a plugin itself.
//!
//! Every record store (server.md §2.4.3–§2.4.4) must behave the same way: round trips, `None`
//! for missing records, versions kept beside the data, any JSON value (arrays too), any record
//! name, bulk operations, and consistency under concurrent writers. The checks here run against
//! a plugin value directly (anything implementing the SDK's [`RecordStore`]) or against the
//! exported slot the way the server drives it ([`Hosted`]: options as JSON text through
//! `Plugin::new`, FFI futures), so each plugin crate's tests only build the store.
//!
//! Every check writes only names under the namespace it is given and deletes what it wrote.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RStr, RString, RVec},
};
use deepstream_plugin::{
    abi::{HostServices, HostServices_TO, Instance, LogLevel, PluginInit, RecordStorePlugin_TO},
    sdk::{RecordStore, Stored},
};
use serde_json::{Value, json};

/// The record-store operations, however the store is reached.
pub trait Store: Send + Sync + 'static {
    fn get(&self, name: &str) -> impl Future<Output = Result<Option<Stored>, String>> + Send;
    fn set(
        &self,
        name: &str,
        version: i32,
        data: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    fn delete(&self, name: &str) -> impl Future<Output = Result<(), String>> + Send;
    fn delete_bulk(&self, names: &[String]) -> impl Future<Output = Result<(), String>> + Send;
    fn head(&self, name: &str) -> impl Future<Output = Result<Option<i32>, String>> + Send;
    fn head_bulk(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<(String, i32)>, String>> + Send;
}

impl<T: RecordStore> Store for T {
    fn get(&self, name: &str) -> impl Future<Output = Result<Option<Stored>, String>> + Send {
        RecordStore::get(self, name.to_owned())
    }
    fn set(
        &self,
        name: &str,
        version: i32,
        data: &str,
    ) -> impl Future<Output = Result<(), String>> + Send {
        RecordStore::set(self, name.to_owned(), version, data.to_owned())
    }
    fn delete(&self, name: &str) -> impl Future<Output = Result<(), String>> + Send {
        RecordStore::delete(self, name.to_owned())
    }
    fn delete_bulk(&self, names: &[String]) -> impl Future<Output = Result<(), String>> + Send {
        RecordStore::delete_bulk(self, names.to_vec())
    }
    fn head(&self, name: &str) -> impl Future<Output = Result<Option<i32>, String>> + Send {
        RecordStore::head(self, name.to_owned())
    }
    fn head_bulk(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<(String, i32)>, String>> + Send {
        RecordStore::head_bulk(self, names.to_vec())
    }
}

/// A host stand-in: logs nothing, names itself `test-server`.
struct TestHost;

impl HostServices for TestHost {
    fn log_enabled(&self, _level: LogLevel) -> bool {
        false
    }
    fn log(&self, _level: LogLevel, _target: RStr<'_>, _message: RStr<'_>) {}
    fn server_name(&self) -> RString {
        "test-server".into()
    }
}

/// What a slot constructor is handed, for options given as JSON text.
pub fn plugin_init(instance_name: &str, options_json: &str) -> PluginInit {
    PluginInit {
        instance_name: instance_name.into(),
        options_json: options_json.into(),
        host: HostServices_TO::from_ptr(RArc::new(TestHost), TD_Opaque),
    }
}

/// A store built through its exported slot constructor, called as the server calls it.
pub struct Hosted(Instance<RecordStorePlugin_TO<'static, RArc<()>>>);

impl Hosted {
    /// Builds `T` for the `storage` slot from options JSON text.
    pub fn storage<T: RecordStore>(options_json: &str) -> Result<Hosted, String> {
        deepstream_plugin::sdk::new_storage::<T>(plugin_init("storage", options_json))
            .into_result()
            .map(Hosted)
            .map_err(String::from)
    }

    /// Builds `T` for the `cache` slot from options JSON text.
    pub fn cache<T: RecordStore>(options_json: &str) -> Result<Hosted, String> {
        deepstream_plugin::sdk::new_cache::<T>(plugin_init("cache", options_json))
            .into_result()
            .map(Hosted)
            .map_err(String::from)
    }

    pub fn description(&self) -> String {
        self.0.lifecycle.description().into()
    }

    pub async fn when_ready(&self) -> Result<(), String> {
        self.0
            .lifecycle
            .init()
            .into_result()
            .map_err(String::from)?;
        self.0
            .lifecycle
            .when_ready()
            .await
            .into_result()
            .map_err(String::from)
    }

    pub async fn close(&self) -> Result<(), String> {
        self.0
            .lifecycle
            .close()
            .await
            .into_result()
            .map_err(String::from)
    }
}

fn r_names(names: &[String]) -> RVec<RString> {
    names
        .iter()
        .map(|name| RString::from(name.as_str()))
        .collect()
}

impl Store for Hosted {
    fn get(&self, name: &str) -> impl Future<Output = Result<Option<Stored>, String>> + Send {
        let future = self.0.slot.get(name.into());
        async move {
            let found = future.await.into_result().map_err(String::from)?;
            Ok(found.into_option().map(|record| Stored {
                version: record.version,
                data: record.data.into(),
            }))
        }
    }
    fn set(
        &self,
        name: &str,
        version: i32,
        data: &str,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let future = self.0.slot.set(name.into(), version, data.into());
        async move { future.await.into_result().map_err(String::from) }
    }
    fn delete(&self, name: &str) -> impl Future<Output = Result<(), String>> + Send {
        let future = self.0.slot.delete(name.into());
        async move { future.await.into_result().map_err(String::from) }
    }
    fn delete_bulk(&self, names: &[String]) -> impl Future<Output = Result<(), String>> + Send {
        let future = self.0.slot.delete_bulk(r_names(names));
        async move { future.await.into_result().map_err(String::from) }
    }
    fn head(&self, name: &str) -> impl Future<Output = Result<Option<i32>, String>> + Send {
        let future = self.0.slot.head(name.into());
        async move {
            let found = future.await.into_result().map_err(String::from)?;
            Ok(found.into_option())
        }
    }
    fn head_bulk(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<(String, i32)>, String>> + Send {
        let future = self.0.slot.head_bulk(r_names(names));
        async move {
            let found = future.await.into_result().map_err(String::from)?;
            Ok(found
                .into_iter()
                .map(|pair| (String::from(pair.0), pair.1))
                .collect())
        }
    }
}

/// A name unique to this process and call: `<prefix>-<pid>-<time>-<counter>`, lower-case
/// alphanumerics, `-` and `_` only (safe as a SQL identifier part or key prefix).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Parses stored data text; the store must hand back valid JSON.
fn parsed(stored: &Stored) -> Value {
    serde_json::from_str(&stored.data)
        .unwrap_or_else(|error| panic!("stored data is not JSON ({error}): {:?}", stored.data))
}

/// `get` as (version, parsed data), JSON compared by value (stores may reformat text).
async fn fetch<S: Store>(store: &S, name: &str) -> Option<(i32, Value)> {
    store
        .get(name)
        .await
        .unwrap_or_else(|error| panic!("get {name:?} failed: {error}"))
        .map(|stored| (stored.version, parsed(&stored)))
}

async fn put<S: Store>(store: &S, name: &str, version: i32, data: &Value) {
    store
        .set(name, version, &data.to_string())
        .await
        .unwrap_or_else(|error| panic!("set {name:?} failed: {error}"));
}

async fn head_all<S: Store>(store: &S, names: &[String]) -> Vec<(String, i32)> {
    let mut found = store
        .head_bulk(names)
        .await
        .unwrap_or_else(|error| panic!("head_bulk failed: {error}"));
    found.sort();
    found
}

/// set → get → overwrite → delete → get, with `head` alongside; delete is idempotent.
pub async fn round_trip<S: Store>(store: &S, ns: &str) {
    let name = format!("{ns}/round-trip");
    assert_eq!(fetch(store, &name).await, None);
    put(
        store,
        &name,
        1,
        &json!({"a": 1, "nested": {"b": [true, null]}}),
    )
    .await;
    assert_eq!(
        fetch(store, &name).await,
        Some((1, json!({"a": 1, "nested": {"b": [true, null]}})))
    );
    assert_eq!(store.head(&name).await.unwrap(), Some(1));

    put(store, &name, 2, &json!({"replaced": "yes"})).await;
    assert_eq!(
        fetch(store, &name).await,
        Some((2, json!({"replaced": "yes"})))
    );
    assert_eq!(store.head(&name).await.unwrap(), Some(2));

    store.delete(&name).await.unwrap();
    assert_eq!(fetch(store, &name).await, None);
    assert_eq!(store.head(&name).await.unwrap(), None);
    store.delete(&name).await.expect("delete is idempotent");

    // A deleted record can be created again.
    put(store, &name, 0, &json!({})).await;
    assert_eq!(fetch(store, &name).await, Some((0, json!({}))));
    store.delete(&name).await.unwrap();
}

/// Missing records read as `None`; bulk calls on missing or no names succeed.
pub async fn missing<S: Store>(store: &S, ns: &str) {
    let name = format!("{ns}/never-written");
    assert!(store.get(&name).await.unwrap().is_none());
    assert_eq!(store.head(&name).await.unwrap(), None);
    store.delete(&name).await.unwrap();
    let names = vec![name.clone(), format!("{ns}/also-missing")];
    assert_eq!(head_all(store, &names).await, vec![]);
    store.delete_bulk(&names).await.unwrap();
    assert_eq!(head_all(store, &[]).await, vec![]);
    store.delete_bulk(&[]).await.unwrap();
}

/// The version lives beside the data: data fields named like versions are left alone.
pub async fn versions_kept_separate<S: Store>(store: &S, ns: &str) {
    let name = format!("{ns}/versions");
    let data = json!({"version": 99, "_v": 7, "ds_version": 3, "_d": "x"});
    put(store, &name, 5, &data).await;
    assert_eq!(fetch(store, &name).await, Some((5, data.clone())));
    assert_eq!(store.head(&name).await.unwrap(), Some(5));

    for version in [0, 1, 12_345, i32::MAX] {
        put(store, &name, version, &json!({"v": version})).await;
        assert_eq!(
            fetch(store, &name).await,
            Some((version, json!({"v": version})))
        );
        assert_eq!(store.head(&name).await.unwrap(), Some(version));
    }
    // Versions are stored as given, even when they go down (the server decides ordering).
    put(store, &name, 3, &json!({"v": 3})).await;
    assert_eq!(store.head(&name).await.unwrap(), Some(3));
    store.delete(&name).await.unwrap();
}

/// Any JSON value is data: arrays (lists), nested values, unicode, big values.
pub async fn json_values<S: Store>(store: &S, ns: &str) {
    let big: Vec<Value> = (0..2_000)
        .map(|i| json!({"i": i, "s": "x".repeat(40)}))
        .collect();
    let values = [
        json!([1, "two", {"three": 3}, [4], null, true, 1.5]),
        json!([]),
        json!({}),
        json!({"text": "ünïcødé 日本語 😀 \"quoted\" \\ back\nslash\ttab \u{1}"}),
        json!({"deep": {"deeper": {"deepest": [[[[]]]]}}}),
        json!({"numbers": [0, -1, 9_007_199_254_740_991i64, 1e-7, 3.25]}),
        Value::Array(big),
    ];
    for (index, value) in values.iter().enumerate() {
        let name = format!("{ns}/json/{index}");
        put(store, &name, index as i32 + 1, value).await;
        assert_eq!(
            fetch(store, &name).await,
            Some((index as i32 + 1, value.clone())),
            "value {index}"
        );
        store.delete(&name).await.unwrap();
    }
}

/// Record names with any characters stay distinct and round-trip.
pub async fn special_names<S: Store>(store: &S, ns: &str) {
    let suffixes = [
        "a/b/c",
        "/leading-slash",
        "trailing-slash/",
        "double//slash",
        "with space",
        "  spaces around  ",
        "ünïcødé/日本語/😀",
        "percent%2Fencoded",
        "percent%252F",
        "dots/../..",
        ".",
        "..",
        "...",
        ".hidden",
        "tab\tnew\nline",
        "quotes\"'`",
        "back\\slash",
        "colon:semi;comma,",
        "star*question?",
        "brackets[]{}()<>",
        "Case",
        "case",
        "-",
        "_v",
        "_d",
        "x_v",
        "x_d",
        "CON",
        "nul",
        &"long".repeat(40),
    ];
    let names: Vec<String> = suffixes
        .iter()
        .map(|suffix| format!("{ns}/names/{suffix}"))
        .collect();
    for (index, name) in names.iter().enumerate() {
        put(store, name, index as i32, &json!({"name": name})).await;
    }
    for (index, name) in names.iter().enumerate() {
        assert_eq!(
            fetch(store, name).await,
            Some((index as i32, json!({"name": name}))),
            "name {name:?}"
        );
    }
    let mut expected: Vec<(String, i32)> = names
        .iter()
        .enumerate()
        .map(|(index, name)| (name.clone(), index as i32))
        .collect();
    expected.sort();
    assert_eq!(head_all(store, &names).await, expected);

    store.delete_bulk(&names).await.unwrap();
    for name in &names {
        assert_eq!(fetch(store, name).await, None, "name {name:?} deleted");
    }
}

/// head_bulk reports exactly the present names; delete_bulk removes exactly the given ones.
pub async fn bulk<S: Store>(store: &S, ns: &str) {
    let present: Vec<String> = (0..10).map(|i| format!("{ns}/bulk/{i}")).collect();
    for (index, name) in present.iter().enumerate() {
        put(store, name, 10 + index as i32, &json!([index])).await;
    }
    let missing: Vec<String> = (0..5).map(|i| format!("{ns}/bulk/missing-{i}")).collect();

    let mut asked: Vec<String> = Vec::new();
    for (index, name) in present.iter().take(5).enumerate() {
        asked.push(name.clone());
        asked.push(missing[index].clone());
    }
    let mut expected: Vec<(String, i32)> = present
        .iter()
        .take(5)
        .enumerate()
        .map(|(index, name)| (name.clone(), 10 + index as i32))
        .collect();
    expected.sort();
    assert_eq!(head_all(store, &asked).await, expected);
    assert_eq!(head_all(store, &missing).await, vec![]);

    // Delete three present and two missing names.
    let mut doomed: Vec<String> = present[..3].to_vec();
    doomed.extend_from_slice(&missing[..2]);
    store.delete_bulk(&doomed).await.unwrap();
    for name in &present[..3] {
        assert_eq!(fetch(store, name).await, None, "{name} deleted");
    }
    for (index, name) in present.iter().enumerate().skip(3) {
        assert_eq!(
            fetch(store, name).await,
            Some((10 + index as i32, json!([index]))),
            "{name} kept"
        );
    }
    let mut expected: Vec<(String, i32)> = present
        .iter()
        .enumerate()
        .skip(3)
        .map(|(index, name)| (name.clone(), 10 + index as i32))
        .collect();
    expected.sort();
    let mut all = present.clone();
    all.extend(missing);
    assert_eq!(head_all(store, &all).await, expected);

    store.delete_bulk(&present).await.unwrap();
    assert_eq!(head_all(store, &all).await, vec![]);
}

/// 50 tasks × 20 writes, each to its own record and to one of 5 shared records (plus reads):
/// no errors; own records end at their last write; each shared record holds one complete
/// write (its version matches the version inside the data that was written with it).
pub async fn concurrent_writers<S: Store>(store: Arc<S>, ns: &str) {
    const TASKS: i32 = 50;
    const WRITES: i32 = 20;
    const SHARED: i32 = 5;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = store.clone();
        let ns = ns.to_owned();
        tasks.spawn(async move {
            for write in 0..WRITES {
                let own = format!("{ns}/concurrent/own-{task}");
                let shared = format!("{ns}/concurrent/shared-{}", (task + write) % SHARED);
                let version = task * 100 + write;
                store
                    .set(
                        &own,
                        write,
                        &json!({"task": task, "write": write}).to_string(),
                    )
                    .await
                    .map_err(|error| format!("set own: {error}"))?;
                store
                    .set(
                        &shared,
                        version,
                        &json!({"version": version, "task": task}).to_string(),
                    )
                    .await
                    .map_err(|error| format!("set shared: {error}"))?;
                let read = store
                    .get(&own)
                    .await
                    .map_err(|error| format!("get own: {error}"))?;
                if read.as_ref().map(|stored| stored.version) != Some(write) {
                    return Err(format!(
                        "task {task} read back {read:?} after write {write}"
                    ));
                }
            }
            Ok::<(), String>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined
            .expect("writer task panicked")
            .expect("writer task failed");
    }

    let mut names = Vec::new();
    for task in 0..TASKS {
        let name = format!("{ns}/concurrent/own-{task}");
        assert_eq!(
            fetch(&*store, &name).await,
            Some((WRITES - 1, json!({"task": task, "write": WRITES - 1})))
        );
        names.push(name);
    }
    for shared in 0..SHARED {
        let name = format!("{ns}/concurrent/shared-{shared}");
        let (version, data) = fetch(&*store, &name).await.expect("shared record exists");
        assert_eq!(
            data["version"],
            json!(version),
            "{name}: version and data agree"
        );
        assert_eq!(store.head(&name).await.unwrap(), Some(version));
        names.push(name);
    }
    assert_eq!(head_all(&*store, &names).await.len(), names.len());
    store.delete_bulk(&names).await.unwrap();
    assert_eq!(head_all(&*store, &names).await, vec![]);
}

/// Every check above, one after the other.
pub async fn all<S: Store>(store: Arc<S>, ns: &str) {
    round_trip(&*store, ns).await;
    missing(&*store, ns).await;
    versions_kept_separate(&*store, ns).await;
    json_values(&*store, ns).await;
    special_names(&*store, ns).await;
    bulk(&*store, ns).await;
    concurrent_writers(store, ns).await;
}

/// A TCP proxy (to a database server) whose open connections can be broken on demand: a broken
/// connection is closed as soon as the client sends anything, so a pooled connection that
/// looks healthy fails on its next statement (the case the plugin retries).
pub struct BreakingProxy {
    /// The loopback port it listens on.
    pub port: u16,
    /// Connections opened so far; those numbered below `broken_below` are broken.
    opened: Arc<std::sync::atomic::AtomicU64>,
    broken_below: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl BreakingProxy {
    /// Listens on a free loopback port, forwarding every connection to `upstream`.
    pub async fn start(upstream: (String, u16)) -> BreakingProxy {
        Self::start_on(0, upstream).await
    }

    /// A loopback port nothing listens on (yet): bound, read, released.
    pub async fn free_port() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    }

    /// Like [`BreakingProxy::start`], on a given loopback port (0: any free one).
    pub async fn start_on(port: u16, upstream: (String, u16)) -> BreakingProxy {
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let opened = Arc::new(AtomicU64::new(0));
        let broken_below = Arc::new(AtomicU64::new(0));
        let (counter, threshold) = (opened.clone(), broken_below.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let number = counter.fetch_add(1, Ordering::SeqCst);
                let threshold = threshold.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut from_client, mut from_server) = ([0u8; 8192], [0u8; 8192]);
                    loop {
                        tokio::select! {
                            read = client.read(&mut from_client) => match read {
                                Ok(0) | Err(_) => break,
                                Ok(_) if number < threshold.load(Ordering::SeqCst) => break,
                                Ok(n) => if server.write_all(&from_client[..n]).await.is_err() { break },
                            },
                            read = server.read(&mut from_server) => match read {
                                Ok(0) | Err(_) => break,
                                Ok(n) => if client.write_all(&from_server[..n]).await.is_err() { break },
                            },
                        }
                    }
                });
            }
        });
        BreakingProxy {
            port,
            opened,
            broken_below,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn opened(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Breaks every connection opened so far.
    pub fn break_open_connections(&self) {
        self.broken_below
            .store(self.opened(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for BreakingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
