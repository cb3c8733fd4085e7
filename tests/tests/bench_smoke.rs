//! The benchmark's load generator in smoke mode against our server: a few hundred operations per
//! scenario, every one of which must complete (figures are not checked). Scenarios our server
//! does not implement yet must be reported "n/a" with a reason, never with a figure.

use std::time::Duration;

use deepstream_tests::{
    ServerProcess, base_config,
    bench::{
        Ctx, Outcome, Target, new_run_id, report,
        scenarios::{self, Params},
    },
    free_port,
};

/// Scenarios our server implements; the smoke run fails if any of them reports "n/a".
const REQUIRED: &[&str] = &[
    "connect",
    "idle-200",
    "events",
    "events-latency",
    "record-writes-pipelined-4",
    "record-fanout",
    "rpc-pipelined-4",
    "presence",
];

#[test]
fn every_smoke_operation_completes() {
    let port = free_port();
    let server = ServerProcess::start(
        &format!("{}auth:\n  - type: none\n", base_config(port)),
        port,
    );
    let ctx = Ctx {
        target: Target::parse(&format!("ws://127.0.0.1:{port}/deepstream")).expect("loopback URL"),
        probe: None,
        duration: Duration::from_secs(60),
        setup_timeout: Duration::from_secs(10),
        op_timeout: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(10),
        sources: Vec::new(),
        run_id: new_run_id(),
        label: Some("ours".into()),
    };
    let params = Params::smoke();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcomes: Vec<Outcome> = runtime.block_on(async {
        let mut all = Vec::new();
        for name in scenarios::ALL {
            all.extend(
                scenarios::run(name, &ctx, &params)
                    .await
                    .expect("known scenario"),
            );
        }
        all
    });
    drop(server);

    for o in &outcomes {
        if o.supported {
            assert_eq!(o.errors, 0, "{}: {:?}", o.scenario, o.first_error);
            assert_eq!(
                Some(o.ops),
                o.expected_ops,
                "{}: not every operation completed",
                o.scenario
            );
            assert!(o.ops_per_sec > 0.0, "{}: no rate", o.scenario);
        } else {
            assert!(
                !REQUIRED.contains(&o.scenario.as_str()),
                "{} must be supported: {:?}",
                o.scenario,
                o.reason
            );
            assert!(o.reason.is_some(), "{}: n/a without a reason", o.scenario);
            assert_eq!(o.ops_per_sec, 0.0, "{}: n/a with a figure", o.scenario);
        }
    }
    for required in REQUIRED {
        assert!(
            outcomes.iter().any(|o| o.scenario == *required),
            "{required} did not run"
        );
    }

    // The report renders every outcome, n/a ones with their reason.
    let lines: Vec<Outcome> = outcomes
        .iter()
        .map(|o| serde_json::from_str(&o.to_json_line()).expect("outcome JSON round trip"))
        .collect();
    let table = report::table(&lines, &[], "ours", "reference");
    for o in &outcomes {
        assert!(
            table.contains(&format!("| {} ", o.scenario)),
            "{} missing from\n{table}",
            o.scenario
        );
    }
    assert!(
        table.contains("not run"),
        "reference column should say `not run`:\n{table}"
    );
}
