//! Helpers shared by the black-box tests: build the workspace once, start the real
//! `deepstream` binary on a config, and talk raw protocol to it. Also the side-by-side
//! benchmark ([`bench`]), whose load generator is the `deepstream-bench` binary.

pub mod bench;

use std::{
    ffi::OsStr,
    io::Read,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bytes::Bytes;
use deepstream::protocol::{self, AuthAction, ConnectionAction, Message, Topic};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message as WsMessage};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `target/<profile>` of this test run (the test binary lives in its `deps/`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// Builds the server and every plugin library once per test binary (a no-op when the test
/// command already built them).
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut command = Command::new(env!("CARGO"));
        command
            .current_dir(workspace_root())
            .args(["build", "--workspace"]);
        if target_dir().ends_with("release") {
            command.arg("--release");
        }
        let status = command.status().expect("running cargo build");
        assert!(status.success(), "cargo build --workspace failed");
    });
}

/// The path of a workspace plugin library, e.g. `library("logger_buffered")`.
pub fn library(crate_name: &str) -> PathBuf {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    ensure_built();
    target_dir().join(format!("{DLL_PREFIX}{crate_name}{DLL_SUFFIX}"))
}

/// The `deepstream` binary.
pub fn binary() -> PathBuf {
    ensure_built();
    target_dir().join("deepstream")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The lines every test config starts with: this port, the binary endpoint, quiet logs.
pub fn base_config(port: u16) -> String {
    format!(
        "httpServer:\n  options:\n    host: 127.0.0.1\n    port: {port}\n\
         connectionEndpoints:\n  - type: ws-binary\n    options:\n      urlPath: /deepstream\n\
         logLevel: WARN\npermission:\n  type: none\n"
    )
}

/// A YAML scalar holding `text` exactly (a JSON string is a YAML double-quoted scalar), for
/// paths and URLs written into configs.
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string")
}

/// A running `deepstream start`; killed on drop.
pub struct ServerProcess {
    /// The child process.
    child: Child,
    /// Its port.
    pub port: u16,
    /// Holds the config file for as long as the server runs.
    pub dir: tempfile::TempDir,
    /// Everything printed so far (stdout and stderr chunks as they come), so a test can wait
    /// for a log line while the server runs.
    printed: Arc<Mutex<String>>,
    /// The threads copying stdout and stderr into `printed`; they end with the process.
    readers: Vec<JoinHandle<()>>,
}

/// Copies a pipe into `printed` until it closes.
fn collect(mut pipe: impl Read + Send + 'static, printed: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buffer) {
            let text = String::from_utf8_lossy(&buffer[..n]);
            printed.lock().expect("output lock").push_str(&text);
        }
    })
}

/// Writes `yaml` to a config file in a fresh directory.
pub fn write_config(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.yml");
    std::fs::write(&path, yaml).expect("writing the config");
    (dir, path)
}

impl ServerProcess {
    /// Starts the server on `yaml` (which must use `port`) and waits until it accepts.
    pub fn start(yaml: &str, port: u16) -> ServerProcess {
        let (dir, _) = write_config(yaml);
        Self::start_in(dir, port)
    }

    /// Starts the server on `dir/config.yml` (other files the config loads may sit beside it).
    pub fn start_in(dir: tempfile::TempDir, port: u16) -> ServerProcess {
        let path = dir.path().join("config.yml");
        Self::start_with(dir, &[OsStr::new("-c"), path.as_os_str()], port)
    }

