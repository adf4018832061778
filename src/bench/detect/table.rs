//! The text report of `patrol bench detect`: quality per method with ratios against the peer,
//! recall per anomaly kind, speed, memory, and what every figure means.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{MethodReport, Report};

const DEFINITIONS: &str = "\
definitions:
  alert        a sample the method judged anomalous (outside its band, band enforced)
  episode      a maximal run of consecutive alerts (over the rows with a value, in file order)
  detected     a labelled window [from, to] with an alert in [from, to + grace]
  false alarm  an episode none of whose alerts lies in any window + grace
  precision    detected windows / (detected windows + false alarms)   (n/a: no alerts at all)
  recall       detected windows / labelled windows;  F1 = 2PR / (P + R)
  delay        first alert in [from, to + grace] - from, mean over detected windows
  ROC AUC, AP  ranking of anomaly_score, samples pooled over all series: positives inside a
               window, negatives outside every window + grace (grace samples left out);
               AUC = P(a positive outranks a negative), ties half; AP = area under the
               precision-recall curve, step-wise
  probation    alerts and samples of the first days are not scored (every method learns)
  ns/sample    replay time per sample, refits included, summed over worker threads
  tuned        alerts re-derived from the replay's scores at each band width z in 2 … 20 σ
               (score > z²/(z²+9)); the best F1 and its z. The replay itself ran at the
               defaults (its learning kept out the anomalies of the default band)
  peer         Zabbix-style seasonal average: samples within ±10m of the same time on each of the
               previous 7 days (at least 2), anomalous beyond mean ± 3 population sd
";

pub fn render(r: &Report, per_series: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "patrol bench detect: {} series, {} rows, {} labelled windows ({})",
        r.series, r.rows, r.windows, r.set
    );
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
    let _ = writeln!(
        out,
        "machine: {} CPUs, load average {} before, {} after (other work on the host shows in every timing)",
        r.cpus,
        load(r.load_before),
        load(r.load_after)
    );
    let _ = writeln!(
        out,
        "scoring: grace {} min after a window's end; the first {} days are probation; \
         seasonal and ets refit every {} of data time\n",
        r.grace_secs / 60,
        r.probation_days,
        crate::config::duration::format(std::time::Duration::from_secs(r.refit_secs))
    );
    quality(&mut out, r);
    tuned(&mut out, r);
    by_kind(&mut out, r);
    if per_series {
        series(&mut out, r);
    }
    fallbacks(&mut out, r);
    speed(&mut out, r);
    memory(&mut out, r);
    out.push('\n');
    out.push_str(DEFINITIONS);
    out
}

fn quality(out: &mut String, r: &Report) {
    let peer = r.methods.iter().find(|m| m.method == "peer");
    let _ = writeln!(
        out,
        "{:<10}{:>10}{:>8}{:>7}{:>9}{:>11}{:>9}{:>7}{:>8}{:>7}{:>13}{:>11}{:>8}",
        "method",
        "precision",
        "recall",
        "F1",
        "F1/peer",
        "delay",
        "ROC AUC",
        "AP",
        "AP/peer",
        "alerts",
        "false alarms",
        "ns/sample",
        "refits"
    );
    for m in &r.methods {
        let _ = writeln!(
            out,
            "{:<10}{:>10}{:>8}{:>7.3}{:>9}{:>11}{:>9}{:>7}{:>8}{:>7}{:>13}{:>11.0}{:>8}",
            m.method,
            opt(m.precision),
            opt(m.recall),
            m.f1,
            if m.method == "peer" {
                "-".to_string()
            } else {
                ratio(Some(m.f1), peer.map(|p| p.f1))
            },
            m.mean_delay_secs
                .map_or("n/a".into(), |s| format!("{:.1} min", s / 60.0)),
            opt(m.roc_auc),
            opt(m.average_precision),
            if m.method == "peer" {
                "-".to_string()
            } else {
                ratio(m.average_precision, peer.and_then(|p| p.average_precision))
            },
            m.events.alerts,
            m.events.false_alarms,
            m.ns_per_point,
            m.refits
        );
    }
    let _ = writeln!(
        out,
        "(F1/peer, AP/peer: the method's figure divided by the peer's; above x1.00 the method is better)"
    );
}

fn tuned(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "\ntuned on this set: the score threshold with the best F1, as a band width in σ\n{:<10}{:>8}{:>10}{:>8}{:>7}{:>13}",
        "method", "best z", "precision", "recall", "F1", "false alarms"
    );
    for m in &r.methods {
        if let Some(t) = &m.tuned {
            let _ = writeln!(
                out,
                "{:<10}{:>8}{:>10}{:>8}{:>7.3}{:>13}",
                m.method,
                format!("{:.1}", t.z),
                opt(t.precision),
                opt(t.recall),
                t.f1,
                t.false_alarms
            );
        }
    }
}

