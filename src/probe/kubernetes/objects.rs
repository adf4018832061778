//! Values of single objects and of lists that are not workloads or pods: node readiness, Warning
//! events within a window, ages, PVC binding, failed jobs, cronjob success, and JSONPath.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde_json_path::JsonPath;

use super::values::{Computed, Obj};
use crate::probe::Sample;
use crate::result::Value;

fn seconds_since(now: Timestamp, then: Timestamp) -> f64 {
    now.duration_since(then).as_secs_f64().max(0.0)
}

fn flag(b: bool) -> Value {
    Value::Num(if b { 1.0 } else { 0.0 })
}

fn per_object<K: serde::de::DeserializeOwned>(
    objects: &[Obj],
    f: impl Fn(&K) -> Value,
) -> Result<Vec<Sample>, String> {
    objects
        .iter()
        .map(|o| {
            Ok(Sample {
                series: o.series.clone(),
                value: f(&o.typed::<K>()?),
            })
        })
        .collect()
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn nodes(objects: &[Obj]) -> Result<Vec<Node>, String> {
    objects.iter().map(Obj::typed::<Node>).collect()
}

/// Nodes whose Ready condition is not True (False or Unknown).
pub fn nodes_not_ready(objects: &[Obj]) -> Result<Sample, String> {
    let n = nodes(objects)?.iter().filter(|n| !node_ready(n)).count();
    Ok(Sample::single(Value::Num(n as f64)))
}

/// Ready share of the nodes; 1 when there are none.
pub fn nodes_ready_ratio(objects: &[Obj]) -> Result<Sample, String> {
    let nodes = nodes(objects)?;
    let ready = nodes.iter().filter(|n| node_ready(n)).count();
    let ratio = match nodes.len() {
        0 => 1.0,
        n => ready as f64 / n as f64,
    };
    Ok(Sample::single(Value::Num(ratio)))
}

/// When an event last happened: the newest of its series' last observation, last timestamp,
/// event time, first timestamp and creation (reporters fill in different ones).
fn last_seen(e: &Event) -> Option<Timestamp> {
    [
        e.series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_ref())
            .map(|t| t.0),
        e.last_timestamp.as_ref().map(|t| t.0),
        e.event_time.as_ref().map(|t| t.0),
        e.first_timestamp.as_ref().map(|t| t.0),
        e.metadata.creation_timestamp.as_ref().map(|t| t.0),
    ]
    .into_iter()
    .flatten()
    .max()
}

/// Warning events that happened within `window` before `now`.
pub fn warning_events(objects: &[Obj], now: Timestamp, window: Duration) -> Result<Sample, String> {
    let mut n = 0usize;
    for o in objects {
        let e: Event = o.typed()?;
        let recent = last_seen(&e).is_some_and(|t| seconds_since(now, t) <= window.as_secs_f64());
        if e.type_.as_deref() == Some("Warning") && recent {
            n += 1;
        }
    }
    Ok(Sample::single(Value::Num(n as f64)))
}

fn created(o: &Obj) -> Option<Timestamp> {
    let meta: ObjectMeta = serde_json::from_value(o.json.get("metadata")?.clone()).ok()?;
    meta.creation_timestamp.map(|t| t.0)
}

/// Seconds since each object was created (objects without a creation time are left out).
pub fn age_seconds(objects: &[Obj], now: Timestamp) -> Vec<Sample> {
    objects
        .iter()
        .filter_map(|o| {
            created(o).map(|t| Sample {
                series: o.series.clone(),
                value: Value::Num(seconds_since(now, t).floor()),
            })
        })
        .collect()
}

/// 1 for a PVC in phase Bound, else 0.
pub fn pvc_bound(objects: &[Obj]) -> Result<Vec<Sample>, String> {
    per_object::<PersistentVolumeClaim>(objects, |pvc| {
        flag(pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
    })
}

/// 1 for a job whose Failed condition is True, else 0.
pub fn job_failed(objects: &[Obj]) -> Result<Vec<Sample>, String> {
    per_object::<Job>(objects, |job| {
        let failed = job
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Failed" && c.status == "True"));
        flag(failed)
    })
}

/// Seconds since each cronjob's last successful job; since its creation when it never had one
/// (a new cronjob is not late until its age says so).
pub fn cronjob_last_success_age(objects: &[Obj], now: Timestamp) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for o in objects {
        let cj: CronJob = o.typed()?;
        let last = cj
            .status
            .as_ref()
            .and_then(|s| s.last_successful_time.as_ref())
            .map(|t| t.0)
            .or_else(|| cj.metadata.creation_timestamp.as_ref().map(|t| t.0));
        if let Some(t) = last {
            out.push(Sample {
                series: o.series.clone(),
                value: Value::Num(seconds_since(now, t).floor()),
            });
        }
    }
    Ok(out)
}

