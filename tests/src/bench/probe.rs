//! Server-side cost from `/proc/PID`: CPU time (`stat` utime + stime of all threads, in clock
//! ticks) and memory (`status` VmRSS now, VmHWM = peak RSS of the process lifetime).

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct ServerProbe {
    pid: u32,
    /// Clock ticks per second (`getconf CLK_TCK`).
    clk_tck: f64,
}

impl ServerProbe {
    pub fn new(pid: u32) -> Result<ServerProbe, String> {
        let probe = ServerProbe {
            pid,
            clk_tck: ticks_per_second(),
        };
        probe
            .cpu_ticks()
            .ok_or_else(|| format!("cannot read /proc/{pid}/stat: is the server running?"))?;
        Ok(probe)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// utime + stime in clock ticks.
    pub fn cpu_ticks(&self) -> Option<u64> {
        cpu_ticks(&format!("/proc/{}/stat", self.pid))
    }

    /// A `kB` line of `/proc/PID/status`, e.g. `VmRSS` or `VmHWM`.
    pub fn status_kb(&self, key: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status.lines().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?;
            value.split_whitespace().next()?.parse().ok()
        })
    }

    pub fn rss_kb(&self) -> Option<u64> {
        self.status_kb("VmRSS")
    }

    pub fn peak_rss_kb(&self) -> Option<u64> {
        self.status_kb("VmHWM")
    }
}

/// utime + stime (all threads) of the process whose `stat` file is `path`, in clock ticks.
fn cpu_ticks(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces; fields after it are space separated,
    // starting with field 3 (state). utime is field 14, stime field 15.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second, read once.
fn ticks_per_second() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(clk_tck)
}

fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A measured window: wall time and server CPU time between [`Window::start`] and
/// [`Window::finish`].
pub struct Window {
    started: Instant,
    ticks: Option<u64>,
    own_ticks: Option<u64>,
}

/// What a finished window measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub seconds: f64,
    /// Server CPU seconds in the window, when a probe was given.
    pub server_cpu_seconds: Option<f64>,
    /// CPU seconds of this load-generator process (not of idle worker children) in the window.
    pub loadgen_cpu_seconds: Option<f64>,
}

impl Window {
    pub fn start(probe: Option<&ServerProbe>) -> Window {
        Window {
            started: Instant::now(),
            ticks: probe.and_then(|p| p.cpu_ticks()),
            own_ticks: cpu_ticks("/proc/self/stat"),
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn finish(&self, probe: Option<&ServerProbe>) -> Measured {
        let seconds = self.started.elapsed().as_secs_f64();
        let server_cpu_seconds = match (probe, self.ticks) {
            (Some(p), Some(before)) => p
                .cpu_ticks()
                .map(|after| after.saturating_sub(before) as f64 / p.clk_tck),
            _ => None,
        };
        let loadgen_cpu_seconds = self
            .own_ticks
            .zip(cpu_ticks("/proc/self/stat"))
            .map(|(before, after)| after.saturating_sub(before) as f64 / ticks_per_second());
        Measured {
            seconds,
            server_cpu_seconds,
            loadgen_cpu_seconds,
        }
    }
}
