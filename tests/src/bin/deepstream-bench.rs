//! `deepstream-bench`: load generator for side-by-side benchmarks of deepstream servers (ours and
//! the original), speaking the binary protocol directly over WebSocket.
//!
//! ```text
//! deepstream-bench --url ws://127.0.0.1:6020/deepstream --scenario connect,events --server-pid PID
//! deepstream-bench --url … --smoke                      # a few hundred ops each, exit ≠ 0 on failure
//! deepstream-bench report --ours ours.jsonl --theirs ref.jsonl
//! ```
//!
//! Prints one JSON line per scenario on stdout; progress goes to stderr. See
//! `deepstream_tests::bench` and `scripts/bench.sh`.

use std::{net::Ipv4Addr, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use deepstream_tests::bench::{
    Ctx, Outcome, ServerProbe, Target, client, new_run_id, now_us, report,
    scenarios::{self, Params},
};

#[derive(Parser)]
#[command(
    name = "deepstream-bench",
    about = "Load generator for side-by-side benchmarks of deepstream servers (binary protocol over WebSocket)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print the side-by-side table of two runs' JSON lines.
    Report {
        #[arg(long)]
        ours: String,
        #[arg(long)]
        theirs: String,
        #[arg(long, default_value = "ours")]
        ours_label: String,
        #[arg(long, default_value = "reference")]
        theirs_label: String,
    },
    /// Wait until the server at --url accepts a login (exit 1 after --timeout seconds).
    Wait {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 20.0)]
        timeout: f64,
    },
    /// Print a TCP port on 127.0.0.1 that is free right now.
    FreePort,
    /// Internal: one process of a multi-process idle scenario.
    #[command(hide = true)]
    IdleWorker(IdleWorkerArgs),
}

#[derive(Args)]
struct IdleWorkerArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    count: u64,
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    #[arg(long, value_delimiter = ',')]
    source_ips: Vec<Ipv4Addr>,
    #[arg(long)]
    user_prefix: String,
    #[arg(long, default_value_t = 10.0)]
    setup_timeout: f64,
    #[arg(long)]
    max_hold: f64,
}

#[derive(Args)]
struct RunArgs {
    /// Server to drive: ws://127.0.0.1:PORT/deepstream (loopback only).
    #[arg(long)]
    url: Option<String>,
    /// Scenarios, comma separated: connect, idle, events, record-writes, record-fanout, rpc,
    /// presence, or all.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    scenario: Vec<String>,
    /// Few hundred operations per scenario; exit non-zero unless every one completed.
    #[arg(long)]
    smoke: bool,
    /// Smoke: outcomes that must be supported (others may be n/a). Comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "connect,idle-200,events,events-latency,rpc,presence"
    )]
    require: Vec<String>,
    /// Server process to measure (CPU time per op, peak RSS, RSS per idle connection).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Label written into every JSON line (e.g. ours, reference).
    #[arg(long)]
    label: Option<String>,
    /// Seconds per measured phase (default 10; smoke: 60, as a bound only).
    #[arg(long)]
    duration: Option<f64>,
    /// connect / presence: logins at most.
    #[arg(long)]
    clients: Option<u64>,
    /// connect / presence / idle: logins in flight at once (per process).
    #[arg(long)]
    concurrency: Option<usize>,
    /// idle: connection counts, comma separated (one idle scenario each).
    #[arg(long, value_delimiter = ',')]
    count: Option<Vec<u64>>,
    /// idle: load-generator processes (default: one per --per-process connections).
    #[arg(long)]
    processes: Option<usize>,
    /// idle: connections per process when --processes is not given.
    #[arg(long)]
    per_process: Option<u64>,
    /// idle: seconds between "all connected" and reading the server's RSS.
    #[arg(long)]
    settle: Option<f64>,
    /// idle: seconds to keep the connections open after measuring (SIGINT/SIGTERM end it).
    #[arg(long)]
    hold: Option<f64>,
    /// events / record-fanout: subscribers.
    #[arg(long)]
    subscribers: Option<usize>,
    /// events: emits per second in the latency phase.
    #[arg(long)]
    rate: Option<u32>,
    /// events / record-fanout: messages the publisher may be ahead of the deliveries.
    #[arg(long)]
    window: Option<u64>,
    /// Filler characters per payload.
    #[arg(long)]
    payload: Option<usize>,
    /// events / record-fanout: messages per phase at most.
    #[arg(long)]
    max_messages: Option<u64>,
    /// record-writes: writers.
    #[arg(long)]
    writers: Option<usize>,
    /// rpc: providers.
    #[arg(long)]
    providers: Option<usize>,
    /// rpc: requesters.
    #[arg(long)]
    requesters: Option<usize>,
    /// record-writes / rpc: operations per worker at most.
    #[arg(long)]
    per_worker: Option<u64>,
    /// record-writes / rpc: requests each worker keeps outstanding (default 1).
    #[arg(long)]
    in_flight: Option<usize>,
    /// Client source addresses (127.0.0.x), comma separated, used round-robin; idle worker
    /// processes take one each (default 127.0.0.2, 127.0.0.3, …).
    #[arg(long, value_delimiter = ',')]
    source_ips: Vec<Ipv4Addr>,
    /// Seconds to wait for a setup reply (login, subscribe ack …); silence means "not supported".
    #[arg(long, default_value_t = 10.0)]
    setup_timeout: f64,
    /// Seconds to wait for the reply to one measured operation.
    #[arg(long, default_value_t = 5.0)]
    op_timeout: f64,
    /// Seconds to wait for in-flight deliveries after a phase.
    #[arg(long, default_value_t = 10.0)]
    drain_timeout: f64,
}

