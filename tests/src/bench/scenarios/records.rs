//! Record scenarios (spec §5.3, §5.5, §5.6).
//!
//! * `record-writes`: `writers` clients, one record each (created by SUBSCRIBECREATEANDREAD,
//!   which also yields its version). Each writer keeps `in_flight` writes `UPDATE {version+1,
//!   isWriteAck: true, correlationId}` outstanding (see [`super::pipeline`]) and counts the
//!   WRITE_ACKNOWLEDGEMENTs. Figures: acks/s, p50/p99 of the round trip.
//! * `record-fanout`: one writer updates one record as fast as `subscribers` subscribers receive
//!   the broadcasts (at most `window` updates ahead). Figure: deliveries/s.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;
use deepstream::protocol::{self, Message, RecordAction, Topic};
use futures_util::{StreamExt, stream};
use serde_json::json;
use tokio::sync::watch;

use super::{
    Params, count_frames, drain, not_available, open_clients,
    pipeline::{self, Limits, Operation, Reply},
    publish_max_rate,
};
use crate::bench::{
    Ctx, Errors, Outcome,
    client::{self, Fail, Ws},
    probe::{Measured, Window},
};

const WRITE_ACK: (i32, i32) = (
    Topic::Record as i32,
    RecordAction::WriteAcknowledgement as i32,
);
const UPDATE: (i32, i32) = (Topic::Record as i32, RecordAction::Update as i32);

/// SUBSCRIBECREATEANDREAD `name` (creating it if needed) and returns its version from the
/// READ_RESPONSE.
async fn subscribe_create_read(ctx: &Ctx, ws: &mut Ws, name: &str) -> Result<i32, Fail> {
    let request = Message::new(Topic::Record, RecordAction::SubscribeCreateAndRead)
        .with_names([name])
        .with_correlation_id("0");
    client::send(ws, protocol::encode(&request)).await?;
    let response = client::expect(ws, "RECORD READ_RESPONSE", ctx.setup_timeout, |m| {
        m.topic == Topic::Record
            && m.action == RecordAction::ReadResponse as i32
            && m.name.as_deref() == Some(name)
    })
    .await?;
    response
        .version
        .ok_or_else(|| Fail::Error("RECORD READ_RESPONSE without a version".into()))
}

pub async fn writes(ctx: &Ctx, params: &Params) -> Outcome {
    let writers = params.writers.max(1);
    let scenario = pipeline::scenario_name("record-writes", params.in_flight);
    let outcome = ctx.outcome(&scenario, "acks").params(json!({
        "writers": writers,
        "in_flight": params.in_flight,
        "payload": params.payload,
    }));
    let setup = async {
        let mut clients = open_clients(ctx, writers, &format!("rw{}", ctx.run_id), 50).await?;
        let versions = stream::iter(clients.iter_mut().enumerate())
            .map(|(i, ws)| async move {
                let name = format!("bench/{}/w{i}", ctx.run_id);
                let version = subscribe_create_read(ctx, ws, &name).await?;
                Ok::<_, Fail>((name, version))
            })
            .buffered(50)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, Fail>>()?;
        Ok::<_, Fail>(clients.into_iter().zip(versions).collect::<Vec<_>>())
    };
    let writers = match setup.await {
        Ok(writers) => writers,
        Err(fail) => return not_available(outcome, &fail, ctx),
    };

    let errors = Arc::new(Errors::default());
    let pad = Arc::<str>::from(client::padding(params.payload));
    let window = Window::start(ctx.probe.as_ref());
    let limits = Limits {
        in_flight: params.in_flight,
        count: params.per_worker,
        deadline: window.started() + ctx.duration,
        op_timeout: ctx.op_timeout,
    };
    let workers = writers.into_iter().map(|(ws, (name, version))| {
        let writer = Writer {
            name,
            version,
            pad: pad.clone(),
        };
        (ws, writer)
    });
    let (ops, histogram) = pipeline::run_all(workers, limits, &errors).await;
    let measured = window.finish(ctx.probe.as_ref());
    let mut outcome = outcome
        .measured(ops, measured)
        .latency(&histogram)
        .errors(&errors);
    if params.exact {
        outcome.expected_ops = Some(params.per_worker * params.writers.max(1) as u64);
    }
    outcome.finish(ctx.probe.as_ref())
}

/// Acknowledged writes to one record: `UPDATE {version+1, isWriteAck}` per operation.
struct Writer {
    name: String,
    /// The version the next write builds on (resynchronised from VERSION_EXISTS).
    version: i32,
    pad: Arc<str>,
}

