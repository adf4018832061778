//! Pod values: restarts (per pod, and their increase since the previous run), readiness,
//! Pending and CrashLoopBackOff counts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use serde::{Deserialize, Serialize};

use super::values::Obj;
use crate::probe::Sample;
use crate::probe::memory::Memory;
use crate::result::Value;

/// Phases of pods that finished: they are not expected to be ready.
const FINISHED: &[&str] = &["Succeeded", "Failed"];

fn pods(objects: &[Obj]) -> Result<Vec<(&str, Pod)>, String> {
    objects
        .iter()
        .map(|o| Ok((o.series.as_str(), o.typed::<Pod>()?)))
        .collect()
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Unknown")
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Statuses of the pod's init and app containers.
fn containers(p: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let s = p.status.as_ref();
    let init = s.and_then(|s| s.init_container_statuses.as_deref());
    let app = s.and_then(|s| s.container_statuses.as_deref());
    init.unwrap_or_default()
        .iter()
        .chain(app.unwrap_or_default())
}

fn restart_count(p: &Pod) -> i64 {
    containers(p).map(|c| i64::from(c.restart_count)).sum()
}

fn in_crashloop(p: &Pod) -> bool {
    containers(p).any(|c| {
        c.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref())
            == Some("CrashLoopBackOff")
    })
}

fn count(n: usize) -> Sample {
    Sample::single(Value::Num(n as f64))
}

/// Container restarts of each pod (init and app containers).
pub fn restarts(objects: &[Obj]) -> Result<Vec<Sample>, String> {
    Ok(pods(objects)?
        .into_iter()
        .map(|(series, p)| Sample {
            series: series.to_string(),
            value: Value::Num(restart_count(&p) as f64),
        })
        .collect())
}

/// Pods that should run (not finished) and are not Ready.
pub fn not_ready(objects: &[Obj]) -> Result<Sample, String> {
    let n = pods(objects)?
        .iter()
        .filter(|(_, p)| !FINISHED.contains(&phase(p)) && !is_ready(p))
        .count();
    Ok(count(n))
}

/// Ready share of the pods that should run; 1 when none should.
pub fn ready_ratio(objects: &[Obj]) -> Result<Sample, String> {
    let pods = pods(objects)?;
    let running: Vec<&Pod> = pods
        .iter()
        .map(|(_, p)| p)
        .filter(|p| !FINISHED.contains(&phase(p)))
        .collect();
    let ready = running.iter().filter(|p| is_ready(p)).count();
    let ratio = match running.len() {
        0 => 1.0,
        n => ready as f64 / n as f64,
    };
    Ok(Sample::single(Value::Num(ratio)))
}

pub fn pending(objects: &[Obj]) -> Result<Sample, String> {
    Ok(count(
        pods(objects)?
            .iter()
            .filter(|(_, p)| phase(p) == "Pending")
            .count(),
    ))
}

pub fn crashloop(objects: &[Obj]) -> Result<Sample, String> {
    Ok(count(
        pods(objects)?
            .iter()
            .filter(|(_, p)| in_crashloop(p))
            .count(),
    ))
}

/// What restarts_increase remembers of a pod between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SeenPod {
    uid: String,
    restarts: i64,
}

/// The probe memory of restarts_increase: each pod series seen by the previous run.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RestartMemory {
    pods: BTreeMap<String, SeenPod>,
}

/// Restarts of each pod since the previous run of the check, from the check's probe memory
/// (stored with its runs). A pod seen before reports the growth of its count; a pod that is new
/// since then, or replaced under the same name (another UID), reports all its restarts, which it
/// counted from 0. On the first run (or with a memory that cannot be read) there is nothing to
/// compare with: no samples, and the counts are remembered for the next run. Pods that are gone
/// are forgotten.
pub fn restarts_increase(objects: &[Obj], memory: &Memory) -> Result<Vec<Sample>, String> {
    let now = RestartMemory {
        pods: pods(objects)?
            .into_iter()
            .map(|(series, p)| {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                let seen = SeenPod {
                    uid,
                    restarts: restart_count(&p),
                };
                (series.to_string(), seen)
            })
            .collect(),
    };
    let before: Option<RestartMemory> = memory
        .previous()
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let samples = match &before {
        None => Vec::new(),
        Some(before) => increases(&before.pods, &now.pods),
    };
    let remembered = serde_json::to_value(&now)
        .map_err(|e| format!("cannot keep the restart counts for the next run: {e}"))?;
    memory.remember(remembered);
    Ok(samples)
}

