//! `rpc` (spec §6): `providers` clients PROVIDE one RPC name and answer every REQUEST the way
//! the JS client does (ACCEPT, then RESPONSE echoing the request data); `requesters` clients
//! each keep `in_flight` REQUESTs outstanding (see [`super::pipeline`]). Figures: round
//! trips/s, p50/p99.

use std::sync::Arc;

use bytes::Bytes;
use deepstream::protocol::{self, Message, RpcAction, Topic};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::{
    Params, not_available, open_clients,
    pipeline::{self, Limits, Operation, Reply},
    request_all, stopped, unexpected,
};
use crate::bench::{
    Ctx, Errors, Outcome,
    client::{self, Fail, Ws},
    probe::Window,
};

const REQUEST: (i32, i32) = (Topic::Rpc as i32, RpcAction::Request as i32);
const ACCEPT: (i32, i32) = (Topic::Rpc as i32, RpcAction::Accept as i32);
const RESPONSE: (i32, i32) = (Topic::Rpc as i32, RpcAction::Response as i32);

pub async fn run(ctx: &Ctx, params: &Params) -> Outcome {
    let (providers, requesters) = (params.providers.max(1), params.requesters.max(1));
    let scenario = pipeline::scenario_name("rpc", params.in_flight);
    let outcome = ctx.outcome(&scenario, "round trips").params(json!({
        "providers": providers,
        "requesters": requesters,
        "in_flight": params.in_flight,
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
    let limits = Limits {
        in_flight: params.in_flight,
        count: params.per_worker,
        deadline: window.started() + ctx.duration,
        op_timeout: ctx.op_timeout,
    };
    let workers = requester_clients.into_iter().enumerate().map(|(i, ws)| {
        let requester = Requester {
            name: name.clone(),
            prefix: format!("{}-{i}", ctx.run_id),
        };
        (ws, requester)
    });
    let (ops, histogram) = pipeline::run_all(workers, limits, &errors).await;
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

/// Answers every REQUEST with ACCEPT + RESPONSE (data = request data); the replies to all
/// requests already received go out in one flush.
async fn provide(mut ws: Ws, errors: Arc<Errors>, mut stop: watch::Receiver<bool>) {
    loop {
        let mut next = tokio::select! {
            _ = stopped(&mut stop) => return,
            next = ws.next() => Some(next),
        };
        while let Some(item) = next.take() {
            match item {
                Some(Ok(WsMessage::Binary(frame))) => {
                    if let Err(e) = answer(&mut ws, frame, &errors).await {
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
            next = ws.next().now_or_never();
        }
        if let Err(e) = ws.flush().await {
            errors.record(format!("provider send failed: {e}"));
            return;
        }
    }
}

/// Queues ACCEPT and RESPONSE for one REQUEST frame (anything else is an error record).
async fn answer(ws: &mut Ws, frame: Bytes, errors: &Errors) -> Result<(), tungstenite::Error> {
    if client::kind(&frame) != Some(REQUEST) {
        errors.record(format!("provider: {}", unexpected(&frame)));
        return Ok(());
    }
    let Ok(request) = protocol::decode(frame) else {
        errors.record("provider: undecodable REQUEST");
        return Ok(());
    };
    let reply = |action: RpcAction| Message {
        name: request.name.clone(),
        correlation_id: request.correlation_id.clone(),
        ..Message::new(Topic::Rpc, action)
    };
    ws.feed(WsMessage::Binary(protocol::encode(&reply(
        RpcAction::Accept,
    ))))
    .await?;
    let response = Message {
        data: request.data.clone(),
        ..reply(RpcAction::Response)
    };
    ws.feed(WsMessage::Binary(protocol::encode(&response)))
        .await
}

/// RPC requests to the provided name; data = the request number.
struct Requester {
    name: String,
    /// Correlation ids must be unique server-wide (§6.2): `{run}-{requester}-{n}`.
    prefix: String,
}

impl Operation for Requester {
    fn request(&mut self, n: u64) -> (Bytes, String) {
        let correlation_id = format!("{}-{n}", self.prefix);
        let request = Message::new(Topic::Rpc, RpcAction::Request)
            .with_name(self.name.as_str())
            .with_correlation_id(correlation_id.as_str())
            .with_data(n.to_string());
        (protocol::encode(&request), correlation_id)
    }

    fn reply(&mut self, frame: Bytes) -> Reply {
        let kind = client::kind(&frame);
        if kind == Some(ACCEPT) {
            return Reply::Other;
        }
        let Ok(msg) = protocol::decode(frame) else {
            return Reply::Fatal("undecodable frame".into());
        };
        if kind == Some(RESPONSE) {
            return match msg.correlation_id {
                Some(id) => Reply::Done(id),
                None => Reply::Other,
            };
        }
        if client::is_unknown_topic(&msg) {
            return Reply::Fatal("RPC REQUEST: server answers PARSER UNKNOWN_TOPIC".into());
        }
        if client::is_failure(&msg) {
            return Reply::Failed(msg.correlation_id.clone(), client::describe(&msg));
        }
        Reply::Other
    }
}
