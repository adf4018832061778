//! From a measurement to results: expectations, `crit`/`warn` conditions and the baseline band
//! each contribute a status; the gravest wins and every reason is named in the message.

use chrono::{DateTime, Utc};

use std::collections::BTreeMap;

use super::known::Known;
use crate::baseline::peer::{PeerVerdict, judge_peers};
use crate::baseline::window::open_at;
use crate::baseline::{BaselineMethod, EwmaState, Model, observe, observe_peer};
use crate::config::Check;
use crate::probe::{Measurement, ProbeError, Sample};
use crate::result::{CheckResult, Status, Value};
use crate::secrets::redact_owned;

/// Results of one check run, the baselines it updated (series → state) and what its probe left
/// in its memory for the next run (see [`crate::probe::memory`]).
#[derive(Debug, Default)]
pub struct Judged {
    pub results: Vec<CheckResult>,
    pub baselines: Vec<(String, EwmaState)>,
    pub memory: Option<serde_json::Value>,
}

/// Facts about the run that every result carries.
pub struct RunFacts<'a> {
    pub run_id: &'a str,
    pub revision: &'a str,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
}

/// Judges one check's outcome against what is `known` of its series.
pub fn judge(
    check: &Check,
    outcome: Result<Measurement, ProbeError>,
    known: &Known,
    facts: &RunFacts<'_>,
) -> Judged {
    let m = match outcome {
        Ok(m) => m,
        Err(e) => return without_value(check, facts, "", Status::Error, e.0),
    };
    let Measurement {
        samples,
        unit,
        failures,
        reported,
        attachment,
    } = m;
    let own = OwnVerdict { reported, failures };
    let mut out = judge_samples(check, samples, &unit, &own, known, facts);
    keep_attachment(&mut out.results, attachment);
    out
}

fn judge_samples(
    check: &Check,
    samples: Vec<Sample>,
    unit: &str,
    own: &OwnVerdict,
    known: &Known,
    facts: &RunFacts<'_>,
) -> Judged {
    if samples.is_empty() {
        let (status, reasons) = own.start();
        let message = match reasons.is_empty() {
            true => "no value measured".to_string(),
            false => reasons.join("; "),
        };
        return without_value(check, facts, unit, status, message);
    }
    let mut out = Judged::default();
    let peers = compare_peers(check, &samples, known);
    for sample in samples {
        let mut state = known
            .baselines
            .get(&sample.series)
            .cloned()
            .unwrap_or_default();
        let basis = Basis {
            known,
            peers: &peers,
            now: facts.started_at,
        };
        let (status, reasons, band, learned) =
            judge_sample(check, &sample, own, &mut state, &basis);
        if learned {
            out.baselines.push((sample.series.clone(), state));
        }
        out.results.push(result(
            check,
            facts,
            sample.series,
            Some(sample.value),
            unit,
            status,
            reasons.join("; "),
            band,
        ));
    }
    out
}

/// What the probe itself concluded, before conditions and baselines: the measured system's own
/// verdict (a Nagios plugin's exit status) and the expectations that were not met.
struct OwnVerdict {
    reported: Option<crate::probe::Reported>,
    failures: Vec<String>,
}

impl OwnVerdict {
    /// The status and reasons every sample starts from: the reported status and its words first
    /// (they are what the system said), then each unmet expectation as `crit`.
    fn start(&self) -> (Status, Vec<String>) {
        let mut status = Status::Ok;
        let mut reasons = Vec::new();
        if let Some(r) = &self.reported {
            status = r.status;
            if !r.message.is_empty() {
                reasons.push(r.message.clone());
            }
        }
        if !self.failures.is_empty() {
            status = status.max(Status::Crit);
            reasons.extend(self.failures.iter().cloned());
        }
        (status, reasons)
    }
}

/// The probe's evidence stays only with results that need it: an ok result carries none.
fn keep_attachment(results: &mut [CheckResult], attachment: Option<crate::result::Attachment>) {
    let Some(a) = attachment else { return };
    for r in results
        .iter_mut()
        .filter(|r| !matches!(r.status, Status::Ok | Status::Skipped))
    {
        r.attachment = Some(crate::result::Attachment {
            text: redact_owned(a.text.clone()),
            ..a.clone()
        });
    }
}

