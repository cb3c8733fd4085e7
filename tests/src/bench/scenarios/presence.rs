//! `presence` (spec §7): one listener sends SUBSCRIBE_ALL; then distinct users log in (and drop
//! their connection) as in `connect`. Figure: PRESENCE_JOIN_ALL messages the listener received
//! per second. Logins without a join notice by the end of the drain count as errors.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use deepstream::protocol::{self, Message, PresenceAction, Topic};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{Params, connect::login_loop, drain, not_available, open_clients, stopped, unexpected};
use crate::bench::{
    Ctx, Errors, Outcome,
    client::{self, Fail, Ws},
    probe::{Measured, Window},
};

const JOIN_ALL: (i32, i32) = (
    Topic::Presence as i32,
    PresenceAction::PresenceJoinAll as i32,
);
const LEAVE_ALL: (i32, i32) = (
    Topic::Presence as i32,
    PresenceAction::PresenceLeaveAll as i32,
);

pub async fn run(ctx: &Ctx, params: &Params) -> Outcome {
    let outcome = ctx.outcome("presence", "joins").params(json!({
        "clients": params.clients,
        "concurrency": params.concurrency,
    }));
    let setup = async {
        let mut listener = open_clients(ctx, 1, &format!("pl{}", ctx.run_id), 1)
            .await?
            .remove(0);
        let subscribe = Message::new(Topic::Presence, PresenceAction::SubscribeAll);
        client::send(&mut listener, protocol::encode(&subscribe)).await?;
        client::expect(
            &mut listener,
            "PRESENCE SUBSCRIBE_ALL ack",
            ctx.setup_timeout,
            |m| {
                m.topic == Topic::Presence
                    && m.action == PresenceAction::SubscribeAll as i32
                    && m.is_ack
            },
        )
        .await?;
        Ok::<_, Fail>(listener)
    };
    let listener = match setup.await {
        Ok(listener) => listener,
        Err(fail) => return not_available(outcome, &fail, ctx),
    };

    let joins = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Errors::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(listen(listener, joins.clone(), errors.clone(), stop_rx));

    let window = Window::start(ctx.probe.as_ref());
    let deadline = window.started() + ctx.duration;
    let logins = login_loop(
        ctx,
        params,
        &format!("pj{}", ctx.run_id),
        deadline,
        errors.clone(),
    )
    .await;
    let last = drain(&joins, logins, window.started(), ctx.drain_timeout).await;
    let measured = window.finish(ctx.probe.as_ref());
    let measured = Measured {
        seconds: (last - window.started()).as_secs_f64(),
        ..measured
    };
    let _ = stop_tx.send(true);
    let _ = task.await;

    let got = joins.load(Ordering::SeqCst);
    errors.record_n(
        logins.saturating_sub(got),
        "logins without PRESENCE_JOIN_ALL after the drain timeout",
    );
    let mut outcome = outcome.measured(got, measured).errors(&errors);
    outcome.params["logins"] = json!(logins);
    if params.exact {
        outcome.expected_ops = Some(params.clients);
    }
    outcome.finish(ctx.probe.as_ref())
}

/// Counts PRESENCE_JOIN_ALL; PRESENCE_LEAVE_ALL (the joiners disconnect) is expected too.
async fn listen(
    mut ws: Ws,
    joins: Arc<AtomicU64>,
    errors: Arc<Errors>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            next = ws.next() => match next {
                Some(Ok(WsMessage::Binary(frame))) => match client::kind(&frame) {
                    Some(JOIN_ALL) => {
                        joins.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(LEAVE_ALL) => {}
                    _ => errors.record(format!("presence listener: {}", unexpected(&frame))),
                },
                Some(Ok(WsMessage::Close(_))) | None => {
                    errors.record("presence listener connection closed by the server");
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    errors.record(format!("presence listener connection failed: {e}"));
                    return;
                }
            }
        }
    }
}
