//! Server-side cost from `/proc/PID`: CPU time (`stat` utime and stime of all threads, in clock
//! ticks) and memory (`status` VmRSS now, VmHWM = peak RSS of the process lifetime).
//!
//! The kernel share (stime) is kept apart: on loopback it is mostly the TCP path of the socket
//! calls (including delivery into the client's socket, which runs on the sender's CPU). Where
//! every operation needs its own calls (one request, one reply), it is a cost no user-space
//! work removes.

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct ServerProbe {
    pid: u32,
}

impl ServerProbe {
    pub fn new(pid: u32) -> Result<ServerProbe, String> {
        let probe = ServerProbe { pid };
        probe
            .cpu_ticks()
            .ok_or_else(|| format!("cannot read /proc/{pid}/stat: is the server running?"))?;
        Ok(probe)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// CPU time in clock ticks.
    pub fn cpu_ticks(&self) -> Option<Ticks> {
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

/// CPU time of a process (all threads), in clock ticks.
#[derive(Debug, Clone, Copy)]
pub struct Ticks {
    /// In user space (utime).
    user: u64,
    /// In the kernel on the process's behalf (stime).
    kernel: u64,
}

impl Ticks {
    /// CPU seconds from `before` to these ticks: (total, kernel part).
    fn seconds_since(self, before: Ticks) -> (f64, f64) {
        let seconds = |now: u64, then: u64| now.saturating_sub(then) as f64 / ticks_per_second();
        (
            seconds(self.user + self.kernel, before.user + before.kernel),
            seconds(self.kernel, before.kernel),
        )
    }
}

/// utime and stime (all threads) of the process whose `stat` file is `path`.
fn cpu_ticks(path: &str) -> Option<Ticks> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces; fields after it are space separated,
    // starting with field 3 (state). utime is field 14, stime field 15.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(Ticks {
        user: fields.get(11)?.parse().ok()?,
        kernel: fields.get(12)?.parse().ok()?,
    })
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
    ticks: Option<Ticks>,
    own_ticks: Option<Ticks>,
}

/// What a finished window measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub seconds: f64,
    /// Server CPU seconds in the window, when a probe was given.
    pub server_cpu_seconds: Option<f64>,
    /// The part of `server_cpu_seconds` spent in the kernel.
    pub server_kernel_cpu_seconds: Option<f64>,
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
        let server = probe
            .zip(self.ticks)
            .and_then(|(probe, before)| Some(probe.cpu_ticks()?.seconds_since(before)));
        let loadgen = self
            .own_ticks
            .zip(cpu_ticks("/proc/self/stat"))
            .map(|(before, after)| after.seconds_since(before));
        Measured {
            seconds,
            server_cpu_seconds: server.map(|(total, _)| total),
            server_kernel_cpu_seconds: server.map(|(_, kernel)| kernel),
            loadgen_cpu_seconds: loadgen.map(|(total, _)| total),
        }
    }
}
