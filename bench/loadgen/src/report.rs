//! Results of the runs: the side-by-side tables, the goal checks, and the JSON summary.

use serde_json::{json, Value};

use crate::server::Kind;
use crate::Scenario;

/// What one server did in one scenario.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub server: Kind,
    pub scenario: char,
    /// Set when the run could not complete (figures may be missing or partial).
    pub error: Option<String>,
    pub clients: usize,
    pub connected: usize,
    pub connect_s: f64,
    /// Measured messages sent.
    pub published: u64,
    pub publish_rate: f64,
    /// Deliveries expected: each measured message × clients in its room.
    pub expected: u64,
    pub delivered: u64,
    /// Deliveries received during the measured window, per second.
    pub deliveries_per_s: f64,
    pub lost: u64,
    pub extra: u64,
    pub reordered: u64,
    pub disconnects: u64,
    pub server_errors: u64,
    pub send_failures: u64,
    pub warm_lost: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    pub samples: u64,
    /// Server CPU from the start of the measured window to the end of the drain.
    pub cpu_us: u64,
    /// The part of `cpu_us` spent in the kernel (system time).
    pub cpu_sys_us: u64,
    /// Server CPU within the measured window only.
    pub cpu_window_us: u64,
    pub busy_s: f64,
    pub window_s: f64,
    pub cpu_us_per_delivery: f64,
    pub loadgen_cpu_us: u64,
    /// Busy CPU of every other process on the machine over the same time.
    pub other_cpu_us: u64,
    pub rss_before_kb: u64,
    pub rss_idle_kb: u64,
    pub rss_end_kb: u64,
    pub rss_peak_kb: u64,
    pub rss_per_conn_b: f64,
    /// CPU per process over the same time as `cpu_us`: each server ("node 1", …) and what was
    /// watched beside them ("redis").
    pub cpu_by_process: Vec<(String, u64)>,
    pub first_error: Option<String>,
}

impl RunResult {
    pub fn failed(server: Kind, s: &Scenario, error: String) -> RunResult {
        RunResult {
            server,
            scenario: s.id,
            error: Some(error),
            clients: s.clients(),
            connected: 0,
            connect_s: 0.0,
            published: 0,
            publish_rate: 0.0,
            expected: 0,
            delivered: 0,
            deliveries_per_s: f64::NAN,
            lost: 0,
            extra: 0,
            reordered: 0,
            disconnects: 0,
            server_errors: 0,
            send_failures: 0,
            warm_lost: 0,
            p50_us: 0,
            p99_us: 0,
            max_us: 0,
            mean_us: f64::NAN,
            samples: 0,
            cpu_us: 0,
            cpu_sys_us: 0,
            cpu_window_us: 0,
            busy_s: 0.0,
            window_s: 0.0,
            cpu_us_per_delivery: f64::NAN,
            loadgen_cpu_us: 0,
            other_cpu_us: 0,
            rss_before_kb: 0,
            rss_idle_kb: 0,
            rss_end_kb: 0,
            rss_peak_kb: 0,
            rss_per_conn_b: f64::NAN,
            cpu_by_process: Vec::new(),
            first_error: None,
        }
    }

    fn ok(&self) -> bool {
        self.error.is_none()
    }

    pub fn one_line(&self) -> String {
        if let Some(e) = &self.error {
            if self.connected == 0 {
                return format!("error: {e}");
            }
        }
        format!(
            "published {} → delivered {}/{} ({} lost), {:.0} deliveries/s, p50 {} p99 {} max {} ms, \
             {:.2} CPU-µs/delivery, RSS/conn {:.1} KB{}",
            self.published,
            self.delivered,
            self.expected,
            self.lost,
            self.deliveries_per_s,
            ms(self.p50_us),
            ms(self.p99_us),
            ms(self.max_us),
            self.cpu_us_per_delivery,
            self.rss_per_conn_b / 1024.0,
            self.first_error
                .as_ref()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default()
        )
    }
}

fn ms(us: u64) -> String {
    let v = us as f64 / 1000.0;
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn mb(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.2}%", part as f64 * 100.0 / whole as f64)
    }
}

fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "-".into()
    }
}

fn find(results: &[RunResult], k: Kind, s: char) -> Option<&RunResult> {
    results.iter().find(|r| r.server == k && r.scenario == s)
}

