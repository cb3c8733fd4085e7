//! The scenarios. Each one sets up its clients (a setup failure makes the outcome "n/a" with
//! the reason), then runs a measured window bounded by both an operation count and a duration.

pub mod connect;
pub mod events;
pub mod idle;
pub mod pipeline;
pub mod presence;
pub mod records;
pub mod rpc;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt, stream};
use tokio::{sync::watch, time::Instant};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::{
    Ctx, Errors, Outcome,
    client::{self, Fail, Ws},
};

/// Every scenario name `--scenario` accepts (`all` = every one of them).
pub const ALL: &[&str] = &[
    "connect",
    "idle",
    "events",
    "record-writes",
    "record-fanout",
    "rpc",
    "presence",
];

/// Parameters of all scenarios (each uses its own subset).
#[derive(Debug, Clone)]
pub struct Params {
    /// connect / presence: logins at most.
    pub clients: u64,
    /// connect / presence / idle: logins in flight at once.
    pub concurrency: usize,
    /// idle: connection counts; one idle scenario per entry.
    pub idle_counts: Vec<u64>,
    /// idle: load-generator processes; default: enough for `per_process` each.
    pub processes: Option<usize>,
    /// idle: connections per process when `processes` is not given (a process may hold at most
    /// 20,000 open files here).
    pub per_process: u64,
    /// idle: wait between "all connected" and reading the server's RSS.
    pub settle: Duration,
    /// idle: keep the connections open this long after measuring (SIGINT/SIGTERM end it early).
    pub hold: Duration,
    /// events / record-fanout: subscribers.
    pub subscribers: usize,
    /// events: emits per second in the latency phase.
    pub rate: u32,
    /// events / record-fanout: messages the publisher may have ahead of the slowest delivery.
    pub window: u64,
    /// Filler characters in every payload.
    pub payload: usize,
    /// events / record-fanout: messages per phase at most.
    pub max_messages: u64,
    /// record-writes: writers (one record each).
    pub writers: usize,
    /// rpc: providers and requesters.
    pub providers: usize,
    pub requesters: usize,
    /// record-writes / rpc: operations per worker at most.
    pub per_worker: u64,
    /// record-writes / rpc: requests each worker keeps outstanding.
    pub in_flight: usize,
    /// Smoke mode: the counts above are exact targets, written as `expected_ops`.
    pub exact: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            clients: 1_000_000,
            concurrency: 50,
            idle_counts: vec![2000],
            processes: None,
            per_process: 9000,
            settle: Duration::from_secs(2),
            hold: Duration::ZERO,
            subscribers: 200,
            rate: 100,
            window: 500,
            payload: 64,
            max_messages: 100_000_000,
            writers: 50,
            providers: 4,
            requesters: 50,
            per_worker: 100_000_000,
            in_flight: 1,
            exact: false,
        }
    }
}

impl Params {
    /// The small, count-bound run of `--smoke`.
    pub fn smoke() -> Params {
        Params {
            clients: 200,
            concurrency: 10,
            idle_counts: vec![200],
            processes: Some(1),
            settle: Duration::from_millis(200),
            subscribers: 10,
            rate: 200,
            max_messages: 50,
            writers: 10,
            providers: 2,
            requesters: 10,
            per_worker: 20,
            // More than one in flight, so the pipelined path is what CI exercises.
            in_flight: 4,
            exact: true,
            ..Params::default()
        }
    }
}

/// Runs one scenario by name; `events` yields two outcomes (max rate and latency), `idle` one
/// per connection count.
pub async fn run(name: &str, ctx: &Ctx, params: &Params) -> Result<Vec<Outcome>, String> {
    Ok(match name {
        "connect" => vec![connect::run(ctx, params).await],
        "idle" => {
            let mut out = Vec::new();
            for &count in &params.idle_counts {
                out.push(idle::run(ctx, params, count).await);
            }
            out
        }
        "events" => events::run(ctx, params).await,
        "record-writes" => vec![records::writes(ctx, params).await],
        "record-fanout" => vec![records::fanout(ctx, params).await],
        "rpc" => vec![rpc::run(ctx, params).await],
        "presence" => vec![presence::run(ctx, params).await],
        other => {
            return Err(format!(
                "unknown scenario {other:?}; known: {}",
                ALL.join(", ")
            ));
        }
    })
}

