//! `rpc` (spec §6): `providers` clients PROVIDE one RPC name and answer every REQUEST the way
//! the JS client does (ACCEPT, then RESPONSE echoing the request data); `requesters` clients
//! each send REQUEST and wait for the RESPONSE before the next one. Figures: round trips/s,
//! p50/p99.

use std::sync::Arc;

use deepstream::protocol::{self, Message, RpcAction, Topic};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::{sync::watch, time::Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{Params, not_available, open_clients, request_all, stopped, unexpected};
use crate::bench::{
    Ctx, Errors, Outcome,
    client::{self, Fail, Ws},
    probe::Window,
    stats::Histogram,
};

const REQUEST: (i32, i32) = (Topic::Rpc as i32, RpcAction::Request as i32);
const ACCEPT: (i32, i32) = (Topic::Rpc as i32, RpcAction::Accept as i32);
const RESPONSE: (i32, i32) = (Topic::Rpc as i32, RpcAction::Response as i32);

pub async fn run(ctx: &Ctx, params: &Params) -> Outcome {
    let (providers, requesters) = (params.providers.max(1), params.requesters.max(1));
    let outcome = ctx.outcome("rpc", "round trips").params(json!({
        "providers": providers,
        "requesters": requesters,
    }));
    let name = format!("bench/{}/rpc", ctx.run_id);
    let setup = async {
        let mut provider_clients =
            open_clients(ctx, providers, &format!("rp{}", ctx.run_id), 50).await?;
        let provide = protocol::encode(
            &Message::new(Topic::Rpc, RpcAction::Provide)
                .with_names([name.as_str()])
                .with_correlation_id("0"),
        );
        request_all(
            ctx,
            &mut provider_clients,
            provide,
            "RPC PROVIDE ack",
            |m| m.topic == Topic::Rpc && m.action == RpcAction::Provide as i32 && m.is_ack,
        )
        .await?;
        let requester_clients =
            open_clients(ctx, requesters, &format!("rr{}", ctx.run_id), 50).await?;
        Ok::<_, Fail>((provider_clients, requester_clients))
    };
    let (provider_clients, requester_clients) = match setup.await {
        Ok(clients) => clients,
        Err(fail) => return not_available(outcome, &fail, ctx),
    };

    let errors = Arc::new(Errors::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let provider_tasks: Vec<_> = provider_clients
        .into_iter()
        .map(|ws| tokio::spawn(provide(ws, errors.clone(), stop_rx.clone())))
        .collect();

    let window = Window::start(ctx.probe.as_ref());
    let deadline = window.started() + ctx.duration;
    let tasks: Vec<_> = requester_clients
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let job = Requester {
                name: name.clone(),
                prefix: format!("{}-{i}", ctx.run_id),
                deadline,
                limit: params.per_worker,
                op_timeout: ctx.op_timeout,
                errors: errors.clone(),
            };
            tokio::spawn(job.run(ws))
        })
        .collect();
    let mut ops = 0;
    let mut histogram = Histogram::default();
    for task in tasks {
        match task.await {
            Ok((n, h)) => {
                ops += n;
                histogram.merge(&h);
            }
            Err(e) => errors.record(format!("requester task panicked: {e}")),
        }
    }
    let measured = window.finish(ctx.probe.as_ref());
    let _ = stop_tx.send(true);
    for task in provider_tasks {
        let _ = task.await;
    }
    let mut outcome = outcome
        .measured(ops, measured)
        .latency(&histogram)
        .errors(&errors);
    if params.exact {
        outcome.expected_ops = Some(params.per_worker * requesters as u64);
    }
    outcome.finish(ctx.probe.as_ref())
}

/// Answers every REQUEST with ACCEPT + RESPONSE (data = request data), in one flush.
async fn provide(mut ws: Ws, errors: Arc<Errors>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            next = ws.next() => match next {
                Some(Ok(WsMessage::Binary(frame))) => {
                    if client::kind(&frame) != Some(REQUEST) {
                        errors.record(format!("provider: {}", unexpected(&frame)));
                        continue;
                    }
                    let Ok(request) = protocol::decode(frame) else {
                        errors.record("provider: undecodable REQUEST");
                        continue;
                    };
                    let reply = |action: RpcAction| Message {
                        name: request.name.clone(),
                        correlation_id: request.correlation_id.clone(),
                        ..Message::new(Topic::Rpc, action)
                    };
                    let accept = protocol::encode(&reply(RpcAction::Accept));
                    let response = protocol::encode(&Message { data: request.data.clone(), ..reply(RpcAction::Response) });
                    let sent = async {
                        ws.feed(WsMessage::Binary(accept)).await?;
                        ws.send(WsMessage::Binary(response)).await
                    };
                    if let Err(e) = sent.await {
                        errors.record(format!("provider send failed: {e}"));
                        return;
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None => {
                    errors.record("provider connection closed by the server");
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    errors.record(format!("provider connection failed: {e}"));
                    return;
                }
            }
        }
    }
}

struct Requester {
    name: String,
    /// Correlation ids must be unique server-wide (§6.2): `{run}-{requester}-{n}`.
    prefix: String,
    deadline: Instant,
    limit: u64,
    op_timeout: std::time::Duration,
    errors: Arc<Errors>,
}

impl Requester {
    async fn run(self, mut ws: Ws) -> (u64, Histogram) {
        let mut histogram = Histogram::default();
        let mut done = 0;
        for n in 1..=self.limit {
            if Instant::now() >= self.deadline {
                break;
            }
            let correlation_id = format!("{}-{n}", self.prefix);
            let request = Message::new(Topic::Rpc, RpcAction::Request)
                .with_name(self.name.as_str())
                .with_correlation_id(correlation_id.as_str())
                .with_data(n.to_string());
            let started = Instant::now();
            if let Err(fail) = client::send(&mut ws, protocol::encode(&request)).await {
                self.errors.record(fail.reason());
                break;
            }
            match self
                .await_response(&mut ws, &correlation_id, started + self.op_timeout)
                .await
            {
                Ok(true) => {
                    histogram.record(started.elapsed().as_micros() as u64);
                    done += 1;
                }
                Ok(false) => {}
                Err(()) => break,
            }
        }
        (done, histogram)
    }

    /// `Ok(true)`: RESPONSE; `Ok(false)`: an error reply (counted, next request); `Err`: no
    /// usable reply (counted; this requester stops).
    async fn await_response(
        &self,
        ws: &mut Ws,
        correlation_id: &str,
        deadline: Instant,
    ) -> Result<bool, ()> {
        loop {
            let frame = match client::recv_until(ws, deadline).await {
                Ok(frame) => frame,
                Err(e) => {
                    self.errors.record(format!("waiting for RPC RESPONSE: {e}"));
                    return Err(());
                }
            };
            let kind = client::kind(&frame);
            if kind == Some(ACCEPT) {
                continue;
            }
            let Ok(msg) = protocol::decode(frame) else {
                self.errors.record("undecodable frame");
                return Err(());
            };
            if kind == Some(RESPONSE) && msg.correlation_id.as_deref() == Some(correlation_id) {
                return Ok(true);
            }
            if client::is_unknown_topic(&msg) {
                self.errors
                    .record("RPC REQUEST: server answers PARSER UNKNOWN_TOPIC");
                return Err(());
            }
            if client::is_failure(&msg) {
                self.errors.record(client::describe(&msg));
                return Ok(false);
            }
        }
    }
}