/// `moim / other` CPU per delivery, when both ran cleanly.
fn ratio(results: &[RunResult], s: char, other: Kind) -> Option<f64> {
    let m = find(results, Kind::Moim, s).filter(|r| r.ok())?;
    let o = find(results, other, s).filter(|r| r.ok())?;
    let v = m.cpu_us_per_delivery / o.cpu_us_per_delivery;
    v.is_finite().then_some(v)
}

type Row = (&'static str, fn(&RunResult) -> String);

const ROWS: &[Row] = &[
    ("clients connected", |r| {
        format!("{}/{}", r.connected, r.clients)
    }),
    ("connect time (s)", |r| format!("{:.1}", r.connect_s)),
    ("published (measured msgs)", |r| r.published.to_string()),
    ("publish rate (msg/s)", |r| num(r.publish_rate, 1)),
    ("deliveries/s (window)", |r| num(r.deliveries_per_s, 0)),
    ("latency p50 (ms)", |r| ms(r.p50_us)),
    ("latency p99 (ms)", |r| ms(r.p99_us)),
    ("latency max (ms)", |r| ms(r.max_us)),
    ("delivered / expected", |r| {
        format!("{}/{}", r.delivered, r.expected)
    }),
    ("lost", |r| {
        format!("{} ({})", r.lost, pct(r.lost, r.expected))
    }),
    ("reordered or duplicated", |r| r.reordered.to_string()),
    ("disconnects / error frames", |r| {
        format!("{} / {}", r.disconnects, r.server_errors)
    }),
    ("server CPU-µs per delivery", |r| {
        num(r.cpu_us_per_delivery, 3)
    }),
    ("  of which user / kernel (µs)", |r| {
        let per = |us: u64| {
            if r.delivered > 0 {
                us as f64 / r.delivered as f64
            } else {
                f64::NAN
            }
        };
        format!(
            "{} / {}",
            num(per(r.cpu_us.saturating_sub(r.cpu_sys_us)), 2),
            num(per(r.cpu_sys_us), 2)
        )
    }),
    ("server CPU in the kernel (%)", |r| {
        num(100.0 * r.cpu_sys_us as f64 / r.cpu_us.max(1) as f64, 0)
    }),
    ("server CPU (% of a core)", |r| {
        num(r.cpu_us as f64 / 1e4 / r.busy_s, 0)
    }),
    ("server RSS before (MB)", |r| mb(r.rss_before_kb)),
    ("server RSS connected idle (MB)", |r| mb(r.rss_idle_kb)),
    ("server RSS peak (MB)", |r| mb(r.rss_peak_kb)),
    ("RSS per idle connection (KB)", |r| {
        num(r.rss_per_conn_b / 1024.0, 2)
    }),
    ("loadgen CPU (% of a core)", |r| {
        num(r.loadgen_cpu_us as f64 / 1e4 / r.busy_s, 0)
    }),
    ("other processes CPU (% of a core)", |r| {
        num(r.other_cpu_us as f64 / 1e4 / r.busy_s, 0)
    }),
];

/// The human-readable report: one table per scenario, then the goal checks.
pub fn tables(
    scens: &[Scenario],
    kinds: &[Kind],
    results: &[RunResult],
    msg_bytes: usize,
) -> String {
    let mut out = String::new();
    let w0 = 34;
    let w = 18;
    for s in scens {
        out.push_str(&format!("\n{}\n", s.describe(msg_bytes)));
        out.push_str(&format!("{:<w0$}", "metric"));
        for k in kinds {
            out.push_str(&format!("{:>w$}", k.name()));
        }
        out.push('\n');
        for (label, f) in ROWS {
            out.push_str(&format!("{label:<w0$}"));
            for k in kinds {
                let cell = match find(results, *k, s.id) {
                    Some(r) if r.connected > 0 => f(r),
                    Some(_) => "FAILED".into(),
                    None => "-".into(),
                };
                out.push_str(&format!("{cell:>w$}"));
            }
            out.push('\n');
        }
        let mut ratios = vec![];
        for (other, goal) in [
            (Kind::SocketIo, Some(0.2)),
            (Kind::Ws, Some(0.5)),
            (Kind::Bun, None),
        ] {
            if let Some(v) = ratio(results, s.id, other) {
                let goal = goal.map(|g| format!(" (goal ≤ {g})")).unwrap_or_default();
                ratios.push(format!("{:.3} of {}'s{goal}", v, other.name()));
            }
        }
        if !ratios.is_empty() {
            out.push_str(&format!("moim CPU per delivery = {}\n", ratios.join(", ")));
        }
        for k in kinds {
            if let Some(r) = find(results, *k, s.id) {
                if let Some(e) = &r.error {
                    out.push_str(&format!("{} error: {}\n", k.name(), e));
                }
                if let Some(e) = &r.first_error {
                    out.push_str(&format!("{} first client error: {}\n", k.name(), e));
                }
            }
        }
    }
    if kinds.contains(&Kind::Moim) {
        out.push_str("\nGoals (moim):\n");
        for g in goals(scens, results) {
            out.push_str(&format!(
                "  [{}] {}: {}\n",
                match g.pass {
                    Some(true) => "PASS",
                    Some(false) => "FAIL",
                    None => "n/a ",
                },
                g.name,
                g.detail
            ));
        }
    }
    out
}

pub struct Goal {
    pub name: &'static str,
    pub pass: Option<bool>,
    pub detail: String,
}

fn all_of(parts: &[Option<bool>]) -> Option<bool> {
    if parts.is_empty() || parts.iter().any(|p| p.is_none()) {
        if parts.contains(&Some(false)) {
            return Some(false);
        }
        return None;
    }
    Some(parts.iter().all(|p| *p == Some(true)))
}

pub fn goals(scens: &[Scenario], results: &[RunResult]) -> Vec<Goal> {
    let moim: Vec<&RunResult> = scens
        .iter()
        .filter_map(|s| find(results, Kind::Moim, s.id))
        .collect();
    let mut goals = vec![];

    let parts: Vec<Option<bool>> = moim
        .iter()
        .map(|r| {
            r.ok()
                .then_some(r.lost == 0 && r.connected == r.clients && r.expected > 0)
        })
        .collect();
    let detail = moim
        .iter()
        .map(|r| format!("{} {} lost of {}", r.scenario, r.lost, r.expected))
        .collect::<Vec<_>>()
        .join(", ");
    goals.push(Goal {
        name: "no message lost",
        pass: all_of(&parts),
        detail,
    });

    for (other, limit, name) in [
        (Kind::SocketIo, 0.2, "CPU per delivery ≤ 1/5 of socket.io's"),
        (Kind::Ws, 0.5, "CPU per delivery ≤ 1/2 of ws's"),
    ] {
        let vals: Vec<(char, Option<f64>)> = scens
            .iter()
            .map(|s| (s.id, ratio(results, s.id, other)))
            .collect();
        let parts: Vec<Option<bool>> = vals.iter().map(|(_, v)| v.map(|v| v <= limit)).collect();
        let detail = vals
            .iter()
            .map(|(id, v)| match v {
                Some(v) => format!("{id} {v:.3}"),
                None => format!("{id} -"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        goals.push(Goal {
            name,
            pass: all_of(&parts),
            detail,
        });
    }

    let a = find(results, Kind::Moim, 'A').filter(|r| r.ok() && r.samples > 0);
    goals.push(Goal {
        name: "p99 < 50 ms in scenario A",
        pass: a.map(|r| r.p99_us < 50_000),
        detail: a.map_or("scenario A not run".into(), |r| {
            format!("p99 {} ms", ms(r.p99_us))
        }),
    });

    // Judged on every run with at least 1,000 connections (smaller ones are too noisy); all
    // are shown.
    let most = moim.iter().map(|r| r.connected).max().unwrap_or(0);
    let judged: Vec<&&RunResult> = moim
        .iter()
        .filter(|r| r.ok() && r.connected > 0 && r.connected >= most.min(1000))
        .collect();
    let detail = moim
        .iter()
        .map(|r| format!("{} {:.2} KB", r.scenario, r.rss_per_conn_b / 1024.0))
        .collect::<Vec<_>>()
        .join(", ");
    let judged_ids: String = judged.iter().map(|r| r.scenario).collect();
    goals.push(Goal {
        name: "RSS per idle connection < 16 KB",
        pass: (!judged.is_empty()).then(|| judged.iter().all(|r| r.rss_per_conn_b < 16.0 * 1024.0)),
        detail: format!("{detail} (judged on {judged_ids}: runs with ≥ 1,000 connections)"),
    });
    goals
}

fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

/// The machine-readable summary written to bench/results/latest.json.
pub fn json(meta: &Value, scens: &[Scenario], results: &[RunResult]) -> Value {
    let scenarios: Vec<Value> = scens
        .iter()
        .map(|s| {
            json!({
                "id": s.id.to_string(),
                "rooms": s.rooms,
                "clients_per_room": s.clients_per_room,
                "publishers_per_room": s.publishers_per_room,
                "rate_msgs_per_s": s.rate,
                "duration_s": s.duration.as_secs_f64(),
                "warmup_s": s.warmup.as_secs_f64(),
                "cpu_ratio_moim_vs_socketio": ratio(results, s.id, Kind::SocketIo).map(finite),
                "cpu_ratio_moim_vs_ws": ratio(results, s.id, Kind::Ws).map(finite),
                "cpu_ratio_moim_vs_bun": ratio(results, s.id, Kind::Bun).map(finite),
            })
        })
        .collect();
    let runs: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "server": r.server.name(),
                "scenario": r.scenario.to_string(),
                "error": r.error,
                "first_client_error": r.first_error,
                "clients": r.clients,
                "connected": r.connected,
                "connect_s": finite(r.connect_s),
                "published": r.published,
                "publish_rate": finite(r.publish_rate),
                "expected_deliveries": r.expected,
                "delivered": r.delivered,
                "deliveries_per_s": finite(r.deliveries_per_s),
                "lost": r.lost,
                "extra": r.extra,
                "reordered": r.reordered,
                "disconnects": r.disconnects,
                "server_error_frames": r.server_errors,
                "send_failures": r.send_failures,
                "warmup_lost": r.warm_lost,
                "latency_us": {
                    "p50": r.p50_us, "p99": r.p99_us, "max": r.max_us,
                    "mean": finite(r.mean_us), "samples": r.samples,
                },
                "server_cpu_us": r.cpu_us,
                "server_cpu_us_window_only": r.cpu_window_us,
                "server_cpu_sys_us": r.cpu_sys_us,
                "server_cpu_user_us": r.cpu_us.saturating_sub(r.cpu_sys_us),
                "measured_s": finite(r.busy_s),
                "window_s": finite(r.window_s),
                "server_cpu_us_per_delivery": finite(r.cpu_us_per_delivery),
                "loadgen_cpu_us": r.loadgen_cpu_us,
                "other_processes_cpu_us": r.other_cpu_us,
                "rss_kb": {
                    "before": r.rss_before_kb, "idle_connected": r.rss_idle_kb,
                    "end": r.rss_end_kb, "peak": r.rss_peak_kb,
                },
                "rss_per_idle_connection_bytes": finite(r.rss_per_conn_b),
            })
        })
        .collect();
    let goals: Vec<Value> = goals(scens, results)
        .into_iter()
        .map(|g| json!({"goal": g.name, "pass": g.pass, "detail": g.detail}))
        .collect();
    json!({
        "meta": meta,
        "scenarios": scenarios,
        "runs": runs,
        "goals": goals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn moim_is_compared_with_every_peer_that_ran() {
        let s = Scenario {
            id: 'A',
            rooms: 1,
            clients_per_room: 10,
            publishers_per_room: 1,
            rate: 10.0,
            duration: Duration::from_secs(1),
            warmup: Duration::from_secs(1),
        };
        let run = |kind: Kind, cpu: f64| {
            let mut r = RunResult::failed(kind, &s, String::new());
            r.error = None;
            r.connected = 10;
            r.delivered = 100;
            r.expected = 100;
            r.cpu_us = 400;
            r.cpu_sys_us = 300;
            r.cpu_us_per_delivery = cpu;
            r
        };
        let kinds = [Kind::Moim, Kind::SocketIo, Kind::Ws, Kind::Bun];
        let results: Vec<RunResult> = kinds
            .iter()
            .zip([2.0, 8.0, 4.0, 1.0])
            .map(|(k, cpu)| run(*k, cpu))
            .collect();
        let text = tables(std::slice::from_ref(&s), &kinds, &results, 100);
        assert!(text.contains(
            "moim CPU per delivery = 0.250 of socket.io's (goal ≤ 0.2), \
             0.500 of ws's (goal ≤ 0.5), 2.000 of bun's\n"
        ));
        assert!(text.contains("1.00 / 3.00"), "user / kernel per delivery");
        let j = json(&json!({}), std::slice::from_ref(&s), &results);
        assert_eq!(j["scenarios"][0]["cpu_ratio_moim_vs_bun"], json!(2.0));
        assert_eq!(j["runs"][3]["server"], json!("bun"));
        assert_eq!(j["runs"][3]["server_cpu_user_us"], json!(100));
    }
}
