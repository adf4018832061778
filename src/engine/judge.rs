//! From a measurement to results: expectations, `crit`/`warn` conditions and the baseline band
//! each contribute a status; the gravest wins and every reason is named in the message.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::baseline::EwmaState;
use crate::config::Check;
use crate::probe::{Measurement, ProbeError, Sample};
use crate::result::{CheckResult, Status, Value};
use crate::secrets::redact_owned;

/// Results of one check run and the baselines it updated (series → state).
#[derive(Debug, Default)]
pub struct Judged {
    pub results: Vec<CheckResult>,
    pub baselines: Vec<(String, EwmaState)>,
}

/// Facts about the run that every result carries.
pub struct RunFacts<'a> {
    pub run_id: &'a str,
    pub revision: &'a str,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
}

/// Judges one check's outcome. `baselines` holds the stored state per series of this check.
pub fn judge(
    check: &Check,
    outcome: Result<Measurement, ProbeError>,
    baselines: &HashMap<String, EwmaState>,
    facts: &RunFacts<'_>,
) -> Judged {
    let m = match outcome {
        Ok(m) => m,
        Err(e) => {
            return Judged {
                results: vec![result(
                    check,
                    facts,
                    String::new(),
                    None,
                    "",
                    Status::Error,
                    e.0,
                    None,
                )],
                baselines: Vec::new(),
            };
        }
    };
    if m.samples.is_empty() {
        let (status, msg) = if m.failures.is_empty() {
            (Status::Ok, "no value measured".to_string())
        } else {
            (Status::Crit, m.failures.join("; "))
        };
        return Judged {
            results: vec![result(
                check,
                facts,
                String::new(),
                None,
                &m.unit,
                status,
                msg,
                None,
            )],
            baselines: Vec::new(),
        };
    }
    let mut out = Judged::default();
    for sample in m.samples {
        let mut state = baselines.get(&sample.series).cloned().unwrap_or_default();
        let (status, reasons, band, learned) =
            judge_sample(check, &sample, &m.failures, &mut state, facts.started_at);
        if learned {
            out.baselines.push((sample.series.clone(), state));
        }
        out.results.push(result(
            check,
            facts,
            sample.series,
            Some(sample.value),
            &m.unit,
            status,
            reasons.join("; "),
            band,
        ));
    }
    out
}

/// Status and reasons for one sample; learns it into `state` when the check has a baseline.
fn judge_sample(
    check: &Check,
    sample: &Sample,
    failures: &[String],
    state: &mut EwmaState,
    now: DateTime<Utc>,
) -> (Status, Vec<String>, Option<crate::result::Band>, bool) {
    let c = &check.common;
    let mut status = Status::Ok;
    let mut reasons: Vec<String> = Vec::new();
    if !failures.is_empty() {
        status = Status::Crit;
        reasons.extend(failures.iter().cloned());
    }
    if let Some(cond) = c.crit.as_ref().filter(|k| k.matches(&sample.value)) {
        status = status.max(Status::Crit);
        reasons.push(format!("value {} matches crit {}", sample.value, cond));
    } else if let Some(cond) = c.warn.as_ref().filter(|k| k.matches(&sample.value)) {
        status = status.max(Status::Warn);
        reasons.push(format!("value {} matches warn {}", sample.value, cond));
    }
    let mut band = None;
    let mut learned = false;
    if let (Some(cfg), Some(x)) = (&c.baseline, numeric(&sample.value)) {
        let j = state.observe(x, cfg, now);
        if j.anomalous {
            status = status.max(cfg.anomaly_status());
            reasons.extend(j.message);
        }
        band = j.band;
        learned = true;
    }
    (status, reasons, band, learned)
}

/// The number a baseline learns: numbers, and text that spells one (MySQL `SHOW STATUS` values,
/// Redis INFO fields arrive as text).
fn numeric(v: &Value) -> Option<f64> {
    v.as_f64().filter(|n| n.is_finite())
}

#[allow(clippy::too_many_arguments)]
fn result(
    check: &Check,
    facts: &RunFacts<'_>,
    series: String,
    value: Option<Value>,
    unit: &str,
    status: Status,
    message: String,
    baseline: Option<crate::result::Band>,
) -> CheckResult {
    let c = &check.common;
    CheckResult {
        check: c.name.clone(),
        kind: check.kind().to_string(),
        target: check.target_label(),
        series: redact_owned(series),
        status,
        value: value.map(|v| match v {
            Value::Text(t) => Value::Text(redact_owned(t)),
            n => n,
        }),
        unit: unit.to_string(),
        duration_ms: (facts.duration_ms * 1000.0).round() / 1000.0,
        message: redact_owned(message),
        baseline,
        shadow: check.is_shadow(),
        service: c.service.clone(),
        labels: c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), redact_owned(v.clone())))
            .collect(),
        revision: facts.revision.to_string(),
        started_at: facts.started_at,
        run_id: facts.run_id.to_string(),
    }
}
