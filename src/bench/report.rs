//! The benchmark's table: each side's figures, then the peer's figures divided by patrol's.

use std::fmt::Write;
use std::time::Duration;

use super::sides::{Side, SideReport};
use crate::config::duration;

/// What the run was, for the header.
pub struct Context {
    pub checks: usize,
    pub every: Duration,
    pub window: Duration,
    pub concurrency: usize,
    pub per_target: usize,
    pub port: u16,
    pub cpus: usize,
    pub load_before: Option<f64>,
    pub load_after: Option<f64>,
}

const HEADER: [&str; 8] = [
    "runs",
    "failed",
    "late p50",
    "late p99",
    "late max",
    "CPU u+s",
    "CPU/1k runs",
    "peak RSS",
];

pub fn render(ctx: &Context, reports: &[SideReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "patrol bench schedule: {} http checks, every {} with jitter {}, {} per side",
        ctx.checks,
        duration::format(ctx.every),
        duration::format(ctx.every),
        duration::format(ctx.window)
    );
    let _ = writeln!(
        out,
        "limits: {} at once, {} per target; target: axum on 127.0.0.1:{} in the parent process",
        ctx.concurrency, ctx.per_target, ctx.port
    );
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
    let _ = writeln!(
        out,
        "machine: {} CPUs, load average {} before, {} after (other work on the host shows in every figure)",
        ctx.cpus,
        load(ctx.load_before),
        load(ctx.load_after)
    );
    let _ = writeln!(
        out,
        "each side ran in its own process, one after the other; CPU and peak RSS are that process's own\n\
         (the server's are not in them); lateness = check start (permits held) - planned start\n"
    );
    let _ = writeln!(out, "{:<42}{}", "side", row(HEADER.map(String::from)));
    for r in reports {
        let _ = writeln!(out, "{:<42}{}", r.side.label(), row(cells(r)));
    }
    let patrol = reports.iter().find(|r| r.side == Side::Patrol);
    let naive = reports.iter().find(|r| r.side == Side::Naive);
    if let (Some(p), Some(n)) = (patrol, naive) {
        let _ = writeln!(out, "{:<42}{}", "naive / patrol", row(ratios(n, p)));
    }
    for r in reports {
        notes(&mut out, r);
    }
    out
}

fn row(cells: [String; 8]) -> String {
    let widths = [7, 7, 10, 10, 10, 9, 12, 11];
    cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{c:>w$}"))
        .collect()
}

fn cells(r: &SideReport) -> [String; 8] {
    [
        r.runs.to_string(),
        r.failed.to_string(),
        ms(r.lateness.p50),
        ms(r.lateness.p99),
        ms(r.lateness.max),
        format!("{:.2} s", r.cpu_secs()),
        format!("{:.0} ms", cpu_per_thousand_ms(r)),
        r.memory.map_or("?".into(), |m| {
            format!("{:.1} MiB", m.peak_kib as f64 / 1024.0)
        }),
    ]
}

/// The peer's figures divided by patrol's (above 1: patrol is better).
fn ratios(naive: &SideReport, patrol: &SideReport) -> [String; 8] {
    let peak = |r: &SideReport| r.memory.map(|m| m.peak_kib as f64);
    [
        String::new(),
        String::new(),
        ratio(Some(naive.lateness.p50), Some(patrol.lateness.p50)),
        ratio(Some(naive.lateness.p99), Some(patrol.lateness.p99)),
        ratio(Some(naive.lateness.max), Some(patrol.lateness.max)),
        ratio(Some(naive.cpu_secs()), Some(patrol.cpu_secs())),
        ratio(
            Some(cpu_per_thousand_ms(naive)),
            Some(cpu_per_thousand_ms(patrol)),
        ),
        ratio(peak(naive), peak(patrol)),
    ]
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("x{:.2}", a / b),
        _ => "n/a".into(),
    }
}

fn cpu_per_thousand_ms(r: &SideReport) -> f64 {
    if r.runs == 0 {
        return 0.0;
    }
    r.cpu_secs() * 1000.0 * 1000.0 / r.runs as f64
}

fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn notes(out: &mut String, r: &SideReport) {
    if let Some(d) = r.dispatch {
        let _ = writeln!(
            out,
            "\npatrol's scheduler alone (hand-over to the runner, before permits): p50 {}, p99 {}, max {}; \
             skipped (still running) {}, missed {}",
            ms(d.p50),
            ms(d.p99),
            ms(d.max),
            r.skipped,
            r.missed
        );
    }
    if let Some(m) = r.memory {
        let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
        let _ = writeln!(
            out,
            "{}: RSS {} when the window began (rules loaded), {} at its end{}",
            r.side.label(),
            r.rss_at_start_kib.map_or("?".into(), mib),
            mib(m.current_kib),
            if r.peak_is_window_only {
                ""
            } else {
                " (peak includes loading the rules: the kernel refused the reset)"
            }
        );
    }
    if !r.drained {
        let _ = writeln!(
            out,
            "{}: runs were still going after the grace period",
            r.side.label()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{LatenessMs, Memory};

    fn report(side: Side, p99: f64, cpu: f64, peak_mib: u64) -> SideReport {
        SideReport {
            side,
            checks: 100,
            runs: 100,
            failed: 0,
            lateness: LatenessMs {
                count: 100,
                p50: 1.0,
                p99,
                max: p99 * 2.0,
                mean: 1.5,
            },
            dispatch: (side == Side::Patrol).then_some(LatenessMs::default()),
            skipped: 0,
            missed: 0,
            drained: true,
            wall_secs: 60.0,
            cpu_user_secs: cpu,
            cpu_system_secs: 0.0,
            memory: Some(Memory {
                peak_kib: peak_mib * 1024,
                current_kib: peak_mib * 1024,
            }),
            rss_at_start_kib: Some(10 * 1024),
            peak_is_window_only: true,
        }
    }

    #[test]
    fn table_shows_both_sides_and_the_ratios() {
        let ctx = Context {
            checks: 100,
            every: Duration::from_secs(60),
            window: Duration::from_secs(60),
            concurrency: 32,
            per_target: 4,
            port: 8080,
            cpus: 2,
            load_before: Some(1.5),
            load_after: None,
        };
        let text = render(
            &ctx,
            &[
                report(Side::Patrol, 2.0, 1.0, 40),
                report(Side::Naive, 8.0, 3.0, 80),
            ],
        );
        assert!(text.contains("100 http checks, every 1m with jitter 1m, 1m per side"));
        assert!(text.contains("2 CPUs, load average 1.50 before, ? after"));
        let ratio_line = text
            .lines()
            .find(|l| l.starts_with("naive / patrol"))
            .unwrap();
        let cols: Vec<&str> = ratio_line.split_whitespace().collect();
        assert_eq!(
            cols[3..],
            ["x1.00", "x4.00", "x4.00", "x3.00", "x3.00", "x2.00"]
        );
        assert!(text.contains("skipped (still running) 0, missed 0"));
        assert!(text.contains("40.0 MiB"));
        assert!(
            text.contains("RSS 10.0 MiB when the window began (rules loaded), 80.0 MiB at its end")
        );
    }

    #[test]
    fn ratios_without_a_base_say_so() {
        assert_eq!(ratio(Some(1.0), Some(0.0)), "n/a");
        assert_eq!(ratio(None, Some(1.0)), "n/a");
        assert_eq!(ratio(Some(3.0), Some(2.0)), "x1.50");
    }
}
