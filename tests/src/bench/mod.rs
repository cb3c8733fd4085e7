//! Side-by-side benchmark of deepstream servers: a load generator that speaks the binary
//! protocol (spec `protocol.md` §1) directly over WebSocket, so it can drive our server and the
//! original one with identical traffic.
//!
//! * [`client`]: connecting, logging in, waiting for replies, cheap frame inspection.
//! * [`scenarios`]: one module per scenario; each returns [`Outcome`]s (one JSON line each).
//! * [`probe`]: server CPU time and memory from `/proc/PID`.
//! * [`stats`]: a latency histogram.
//! * [`report`]: the side-by-side table `scripts/bench.sh` prints.
//!
//! Design rules: every loop is bounded in count and in time; only loopback addresses are
//! driven; the hot paths send pre-encoded frames where the payload does not change and
//! classify received frames by peeking at the first bytes (no JSON parsing, and full protobuf
//! decoding only where a field is needed).

pub mod client;
pub mod outcome;
pub mod probe;
pub mod report;
pub mod scenarios;
pub mod stats;

use std::{
    net::Ipv4Addr,
    sync::OnceLock,
    time::{Duration, Instant},
};

pub use client::{Fail, Target};
pub use outcome::Outcome;
pub use probe::ServerProbe;

/// What every scenario needs: where the server is, how long to run, how to measure it.
#[derive(Clone)]
pub struct Ctx {
    pub target: Target,
    /// The server process, for CPU time and memory; `None` = not measured.
    pub probe: Option<ServerProbe>,
    /// Length of each measured phase.
    pub duration: Duration,
    /// Upper bound for waiting on a reply during setup (subscribe acks, logins …).
    pub setup_timeout: Duration,
    /// Upper bound for waiting on the reply to one measured operation.
    pub op_timeout: Duration,
    /// Upper bound for waiting until in-flight deliveries arrive after a phase.
    pub drain_timeout: Duration,
    /// Client source addresses (127.0.0.x), used round-robin.
    pub sources: Vec<Ipv4Addr>,
    /// Unique per run: keeps user, record and RPC names apart between runs on one server.
    pub run_id: String,
    /// Written into every outcome (`"ours"`, `"reference"`, …).
    pub label: Option<String>,
}

impl Ctx {
    /// The source address for the `i`-th client.
    pub fn source(&self, i: u64) -> Option<Ipv4Addr> {
        if self.sources.is_empty() {
            None
        } else {
            Some(self.sources[(i % self.sources.len() as u64) as usize])
        }
    }

    /// A fresh outcome for `scenario`, labelled with this run's server label.
    pub fn outcome(&self, scenario: &str, unit: &str) -> Outcome {
        Outcome {
            scenario: scenario.to_owned(),
            server: self.label.clone(),
            unit: unit.to_owned(),
            supported: true,
            ..Outcome::default()
        }
    }
}

/// Microseconds since the first call in this process: the clock of event timestamps, shared by
/// the publisher and the subscribers (they always run in the same process).
pub fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// A short id that differs between runs (pid and time, base 36).
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{}{}",
        deepstream::config::base36(std::process::id() as u64),
        deepstream::config::base36(nanos / 1000 % 1_000_000_000)
    )
}

/// Counts errors by message (the first `MAX_KINDS` distinct messages; later new ones are
/// counted under "other errors"), and keeps the first one seen by any task.
#[derive(Default)]
pub struct Errors {
    inner: std::sync::Mutex<ErrorCounts>,
}

#[derive(Default)]
struct ErrorCounts {
    total: u64,
    first: Option<String>,
    kinds: Vec<(String, u64)>,
}

const MAX_KINDS: usize = 20;

impl Errors {
    pub fn record(&self, message: impl Into<String>) {
        self.record_n(1, message);
    }

    /// Counts `n` errors sharing one description.
    pub fn record_n(&self, n: u64, message: impl Into<String>) {
        if n == 0 {
            return;
        }
        let message = message.into();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.total += n;
        if inner.first.is_none() {
            inner.first = Some(message.clone());
        }
        let key = if inner.kinds.len() < MAX_KINDS || inner.kinds.iter().any(|(k, _)| *k == message)
        {
            message
        } else {
            "other errors".to_owned()
        };
        match inner.kinds.iter_mut().find(|(k, _)| *k == key) {
            Some((_, count)) => *count += n,
            None => inner.kinds.push((key, n)),
        }
    }

    pub fn count(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    pub fn first(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first
            .clone()
    }

    /// Error messages and their counts, most frequent first.
    pub fn kinds(&self) -> Vec<(String, u64)> {
        let mut kinds = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .kinds
            .clone();
        kinds.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        kinds
    }
}
