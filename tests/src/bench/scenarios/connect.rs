//! `connect`: WebSocket connect + CHALLENGE/ACCEPT + AUTH REQUEST/AUTH_SUCCESSFUL, then close;
//! `concurrency` clients at a time, `clients` logins or `duration` at most. Figure: logins/s.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use serde_json::json;
use tokio::time::Instant;

use super::Params;
use crate::bench::{Ctx, Errors, Outcome, client, probe::Window};

pub async fn run(ctx: &Ctx, params: &Params) -> Outcome {
    let outcome = ctx.outcome("connect", "logins").params(json!({
        "clients": params.clients,
        "concurrency": params.concurrency,
    }));
    let errors = Arc::new(Errors::default());
    let window = Window::start(ctx.probe.as_ref());
    let deadline = window.started() + ctx.duration;
    let ok = login_loop(
        ctx,
        params,
        &format!("c{}", ctx.run_id),
        deadline,
        errors.clone(),
    )
    .await;
    let measured = window.finish(ctx.probe.as_ref());
    let mut outcome = outcome.measured(ok, measured).errors(&errors);
    if params.exact {
        outcome.expected_ops = Some(params.clients);
    }
    outcome.finish(ctx.probe.as_ref())
}

/// `concurrency` tasks each log in a fresh client `{prefix}-{i}` and drop it (RST), until
/// `params.clients` logins were started or `deadline` passed. Returns the successful logins.
pub async fn login_loop(
    ctx: &Ctx,
    params: &Params,
    prefix: &str,
    deadline: Instant,
    errors: Arc<Errors>,
) -> u64 {
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..params.concurrency.max(1))
        .map(|_| {
            let (ctx, next, ok, errors, prefix, total) = (
                ctx.clone(),
                next.clone(),
                ok.clone(),
                errors.clone(),
                prefix.to_owned(),
                params.clients,
            );
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let user = format!("{prefix}-{i}");
                    match client::connect_login(&ctx.target, ctx.source(i), &user, ctx.op_timeout)
                        .await
                    {
                        Ok(ws) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            drop(ws);
                        }
                        Err(e) => errors.record(e.reason()),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        if let Err(e) = task.await {
            errors.record(format!("login task panicked: {e}"));
        }
    }
    ok.load(Ordering::Relaxed)
}
