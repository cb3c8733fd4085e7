//! `idle-N`: open N authenticated connections, then measure the server's memory per connection
//! = (VmRSS with all N open − VmRSS before) / N, and hold them (`--hold`, or until SIGINT /
//! SIGTERM). Idle clients send CONNECTION PING every 20 s, as the JS client does, so holding
//! longer than the server's heartbeat window is fine.
//!
//! A process may hold at most 20,000 open files here, so above `per_process` connections the
//! clients are spread over child processes (`deepstream-bench idle-worker`), each from its own
//! source address 127.0.0.2, 127.0.0.3, … (or `--source-ips`). A child prints one JSON line
//! when all its connections are logged in, holds them until its stdin closes (or `--max-hold`
//! passes), then prints a second line with the number the server had dropped and exits.

use std::{
    net::Ipv4Addr,
    process::{ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
    sync::watch,
    task::JoinHandle,
    time::Instant,
};

use super::{Params, stopped};
use crate::bench::{
    Ctx, Errors, Outcome,
    client::{self, Ws},
    probe::Window,
};

const PING_PERIOD: Duration = Duration::from_secs(20);

/// Connections opened and held by this process.
pub struct IdleSet {
    pub connected: u64,
    pub errors: Arc<Errors>,
    stop: watch::Sender<bool>,
    holders: Vec<JoinHandle<bool>>,
}

impl IdleSet {
    /// Closes every connection; returns how many the server had closed before that.
    pub async fn close(self) -> u64 {
        let _ = self.stop.send(true);
        let mut dropped = 0;
        for holder in self.holders {
            if !holder.await.unwrap_or(false) {
                dropped += 1;
            }
        }
        dropped
    }
}

/// Opens and logs in `count` clients `{prefix}-{i}`, `concurrency` at a time, each then held by
/// its own task.
pub async fn open_idle(ctx: &Ctx, count: u64, concurrency: usize, prefix: &str) -> IdleSet {
    let (stop, stop_rx) = watch::channel(false);
    let errors = Arc::new(Errors::default());
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (ctx, errors, next, stop_rx, prefix) = (
                ctx.clone(),
                errors.clone(),
                next.clone(),
                stop_rx.clone(),
                prefix.to_owned(),
            );
            tokio::spawn(async move {
                let mut holders = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let user = format!("{prefix}-{i}");
                    match client::connect_login(
                        &ctx.target,
                        ctx.source(i),
                        &user,
                        ctx.setup_timeout,
                    )
                    .await
                    {
                        Ok(ws) => holders.push(tokio::spawn(hold(ws, i, stop_rx.clone()))),
                        Err(e) => errors.record(e.reason()),
                    }
                }
                holders
            })
        })
        .collect();
    let mut holders = Vec::new();
    for worker in workers {
        match worker.await {
            Ok(h) => holders.extend(h),
            Err(e) => errors.record(format!("connect task panicked: {e}")),
        }
    }
    IdleSet {
        connected: holders.len() as u64,
        errors,
        stop,
        holders,
    }
}