/// The single result of a check that produced no value (an error, or nothing to measure).
fn without_value(
    check: &Check,
    facts: &RunFacts<'_>,
    unit: &str,
    status: Status,
    message: String,
) -> Judged {
    Judged {
        results: vec![result(
            check,
            facts,
            String::new(),
            None,
            unit,
            status,
            message,
            None,
        )],
        baselines: Vec::new(),
        memory: None,
    }
}

/// What a sample's baseline verdict draws on besides its own EWMA state.
struct Basis<'a> {
    known: &'a Known,
    /// The peer comparison of this run (peer method), or why there is none.
    peers: &'a Option<Result<BTreeMap<String, PeerVerdict>, String>>,
    now: DateTime<Utc>,
}

/// A `peer` check's series compared with each other: each series' values within the window
/// before this run, then this run's sample.
fn compare_peers(
    check: &Check,
    samples: &[Sample],
    known: &Known,
) -> Option<Result<BTreeMap<String, PeerVerdict>, String>> {
    let cfg = check
        .common
        .baseline
        .as_ref()
        .filter(|c| c.method == BaselineMethod::Peer)?;
    let recent: BTreeMap<String, Vec<f64>> = samples
        .iter()
        .filter_map(|s| {
            let x = numeric(&s.value)?;
            let mut values = known.peers.get(&s.series).cloned().unwrap_or_default();
            values.push(x);
            Some((s.series.clone(), values))
        })
        .collect();
    Some(judge_peers(cfg, &recent))
}

