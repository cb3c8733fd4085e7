//! The side-by-side table: reads the JSON lines of two runs (ours and the reference) and prints
//! one row per scenario.

use std::collections::BTreeMap;

use super::Outcome;

/// Reads the outcomes in a file of JSON lines (other lines are skipped).
pub fn read_outcomes(path: &str) -> Result<Vec<Outcome>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Outcome>(l).ok())
        .filter(|o| !o.scenario.is_empty())
        .collect())
}

/// Order of rows: the scenarios in the order of the brief, unknown ones last.
fn rank<'a>(scenario: &'a str) -> (usize, u64, String) {
    const ORDER: &[&str] = &[
        "connect",
        "idle",
        "events",
        "events-latency",
        "record-writes",
        "record-fanout",
        "rpc",
        "presence",
    ];
    // `idle-N` and `…-pipelined-N` sort by N after their base scenario.
    let numbered = |(base, n): (&'a str, &str)| n.parse::<u64>().ok().map(|n| (base, n));
    let (base, n) = scenario
        .strip_prefix("idle-")
        .and_then(|n| numbered(("idle", n)))
        .or_else(|| scenario.rsplit_once("-pipelined-").and_then(numbered))
        .unwrap_or((scenario, 0));
    (
        ORDER.iter().position(|s| *s == base).unwrap_or(ORDER.len()),
        n,
        scenario.to_owned(),
    )
}

/// The figure a row compares, and whether higher is better.
fn headline(o: &Outcome) -> (String, Option<f64>, bool) {
    if o.scenario.starts_with("idle-") {
        (
            "KiB/conn (lower is better)".into(),
            o.bytes_per_connection.map(|b| b / 1024.0),
            false,
        )
    } else if o.scenario == "events-latency" {
        let rate = o.params.get("rate").and_then(|r| r.as_u64()).unwrap_or(0);
        (
            format!("p99 ms at {rate} emits/s (lower is better)"),
            o.p99_us.map(|v| v / 1000.0),
            false,
        )
    } else {
        (format!("{}/s", o.unit), Some(o.ops_per_sec), true)
    }
}

fn figure(o: Option<&Outcome>) -> String {
    match o {
        None => "not run".into(),
        Some(o) if !o.supported => format!(
            "n/a ({})",
            shorten(o.reason.as_deref().unwrap_or("not supported"), 70)
        ),
        Some(o) => match headline(o).1 {
            Some(v) => number(v),
            None => "n/a (not measured)".into(),
        },
    }
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        let s = format!("{v:.0}");
        // thousands separators for readability
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

fn supported(o: Option<&Outcome>) -> Option<&Outcome> {
    o.filter(|o| o.supported)
}

fn latency(o: Option<&Outcome>) -> String {
    match supported(o) {
        Some(Outcome {
            p50_us: Some(p50),
            p99_us: Some(p99),
            ..
        }) => format!("{:.2} / {:.2}", p50 / 1000.0, p99 / 1000.0),
        _ => "-".into(),
    }
}

fn cpu(o: Option<&Outcome>) -> String {
    supported(o)
        .and_then(|o| o.server_cpu_us_per_op)
        .map_or("-".into(), number)
}

/// The kernel's part of the CPU per operation.
fn kernel_cpu(o: Option<&Outcome>) -> String {
    supported(o)
        .and_then(|o| o.server_kernel_cpu_us_per_op)
        .map_or("-".into(), number)
}

/// How many times more CPU per operation `theirs` spent than `ours` (the targets).
fn cpu_ratio(ours: Option<&Outcome>, theirs: Option<&Outcome>) -> String {
    let per_op = |o: Option<&Outcome>| supported(o).and_then(|o| o.server_cpu_us_per_op);
    match (per_op(ours), per_op(theirs)) {
        (Some(ours), Some(theirs)) if ours > 0.0 => format!("{:.1}x", theirs / ours),
        _ => "-".into(),
    }
}

fn loadgen(o: Option<&Outcome>) -> String {
    supported(o)
        .and_then(|o| o.loadgen_cpu_us_per_op)
        .map_or("-".into(), number)
}

fn rss(o: Option<&Outcome>) -> String {
    o.and_then(|o| o.server_peak_rss_kb)
        .map_or("-".into(), |kb| format!("{:.0}", kb as f64 / 1024.0))
}

fn errors(o: Option<&Outcome>) -> String {
    supported(o).map_or("-".into(), |o| o.errors.to_string())
}

/// Row key (sort order) → (ours, theirs).
type Rows<'a> = BTreeMap<(usize, u64, String), (Option<&'a Outcome>, Option<&'a Outcome>)>;

/// The table as Markdown, one row per scenario found in either run.
pub fn table(ours: &[Outcome], theirs: &[Outcome], ours_label: &str, theirs_label: &str) -> String {
    let mut rows = Rows::new();
    for o in ours {
        rows.entry(rank(&o.scenario)).or_default().0 = Some(o);
    }
    for o in theirs {
        rows.entry(rank(&o.scenario)).or_default().1 = Some(o);
    }
    let header = vec![
        "scenario".to_owned(),
        "metric".to_owned(),
        ours_label.to_owned(),
        theirs_label.to_owned(),
        format!("{ours_label}/{theirs_label}"),
        format!("p50 / p99 ms {ours_label}"),
        format!("p50 / p99 ms {theirs_label}"),
        format!("CPU µs/op {ours_label}"),
        format!("CPU µs/op {theirs_label}"),
        format!("CPU per op {theirs_label}/{ours_label}"),
        format!("kernel CPU µs/op {ours_label} / {theirs_label}"),
        format!("peak RSS MiB {ours_label}"),
        format!("peak RSS MiB {theirs_label}"),
        format!("errors {ours_label} / {theirs_label}"),
        format!("load-gen CPU µs/op {ours_label} / {theirs_label}"),
    ];
    let mut lines = vec![header];
    for ((_, _, scenario), (a, b)) in &rows {
        let metric = a.or(*b).map(|o| headline(o).0).unwrap_or_default();
        let ratio = match (
            supported(*a).and_then(|o| headline(o).1),
            supported(*b).and_then(|o| headline(o).1),
        ) {
            (Some(x), Some(y)) if y > 0.0 => format!("{:.2}x", x / y),
            _ => "-".into(),
        };
        lines.push(vec![
            scenario.clone(),
            metric,
            figure(*a),
            figure(*b),
            ratio,
            latency(*a),
            latency(*b),
            cpu(*a),
            cpu(*b),
            cpu_ratio(*a, *b),
            format!("{} / {}", kernel_cpu(*a), kernel_cpu(*b)),
            rss(*a),
            rss(*b),
            format!("{} / {}", errors(*a), errors(*b)),
            format!("{} / {}", loadgen(*a), loadgen(*b)),
        ]);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out.push('|');
        for (cell, w) in line.iter().zip(&widths) {
            out += &format!(" {cell}{} |", " ".repeat(w - cell.chars().count()));
        }
        out.push('\n');
        if i == 0 {
            out.push('|');
            for w in &widths {
                out += &format!("{}|", "-".repeat(w + 2));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_variants_follow_their_scenario() {
        let mut names = vec![
            "rpc-pipelined-32",
            "record-fanout",
            "idle-10000",
            "record-writes-pipelined-32",
            "rpc",
            "idle-2000",
            "record-writes",
            "record-writes-pipelined-8",
        ];
        names.sort_by_key(|name| rank(name));
        assert_eq!(
            names,
            [
                "idle-2000",
                "idle-10000",
                "record-writes",
                "record-writes-pipelined-8",
                "record-writes-pipelined-32",
                "record-fanout",
                "rpc",
                "rpc-pipelined-32",
            ]
        );
    }
}
