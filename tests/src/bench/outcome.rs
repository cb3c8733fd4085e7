//! One scenario's result: printed as one JSON line, read back by the report.

use serde::{Deserialize, Serialize};

use super::{Errors, ServerProbe, client::Fail, probe::Measured, stats::Histogram};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub scenario: String,
    /// Label of the server driven (`ours`, `reference`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// False when the server lacks the feature; `reason` says why and no figure is given.
    pub supported: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What one op is: `logins`, `deliveries`, `acks`, `round trips`, `joins`, `connections`.
    pub unit: String,
    /// Operations completed in the measured window.
    pub ops: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// Failed or missing operations (error replies, timeouts, undelivered messages).
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Error messages and how often each occurred.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub error_kinds: serde_json::Map<String, serde_json::Value>,
    /// In smoke mode: how many operations had to complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_ops: Option<u64>,
    /// Server CPU time (user + system, all threads) in the window, per operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_op: Option<f64>,
    /// The kernel's part of `server_cpu_us_per_op` (system time): mostly the socket calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_kernel_cpu_us_per_op: Option<f64>,
    /// CPU time of the load generator itself in the window, per operation (to show it is not
    /// the bottleneck; idle worker processes are not included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen_cpu_us_per_op: Option<f64>,
    /// Server peak RSS (VmHWM) at the end of the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_peak_rss_kb: Option<u64>,
    /// Idle scenarios: server VmRSS before connecting and with all connections open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_before_kb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_after_kb: Option<u64>,
    /// Idle scenarios: (RSS after − RSS before) / connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_connection: Option<f64>,
    /// 1-minute load average of the machine when the scenario ended (other work on the machine
    /// skews every figure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadavg_1m: Option<f64>,
    /// The scenario's parameters (clients, subscribers, rate …).
    #[serde(default)]
    pub params: serde_json::Value,
}

impl Outcome {
    /// Marks the outcome as "feature not available" (or failed setup) with `fail`'s reason.
    pub fn unsupported(mut self, fail: &Fail) -> Outcome {
        self.supported = false;
        self.reason = Some(match fail {
            Fail::Unsupported(reason) => reason.clone(),
            Fail::Error(reason) => format!("setup failed: {reason}"),
        });
        self
    }

    /// Fills ops, time, rate and server CPU per op.
    pub fn measured(mut self, ops: u64, measured: Measured) -> Outcome {
        self.ops = ops;
        self.seconds = (measured.seconds * 1e6).round() / 1e6;
        self.ops_per_sec = if measured.seconds > 0.0 {
            round3(ops as f64 / measured.seconds)
        } else {
            0.0
        };
        let per_op = |cpu: Option<f64>| {
            cpu.filter(|_| ops > 0)
                .map(|cpu| round3(cpu * 1e6 / ops as f64))
        };
        self.server_cpu_us_per_op = per_op(measured.server_cpu_seconds);
        self.server_kernel_cpu_us_per_op = per_op(measured.server_kernel_cpu_seconds);
        self.loadgen_cpu_us_per_op = per_op(measured.loadgen_cpu_seconds);
        self
    }

    pub fn latency(mut self, histogram: &Histogram) -> Outcome {
        self.p50_us = histogram.quantile(0.5).map(round3);
        self.p99_us = histogram.quantile(0.99).map(round3);
        self
    }

    pub fn errors(mut self, errors: &Errors) -> Outcome {
        self.errors = errors.count();
        self.first_error = errors.first();
        self.error_kinds = errors
            .kinds()
            .into_iter()
            .map(|(k, n)| (k, n.into()))
            .collect();
        self
    }

    pub fn params(mut self, params: serde_json::Value) -> Outcome {
        self.params = params;
        self
    }

    /// Reads peak RSS, and turns a run in which nothing completed into "not supported": a figure
    /// of 0 ops/s would be a fake one.
    pub fn finish(mut self, probe: Option<&ServerProbe>) -> Outcome {
        self.server_peak_rss_kb = probe.and_then(|p| p.peak_rss_kb());
        self.loadavg_1m = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        if self.supported && self.ops == 0 {
            self.supported = false;
            self.reason = Some(
                self.first_error
                    .clone()
                    .unwrap_or_else(|| "no operation completed".into()),
            );
        }
        self
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
