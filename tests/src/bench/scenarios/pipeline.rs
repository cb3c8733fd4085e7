//! The request/reply loop shared by `record-writes` and `rpc`: one connection keeps up to
//! `in_flight` requests outstanding, matches replies by correlation id and times each round
//! trip. With `in_flight` 1 it is a plain closed loop (send, wait, send …); more in flight is
//! how a busy client application behaves (the JS client never waits for one write's
//! acknowledgement before sending the next), and lets the server read and write several
//! messages per system call.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::bench::{
    Errors,
    client::{self, Ws},
    stats::Histogram,
};

/// The scenario's name in results: `base` for a plain closed loop, `base-pipelined-N` with N
/// requests in flight (a different load, so a row of its own).
pub fn scenario_name(base: &str, in_flight: usize) -> String {
    match in_flight {
        0 | 1 => base.to_owned(),
        n => format!("{base}-pipelined-{n}"),
    }
}

/// What one received frame means to the operation loop.
pub enum Reply {
    /// The operation with this correlation id completed.
    Done(String),
    /// An error reply (counted; the loop goes on). The correlation id of the failed operation,
    /// when the reply names one; otherwise the oldest outstanding operation is taken as failed.
    Failed(Option<String>, String),
    /// Nothing the loop has to act on (e.g. an RPC ACCEPT).
    Other,
    /// The connection cannot be used any further (counted; this worker stops).
    Fatal(String),
}

/// One kind of request/reply operation.
pub trait Operation {
    /// Encodes operation number `n` (1-based); returns the frame and its correlation id.
    fn request(&mut self, n: u64) -> (Bytes, String);
    /// Classifies a frame received on the operation's connection.
    fn reply(&mut self, frame: Bytes) -> Reply;
}

/// Bounds of one worker's loop.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests outstanding at once (at least 1).
    pub in_flight: usize,
    /// Operations at most.
    pub count: u64,
    /// No request is sent after this.
    pub deadline: Instant,
    /// A request unanswered this long is an error and stops the worker.
    pub op_timeout: Duration,
}

/// Runs every worker (a connection and its operation) on its own task within the same
/// `limits`; returns the sum of completed operations and the merged histogram.
pub async fn run_all<O: Operation + Send + 'static>(
    workers: impl IntoIterator<Item = (Ws, O)>,
    limits: Limits,
    errors: &Arc<Errors>,
) -> (u64, Histogram) {
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|(ws, op)| tokio::spawn(run(ws, op, limits, errors.clone())))
        .collect();
    let mut completed = 0;
    let mut histogram = Histogram::default();
    for task in tasks {
        match task.await {
            Ok((n, h)) => {
                completed += n;
                histogram.merge(&h);
            }
            Err(e) => errors.record(format!("worker task panicked: {e}")),
        }
    }
    (completed, histogram)
}

/// Runs `op` on `ws` within `limits`. Returns (completed operations, round-trip histogram).
pub async fn run(
    mut ws: Ws,
    mut op: impl Operation,
    limits: Limits,
    errors: Arc<Errors>,
) -> (u64, Histogram) {
    let mut histogram = Histogram::default();
    let mut completed = 0;
    let mut sent = 0;
    // (correlation id, sent at), oldest first: replies mostly arrive in order.
    let mut outstanding: VecDeque<(String, Instant)> = VecDeque::new();
    loop {
        let mut fed = false;
        while outstanding.len() < limits.in_flight.max(1)
            && sent < limits.count
            && Instant::now() < limits.deadline
        {
            sent += 1;
            let (frame, correlation_id) = op.request(sent);
            if let Err(e) = ws.feed(WsMessage::Binary(frame)).await {
                errors.record(format!("send failed: {e}"));
                return (completed, histogram);
            }
            outstanding.push_back((correlation_id, Instant::now()));
            fed = true;
        }
        if fed && let Err(e) = ws.flush().await {
            errors.record(format!("send failed: {e}"));
            return (completed, histogram);
        }
        let Some(&(_, oldest)) = outstanding.front() else {
            return (completed, histogram);
        };
        let frame = match client::recv_until(&mut ws, oldest + limits.op_timeout).await {
            Ok(frame) => frame,
            Err(e) => {
                errors.record(format!(
                    "waiting for a reply ({} outstanding): {e}",
                    outstanding.len()
                ));
                return (completed, histogram);
            }
        };
        match op.reply(frame) {
            Reply::Done(correlation_id) => {
                if let Some(i) = outstanding.iter().position(|(c, _)| *c == correlation_id) {
                    let (_, started) = outstanding.remove(i).expect("position is in range");
                    histogram.record(started.elapsed().as_micros() as u64);
                    completed += 1;
                }
            }
            Reply::Failed(correlation_id, reason) => {
                errors.record(reason);
                let i = correlation_id
                    .and_then(|id| outstanding.iter().position(|(c, _)| *c == id))
                    .unwrap_or(0);
                outstanding.remove(i);
            }
            Reply::Other => {}
            Reply::Fatal(reason) => {
                errors.record(reason);
                return (completed, histogram);
            }
        }
    }
}