/// Status and reasons for one sample; learns it into `state` when the check has a baseline.
fn judge_sample(
    check: &Check,
    sample: &Sample,
    own: &OwnVerdict,
    state: &mut EwmaState,
    basis: &Basis<'_>,
) -> (Status, Vec<String>, Option<crate::result::Band>, bool) {
    let c = &check.common;
    let (mut status, mut reasons) = own.start();
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
        let now = basis.now;
        let window = open_at(&cfg.windows, now, &basis.known.maintenance);
        let series = sample.series.as_str();
        let v = match basis.peers {
            Some(Ok(verdicts)) if verdicts.contains_key(series) => {
                observe_peer(cfg, state, &verdicts[series], series, window, x, now)
            }
            Some(Err(why)) => observe(cfg, state, Model::Failed(why), window, x, now),
            _ => {
                let model = basis
                    .known
                    .models
                    .get(series)
                    .map_or(Model::None, |m| m.as_model());
                observe(cfg, state, model, window, x, now)
            }
        };
        if v.anomalous {
            status = status.max(cfg.anomaly_status());
            reasons.extend(v.message);
        }
        band = v.band;
        // The state is saved whether or not the sample was learned (unchanged then).
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
        attachment: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RuleSet, load_with_env};
    use std::collections::BTreeMap;
    use std::collections::HashMap;

    fn rules(check_yaml: &str) -> RuleSet {
        let dir = tempfile::tempdir().unwrap();
        let yaml =
            format!("checks:\n  - name: c\n    kind: tcp\n    address: 127.0.0.1:1\n{check_yaml}");
        std::fs::write(dir.path().join("r.yaml"), yaml).unwrap();
        load_with_env(&[dir.path().to_path_buf()], &BTreeMap::new()).unwrap()
    }

    fn facts() -> RunFacts<'static> {
        RunFacts {
            run_id: "r1",
            revision: "rev",
            started_at: Utc::now(),
            duration_ms: 1.23456,
        }
    }

    fn measured(values: &[(&str, Value)], failures: &[&str]) -> Result<Measurement, ProbeError> {
        Ok(Measurement {
            samples: values
                .iter()
                .map(|(s, v)| Sample {
                    series: s.to_string(),
                    value: v.clone(),
                })
                .collect(),
            unit: "ms".into(),
            failures: failures.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        })
    }

    fn judge_one(
        check_yaml: &str,
        outcome: Result<Measurement, ProbeError>,
        state: Option<EwmaState>,
    ) -> Judged {
        let r = rules(check_yaml);
        let baselines: HashMap<String, EwmaState> =
            state.into_iter().map(|s| (String::new(), s)).collect();
        judge(
            &r.checks[0],
            outcome,
            &Known::with_baselines(baselines),
            &facts(),
        )
    }

    fn learned(n: u64, mean: f64, var: f64) -> EwmaState {
        EwmaState {
            mean,
            var,
            samples: n,
            updated_at: None,
        }
    }

    /// Check YAML, probe outcome, stored baseline → expected status and message fragment.
    type Case = (
        &'static str,
        Result<Measurement, ProbeError>,
        Option<EwmaState>,
        Status,
        &'static str,
    );

    #[test]
    fn statuses_and_reasons() {
        let n = |x: f64| Value::Num(x);
        let cases: Vec<Case> = vec![
            ("", measured(&[("", n(5.0))], &[]), None, Status::Ok, ""),
            (
                "    crit: gt(10)\n    warn: gt(4)\n",
                measured(&[("", n(5.0))], &[]),
                None,
                Status::Warn,
                "value 5 matches warn gt(4)",
            ),
            (
                "    crit: gt(4)\n    warn: gt(1)\n",
                measured(&[("", n(5.0))], &[]),
                None,
                Status::Crit,
                "value 5 matches crit gt(4)",
            ),
            (
                "",
                measured(&[("", n(5.0))], &["expect.status: got 500"]),
                None,
                Status::Crit,
                "expect.status: got 500",
            ),
            (
                "",
                Err(ProbeError::new("connection refused")),
                None,
                Status::Error,
                "connection refused",
            ),
            (
                "",
                measured(&[], &[]),
                None,
                Status::Ok,
                "no value measured",
            ),
            (
                "",
                measured(&[], &["expect.rows: got 0"]),
                None,
                Status::Crit,
                "expect.rows: got 0",
            ),
            (
                "    baseline: {warmup: 5}\n",
                measured(&[("", n(50.0))], &[]),
                Some(learned(5, 10.0, 1.0)),
                Status::Warn,
                "value 50 outside baseline [7, 13] (mean 10, σ 1, 5 samples)",
            ),
            (
                "    baseline: {warmup: 5, severity: crit}\n",
                measured(&[("", n(50.0))], &[]),
                Some(learned(5, 10.0, 1.0)),
                Status::Crit,
                "outside baseline",
            ),
            (
                "    baseline: {warmup: 6}\n",
                measured(&[("", n(50.0))], &[]),
                Some(learned(5, 10.0, 1.0)),
                Status::Ok,
                "",
            ),
            (
                "    baseline: {warmup: 5}\n",
                measured(&[("", Value::Text("12".into()))], &[]),
                Some(learned(5, 10.0, 1.0)),
                Status::Ok,
                "",
            ),
            (
                "    warn: eq(\"down\")\n",
                measured(&[("", Value::Text("down".into()))], &[]),
                None,
                Status::Warn,
                "value down matches warn eq(\"down\")",
            ),
        ];
        for (i, (yaml, outcome, state, status, msg)) in cases.into_iter().enumerate() {
            let j = judge_one(yaml, outcome, state);
            assert_eq!(j.results.len(), 1, "case {i}");
            let r = &j.results[0];
            assert_eq!(r.status, status, "case {i}: {r:?}");
            assert!(
                r.message.contains(msg),
                "case {i}: {:?} lacks {msg:?}",
                r.message
            );
            assert_eq!(
                (r.run_id.as_str(), r.revision.as_str(), r.duration_ms),
                ("r1", "rev", 1.235),
                "case {i}"
            );
        }
    }

    #[test]
    fn every_reason_is_named_and_the_gravest_status_wins() {
        let j = judge_one(
            "    warn: gt(1)\n    baseline: {warmup: 1}\n",
            measured(
                &[("", Value::Num(50.0))],
                &["expect.latency_ms: got 50, want lt(10)"],
            ),
            Some(learned(3, 10.0, 1.0)),
        );
        let r = &j.results[0];
        assert_eq!(r.status, Status::Crit);
        assert_eq!(r.message.split("; ").count(), 3, "{}", r.message);
        assert!(r.baseline.is_some());
    }

    #[test]
    fn each_series_gets_its_own_result_and_baseline() {
        let r = rules("    baseline: {warmup: 1}\n");
        let stored: HashMap<String, EwmaState> = [("a".to_string(), learned(4, 10.0, 1.0))].into();
        let j = judge(
            &r.checks[0],
            measured(&[("a", Value::Num(100.0)), ("b", Value::Num(100.0))], &[]),
            &Known::with_baselines(stored.clone()),
            &facts(),
        );
        let by: HashMap<&str, &CheckResult> =
            j.results.iter().map(|r| (r.series.as_str(), r)).collect();
        assert_eq!(
            by["a"].status,
            Status::Warn,
            "a has learned 10, 100 is far outside"
        );
        assert_eq!(by["b"].status, Status::Ok, "b learns its first sample");
        // Anomalies stay out of learning; b's first sample is learned.
        let updated: Vec<&str> = j.baselines.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(updated, ["a", "b"]);
        assert_eq!(
            j.baselines[0].1, stored["a"],
            "the anomaly did not move a's baseline"
        );
        assert_eq!(j.baselines[1].1.samples, 1);
    }

    #[test]
    fn shadow_checks_record_their_verdict_without_failing() {
        let j = judge_one(
            "    mode: shadow\n    crit: gt(1)\n",
            measured(&[("", Value::Num(5.0))], &[]),
            None,
        );
        let r = &j.results[0];
        assert_eq!(
            (r.status, r.shadow, r.fails_run()),
            (Status::Crit, true, false)
        );
    }

    #[test]
    fn secrets_are_masked_in_messages_and_values() {
        crate::secrets::register("hunter2-judge-secret");
        let j = judge_one(
            "",
            Err(ProbeError::new("auth failed for hunter2-judge-secret")),
            None,
        );
        assert!(
            !j.results[0].message.contains("hunter2"),
            "{}",
            j.results[0].message
        );
        let j = judge_one(
            "",
            measured(
                &[(
                    "hunter2-judge-secret",
                    Value::Text("x hunter2-judge-secret".into()),
                )],
                &[],
            ),
            None,
        );
        assert!(!format!("{:?}", j.results[0]).contains("hunter2"));
    }

    fn reported(
        status: Status,
        message: &str,
        values: &[(&str, Value)],
        failures: &[&str],
    ) -> Result<Measurement, ProbeError> {
        let mut m = measured(values, failures)?;
        m.reported = Some(crate::probe::Reported {
            status,
            message: message.into(),
        });
        Ok(m)
    }

    #[test]
    fn a_reported_status_is_a_floor_and_its_words_lead_the_message() {
        let n = |x: f64| Value::Num(x);
        let j = judge_one(
            "",
            reported(
                Status::Warn,
                "DISK WARNING - 85% used",
                &[("", n(85.0))],
                &[],
            ),
            None,
        );
        assert_eq!(j.results[0].status, Status::Warn);
        assert_eq!(j.results[0].message, "DISK WARNING - 85% used");
        // A condition graver than the report wins; both reasons are named, the report first.
        let j = judge_one(
            "    crit: gt(80)\n",
            reported(Status::Warn, "DISK WARNING", &[("", n(85.0))], &[]),
            None,
        );
        assert_eq!(j.results[0].status, Status::Crit);
        assert_eq!(
            j.results[0].message,
            "DISK WARNING; value 85 matches crit gt(80)"
        );
        // An ok report keeps its words on an ok result.
        let j = judge_one(
            "",
            reported(Status::Ok, "TCP OK", &[("", n(1.0))], &[]),
            None,
        );
        assert_eq!(
            (j.results[0].status, j.results[0].message.as_str()),
            (Status::Ok, "TCP OK")
        );
        // Without a value, the report alone decides, and unmet expectations add to it.
        let j = judge_one(
            "",
            reported(
                Status::Error,
                "UNKNOWN - no such host",
                &[],
                &["stdout_matches"],
            ),
            None,
        );
        assert_eq!(j.results[0].status, Status::Error);
        assert_eq!(
            j.results[0].message,
            "UNKNOWN - no such host; stdout_matches"
        );
    }

    #[test]
    fn an_attachment_stays_only_with_results_that_are_not_ok() {
        let n = |x: f64| Value::Num(x);
        let with_profile = |values: &[(&str, Value)]| {
            let mut m = measured(values, &[]).unwrap();
            m.attachment = Some(crate::result::Attachment {
                name: "goroutine profile".into(),
                content_type: "text/plain".into(),
                text: "goroutine profile: total 2".into(),
            });
            Ok(m)
        };
        let j = judge_one(
            "    crit: gt(10)\n",
            with_profile(&[("a", n(5.0)), ("b", n(50.0))]),
            None,
        );
        assert_eq!(j.results[0].attachment, None, "ok result");
        assert_eq!(
            j.results[1].attachment.as_ref().map(|a| a.name.as_str()),
            Some("goroutine profile")
        );
    }
}
