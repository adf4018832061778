//! The plan of a drill, printed before it runs (and alone by `--dry-run`): the steady state, the
//! workload, each fault on the timeline with what it does and its blast radius, the abort rules,
//! what is verified and the rollback steps.

use std::fmt::Write as _;

use serde_json::json;

use super::spec::Drill;
use crate::config::duration::format as dur;

pub fn text(drill: &Drill) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "drill {} ({})", drill.name, drill.file.display());
    if let Some(d) = &drill.description {
        let _ = writeln!(s, "  {}", d.trim());
    }
    s.push_str("steady state:\n");
    if drill.steady_state.is_empty() {
        s.push_str("  (none)\n");
    }
    for c in &drill.steady_state {
        let _ = writeln!(
            s,
            "  {} ({} check{}), tolerating {}",
            c.check.name(),
            c.check.kind(),
            if c.inline { ", inline" } else { "" },
            c.tolerance.as_str()
        );
    }
    if let Some(sse) = &drill.workload.sse {
        let rate = sse.connect_rate.map_or(String::new(), |r| {
            format!(", opened at {}/s", crate::result::format_number(r))
        });
        let _ = writeln!(
            s,
            "workload sse: {} subscribers on {}{rate}",
            sse.subscribers, sse.url
        );
        if let Some(p) = &sse.publish {
            let _ = writeln!(
                s,
                "  publishing {} to {} {} (sequence {})",
                p.rate, p.method, p.url, sse.sequence
            );
        }
    }
    if let Some(http) = &drill.workload.http {
        let _ = writeln!(
            s,
            "workload http: {} {} at {}",
            http.method, http.url, http.rate
        );
    }
    for p in &drill.proxies {
        let _ = writeln!(
            s,
            "proxy {}: {} → {}",
            p.name,
            p.listen,
            p.upstream.join(", ")
        );
    }
    s.push_str("faults:\n");
    if drill.faults.is_empty() {
        s.push_str("  (none)\n");
    }
    for f in &drill.faults {
        let _ = writeln!(
            s,
            "  #{} at {} for {}: {} — {}",
            f.index + 1,
            dur(f.at),
            dur(f.duration),
            f.spec.kind(),
            f.spec.describe()
        );
    }
    for a in &drill.abort_when {
        let _ = writeln!(s, "abort when: {}", a.describe());
    }
    for (metric, condition) in &drill.verify.metrics {
        let _ = writeln!(s, "verify: {} {}", metric.key(), condition);
    }
    for (check, tolerance) in &drill.verify.checks {
        let _ = writeln!(s, "verify: check {check} is {}", tolerance.as_str());
    }
    for step in &drill.rollback {
        let _ = writeln!(
            s,
            "rollback: {} (up to {})",
            step.command.display(),
            dur(step.timeout)
        );
    }
    let _ = writeln!(
        s,
        "timeline: faults end after {}, then {} of drain; probes every {}",
        dur(drill.fault_phase()),
        dur(drill.drain),
        dur(drill.probe_interval)
    );
    s
}

pub fn json(drill: &Drill) -> serde_json::Value {
    json!({
        "name": drill.name,
        "file": drill.file,
        "steady_state": drill.steady_state.iter().map(|c| json!({
            "check": c.check.name(), "kind": c.check.kind(), "inline": c.inline,
            "tolerance": c.tolerance,
        })).collect::<Vec<_>>(),
        "workload": { "sse": drill.workload.sse, "http": drill.workload.http },
        "proxies": drill.proxies,
        "faults": drill.faults.iter().map(|f| json!({
            "index": f.index, "kind": f.spec.kind(), "at": dur(f.at), "for": dur(f.duration),
            "description": f.spec.describe(),
        })).collect::<Vec<_>>(),
        "abort_when": drill.abort_when.iter().map(|a| a.describe()).collect::<Vec<_>>(),
        "verify": drill.verify.metrics.iter().map(|(m, c)| json!({"what": m.key(), "expected": c.source()}))
            .chain(drill.verify.checks.iter().map(|(n, t)| json!({"what": format!("check {n}"), "expected": t})))
            .collect::<Vec<_>>(),
        "rollback": drill.rollback,
        "recovery": drill.recovery,
        "drain": dur(drill.drain),
        "probe_interval": dur(drill.probe_interval),
    })
}