/// Opens and logs in `count` clients named `{prefix}-{i}`, `concurrency` at a time.
pub async fn open_clients(
    ctx: &Ctx,
    count: usize,
    prefix: &str,
    concurrency: usize,
) -> Result<Vec<Ws>, Fail> {
    stream::iter(0..count)
        .map(|i| async move {
            client::connect_login(
                &ctx.target,
                ctx.source(i as u64),
                &format!("{prefix}-{i}"),
                ctx.setup_timeout,
            )
            .await
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Sends `frame` on every client and waits for the reply `wanted` on each.
pub async fn request_all(
    ctx: &Ctx,
    clients: &mut [Ws],
    frame: Bytes,
    what: &str,
    wanted: impl Fn(&deepstream::protocol::Message) -> bool + Copy,
) -> Result<(), Fail> {
    stream::iter(clients.iter_mut())
        .map(|ws| {
            let frame = frame.clone();
            async move {
                client::send(ws, frame).await?;
                client::expect(ws, what, ctx.setup_timeout, wanted)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(50)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Sends frames as fast as deliveries keep up: at most `window` messages ahead of what
/// `subscribers` receivers have counted in `delivered` (so nothing queues without bound).
/// Stops at `max_messages` or `deadline`. Returns the number of messages sent.
pub async fn publish_max_rate<S>(
    sink: &mut S,
    subscribers: u64,
    delivered: &AtomicU64,
    window: u64,
    max_messages: u64,
    deadline: Instant,
    mut frame: impl FnMut(u64) -> Bytes,
) -> Result<u64, Fail>
where
    S: Sink<WsMessage, Error = tungstenite::Error> + Unpin,
{
    let base = delivered.load(Ordering::Relaxed);
    let limit = window.max(1) * subscribers;
    let mut sent = 0u64;
    let mut unflushed = 0;
    let failed = |e: tungstenite::Error| Fail::Error(format!("publisher send failed: {e}"));
    while sent < max_messages && Instant::now() < deadline {
        let done = delivered.load(Ordering::Relaxed) - base;
        if sent * subscribers >= done + limit {
            if unflushed > 0 {
                sink.flush().await.map_err(failed)?;
                unflushed = 0;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        sink.feed(WsMessage::Binary(frame(sent)))
            .await
            .map_err(failed)?;
        sent += 1;
        unflushed += 1;
        if unflushed == 32 {
            sink.flush().await.map_err(failed)?;
            unflushed = 0;
        }
    }
    sink.flush().await.map_err(failed)?;
    Ok(sent)
}

/// Waits (at most `timeout`) until `counter` reaches `target`. Returns the instant of the last
/// increase seen (checked every millisecond), so a stalled tail does not count as run time.
pub async fn drain(counter: &AtomicU64, target: u64, since: Instant, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    let mut last_value = counter.load(Ordering::Relaxed);
    let mut last_change = Instant::now().max(since);
    while last_value < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let value = counter.load(Ordering::Relaxed);
        if value != last_value {
            last_value = value;
            last_change = Instant::now();
        }
    }
    last_change
}

/// A stop signal for background client tasks.
pub fn stop_signal() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Waits for the stop signal (or its sender being dropped).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Counts the frames of `kind` arriving on `ws` into `counter` until stopped; anything else
/// (everything, for `None`) is recorded as an error. Returns when stopped or when the connection
/// ends (an error).
pub async fn count_frames<S>(
    mut ws: S,
    kind: Option<(i32, i32)>,
    counter: &AtomicU64,
    errors: &Errors,
    mut stop: watch::Receiver<bool>,
) where
    S: Stream<Item = Result<WsMessage, tungstenite::Error>> + Unpin,
{
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            next = ws.next() => match next {
                Some(Ok(WsMessage::Binary(frame))) => {
                    if kind.is_some() && client::kind(&frame) == kind {
                        counter.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors.record(unexpected(&frame));
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None => {
                    errors.record("connection closed by the server");
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    errors.record(format!("connection failed: {e}"));
                    return;
                }
            }
        }
    }
}

/// "unexpected TOPIC ACTION" for an error record.
pub fn unexpected(frame: &Bytes) -> String {
    match deepstream::protocol::decode(frame.clone()) {
        Ok(msg) => format!("unexpected {}", client::describe(&msg)),
        Err(e) => format!("undecodable frame: {e}"),
    }
}

/// The record of a scenario whose setup failed.
pub fn not_available(outcome: Outcome, fail: &Fail, ctx: &Ctx) -> Outcome {
    outcome.unsupported(fail).finish(ctx.probe.as_ref())
}
