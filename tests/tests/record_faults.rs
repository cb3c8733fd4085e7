//! Record writes while the connection to a backend is cut (protocol.md §5.5–§5.6, server.md
//! §2.4.3–§2.4.4): a TCP proxy owned by the test sits between the server's plugin and the real
//! PostgreSQL (`storage-postgres`) or Redis (`cache-redis`). Several raw-protocol clients write
//! continuously with write acks; mid-run the proxy resets every connection and every new one
//! for a few seconds, then lets them through again.
//!
//! What must hold:
//! * while the backend is away writes fail with RECORD_UPDATE_ERROR (carrying the write's
//!   `correlationId` and `isWriteAck`), every write gets an answer, and no write sent during the
//!   cut is acknowledged (an ack promises the data reached cache **and** storage);
//! * the server does not crash, and PING and events keep working throughout;
//! * once the backend is back, writes are acknowledged again within a couple of seconds;
//! * every acknowledged write is in the backend afterwards, read directly (not through the
//!   server): at a version ≥ the acknowledged one, with data belonging to that version.
//!
//! Each record has one writer waiting for the answer to each write before the next, so the
//! storage writes of one record never overlap: losing an acknowledged write here can only come
//! from how a cut is handled. (Overlapping storage writes of one record are the concurrency test
//! in `record_persistence.rs`.)
//!
//! Needs PostgreSQL (`DEEPSTREAM_TEST_PG_URL`) and Redis (`DEEPSTREAM_TEST_REDIS_URL`); a test
//! fails naming the service when it is unreachable.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering},
    },
    time::Duration,
};

use deepstream::protocol::{ConnectionAction, EventAction, Message, RecordAction, Topic};
use deepstream_tests::{
    PgTable, RawClient, RedisKeys, ServerProcess, base_config, free_port, library, pg_client,
    pg_url, quoted, redis_connection, redis_url, unique_name,
};
use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
    time::Instant,
};

/// Writing clients, and records per client (each record has exactly one writer).
const CLIENTS: usize = 4;
const RECORDS_PER_CLIENT: usize = 2;
/// Phases of the run.
const BEFORE_CUT: Duration = Duration::from_secs(3);
const CUT: Duration = Duration::from_secs(4);
const AFTER_RESTORE: Duration = Duration::from_secs(5);
/// Longest acceptable wait for the answer to one write, or for PONG / an event.
const ANSWER_WITHIN: Duration = Duration::from_secs(8);

// ---------------------------------------------------------------------------------------------
// The proxy

/// A TCP proxy on 127.0.0.1 in front of `upstream` that the test can cut and restore.
///
/// Cut, it resets every proxied connection and resets new ones as soon as they are accepted
/// (the listener stays bound, so no one else can take the port in the meantime).
struct Proxy {
    port: u16,
    /// Whether connections are let through, and one task per proxied connection (aborting it
    /// resets both sockets); one lock, so no connection slips through a cut.
    state: Arc<Mutex<(bool, Vec<JoinHandle<()>>)>>,
    /// Connections proxied so far.
    accepted: Arc<AtomicUsize>,
    /// The accept loop.
    acceptor: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new((true, Vec::new())));
        let accepted = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio::spawn({
            let (state, accepted) = (state.clone(), accepted.clone());
            async move {
                while let Ok((downstream, _)) = listener.accept().await {
                    let _ = downstream.set_zero_linger();
                    let mut state = state.lock().unwrap();
                    if state.0 {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        state.1.push(tokio::spawn(pipe(downstream, upstream)));
                    }
                }
            }
        });
        Proxy {
            port,
            state,
            accepted,
            acceptor,
        }
    }

    /// Resets every proxied connection and every new one until [`Proxy::restore`].
    async fn cut(&self) {
        let pipes = {
            let mut state = self.state.lock().unwrap();
            state.0 = false;
            std::mem::take(&mut state.1)
        };
        for pipe in &pipes {
            pipe.abort();
        }
        for pipe in pipes {
            let _ = pipe.await;
        }
    }

    /// Lets connections through again.
    fn restore(&self) {
        self.state.lock().unwrap().0 = true;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        for pipe in &self.state.lock().unwrap().1 {
            pipe.abort();
        }
    }
}

