//! What a check's `baseline:` needs from the rest of the rules: a sample spacing for fitted
//! methods (their periods are counted in samples), periods of at least two samples, and event
//! windows that name existing `maintenance:` windows.

use std::sync::Arc;

use super::RuleDoc;
use crate::alert::maintenance::MaintenanceWindow;
use crate::config::Loc;
use crate::config::issues::Diagnostic;
use crate::config::model::Check;

pub(super) fn check_baseline_needs(
    docs: &[RuleDoc],
    checks: &[Arc<Check>],
    maintenance: &[MaintenanceWindow],
    diags: &mut Vec<Diagnostic>,
) {
    for check in checks {
        let Some(cfg) = check.common.baseline.as_ref() else {
            continue;
        };
        let Some(doc) = docs.iter().find(|d| d.file == check.origin.file) else {
            continue;
        };
        let loc = locate_baseline(doc, check).unwrap_or(check.origin.loc);
        for problem in problems(check, cfg, maintenance) {
            diags.push(doc.diag(loc, format!("check `{}`: {problem}", check.name())));
        }
    }
}

fn problems(
    check: &Check,
    cfg: &crate::baseline::BaselineConfig,
    maintenance: &[MaintenanceWindow],
) -> Vec<String> {
    let mut out = Vec::new();
    let method = cfg.method.as_str();
    match crate::engine::known::step_of(check) {
        None if cfg.method.is_fitted() => out.push(format!(
            "baseline method {method} counts its periods in samples: set baseline.interval \
             (the spacing of this check's samples; it runs on a cron schedule)"
        )),
        Some(step) => {
            for p in cfg
                .periods
                .iter()
                .filter(|p| p.as_secs_f64() < 2.0 * step.as_secs_f64())
            {
                out.push(format!(
                    "baseline period {} is shorter than two samples of {}",
                    crate::config::duration::format(*p),
                    crate::config::duration::format(step)
                ));
            }
        }
        None => {}
    }
    for name in cfg.windows.iter().filter_map(|w| w.maintenance.as_ref()) {
        if !maintenance.iter().any(|m| &m.name == name) {
            let known: Vec<&str> = maintenance.iter().map(|m| m.name.as_str()).collect();
            out.push(format!(
                "baseline window refers to unknown maintenance window `{name}`; defined: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    out
}

/// Position of `baseline:` in the check (or in `defaults:`).
fn locate_baseline(doc: &RuleDoc, check: &Check) -> Option<Loc> {
    let checks = doc.section("checks")?.as_seq()?;
    let node = checks.iter().find(|c| c.loc == check.origin.loc)?;
    node.get("baseline")
        .or_else(|| doc.section("defaults")?.get("baseline"))
        .map(|n| n.loc)
}