fn series(out: &mut String, r: &Report) {
    let Some(first) = r.methods.first() else {
        return;
    };
    let _ = write!(
        out,
        "\nper series: detected/windows, false alarms (*: the last verdict was an EWMA fallback)\n{:<24}",
        "series"
    );
    for m in &r.methods {
        let _ = write!(out, "{:>14}", m.method);
    }
    out.push('\n');
    for name in first.per_series.keys() {
        let _ = write!(out, "{name:<24}");
        for m in &r.methods {
            let cell = m.per_series.get(name).map_or("?".into(), |f| {
                let fell_back = m.method != "ewma"
                    && f.last_method
                        .as_ref()
                        .is_some_and(|l| l.starts_with("ewma"));
                format!(
                    "{}/{} {}{}",
                    f.detected,
                    f.windows,
                    f.false_alarms,
                    if fell_back { "*" } else { "" }
                )
            });
            let _ = write!(out, "{cell:>14}");
        }
        out.push('\n');
    }
}

fn by_kind(out: &mut String, r: &Report) {
    let kinds: BTreeSet<&String> = r
        .methods
        .iter()
        .flat_map(|m| m.events.by_kind.keys())
        .collect();
    if kinds.is_empty() {
        return;
    }
    let _ = write!(out, "\nrecall by kind (detected/windows)\n{:<20}", "kind");
    for m in &r.methods {
        let _ = write!(out, "{:>10}", m.method);
    }
    out.push('\n');
    for kind in kinds {
        let _ = write!(out, "{kind:<20}");
        for m in &r.methods {
            let (w, d) = m.events.by_kind.get(kind).copied().unwrap_or_default();
            let _ = write!(out, "{:>10}", format!("{d}/{w}"));
        }
        out.push('\n');
    }
}

/// Fitted methods whose series ended on the EWMA fallback: their figures are EWMA's.
fn fallbacks(out: &mut String, r: &Report) {
    for m in &r.methods {
        let fell_back: Vec<String> = m
            .last_band_methods
            .iter()
            .filter(|(band, _)| band.as_str() != m.method && m.method != "ewma")
            .map(|(band, n)| format!("{n} series on \"{band}\""))
            .collect();
        if !fell_back.is_empty() {
            let _ = writeln!(
                out,
                "\nnote: {} ended with its EWMA fallback: {}",
                m.method,
                fell_back.join("; ")
            );
        }
    }
}

fn speed(out: &mut String, r: &Report) {
    let e = &r.ewma;
    let _ = writeln!(
        out,
        "\nspeed\n  EWMA update (EwmaState::update):           {:.1} ns per update ({} updates)\n  \
         EWMA verdict (detector::observe, ewma):    {:.1} ns per sample (band, score, message, update)",
        e.update_ns, e.updates, e.observe_ns
    );
    let Some(f) = &r.refit else {
        let _ = writeln!(out, "  seasonal refit: skipped (--refit-series 0)");
        return;
    };
    if f.fitted == 0 {
        let _ = writeln!(
            out,
            "  seasonal refit: none of {} fits succeeded ({} learning, {} failed{}); no timing",
            f.series,
            f.learning,
            f.failed,
            f.first_error
                .as_ref()
                .map_or(String::new(), |e| format!(": {e}"))
        );
        return;
    }
    let _ = writeln!(
        out,
        "  seasonal refit (period 1d, {:.0} points each): {} series in {:.2} s on {} threads; \
         per fit mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} fitted, {} learning, {} failed",
        f.points_per_series,
        f.series,
        f.wall_secs,
        f.threads,
        f.fit_ms_mean,
        f.fit_ms_p50,
        f.fit_ms_p99,
        f.fit_ms_max,
        f.fitted,
        f.learning,
        f.failed
    );
}

fn memory(out: &mut String, r: &Report) {
    let mib =
        |kib: Option<u64>| kib.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let _ = writeln!(
        out,
        "\nmemory\n  peak RSS: replaying the set {}{}, refitting {}",
        mib(r.replay_peak_rss_kib),
        if r.peak_reset {
            ""
        } else {
            " (since start: the kernel refused the reset)"
        },
        mib(r.refit.as_ref().and_then(|f| f.peak_rss_kib))
    );
    let per: Vec<String> = r.methods.iter().map(state_line).collect();
    let _ = writeln!(out, "  held per series between samples: {}", per.join("; "));
}

fn state_line(m: &MethodReport) -> String {
    let held = bytes(m.state_bytes_max);
    match (m.method.as_str(), m.history_bytes) {
        ("peer", _) => format!("peer {held} (its kept samples)"),
        (_, 0) => format!("{} {held}", m.method),
        (_, h) => format!(
            "{} {held} (EWMA + forecast; a refit reads {} of history)",
            m.method,
            bytes(h)
        ),
    }
}

fn bytes(b: usize) -> String {
    if b < 1024 {
        format!("{b} B")
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.3}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("x{:.2}", a / b),
        _ => "n/a".into(),
    }
}