/// Copies bytes both ways until either side closes; when aborted, both sockets are reset.
async fn pipe(mut downstream: TcpStream, upstream: SocketAddr) {
    let Ok(mut upstream) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = upstream.set_zero_linger();
    let _ = downstream.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await;
}

/// `url` (`scheme://[user[:password]@]host[:port][/rest]`) split into the upstream address and
/// a copy that points at `127.0.0.1:{proxy_port}` instead.
fn through_proxy(
    url: &str,
    default_port: u16,
    service: &str,
) -> (SocketAddr, impl Fn(u16) -> String + use<>) {
    let scheme_end = url
        .find("://")
        .unwrap_or_else(|| panic!("{service} URL {url:?}: the proxy test needs the URL form"))
        + 3;
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().expect("a port number")),
        None => (host_port, default_port),
    };
    let host = if host == "localhost" || host.is_empty() {
        "127.0.0.1"
    } else {
        host
    };
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()
        .and_then(|mut addresses| addresses.next())
        .unwrap_or_else(|| panic!("{service} host {host}:{port} does not resolve"));
    let (before, after) = (
        format!("{}{userinfo}", &url[..scheme_end]),
        rest[authority_end..].to_owned(),
    );
    (upstream, move |proxy_port| {
        format!("{before}127.0.0.1:{proxy_port}{after}")
    })
}

// ---------------------------------------------------------------------------------------------
// The run

const BEFORE: u8 = 0;
const DURING: u8 = 1;
const AFTER: u8 = 2;

/// What the writers and the liveness checker share with the controller.
#[derive(Default)]
struct Run {
    /// BEFORE until the cut is complete, DURING until just before the restore, then AFTER.
    phase: AtomicU8,
    /// Set when the writers should stop.
    stop: AtomicBool,
    /// When the restore began.
    restored_at: Mutex<Option<Instant>>,
}

impl Run {
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::SeqCst)
    }
}

/// The answer to one write.
#[derive(Debug)]
struct Answer {
    name: String,
    version: i32,
    data: Value,
    /// Phase when the write was sent and when its answer arrived.
    sent: u8,
    answered: u8,
    sent_at: Instant,
    /// WRITE_ACKNOWLEDGEMENT (else RECORD_UPDATE_ERROR; conflicts are not recorded).
    acked: bool,
}

/// One client writing to its own records in turn, each write waiting for its answer: an ack, a
/// RECORD_UPDATE_ERROR, or VERSION_EXISTS (after a failed write the client does not know whether
/// the version was taken; the conflict tells it, as it tells the official client).
async fn writer(port: u16, id: usize, names: Vec<String>, run: Arc<Run>) -> Vec<Answer> {
    let mut client = RawClient::logged_in(port, &json!({"username": format!("writer{id}")})).await;
    let mut known = vec![0; names.len()];
    let mut answers = Vec::new();
    let mut seq = 0u64;
    while !run.stop.load(Ordering::SeqCst) {
        let r = seq as usize % names.len();
        seq += 1;
        let (name, version) = (&names[r], known[r] + 1);
        let data = json!({"v": version, "writer": id, "seq": seq});
        let correlation_id = seq.to_string();
        let write = Message::new(Topic::Record, RecordAction::CreateAndUpdate)
            .with_name(name.as_str())
            .with_version(version)
            .with_data(data.to_string())
            .with_write_ack(true)
            .with_correlation_id(correlation_id.as_str());
        let (sent, sent_at) = (run.phase(), Instant::now());
        client.send(&write).await;
        let reply = loop {
            let message = client
                .recv_within(ANSWER_WITHIN)
                .await
                .unwrap_or_else(|e| panic!("writer {id}, write {name} v{version}: {e}"))
                .unwrap_or_else(|| panic!("writer {id}: the server closed the connection"));
            if message.topic == Topic::Record {
                break message;
            }
        };
        assert_eq!(
            reply.correlation_id.as_deref(),
            Some(correlation_id.as_str()),
            "writer {id}: an answer to another write: {reply:?}"
        );
        let answered = run.phase();
        match reply.action_as::<RecordAction>() {
            Some(RecordAction::WriteAcknowledgement) => {
                assert_eq!(
                    (reply.is_write_ack, reply.name.as_deref()),
                    (Some(true), Some(name.as_str())),
                    "{reply:?}"
                );
                known[r] = version;
            }
            Some(RecordAction::RecordUpdateError) => {
                assert!(
                    reply.is_error
                        && reply.is_write_ack == Some(true)
                        && reply.name.as_deref() == Some(name.as_str()),
                    "RECORD_UPDATE_ERROR must carry name, isError and isWriteAck: {reply:?}"
                );
            }
            Some(RecordAction::VersionExists) => {
                known[r] = reply.version.expect("VERSION_EXISTS carries the version");
                continue;
            }
            _ => panic!("writer {id}: unexpected answer to {name} v{version}: {reply:?}"),
        }
        answers.push(Answer {
            name: name.clone(),
            version,
            data,
            sent,
            answered,
            sent_at,
            acked: reply.action == RecordAction::WriteAcknowledgement as i32,
        });
    }
    answers
}