    /// Runs `deepstream start <args>` (the server must listen on `port`); `dir` lives as long as
    /// the server.
    pub fn start_with(dir: tempfile::TempDir, args: &[&OsStr], port: u16) -> ServerProcess {
        let mut child = Command::new(binary())
            .arg("start")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning deepstream");
        let printed = Arc::default();
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), Arc::clone(&printed)),
            collect(child.stderr.take().expect("stderr"), Arc::clone(&printed)),
        ];
        let mut server = ServerProcess {
            child,
            port,
            dir,
            printed,
            readers,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "deepstream exited with {status} before listening:\n{}",
                    server.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "deepstream did not listen on {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Sends a signal (`HUP`, `TERM`, …) to the server.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Waits until the server has printed `needle`; false after `timeout`.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.printed.lock().expect("output lock").contains(needle) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the exit; returns the status and everything printed.
    pub fn stop(self) -> (ExitStatus, String) {
        let (status, output, _) = self.stop_keeping_dir();
        (status, output)
    }

    /// Like [`ServerProcess::stop`], but hands back the server's directory (with whatever it
    /// wrote there) for a restart.
    pub fn stop_keeping_dir(mut self) -> (ExitStatus, String, tempfile::TempDir) {
        self.signal("TERM");
        let status = self.child.wait().expect("waiting for deepstream");
        let output = self.output();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        (status, output, dir)
    }

    /// Everything printed; complete once the process has exited.
    fn output(&mut self) -> String {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.printed.lock().expect("output lock").clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `deepstream <args>` to completion; returns the status, stdout and stderr.
pub fn run(args: &[&str]) -> (ExitStatus, String, String) {
    let output = Command::new(binary())
        .args(args)
        .output()
        .expect("running deepstream");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Starts `deepstream start -c <yaml>` expecting it to fail; returns status and stderr.
pub fn start_expecting_failure(yaml: &str) -> (ExitStatus, String) {
    let (_dir, path) = write_config(yaml);
    let mut child = Command::new(binary())
        .args(["start", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning deepstream");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("polling deepstream") {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr)
                .expect("stderr text");
            return (status, stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("deepstream kept running on a config that should fail");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A raw protocol client: frames in, frames out.
pub struct RawClient {
    /// The WebSocket.
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How long a test waits for one reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

impl RawClient {
    pub async fn connect(port: u16) -> RawClient {
        let url = format!("ws://127.0.0.1:{port}/deepstream");
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connect");
        RawClient { socket }
    }

    /// Sends raw bytes as one binary frame.
    pub async fn send_bytes(&mut self, bytes: impl Into<Bytes>) {
        self.socket
            .send(WsMessage::Binary(bytes.into()))
            .await
            .expect("sending a frame");
    }

    pub async fn send(&mut self, message: &Message) {
        self.send_bytes(protocol::encode(message)).await;
    }

    pub async fn send_raw(&mut self, frame: WsMessage) {
        self.socket.send(frame).await.expect("sending a frame");
    }

    /// The next message, or `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            let frame = tokio::time::timeout(REPLY_TIMEOUT, self.socket.next())
                .await
                .expect("no reply from the server within 5 s");
            match frame {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    return Some(
                        protocol::decode(bytes).expect("the server sent an undecodable frame"),
                    );
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Waits for the server to close the connection, skipping messages before; panics when it
    /// is still open after the reply timeout.
    pub async fn expect_closed(&mut self) {
        while self.recv().await.is_some() {}
    }

    /// Skips messages until the server's close frame; returns its close code, if any.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let frame = tokio::time::timeout(REPLY_TIMEOUT, self.socket.next())
                .await
                .expect("the server did not close within 5 s");
            match frame {
                Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// CHALLENGE → ACCEPT.
    pub async fn challenge(&mut self) {
        self.send(&Message {
            url: Some("ws://127.0.0.1/deepstream".into()),
            protocol_version: Some("0.1a".into()),
            sdk_version: Some("7.0.5".into()),
            sdk_type: Some("javascript".into()),
            ..Message::new(Topic::Connection, ConnectionAction::Challenge)
        })
        .await;
        let accept = self.recv().await.expect("ACCEPT");
        assert_eq!(
            accept.action,
            ConnectionAction::Accept as i32,
            "expected ACCEPT, got {accept:?}"
        );
    }

    /// Sends AUTH REQUEST with `auth` and returns the reply.
    pub async fn login(&mut self, auth: &serde_json::Value) -> Message {
        self.send(&Message::new(Topic::Auth, AuthAction::Request).with_json(auth))
            .await;
        self.recv().await.expect("an auth reply")
    }

    /// A connected, logged-in client.
    pub async fn logged_in(port: u16, auth: &serde_json::Value) -> RawClient {
        let mut client = RawClient::connect(port).await;
        client.challenge().await;
        let reply = client.login(auth).await;
        assert_eq!(
            reply.action,
            AuthAction::AuthSuccessful as i32,
            "login failed: {reply:?}"
        );
        client
    }
}

impl ServerProcess {
    /// The process id (for `/proc/PID/stat` and `deepstream-bench --server-pid`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl RawClient {
    /// The next message, `Ok(None)` when the server closed the connection, `Err` when nothing
    /// arrived within `limit` (unlike [`RawClient::recv`], which panics after 5 s).
    pub async fn recv_within(&mut self, limit: Duration) -> Result<Option<Message>, String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .map_err(|_| format!("no message from the server within {limit:?}"))?;
            match frame {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    return protocol::decode(bytes)
                        .map(Some)
                        .map_err(|error| format!("undecodable frame from the server: {error}"));
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return Ok(None),
                Some(Ok(_)) => {}
            }
        }
    }
}

/// A name no other test (or earlier run) uses: `prefix`, the process id, a counter and the
/// time; only `[a-z0-9_]`, so it is safe as an SQL identifier and a Redis key pattern.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{count}_{nanos}", std::process::id())
        .to_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
}

/// The PostgreSQL the storage tests use: `DEEPSTREAM_TEST_PG_URL`, by default
/// `postgres://postgres@127.0.0.1:5432/test`.
pub fn pg_url() -> String {
    std::env::var("DEEPSTREAM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The Redis the cache tests use: `DEEPSTREAM_TEST_REDIS_URL`, by default
/// `redis://127.0.0.1:6379/`.
pub fn redis_url() -> String {
    std::env::var("DEEPSTREAM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// A connection to the test PostgreSQL; panics naming the service when it is unreachable.
pub async fn pg_client() -> tokio_postgres::Client {
    let url = pg_url();
    let connect = tokio_postgres::connect(&url, tokio_postgres::NoTls);
    let (client, connection) = match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => {
            panic!("PostgreSQL is unreachable at {url} (set DEEPSTREAM_TEST_PG_URL): {error}")
        }
        Err(_) => panic!(
            "PostgreSQL is unreachable at {url} (set DEEPSTREAM_TEST_PG_URL): no answer within 5 s"
        ),
    };
    tokio::spawn(connection);
    client
}

/// A connection to the test Redis; panics naming the service when it is unreachable.
pub async fn redis_connection() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    let connect = async {
        let client = redis::Client::open(url.as_str())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok::<_, redis::RedisError>(connection)
    };
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => {
            panic!("Redis is unreachable at {url} (set DEEPSTREAM_TEST_REDIS_URL): {error}")
        }
        Err(_) => panic!(
            "Redis is unreachable at {url} (set DEEPSTREAM_TEST_REDIS_URL): no answer within 5 s"
        ),
    }
}

/// A PostgreSQL table (in schema `public`) dropped when this guard goes, also when the test
/// fails.
pub struct PgTable {
    /// The table name, from [`unique_name`].
    pub name: String,
}

impl PgTable {
    /// A fresh table name; the table itself is created by whoever uses it (the plugin).
    pub fn new(prefix: &str) -> PgTable {
        PgTable {
            name: unique_name(prefix),
        }
    }

    /// Every row whose name starts with `prefix`, read directly from PostgreSQL:
    /// name → (version, data).
    pub async fn rows(
        &self,
        prefix: &str,
    ) -> std::collections::BTreeMap<String, (i32, serde_json::Value)> {
        let client = pg_client().await;
        let sql = format!(
            "SELECT name, version, data::text FROM public.\"{}\" WHERE starts_with(name, $1)",
            self.name
        );
        client
            .query(&sql, &[&prefix])
            .await
            .expect("reading the storage table")
            .iter()
            .map(|row| {
                let data: String = row.get(2);
                let data = serde_json::from_str(&data).expect("JSON in PostgreSQL");
                (row.get(0), (row.get(1), data))
            })
            .collect()
    }
}

impl Drop for PgTable {
    fn drop(&mut self) {
        let sql = format!("DROP TABLE IF EXISTS public.\"{}\"", self.name);
        blocking(async move {
            if let Ok((client, connection)) =
                tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls).await
            {
                tokio::spawn(connection);
                let _ = client.batch_execute(&sql).await;
            }
        });
    }
}

/// Redis keys starting with a prefix, deleted when this guard goes, also when the test fails.
pub struct RedisKeys {
    /// The key prefix, from [`unique_name`] plus `:`.
    pub prefix: String,
}

impl RedisKeys {
    pub fn new(prefix: &str) -> RedisKeys {
        RedisKeys {
            prefix: format!("{}:", unique_name(prefix)),
        }
    }

    /// Deletes every key with the prefix; returns how many there were.
    pub async fn clear(&self, connection: &mut redis::aio::MultiplexedConnection) -> usize {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(connection)
            .await
            .expect("Redis KEYS");
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(connection)
                .await
                .expect("Redis DEL");
        }
        keys.len()
    }
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.prefix);
        blocking(async move {
            let Ok(client) = redis::Client::open(redis_url()) else {
                return;
            };
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(&pattern)
                    .query_async(&mut connection)
                    .await
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _ = redis::cmd("DEL")
                        .arg(&keys)
                        .query_async::<()>(&mut connection)
                        .await;
                }
            }
        });
    }
}

/// Runs `cleanup` to completion on a runtime of its own, on another thread (so it works from
/// `Drop`, inside or outside a tokio runtime), giving up after 10 s.
fn blocking(cleanup: impl std::future::Future<Output = ()> + Send + 'static) {
    let worker = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), cleanup).await;
            });
        }
    });
    let _ = worker.join();
}