/// Keeps one idle connection: reads whatever arrives, pings every 20 s (staggered). Returns
/// whether it was still open when stopped.
async fn hold(mut ws: Ws, index: u64, mut stop: watch::Receiver<bool>) -> bool {
    let ping = client::ping_frame();
    let offset = Duration::from_millis(index * 7919 % 10_000);
    let mut ticker = tokio::time::interval_at(
        Instant::now() + Duration::from_secs(10) + offset,
        PING_PERIOD,
    );
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return true,
            _ = ticker.tick() => {
                if client::send(&mut ws, ping.clone()).await.is_err() {
                    return false;
                }
            }
            next = ws.next() => match next {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None | Some(Err(_)) => return false,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// The first line an idle worker prints.
#[derive(Serialize, Deserialize)]
struct Ready {
    connected: u64,
    errors: u64,
    #[serde(default)]
    first_error: Option<String>,
}

/// The last line an idle worker prints.
#[derive(Serialize, Deserialize)]
struct Closed {
    dropped: u64,
}

/// Body of `deepstream-bench idle-worker`.
pub async fn worker(
    ctx: &Ctx,
    count: u64,
    concurrency: usize,
    prefix: &str,
    max_hold: Duration,
) -> ExitCode {
    let set = open_idle(ctx, count, concurrency, prefix).await;
    let ready = Ready {
        connected: set.connected,
        errors: set.errors.count(),
        first_error: set.errors.first(),
    };
    println!("{}", serde_json::to_string(&ready).unwrap_or_default());
    let stdin_closed = async {
        let mut buf = [0u8; 256];
        let mut stdin = tokio::io::stdin();
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = stdin_closed => {}
        _ = wait_for_signal(max_hold) => {}
    }
    let dropped = set.close().await;
    println!(
        "{}",
        serde_json::to_string(&Closed { dropped }).unwrap_or_default()
    );
    ExitCode::SUCCESS
}

/// Sleeps for `duration`, or less if SIGINT or SIGTERM arrives.
pub async fn wait_for_signal(duration: Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        tokio::time::sleep(duration).await;
        return;
    };
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Child idle workers and what they reported.
struct Workers {
    children: Vec<(
        Child,
        tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    )>,
}

impl Workers {
    async fn spawn(
        ctx: &Ctx,
        params: &Params,
        count: u64,
        processes: usize,
        connect_bound: Duration,
    ) -> Result<Workers, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
        let mut children = Vec::new();
        for i in 0..processes {
            let share = count / processes as u64 + u64::from((i as u64) < count % processes as u64);
            let source = ctx
                .sources
                .get(i % ctx.sources.len().max(1))
                .copied()
                .unwrap_or_else(|| Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8));
            let max_hold = params.hold + connect_bound + Duration::from_secs(120);
            let mut child = Command::new(&exe)
                .arg("idle-worker")
                .args(["--url", &ctx.target.url])
                .args(["--count", &share.to_string()])
                .args(["--concurrency", &params.concurrency.to_string()])
                .args(["--source-ips", &source.to_string()])
                .args(["--user-prefix", &format!("i{}-{i}", ctx.run_id)])
                .args([
                    "--setup-timeout",
                    &ctx.setup_timeout.as_secs_f64().to_string(),
                ])
                .args(["--max-hold", &max_hold.as_secs_f64().to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start idle worker: {e}"))?;
            let stdout = child.stdout.take().ok_or("idle worker without stdout")?;
            children.push((child, BufReader::new(stdout).lines()));
        }
        Ok(Workers { children })
    }

    /// Waits for every worker's "ready" line; returns (connected, errors).
    async fn ready(&mut self, errors: &Errors, deadline: Instant) -> u64 {
        let mut connected = 0;
        for (_, lines) in &mut self.children {
            match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Ok(Ok(Some(line))) => match serde_json::from_str::<Ready>(&line) {
                    Ok(ready) => {
                        connected += ready.connected;
                        if ready.errors > 0 {
                            errors.record_n(
                                ready.errors,
                                ready
                                    .first_error
                                    .unwrap_or_else(|| "idle worker error".into()),
                            );
                        }
                    }
                    Err(e) => errors.record(format!("idle worker printed {line:?}: {e}")),
                },
                Ok(_) => errors.record("idle worker exited before reporting"),
                Err(_) => errors.record("idle worker did not report in time"),
            }
        }
        connected
    }

    /// Closes every worker's stdin and collects the dropped counts.
    async fn close(mut self) -> u64 {
        let mut dropped = 0;
        for (child, _) in &mut self.children {
            drop(child.stdin.take());
        }
        for (child, lines) in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(30);
            if let Ok(Ok(Some(line))) = tokio::time::timeout_at(deadline, lines.next_line()).await
                && let Ok(closed) = serde_json::from_str::<Closed>(&line)
            {
                dropped += closed.dropped;
            }
            if tokio::time::timeout_at(deadline, child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        dropped
    }
}

pub async fn run(ctx: &Ctx, params: &Params, count: u64) -> Outcome {
    let processes = params
        .processes
        .unwrap_or_else(|| count.div_ceil(params.per_process.max(1)) as usize)
        .max(1);
    let outcome = ctx
        .outcome(&format!("idle-{count}"), "connections")
        .params(json!({
            "connections": count,
            "processes": processes,
            "concurrency": params.concurrency,
        }));
    let probe = ctx.probe.as_ref();
    let errors = Errors::default();
    // Generous bound for opening everything: 10 ms per connection per process, plus setup.
    let connect_bound = ctx.setup_timeout
        + Duration::from_millis(10 * count / processes as u64)
        + Duration::from_secs(30);

    let rss_before = probe.and_then(|p| p.rss_kb());
    let window = Window::start(probe);
    let (connected, closer) = if processes == 1 {
        let set = tokio::time::timeout(
            connect_bound,
            open_idle(ctx, count, params.concurrency, &format!("i{}", ctx.run_id)),
        )
        .await;
        match set {
            Ok(set) => {
                if set.errors.count() > 0 {
                    errors.record_n(set.errors.count(), set.errors.first().unwrap_or_default());
                }
                (set.connected, Closer::Local(set))
            }
            Err(_) => {
                errors.record("opening the connections did not finish in time");
                (0, Closer::Nothing)
            }
        }
    } else {
        match Workers::spawn(ctx, params, count, processes, connect_bound).await {
            Ok(mut workers) => {
                let connected = workers.ready(&errors, Instant::now() + connect_bound).await;
                (connected, Closer::Children(workers))
            }
            Err(e) => {
                errors.record(e);
                (0, Closer::Nothing)
            }
        }
    };
    let measured = window.finish(probe);
    tokio::time::sleep(params.settle).await;
    let rss_after = probe.and_then(|p| p.rss_kb());
    eprintln!(
        "deepstream-bench: idle-{count}: {connected} connections open ({} failed) in {:.1} s; server VmRSS {} → {} kB",
        count - connected.min(count),
        measured.seconds,
        rss_before.map_or("?".into(), |v| v.to_string()),
        rss_after.map_or("?".into(), |v| v.to_string()),
    );
    if !params.hold.is_zero() {
        eprintln!(
            "deepstream-bench: idle-{count}: holding for {:?} (SIGINT/SIGTERM ends it)",
            params.hold
        );
        wait_for_signal(params.hold).await;
    }
    let dropped = match closer {
        Closer::Local(set) => set.close().await,
        Closer::Children(workers) => workers.close().await,
        Closer::Nothing => 0,
    };
    errors.record_n(dropped, "idle connections closed by the server");

    let mut outcome = outcome.measured(connected, measured).errors(&errors);
    if processes > 1 {
        // The worker processes did the work; this process's CPU time says nothing.
        outcome.loadgen_cpu_us_per_op = None;
    }
    outcome.server_rss_before_kb = rss_before;
    outcome.server_rss_after_kb = rss_after;
    if let (Some(before), Some(after)) = (rss_before, rss_after)
        && connected > 0
    {
        outcome.bytes_per_connection =
            Some(((after as f64 - before as f64) * 1024.0 / connected as f64).round());
    }
    if params.exact {
        outcome.expected_ops = Some(count);
    }
    outcome.finish(probe)
}

enum Closer {
    Local(IdleSet),
    Children(Workers),
    Nothing,
}