/// PING → PONG and an event from one client to another, over and over, each within
/// `ANSWER_WITHIN`; returns the completed rounds per phase.
async fn liveness(port: u16, run: Arc<Run>) -> [usize; 3] {
    let mut subscriber = RawClient::logged_in(port, &json!({"username": "sub"})).await;
    let mut publisher = RawClient::logged_in(port, &json!({"username": "pub"})).await;
    subscriber
        .send(
            &Message::new(Topic::Event, EventAction::Subscribe)
                .with_names(["faults/alive"])
                .with_correlation_id("1"),
        )
        .await;
    let ack = subscriber.recv().await.expect("SUBSCRIBE ack");
    assert!(ack.is_ack, "{ack:?}");
    let mut rounds = [0; 3];
    let mut n = 0;
    while !run.stop.load(Ordering::SeqCst) {
        n += 1;
        let phase = run.phase();
        publisher
            .send(&Message::new(Topic::Connection, ConnectionAction::Ping))
            .await;
        let pong = publisher
            .recv_within(ANSWER_WITHIN)
            .await
            .unwrap_or_else(|e| panic!("PING {n} (phase {phase}): {e}"))
            .expect("the publisher's connection closed");
        assert_eq!(pong.action, ConnectionAction::Pong as i32, "{pong:?}");
        publisher
            .send(
                &Message::new(Topic::Event, EventAction::Emit)
                    .with_name("faults/alive")
                    .with_data(n.to_string()),
            )
            .await;
        let event = subscriber
            .recv_within(ANSWER_WITHIN)
            .await
            .unwrap_or_else(|e| panic!("event {n} (phase {phase}): {e}"))
            .expect("the subscriber's connection closed");
        assert_eq!(
            (event.action, event.parse_data().unwrap()),
            (EventAction::Emit as i32, Some(json!(n))),
            "{event:?}"
        );
        rounds[phase as usize] += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rounds
}

/// Writers and the liveness check against `port`, with `proxy` cut for `CUT` in the middle;
/// checks the answers and returns the highest acknowledged (version, data) per record.
async fn run_with_cut(
    server: &mut ServerProcess,
    proxy: &Proxy,
    prefix: &str,
) -> BTreeMap<String, (i32, Value)> {
    let port = server.port;
    let run = Arc::new(Run::default());
    let writers: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let names = (0..RECORDS_PER_CLIENT)
                .map(|r| format!("{prefix}/c{id}r{r}"))
                .collect();
            tokio::spawn(writer(port, id, names, run.clone()))
        })
        .collect();
    let alive = tokio::spawn(liveness(port, run.clone()));

    tokio::time::sleep(BEFORE_CUT).await;
    let proxied = proxy.accepted.load(Ordering::Relaxed);
    assert!(proxied > 0, "the plugin never connected through the proxy");
    // The phase turns first: writes in flight when the connections drop fail while the cut
    // is still being made, and count as failures of the cut, not of the time before it.
    run.phase.store(DURING, Ordering::SeqCst);
    proxy.cut().await;
    let cut_complete = Instant::now();
    tokio::time::sleep(CUT).await;
    assert!(
        server.is_running(),
        "the server died while the backend was cut"
    );
    run.phase.store(AFTER, Ordering::SeqCst);
    *run.restored_at.lock().unwrap() = Some(Instant::now());
    proxy.restore();
    tokio::time::sleep(AFTER_RESTORE).await;
    run.stop.store(true, Ordering::SeqCst);

    let mut answers = Vec::new();
    for (id, writer) in writers.into_iter().enumerate() {
        let mine = writer
            .await
            .unwrap_or_else(|e| panic!("writer {id} failed: {e}"));
        let acked_after = mine.iter().filter(|a| a.acked && a.sent == AFTER).count();
        assert!(
            acked_after > 0,
            "writer {id}: no write acknowledged after the backend came back"
        );
        answers.extend(mine);
    }
    let rounds = alive.await.expect("PING / events stopped working");
    assert!(server.is_running(), "the server died");
    let restored_at = run.restored_at.lock().unwrap().expect("restored");

    let count = |f: &dyn Fn(&Answer) -> bool| answers.iter().filter(|a| f(a)).count();
    let acked = [BEFORE, DURING, AFTER].map(|p| count(&|a| a.acked && a.answered == p));
    let failed = [BEFORE, DURING, AFTER].map(|p| count(&|a| !a.acked && a.answered == p));
    eprintln!(
        "answers by phase (before, cut, after): acks {acked:?}, RECORD_UPDATE_ERROR {failed:?}; \
         PING+event rounds {rounds:?}; proxied connections {}",
        proxy.accepted.load(Ordering::Relaxed)
    );
    assert!(acked[0] > 0, "no write acknowledged before the cut");
    assert_eq!(
        count(&|a| !a.acked && a.sent == BEFORE && a.answered == BEFORE),
        0,
        "writes failed before the cut: {:?}",
        answers.iter().find(|a| !a.acked && a.answered == BEFORE)
    );
    assert!(failed[1] > 0, "no write failed while the backend was cut");
    let impossible: Vec<_> = answers
        .iter()
        .filter(|a| a.acked && a.sent == DURING && a.sent_at > cut_complete && a.answered == DURING)
        .collect();
    assert!(
        impossible.is_empty(),
        "writes sent while the backend was cut were acknowledged: {impossible:?}"
    );
    // After the restore every record is written successfully again, and once it is, its
    // writes keep succeeding.
    let mut recovered: BTreeMap<&str, Instant> = BTreeMap::new();
    for answer in answers
        .iter()
        .filter(|a| a.acked && a.sent_at > restored_at)
    {
        let at = recovered.entry(&answer.name).or_insert(answer.sent_at);
        *at = (*at).min(answer.sent_at);
    }
    assert_eq!(
        recovered.len(),
        CLIENTS * RECORDS_PER_CLIENT,
        "records never written successfully after the backend came back: {recovered:?}"
    );
    let relapses: Vec<_> = answers
        .iter()
        .filter(|a| {
            !a.acked
                && recovered
                    .get(a.name.as_str())
                    .is_some_and(|&at| a.sent_at > at)
        })
        .collect();
    assert!(
        relapses.is_empty(),
        "writes failed after their record had recovered: {relapses:?}"
    );
    assert!(
        rounds.iter().all(|&n| n >= 1),
        "PING and events must keep working in every phase: {rounds:?}"
    );

    let mut highest = BTreeMap::new();
    for answer in answers.into_iter().filter(|a| a.acked) {
        let entry = highest
            .entry(answer.name)
            .or_insert((answer.version, answer.data.clone()));
        if answer.version > entry.0 {
            *entry = (answer.version, answer.data);
        }
    }
    assert_eq!(highest.len(), CLIENTS * RECORDS_PER_CLIENT);
    highest
}