impl Operation for Writer {
    fn request(&mut self, n: u64) -> (Bytes, String) {
        self.version += 1;
        let correlation_id = n.to_string();
        let update = Message {
            version: Some(self.version),
            is_write_ack: Some(true),
            ..Message::new(Topic::Record, RecordAction::Update)
                .with_name(self.name.as_str())
                .with_data(format!("{{\"n\":{n},\"m\":\"{}\"}}", self.pad))
                .with_correlation_id(correlation_id.as_str())
        };
        (protocol::encode(&update), correlation_id)
    }

    fn reply(&mut self, frame: Bytes) -> Reply {
        let is_ack = client::kind(&frame) == Some(WRITE_ACK);
        let Ok(msg) = protocol::decode(frame) else {
            return Reply::Fatal("undecodable frame".into());
        };
        if is_ack {
            return match msg.correlation_id {
                Some(id) => Reply::Done(id),
                None => Reply::Other,
            };
        }
        if client::is_unknown_topic(&msg) {
            return Reply::Fatal("RECORD UPDATE: server answers PARSER UNKNOWN_TOPIC".into());
        }
        if msg.action == RecordAction::VersionExists as i32 {
            // Resynchronise; the next write uses the server's version + 1.
            self.version = msg.version.unwrap_or(self.version);
            return Reply::Failed(msg.correlation_id.clone(), client::describe(&msg));
        }
        if client::is_failure(&msg) {
            return Reply::Failed(msg.correlation_id.clone(), client::describe(&msg));
        }
        Reply::Other
    }
}

pub async fn fanout(ctx: &Ctx, params: &Params) -> Outcome {
    let subs = params.subscribers.max(1);
    let outcome = ctx.outcome("record-fanout", "deliveries").params(json!({
        "subscribers": subs,
        "window": params.window,
        "payload": params.payload,
    }));
    let name = format!("bench/{}/fanout", ctx.run_id);
    let setup = async {
        let mut writer = open_clients(ctx, 1, &format!("rfw{}", ctx.run_id), 1)
            .await?
            .remove(0);
        let version = subscribe_create_read(ctx, &mut writer, &name).await?;
        let mut subscribers = open_clients(ctx, subs, &format!("rfs{}", ctx.run_id), 50).await?;
        stream::iter(subscribers.iter_mut())
            .map(|ws| subscribe_create_read(ctx, ws, &name))
            .buffer_unordered(50)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, Fail>>()?;
        Ok::<_, Fail>((writer, version, subscribers))
    };
    let (writer, version, subscribers) = match setup.await {
        Ok(clients) => clients,
        Err(fail) => return not_available(outcome, &fail, ctx),
    };

    let delivered = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Errors::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks: Vec<_> = subscribers
        .into_iter()
        .map(|ws| {
            let (delivered, errors, stop) = (delivered.clone(), errors.clone(), stop_rx.clone());
            tokio::spawn(
                async move { count_frames(ws, Some(UPDATE), &delivered, &errors, stop).await },
            )
        })
        .collect();
    // The writer gets no broadcast of its own writes: anything it receives is an error reply.
    let (mut sink, replies) = writer.split();
    {
        let (errors, stop) = (errors.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            count_frames(replies, None, &AtomicU64::new(0), &errors, stop).await
        }));
    }

    let data = Bytes::from(format!("{{\"m\":\"{}\"}}", client::padding(params.payload)));
    let subs = subs as u64;
    let window = Window::start(ctx.probe.as_ref());
    let deadline = window.started() + ctx.duration;
    let sent = publish_max_rate(
        &mut sink,
        subs,
        &delivered,
        params.window,
        params.max_messages,
        deadline,
        |i| {
            let update = Message {
                version: Some(version + 1 + i as i32),
                ..Message::new(Topic::Record, RecordAction::Update).with_name(name.as_str())
            };
            protocol::encode(&Message {
                data: Some(data.clone()),
                ..update
            })
        },
    )
    .await;
    let outcome = match sent {
        Err(fail) => not_available(outcome, &fail, ctx),
        Ok(sent) => {
            let expected = sent * subs;
            let last = drain(&delivered, expected, window.started(), ctx.drain_timeout).await;
            let measured = window.finish(ctx.probe.as_ref());
            let measured = Measured {
                seconds: (last - window.started()).as_secs_f64(),
                ..measured
            };
            let got = delivered.load(Ordering::SeqCst);
            errors.record_n(
                expected.saturating_sub(got),
                "deliveries missing after the drain timeout",
            );
            let mut outcome = outcome.measured(got, measured).errors(&errors);
            outcome.params["updates"] = json!(sent);
            if params.exact {
                outcome.expected_ops = Some(params.max_messages * subs);
            }
            outcome.finish(ctx.probe.as_ref())
        }
    };
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    outcome
}
