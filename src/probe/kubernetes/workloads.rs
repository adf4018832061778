//! Replica counts of deployments, statefulsets, daemonsets and replicasets, one series per
//! workload. A workload that wants no replicas is fully available (ratio 1).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};

use super::resources::BuiltIn;
use super::values::Obj;
use crate::probe::Sample;
use crate::result::Value;

/// Desired, ready and available replicas of one workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Replicas {
    pub desired: i64,
    pub ready: i64,
    pub available: i64,
}

/// The replica counts of a workload object. Kubernetes omits zero counts from `status`, and an
/// unset `spec.replicas` means 1.
pub fn replicas(obj: &Obj, kind: BuiltIn) -> Result<Replicas, String> {
    let n = |v: Option<i32>| i64::from(v.unwrap_or(0));
    Ok(match kind {
        BuiltIn::Deployment => {
            let d: Deployment = obj.typed()?;
            let status = d.status.unwrap_or_default();
            Replicas {
                desired: desired(d.spec.replicas),
                ready: n(status.ready_replicas),
                available: n(status.available_replicas),
            }
        }
        BuiltIn::StatefulSet => {
            let s: StatefulSet = obj.typed()?;
            let status = s.status.unwrap_or_default();
            Replicas {
                desired: desired(s.spec.replicas),
                ready: n(status.ready_replicas),
                available: n(status.available_replicas),
            }
        }
        BuiltIn::ReplicaSet => {
            let r: ReplicaSet = obj.typed()?;
            let status = r.status.unwrap_or_default();
            Replicas {
                desired: desired(r.spec.replicas),
                ready: n(status.ready_replicas),
                available: n(status.available_replicas),
            }
        }
        BuiltIn::DaemonSet => {
            let d: DaemonSet = obj.typed()?;
            let status = d.status.unwrap_or_default();
            Replicas {
                desired: i64::from(status.desired_number_scheduled),
                ready: i64::from(status.number_ready),
                available: n(status.number_available),
            }
        }
        other => return Err(format!("{} has no replicas", other.name())),
    })
}

fn desired(spec_replicas: Option<i32>) -> i64 {
    i64::from(spec_replicas.unwrap_or(1))
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

fn per_workload(
    objects: &[Obj],
    resource: Option<BuiltIn>,
    f: impl Fn(Replicas) -> f64,
) -> Result<Vec<Sample>, String> {
    let kind = resource
        .filter(|r| r.is_workload())
        .ok_or("not a workload")?;
    objects
        .iter()
        .map(|o| {
            Ok(Sample {
                series: o.series.clone(),
                value: Value::Num(f(replicas(o, kind)?)),
            })
        })
        .collect()
}

pub fn available_ratio(objects: &[Obj], r: Option<BuiltIn>) -> Result<Vec<Sample>, String> {
    per_workload(objects, r, |x| ratio(x.available, x.desired))
}

pub fn ready_ratio(objects: &[Obj], r: Option<BuiltIn>) -> Result<Vec<Sample>, String> {
    per_workload(objects, r, |x| ratio(x.ready, x.desired))
}

pub fn unavailable(objects: &[Obj], r: Option<BuiltIn>) -> Result<Vec<Sample>, String> {
    per_workload(objects, r, |x| (x.desired - x.available).max(0) as f64)
}

pub fn not_ready(objects: &[Obj], r: Option<BuiltIn>) -> Result<Vec<Sample>, String> {
    per_workload(objects, r, |x| (x.desired - x.ready).max(0) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(name: &str, json: serde_json::Value) -> Obj {
        Obj {
            series: name.into(),
            json,
        }
    }

    #[test]
    fn deployment_two_of_three() {
        let d = obj(
            "web",
            json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {}},
                   "status": {"replicas": 3, "readyReplicas": 2, "availableReplicas": 2}}),
        );
        let r = Some(BuiltIn::Deployment);
        let ratio = available_ratio(std::slice::from_ref(&d), r).unwrap();
        assert_eq!(ratio[0].series, "web");
        assert!((ratio[0].value.as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            unavailable(std::slice::from_ref(&d), r).unwrap()[0].value,
            Value::Num(1.0)
        );
        assert_eq!(not_ready(&[d], r).unwrap()[0].value, Value::Num(1.0));
    }

    #[test]
    fn omitted_counts_are_zero_and_unset_replicas_one() {
        let d = obj(
            "w",
            json!({"metadata": {"name": "w"}, "spec": {"selector": {}}}),
        );
        let r = replicas(&d, BuiltIn::Deployment).unwrap();
        assert_eq!(
            r,
            Replicas {
                desired: 1,
                ready: 0,
                available: 0
            }
        );
        let scaled_to_zero = obj(
            "z",
            json!({"metadata": {"name": "z"}, "spec": {"replicas": 0, "selector": {}}}),
        );
        let s = available_ratio(&[scaled_to_zero], Some(BuiltIn::Deployment)).unwrap();
        assert_eq!(s[0].value, Value::Num(1.0));
    }

    #[test]
    fn daemonsets_count_scheduled_nodes() {
        let ds = obj(
            "agent",
            json!({"metadata": {"name": "agent"}, "spec": {"selector": {}, "template": {}},
                   "status": {"desiredNumberScheduled": 4, "numberReady": 3, "numberAvailable": 3,
                              "currentNumberScheduled": 4, "numberMisscheduled": 0}}),
        );
        let s = ready_ratio(&[ds], Some(BuiltIn::DaemonSet)).unwrap();
        assert_eq!(s[0].value, Value::Num(0.75));
    }
}
