//! `events`: 1 publisher, `subscribers` subscribers of one event (spec §4).
//!
//! * `events` (max rate): the publisher sends one pre-encoded EMIT as fast as deliveries keep up
//!   (at most `window` emits ahead); figure: deliveries/s.
//! * `events-latency` (fixed rate): `rate` emits/s, each carrying its send time in µs
//!   (`{"t":…}`); every subscriber records receive time − send time; figure: p50/p99.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use bytes::Bytes;
use deepstream::protocol::{self, EventAction, Message, Topic};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{
    Params, drain, not_available, open_clients, publish_max_rate, request_all, stopped, unexpected,
};
use crate::bench::{
    Ctx, Errors, Outcome,
    client::{self, Fail, Ws},
    now_us,
    probe::{Measured, Window},
    stats::Histogram,
};

const EMIT: (i32, i32) = (Topic::Event as i32, EventAction::Emit as i32);

struct Shared {
    delivered: AtomicU64,
    /// Set once the max-rate phase has drained: from then on every EMIT carries a timestamp.
    latency: AtomicBool,
    errors: Errors,
}

pub async fn run(ctx: &Ctx, params: &Params) -> Vec<Outcome> {
    let subs = params.subscribers.max(1);
    let max_rate = ctx.outcome("events", "deliveries").params(json!({
        "subscribers": subs,
        "window": params.window,
        "payload": params.payload,
    }));
    let latency = ctx.outcome("events-latency", "deliveries").params(json!({
        "subscribers": subs,
        "rate": params.rate,
        "payload": params.payload,
    }));
    let event = format!("bench/{}/event", ctx.run_id);

    let setup = async {
        let mut publisher = open_clients(ctx, 1, &format!("ep{}", ctx.run_id), 1).await?;
        let mut subscribers = open_clients(ctx, subs, &format!("es{}", ctx.run_id), 50).await?;
        let subscribe = protocol::encode(
            &Message::new(Topic::Event, EventAction::Subscribe)
                .with_names([event.clone()])
                .with_correlation_id("0"),
        );
        request_all(
            ctx,
            &mut subscribers,
            subscribe,
            "EVENT SUBSCRIBE ack",
            |m| m.topic == Topic::Event && m.action == EventAction::Subscribe as i32 && m.is_ack,
        )
        .await?;
        Ok::<_, Fail>((publisher.remove(0), subscribers))
    };
    let (mut publisher, subscribers) = match setup.await {
        Ok(clients) => clients,
        Err(fail) => {
            return vec![
                not_available(max_rate, &fail, ctx),
                not_available(latency, &fail, ctx),
            ];
        }
    };

    let shared = Arc::new(Shared {
        delivered: AtomicU64::new(0),
        latency: AtomicBool::new(false),
        errors: Errors::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = subscribers
        .into_iter()
        .map(|ws| tokio::spawn(subscriber(ws, shared.clone(), stop_rx.clone())))
        .collect();
    let subs = subs as u64;
    let pad = client::padding(params.payload);

    // Phase 1: max rate, one frame encoded once.
    let frame = protocol::encode(
        &Message::new(Topic::Event, EventAction::Emit)
            .with_name(event.clone())
            .with_data(format!("{{\"m\":\"{pad}\"}}")),
    );
    let window = Window::start(ctx.probe.as_ref());
    let deadline = window.started() + ctx.duration;
    let sent = publish_max_rate(
        &mut publisher,
        subs,
        &shared.delivered,
        params.window,
        params.max_messages,
        deadline,
        |_| frame.clone(),
    )
    .await;
    let max_rate = finish_phase(ctx, params, max_rate, &shared, sent, subs, 0, &window).await;

    // Phase 2: fixed rate with timestamps.
    shared.latency.store(true, Ordering::SeqCst);
    let base = shared.delivered.load(Ordering::SeqCst);
    let window = Window::start(ctx.probe.as_ref());
    let sent = publish_fixed_rate(&mut publisher, ctx, params, &event, &pad, &window).await;
    let mut latency = finish_phase(ctx, params, latency, &shared, sent, subs, base, &window).await;

    let _ = stop_tx.send(true);
    let mut histogram = Histogram::default();
    for task in tasks {
        if let Ok(h) = task.await {
            histogram.merge(&h);
        }
    }
    latency = latency.latency(&histogram);
    vec![max_rate, latency]
}

/// Waits for the phase's deliveries and fills the outcome. `base`: deliveries before the phase.
#[allow(clippy::too_many_arguments)]
async fn finish_phase(
    ctx: &Ctx,
    params: &Params,
    outcome: Outcome,
    shared: &Shared,
    sent: Result<u64, Fail>,
    subs: u64,
    base: u64,
    window: &Window,
) -> Outcome {
    let sent = match sent {
        Ok(sent) => sent,
        Err(fail) => return not_available(outcome, &fail, ctx),
    };
    let expected = sent * subs;
    let last = drain(
        &shared.delivered,
        base + expected,
        window.started(),
        ctx.drain_timeout,
    )
    .await;
    let measured = window.finish(ctx.probe.as_ref());
    let measured = Measured {
        seconds: (last - window.started()).as_secs_f64(),
        ..measured
    };
    let delivered = shared.delivered.load(Ordering::SeqCst) - base;
    shared.errors.record_n(
        expected.saturating_sub(delivered),
        "deliveries missing after the drain timeout",
    );
    let mut outcome = outcome.measured(delivered, measured).errors(&shared.errors);
    outcome.params["emits"] = json!(sent);
    if params.exact {
        outcome.expected_ops = Some(params.max_messages * subs);
    }
    outcome.finish(ctx.probe.as_ref())
}

/// Sends `rate` emits per second (at most `rate × duration` and `max_messages`), each with its
/// send time.
async fn publish_fixed_rate(
    publisher: &mut Ws,
    ctx: &Ctx,
    params: &Params,
    event: &str,
    pad: &str,
    window: &Window,
) -> Result<u64, Fail> {
    let rate = params.rate.max(1) as f64;
    let count = ((rate * ctx.duration.as_secs_f64()) as u64).min(params.max_messages);
    let deadline = window.started() + ctx.duration;
    let mut sent = 0;
    for i in 0..count {
        let at = window.started() + std::time::Duration::from_secs_f64(i as f64 / rate);
        if at >= deadline {
            break;
        }
        tokio::time::sleep_until(at).await;
        let data = format!("{{\"t\":{},\"m\":\"{pad}\"}}", now_us());
        let frame = protocol::encode(
            &Message::new(Topic::Event, EventAction::Emit)
                .with_name(event)
                .with_data(data),
        );
        publisher
            .send(WsMessage::Binary(frame))
            .await
            .map_err(|e| Fail::Error(format!("publisher send failed: {e}")))?;
        sent += 1;
    }
    Ok(sent)
}

async fn subscriber(mut ws: Ws, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> Histogram {
    let mut histogram = Histogram::default();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            next = ws.next() => match next {
                Some(Ok(WsMessage::Binary(frame))) => {
                    let received = now_us();
                    if client::kind(&frame) != Some(EMIT) {
                        shared.errors.record(unexpected(&frame));
                        continue;
                    }
                    if shared.latency.load(Ordering::Relaxed) {
                        match sent_at(frame) {
                            Some(sent) => histogram.record(received.saturating_sub(sent)),
                            None => shared.errors.record("EMIT without a timestamp in the latency phase"),
                        }
                    }
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(WsMessage::Close(_))) | None => {
                    shared.errors.record("subscriber connection closed by the server");
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    shared.errors.record(format!("subscriber connection failed: {e}"));
                    break;
                }
            }
        }
    }
    histogram
}

/// The `t` of `{"t":<µs>,…}` in the EMIT's data, read without a JSON parser.
fn sent_at(frame: Bytes) -> Option<u64> {
    let data = protocol::decode(frame).ok()?.data?;
    let rest = data.strip_prefix(b"{\"t\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}