/// Every acknowledged write is in `found` (name → (version, data)), as itself or overwritten
/// by a later version whose data belongs to it.
fn assert_kept(
    acked: &BTreeMap<String, (i32, Value)>,
    found: &BTreeMap<String, (i32, Value)>,
    backend: &str,
) {
    for (name, (version, data)) in acked {
        let (stored_version, stored) = found
            .get(name)
            .unwrap_or_else(|| panic!("{backend} lost {name}, acknowledged at version {version}"));
        assert!(
            stored_version >= version,
            "{backend} has {name} at version {stored_version}, but version {version} was \
             acknowledged"
        );
        assert_eq!(
            stored["v"],
            json!(stored_version),
            "{backend}: the data of {name} belongs to another version than {stored_version}: \
             {stored}"
        );
        if stored_version == version {
            assert_eq!(stored, data, "{backend}: data of {name} v{version}");
        }
    }
}

/// Stops the server with SIGTERM: it must exit cleanly.
fn stop(server: ServerProcess) {
    let (status, output) = server.stop();
    assert!(
        status.success(),
        "deepstream exited with {status}:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_cut_mid_run_loses_no_acknowledged_write() {
    drop(pg_client().await);
    let (upstream, proxied_url) = through_proxy(&pg_url(), 5432, "PostgreSQL");
    let proxy = Proxy::start(upstream).await;
    let table = PgTable::new("ds_faults");
    let port = free_port();
    let config = format!(
        "{}storage:\n  path: {}\n  options:\n    url: {}\n    table: {}\n    \
         connectTimeout: 1000\n    queryTimeout: 2000\n",
        base_config(port),
        quoted(&library("storage_postgres").display().to_string()),
        quoted(&proxied_url(proxy.port)),
        quoted(&table.name),
    );
    let mut server = ServerProcess::start(&config, port);
    let prefix = unique_name("faults");

    let acked = run_with_cut(&mut server, &proxy, &prefix).await;
    stop(server);
    assert_kept(&acked, &table.rows(&prefix).await, "PostgreSQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cache_cut_mid_run_loses_no_acknowledged_write() {
    let mut redis = redis_connection().await;
    drop(pg_client().await);
    let (upstream, proxied_url) = through_proxy(&redis_url(), 6379, "Redis");
    let proxy = Proxy::start(upstream).await;
    let table = PgTable::new("ds_faults");
    let keys = RedisKeys::new("ds_faults");
    let port = free_port();
    let config = format!(
        "{}cache:\n  path: {}\n  options:\n    url: {}\n    keyPrefix: {}\n    \
         connectTimeout: 500\n    responseTimeout: 1000\n\
         storage:\n  path: {}\n  options:\n    url: {}\n    table: {}\n",
        base_config(port),
        quoted(&library("cache_redis").display().to_string()),
        quoted(&proxied_url(proxy.port)),
        quoted(&keys.prefix),
        quoted(&library("storage_postgres").display().to_string()),
        quoted(&pg_url()),
        quoted(&table.name),
    );
    let mut server = ServerProcess::start(&config, port);
    let prefix = unique_name("faults");

    let acked = run_with_cut(&mut server, &proxy, &prefix).await;
    stop(server);

    let mut cached = BTreeMap::new();
    for name in acked.keys() {
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(format!("{}{name}_v", keys.prefix))
            .arg(format!("{}{name}_d", keys.prefix))
            .query_async(&mut redis)
            .await
            .expect("reading Redis");
        if let [Some(version), Some(data)] = values.as_slice() {
            cached.insert(
                name.clone(),
                (
                    version.parse().expect("a version"),
                    serde_json::from_str(data).expect("JSON in Redis"),
                ),
            );
        }
    }
    assert_kept(&acked, &cached, "Redis");
    assert_kept(&acked, &table.rows(&prefix).await, "PostgreSQL");
}