/// A duration from seconds, bounded so that every loop stays bounded.
fn seconds(value: f64, what: &str, max: f64) -> Result<Duration, String> {
    if !(0.0..=max).contains(&value) {
        return Err(format!("--{what} must be between 0 and {max} seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

fn params(args: &RunArgs) -> Result<Params, String> {
    let mut p = if args.smoke {
        Params::smoke()
    } else {
        Params::default()
    };
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = args.$field { p.$field = v; })* };
    }
    set!(
        clients,
        concurrency,
        per_process,
        subscribers,
        rate,
        window,
        payload,
        writers,
        providers,
        requesters,
        per_worker,
        in_flight,
        max_messages
    );
    if let Some(counts) = &args.count {
        p.idle_counts = counts.clone();
    }
    if args.processes.is_some() {
        p.processes = args.processes;
    }
    if let Some(s) = args.settle {
        p.settle = seconds(s, "settle", 600.0)?;
    }
    if let Some(s) = args.hold {
        p.hold = seconds(s, "hold", 86_400.0)?;
    }
    if p.idle_counts.iter().any(|&c| c == 0 || c > 200_000) {
        return Err("--count must be between 1 and 200000".into());
    }
    Ok(p)
}

fn context(args: &RunArgs, url: &str, label: Option<String>) -> Result<Ctx, String> {
    let target = Target::parse(url)?;
    if let Some(ip) = args.source_ips.iter().find(|ip| !ip.is_loopback()) {
        return Err(format!("--source-ips: {ip} is not a loopback address"));
    }
    let probe = args.server_pid.map(ServerProbe::new).transpose()?;
    let default_duration = if args.smoke { 60.0 } else { 10.0 };
    Ok(Ctx {
        target,
        probe,
        duration: seconds(
            args.duration.unwrap_or(default_duration),
            "duration",
            3600.0,
        )?,
        setup_timeout: seconds(args.setup_timeout, "setup-timeout", 600.0)?,
        op_timeout: seconds(args.op_timeout, "op-timeout", 600.0)?,
        drain_timeout: seconds(args.drain_timeout, "drain-timeout", 600.0)?,
        sources: args.source_ips.clone(),
        run_id: new_run_id(),
        label,
    })
}

async fn run(args: RunArgs) -> Result<ExitCode, String> {
    let url = args
        .url
        .clone()
        .ok_or("--url is required (e.g. ws://127.0.0.1:6020/deepstream)")?;
    let params = params(&args)?;
    let ctx = context(&args, &url, args.label.clone())?;
    let names: Vec<String> = if args.scenario.iter().any(|s| s == "all") {
        scenarios::ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenario.clone()
    };
    if let Some(bad) = names.iter().find(|n| !scenarios::ALL.contains(&n.as_str())) {
        return Err(format!(
            "unknown scenario {bad:?}; known: {}, all",
            scenarios::ALL.join(", ")
        ));
    }
    now_us();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for name in &names {
        eprintln!("deepstream-bench: {name} against {}", ctx.target.url);
        for outcome in scenarios::run(name, &ctx, &params).await? {
            println!("{}", outcome.to_json_line());
            outcomes.push(outcome);
        }
    }
    if !args.smoke {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(smoke_verdict(&outcomes, &args.require))
}

/// Smoke: every supported scenario must have completed all its operations without an error;
/// the `required` ones must be supported.
fn smoke_verdict(outcomes: &[Outcome], required: &[String]) -> ExitCode {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for o in outcomes {
        let verdict = if !o.supported {
            if required.contains(&o.scenario) {
                failed += 1;
                format!(
                    "FAIL (required, but n/a: {})",
                    o.reason.as_deref().unwrap_or("?")
                )
            } else {
                skipped += 1;
                format!("skipped (n/a: {})", o.reason.as_deref().unwrap_or("?"))
            }
        } else if o.errors > 0 || Some(o.ops) != o.expected_ops {
            failed += 1;
            format!(
                "FAIL ({} of {} {} completed, {} errors; first: {})",
                o.ops,
                o.expected_ops.map_or("?".into(), |n| n.to_string()),
                o.unit,
                o.errors,
                o.first_error.as_deref().unwrap_or("-")
            )
        } else {
            passed += 1;
            format!("ok ({} {})", o.ops, o.unit)
        };
        eprintln!("smoke: {:<16} {verdict}", o.scenario);
    }
    for r in required {
        if !outcomes.iter().any(|o| &o.scenario == r) {
            failed += 1;
            eprintln!("smoke: {r:<16} FAIL (required, but not run)");
        }
    }
    println!("smoke: {passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn wait(url: &str, timeout: f64) -> Result<ExitCode, String> {
    let target = Target::parse(url)?;
    let deadline = tokio::time::Instant::now() + seconds(timeout, "timeout", 600.0)?;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match client::connect_login(&target, None, "bench-wait", Duration::from_secs(2)).await {
            Ok(_) => return Ok(ExitCode::SUCCESS),
            Err(e) => last = e.reason().to_owned(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "{url} did not accept a login within {timeout} s (last error: {last})"
    ))
}

async fn idle_worker(args: IdleWorkerArgs) -> Result<ExitCode, String> {
    let ctx = Ctx {
        target: Target::parse(&args.url)?,
        probe: None,
        duration: Duration::ZERO,
        setup_timeout: seconds(args.setup_timeout, "setup-timeout", 600.0)?,
        op_timeout: Duration::from_secs(5),
        drain_timeout: Duration::ZERO,
        sources: args.source_ips,
        run_id: new_run_id(),
        label: None,
    };
    let max_hold = seconds(args.max_hold, "max-hold", 100_000.0)?;
    Ok(scenarios::idle::worker(
        &ctx,
        args.count,
        args.concurrency,
        &args.user_prefix,
        max_hold,
    )
    .await)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Report {
            ours,
            theirs,
            ours_label,
            theirs_label,
        }) => (|| {
            let (a, b) = (
                report::read_outcomes(&ours)?,
                report::read_outcomes(&theirs)?,
            );
            print!("{}", report::table(&a, &b, &ours_label, &theirs_label));
            Ok(ExitCode::SUCCESS)
        })(),
        Some(Command::Wait { url, timeout }) => wait(&url, timeout).await,
        Some(Command::FreePort) => std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| {
                println!("{}", a.port());
                ExitCode::SUCCESS
            })
            .map_err(|e| e.to_string()),
        Some(Command::IdleWorker(args)) => idle_worker(args).await,
        None => run(cli.run).await,
    };
    result.unwrap_or_else(|e| {
        eprintln!("deepstream-bench: {e}");
        ExitCode::from(2)
    })
}
