//! Latency histograms, error counters and readings of /proc.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::report::opt;

/// Latency histogram in microseconds (1 µs .. 10 min, 3 significant digits).
pub struct Hist(Histogram<u64>);

const HIST_MAX_US: u64 = 600_000_000;

impl Default for Hist {
    fn default() -> Self {
        Hist(Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds"))
    }
}

impl Hist {
    pub fn record(&mut self, us: u64) {
        let _ = self.0.record(us.clamp(1, HIST_MAX_US));
    }
    pub fn merge(&mut self, other: &Hist) {
        let _ = self.0.add(&other.0);
    }
    pub fn count(&self) -> u64 {
        self.0.len()
    }
    pub fn quantile(&self, q: f64) -> Option<u64> {
        (self.count() > 0).then(|| self.0.value_at_quantile(q))
    }
    pub fn max(&self) -> Option<u64> {
        (self.count() > 0).then(|| self.0.max())
    }
    pub fn mean(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.0.mean())
    }
    pub fn to_json(&self) -> Value {
        json!({
            "p50": self.quantile(0.5),
            "p90": self.quantile(0.9),
            "p99": self.quantile(0.99),
            "p999": self.quantile(0.999),
            "max": self.max(),
            "mean": self.mean().map(|m| (m * 10.0).round() / 10.0),
            "count": self.count(),
        })
    }
}