/// The first node `path` selects in each object: numbers stay numbers, anything else becomes
/// text. An object it matches nothing in is a failure naming the object.
pub fn json_path(objects: &[Obj], path: &str) -> Result<Computed, String> {
    let parsed = JsonPath::parse(path).map_err(|e| format!("invalid JSONPath {path:?}: {e}"))?;
    let mut out = Computed::default();
    for o in objects {
        match parsed.query(&o.json).first() {
            Some(v) => out.samples.push(Sample {
                series: o.series.clone(),
                value: json_value(v),
            }),
            None => out
                .failures
                .push(format!("jsonpath {path}: no match in {}", o.series)),
        }
    }
    Ok(out)
}

fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Number(n) => n
            .as_f64()
            .map(Value::Num)
            .unwrap_or_else(|| Value::Text(n.to_string())),
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(series: &str, json: serde_json::Value) -> Obj {
        Obj {
            series: series.into(),
            json,
        }
    }

    fn now() -> Timestamp {
        "2026-11-21T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn warning_events_within_the_window() {
        let ev = |name: &str, kind: &str, last: &str| {
            obj(
                name,
                json!({"metadata": {"name": name}, "involvedObject": {}, "type": kind, "lastTimestamp": last}),
            )
        };
        let events = [
            ev("recent", "Warning", "2026-11-21T11:50:00Z"),
            ev("old", "Warning", "2026-11-21T09:00:00Z"),
            ev("normal", "Normal", "2026-11-21T11:59:00Z"),
        ];
        let s = warning_events(&events, now(), Duration::from_secs(3600)).unwrap();
        assert_eq!(s.value, Value::Num(1.0));
        let s = warning_events(&events, now(), Duration::from_secs(4 * 3600)).unwrap();
        assert_eq!(s.value, Value::Num(2.0));
    }

    #[test]
    fn nodes_pvcs_jobs_and_cronjobs() {
        let node = |name: &str, ready: &str| {
            obj(
                name,
                json!({"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": ready}]}}),
            )
        };
        let ns = [node("n1", "True"), node("n2", "Unknown")];
        assert_eq!(nodes_not_ready(&ns).unwrap().value, Value::Num(1.0));
        assert_eq!(nodes_ready_ratio(&ns).unwrap().value, Value::Num(0.5));

        let pvc = obj(
            "data",
            json!({"metadata": {"name": "data"}, "status": {"phase": "Pending"}}),
        );
        assert_eq!(pvc_bound(&[pvc]).unwrap()[0].value, Value::Num(0.0));

        let job = obj(
            "nightly",
            json!({"metadata": {"name": "nightly"}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}),
        );
        assert_eq!(job_failed(&[job]).unwrap()[0].value, Value::Num(1.0));

        let cj = obj(
            "backup",
            json!({"metadata": {"name": "backup", "creationTimestamp": "2026-01-01T00:00:00Z"},
                   "status": {"lastSuccessfulTime": "2026-11-21T10:00:00Z"}}),
        );
        let never = obj(
            "new",
            json!({"metadata": {"name": "new", "creationTimestamp": "2026-11-21T11:00:00Z"}}),
        );
        let s = cronjob_last_success_age(&[cj, never], now()).unwrap();
        assert_eq!(s[0].value, Value::Num(7200.0));
        assert_eq!(s[1].value, Value::Num(3600.0));
    }

    #[test]
    fn ages_and_jsonpath_per_object() {
        let a = obj(
            "a",
            json!({"metadata": {"name": "a", "creationTimestamp": "2026-11-21T11:59:30Z"}, "spec": {"replicas": 3}}),
        );
        let b = obj("b", json!({"metadata": {"name": "b"}}));
        let ages = age_seconds(&[a.clone(), b.clone()], now());
        assert_eq!(ages.len(), 1);
        assert_eq!(ages[0].value, Value::Num(30.0));
        let got = json_path(&[a, b], "$.spec.replicas").unwrap();
        assert_eq!(got.samples[0].value, Value::Num(3.0));
        assert_eq!(got.failures, ["jsonpath $.spec.replicas: no match in b"]);
    }
}