/// Per pod series, in series order.
fn increases(before: &BTreeMap<String, SeenPod>, now: &BTreeMap<String, SeenPod>) -> Vec<Sample> {
    now.iter()
        .map(|(series, pod)| {
            let increase = match before.get(series) {
                Some(old) if old.uid == pod.uid => (pod.restarts - old.restarts).max(0),
                _ => pod.restarts,
            };
            Sample {
                series: series.clone(),
                value: Value::Num(increase as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(
        name: &str,
        uid: &str,
        phase: &str,
        ready: bool,
        restarts: i32,
        waiting: Option<&str>,
    ) -> Obj {
        let state = match waiting {
            Some(reason) => json!({"waiting": {"reason": reason}}),
            None => json!({"running": {}}),
        };
        Obj {
            series: name.into(),
            json: json!({
                "metadata": {"name": name, "uid": uid},
                "status": {
                    "phase": phase,
                    "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                    "containerStatuses": [{"name": "app", "image": "app:1", "imageID": "", "ready": ready,
                                           "restartCount": restarts, "state": state}]
                }
            }),
        }
    }

    #[test]
    fn counts_pods_by_state() {
        let objects = [
            pod("a", "1", "Running", true, 0, None),
            pod("b", "2", "Running", false, 7, Some("CrashLoopBackOff")),
            pod("c", "3", "Pending", false, 0, Some("ContainerCreating")),
            pod("d", "4", "Succeeded", false, 0, None),
        ];
        assert_eq!(crashloop(&objects).unwrap().value, Value::Num(1.0));
        assert_eq!(pending(&objects).unwrap().value, Value::Num(1.0));
        assert_eq!(not_ready(&objects).unwrap().value, Value::Num(2.0));
        assert_eq!(ready_ratio(&objects).unwrap().value, Value::Num(1.0 / 3.0));
        let r = restarts(&objects).unwrap();
        assert_eq!((r[1].series.as_str(), &r[1].value), ("b", &Value::Num(7.0)));
    }

    /// One run of restarts_increase over `objects` after the run that left `previous`.
    fn run(
        objects: &[Obj],
        previous: Option<serde_json::Value>,
    ) -> (Vec<(String, Value)>, serde_json::Value) {
        let memory = Memory::new(previous);
        let samples = restarts_increase(objects, &memory).unwrap();
        let got = samples.into_iter().map(|s| (s.series, s.value)).collect();
        (
            got,
            memory.into_remembered().expect("the counts are remembered"),
        )
    }

    #[test]
    fn restart_increase_compares_with_the_previous_run() {
        let first = [
            pod("a", "1", "Running", true, 2, None),
            pod("b", "2", "Running", true, 5, None),
        ];
        let (got, memory) = run(&first, None);
        assert_eq!(got, Vec::new(), "nothing to compare with on the first run");
        assert_eq!(memory["pods"]["a"], json!({"uid": "1", "restarts": 2}));
        let second = [
            pod("a", "1", "Running", true, 5, None),
            pod("b", "9", "Running", true, 1, None),
            pod("c", "3", "Running", true, 4, None),
        ];
        let (got, memory) = run(&second, Some(memory));
        assert_eq!(
            got,
            [
                ("a".to_string(), Value::Num(3.0)),
                ("b".to_string(), Value::Num(1.0)),
                ("c".to_string(), Value::Num(4.0)),
            ]
        );
        let third = [pod("a", "1", "Running", true, 5, None)];
        let (got, memory) = run(&third, Some(memory));
        assert_eq!(got, [("a".to_string(), Value::Num(0.0))]);
        assert_eq!(
            memory["pods"].as_object().unwrap().len(),
            1,
            "b and c are forgotten"
        );
    }

    #[test]
    fn an_unreadable_memory_counts_as_a_first_run() {
        let pods = [pod("a", "1", "Running", true, 2, None)];
        let (got, memory) = run(&pods, Some(json!({"format": "from another version"})));
        assert_eq!(got, Vec::new());
        assert_eq!(memory["pods"]["a"]["restarts"], 2);
    }
}