/// Error counters by kind.
#[derive(Default, Clone)]
pub struct Errors(BTreeMap<&'static str, u64>);

impl Errors {
    pub fn add(&mut self, kind: &'static str) {
        *self.0.entry(kind).or_default() += 1;
    }
    pub fn merge(&mut self, other: &Errors) {
        for (k, v) in &other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
    pub fn summary(&self) -> String {
        if self.0.is_empty() {
            return "0".into();
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{} ({})", self.total(), parts.join(", "))
    }
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("total".into(), json!(self.total()));
        for (k, v) in &self.0 {
            m.insert((*k).into(), json!(v));
        }
        Value::Object(m)
    }
}

/// What a group of clients (one transport) accumulates, shared by its tasks.
#[derive(Default)]
pub struct Group {
    pub ops: AtomicU64,
    pub connected: AtomicU64,
    pub connect_failed: AtomicU64,
    pub hist: Mutex<Hist>,
    pub errors: Mutex<Errors>,
    /// Last error message seen, for the report.
    pub last_error: Mutex<Option<String>>,
}

impl Group {
    pub fn record(&self, us: u64) {
        self.ops.fetch_add(1, Ordering::Relaxed);
        self.hist.lock().expect("hist lock").record(us);
    }
    pub fn error(&self, e: &crate::conn::Error) {
        self.errors.lock().expect("errors lock").add(e.kind());
        *self.last_error.lock().expect("error lock") = Some(e.to_string());
    }
    pub fn error_kind(&self, kind: &'static str, msg: String) {
        self.errors.lock().expect("errors lock").add(kind);
        *self.last_error.lock().expect("error lock") = Some(msg);
    }
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }
}

pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

/// utime + stime of a process in clock ticks (`/proc/<pid>/stat` fields 14, 15).
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    stat_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime from the text of a `/proc/<pid>/stat`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3, so field N is at index N - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Busy clock ticks of the whole machine, all CPUs (`/proc/stat`: every
/// field of the `cpu` line except idle and iowait; guest time is already
/// inside user).
pub fn machine_busy_ticks() -> Option<u64> {
    busy_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Busy ticks from the text of `/proc/stat`.
fn busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(get(0) + get(1) + get(2) + get(5) + get(6) + get(7))
}

/// CPU counters of the server (or of every node of a cluster, and its
/// Redis), this tool and the machine at one instant.
#[derive(Clone)]
pub struct Snap {
    pub at: Instant,
    /// One entry per server process, in the order given.
    servers: Vec<Option<u64>>,
    redis: Option<u64>,
    me: Option<u64>,
    machine: Option<u64>,
}

impl Snap {
    pub fn take(server_pid: Option<u32>) -> Snap {
        Snap::take_all(server_pid.as_slice(), None)
    }

    /// Counters of several server processes (the nodes of a cluster) and,
    /// when given, of the Redis server they share.
    pub fn take_all(server_pids: &[u32], redis_pid: Option<u32>) -> Snap {
        Snap {
            at: Instant::now(),
            servers: server_pids
                .iter()
                .map(|p| cpu_ticks(&p.to_string()))
                .collect(),
            redis: redis_pid.and_then(|p| cpu_ticks(&p.to_string())),
            me: cpu_ticks("self"),
            machine: machine_busy_ticks(),
        }
    }
}

/// CPU used over a window between two snapshots.
pub struct Window {
    pub wall_s: f64,
    /// All server processes together; `None` when there are none or one
    /// could not be read.
    pub server_cpu_s: Option<f64>,
    /// Each server process (node) on its own, in the order given.
    pub node_cpu_s: Vec<Option<f64>>,
    /// The cluster's Redis server, when its pid was given.
    pub redis_cpu_s: Option<f64>,
    pub load_cpu_s: Option<f64>,
    /// CPU used by everything else on the machine (noise), when known.
    pub other_cpu_s: Option<f64>,
}

impl Window {
    pub fn between(a: &Snap, b: &Snap) -> Window {
        let tck = clk_tck() as f64;
        let d = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (Some(x), Some(y)) => Some(y.saturating_sub(x) as f64 / tck),
            _ => None,
        };
        let node_cpu_s: Vec<Option<f64>> = a
            .servers
            .iter()
            .zip(&b.servers)
            .map(|(x, y)| d(*x, *y))
            .collect();
        let server_cpu_s = if node_cpu_s.is_empty() {
            None
        } else {
            node_cpu_s.iter().copied().sum::<Option<f64>>()
        };
        let redis_cpu_s = d(a.redis, b.redis);
        let load_cpu_s = d(a.me, b.me);
        // Only meaningful when the servers' own share is known.
        let other_cpu_s = match (d(a.machine, b.machine), server_cpu_s, load_cpu_s) {
            (Some(m), Some(s), Some(l)) => Some((m - s - l - redis_cpu_s.unwrap_or(0.0)).max(0.0)),
            _ => None,
        };
        Window {
            wall_s: b.at.duration_since(a.at).as_secs_f64(),
            server_cpu_s,
            node_cpu_s,
            redis_cpu_s,
            load_cpu_s,
            other_cpu_s,
        }
    }

    /// Percent of one core for `cpu_s` seconds of CPU over the window.
    pub fn pct(&self, cpu_s: f64) -> f64 {
        cpu_s * 100.0 / self.wall_s.max(1e-9)
    }

    /// Percent of one core used by the load tool.
    pub fn load_pct(&self) -> Option<f64> {
        self.load_cpu_s.map(|c| c * 100.0 / self.wall_s.max(1e-9))
    }

    /// Percent of one core used by other processes; above ~10 % the
    /// figures are disturbed.
    pub fn other_pct(&self) -> Option<f64> {
        self.other_cpu_s.map(|c| c * 100.0 / self.wall_s.max(1e-9))
    }

    /// The "load tool CPU" table line, with a warning when the machine was
    /// busy with other work.
    pub fn load_line(&self) -> String {
        let f = |v: Option<f64>| v.map(|v| format!("{v:.0} %")).unwrap_or_else(|| "-".into());
        let mut s = format!(
            "{} (other processes: {})",
            f(self.load_pct()),
            f(self.other_pct())
        );
        if self.other_pct().is_some_and(|o| o > 10.0) {
            s.push_str("  WARNING: machine busy, figures disturbed");
        }
        s
    }

    /// The "server CPU" table line: seconds, share of a core and µs per
    /// `op` (e.g. "round trip").
    pub fn server_line(&self, ops: u64, op: &str) -> String {
        match self.server_cpu_s {
            Some(s) => format!(
                "{s:.2} s over {:.2} s ({:.0} % of a core), {} µs per {op}",
                self.wall_s,
                s * 100.0 / self.wall_s.max(1e-9),
                opt(self.server_us_per_op(ops), 2)
            ),
            None => "- (pass --server-pid)".into(),
        }
    }

    pub fn server_us_per_op(&self, ops: u64) -> Option<f64> {
        match self.server_cpu_s {
            Some(s) if ops > 0 => Some(s * 1e6 / ops as f64),
            _ => None,
        }
    }

    pub fn to_json(&self, ops: u64) -> Value {
        let pct = |c: Option<f64>| c.map(|c| round2(c * 100.0 / self.wall_s.max(1e-9)));
        let mut v = json!({
            "window_s": round2(self.wall_s),
            "server_cpu_s": self.server_cpu_s.map(round2),
            "server_cpu_pct": pct(self.server_cpu_s),
            "server_cpu_us_per_op": self.server_us_per_op(ops).map(round2),
            "load_cpu_pct": pct(self.load_cpu_s),
            "other_cpu_pct": pct(self.other_cpu_s),
            "clk_tck": clk_tck(),
        });
        // Several nodes: each one's share too (server_cpu_* are their sum).
        if self.node_cpu_s.len() > 1 {
            v["nodes"] = self
                .node_cpu_s
                .iter()
                .map(|c| json!({"server_cpu_s": c.map(round2), "server_cpu_pct": pct(*c)}))
                .collect();
        }
        if self.redis_cpu_s.is_some() {
            v["redis_cpu_s"] = json!(self.redis_cpu_s.map(round2));
            v["redis_cpu_pct"] = json!(pct(self.redis_cpu_s));
        }
        v
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_proc() {
        assert!(cpu_ticks("self").is_some());
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        assert!(machine_busy_ticks().is_some());
    }

    #[test]
    fn picks_the_cpu_fields() {
        // A command name holding spaces and a ')'; utime 11, stime 22.
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 11 22 0 0 20 0 1 0 5 1000 10";
        assert_eq!(stat_cpu_ticks(stat), Some(33));
        assert_eq!(stat_cpu_ticks("42 (cut short"), None);
        // user nice system idle iowait irq softirq steal guest guest_nice
        let stat = "cpu  10 20 30 400 50 6 7 8 9 10\ncpu0 5 10 15 200 25 3 3 4 4 5\n";
        assert_eq!(busy_ticks(stat), Some(10 + 20 + 30 + 6 + 7 + 8));
        assert_eq!(busy_ticks("intr 1 2 3\n"), None);
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Hist::default();
        assert_eq!(h.quantile(0.5), None);
        for us in 1..=1000 {
            h.record(us);
        }
        let p50 = h.quantile(0.5).unwrap();
        assert!((499..=501).contains(&p50), "{p50}");
        assert_eq!(h.max(), Some(1000));
        let mut g = Hist::default();
        g.record(5_000_000);
        h.merge(&g);
        assert_eq!(h.count(), 1001);
        assert!(h.max().unwrap() >= 4_990_000);
    }

    #[test]
    fn error_counts() {
        let mut e = Errors::default();
        assert_eq!(e.summary(), "0");
        e.add("timeout");
        e.add("timeout");
        e.add("closed");
        assert_eq!(e.total(), 3);
        assert_eq!(e.summary(), "3 (closed=1, timeout=2)");
    }
}
