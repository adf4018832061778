//! Realistic objects for the API server, built with the k8s-openapi types (so their JSON is what
//! a real server sends): a deployment with 2 of 3 replicas available and a healthy one, their
//! pods (one crashlooping with 7 restarts), a pending pod, a NotReady node, Warning events recent
//! and old, a bound and an unbound PVC, a failed and a complete job, two cronjobs, a ConfigMap.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::batch::v1::{
    CronJob, CronJobSpec, CronJobStatus, Job, JobCondition, JobStatus,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Event, Node, NodeCondition, NodeStatus,
    ObjectReference, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
    Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp, Unit};
use serde_json::Value;

/// Restarts of the crashlooping pod.
pub const CRASHLOOP_RESTARTS: i32 = 7;
/// Age of the `checkout` deployment.
pub const CHECKOUT_AGE_SECS: i64 = 2 * 86_400;
/// Since the `backup` cronjob last succeeded.
pub const BACKUP_SUCCESS_AGO_SECS: i64 = 26 * 3600;

/// A time `secs` seconds ago, whole seconds (as the server writes them).
pub fn ago(secs: i64) -> Time {
    let t = Timestamp::now() - SignedDuration::from_secs(secs);
    Time(t.round(Unit::Second).expect("rounding to seconds"))
}

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn meta(ns: Option<&str>, name: &str, l: &[(&str, &str)], created_ago: i64) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(Into::into),
        labels: labels(l),
        creation_timestamp: Some(ago(created_ago)),
        ..Default::default()
    }
}

fn to_json<T: serde::Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).expect("k8s-openapi objects serialize")
}

fn pause_container() -> Container {
    Container {
        name: "app".into(),
        image: Some("registry.k8s.io/pause:3.10".into()),
        ..Default::default()
    }
}

fn deployment(ns: &str, name: &str, replicas: i32, available: i32, age: i64) -> Value {
    let l = [("app", name), ("tier", "web")];
    to_json(&Deployment {
        metadata: meta(Some(ns), name, &l, age),
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: labels(&[("app", name)]),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: labels(&l),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![pause_container()],
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        status: Some(DeploymentStatus {
            replicas: Some(replicas),
            ready_replicas: Some(available),
            available_replicas: Some(available),
            unavailable_replicas: (replicas > available).then_some(replicas - available),
            updated_replicas: Some(replicas),
            observed_generation: Some(1),
            ..Default::default()
        }),
    })
}

/// How a seeded pod is doing.
#[derive(Clone, Copy)]
enum PodState {
    Ready { restarts: i32 },
    CrashLoop,
    Pending,
}

fn container_status(state: PodState) -> ContainerStatus {
    let (ready, restarts, state, last) = match state {
        PodState::Ready { restarts } => (
            true,
            restarts,
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(ago(3600)),
                }),
                ..Default::default()
            },
            None,
        ),
        PodState::CrashLoop => (
            false,
            CRASHLOOP_RESTARTS,
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("CrashLoopBackOff".into()),
                    message: Some("back-off 5m0s restarting failed container=app".into()),
                }),
                ..Default::default()
            },
            Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 1,
                    reason: Some("Error".into()),
                    finished_at: Some(ago(60)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        ),
        PodState::Pending => unreachable!("pending pods have no container status"),
    };
    ContainerStatus {
        name: "app".into(),
        image: "registry.k8s.io/pause:3.10".into(),
        image_id: String::new(),
        ready,
        restart_count: restarts,
        state: Some(state),
        last_state: last,
        ..Default::default()
    }
}

fn pod(ns: &str, name: &str, app: &str, state: PodState) -> Value {
    let ready = matches!(state, PodState::Ready { .. });
    let condition = |type_: &str, ok: bool, reason: Option<&str>| PodCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(Into::into),
        ..Default::default()
    };
    let status = match state {
        PodState::Pending => PodStatus {
            phase: Some("Pending".into()),
            conditions: Some(vec![condition(
                "PodScheduled",
                false,
                Some("Unschedulable"),
            )]),
            ..Default::default()
        },
        _ => PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![
                condition("PodScheduled", true, None),
                condition("Ready", ready, (!ready).then_some("ContainersNotReady")),
            ]),
            container_statuses: Some(vec![container_status(state)]),
            ..Default::default()
        },
    };
    to_json(&Pod {
        metadata: meta(Some(ns), name, &[("app", app), ("tier", "web")], 3600),
        spec: Some(PodSpec {
            containers: vec![pause_container()],
            node_name: (!matches!(state, PodState::Pending)).then(|| "node-a".into()),
            // No node has this label, so the pod stays Pending on a real cluster too.
            node_selector: matches!(state, PodState::Pending)
                .then(|| [("patrol-test/none".to_string(), "true".to_string())].into()),
            ..Default::default()
        }),
        status: Some(status),
    })
}

fn node(name: &str, ready: bool) -> Value {
    let (status, reason) = match ready {
        true => ("True", "KubeletReady"),
        false => ("Unknown", "NodeStatusUnknown"),
    };
    to_json(&Node {
        metadata: meta(None, name, &[("kubernetes.io/hostname", name)], 30 * 86_400),
        spec: None,
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: status.into(),
                reason: Some(reason.into()),
                last_heartbeat_time: Some(ago(if ready { 10 } else { 900 })),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    })
}

fn event(ns: &str, name: &str, type_: &str, reason: &str, object: &str, last_ago: i64) -> Value {
    to_json(&Event {
        metadata: meta(Some(ns), name, &[], last_ago),
        involved_object: ObjectReference {
            kind: Some("Pod".into()),
            name: Some(object.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        type_: Some(type_.into()),
        reason: Some(reason.into()),
        message: Some(format!("{reason} on {object}")),
        count: Some(3),
        first_timestamp: Some(ago(last_ago + 300)),
        last_timestamp: Some(ago(last_ago)),
        ..Default::default()
    })
}

fn pvc(ns: &str, name: &str, bound: bool) -> Value {
    to_json(&PersistentVolumeClaim {
        metadata: meta(Some(ns), name, &[("app", "db")], 86_400),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            // A class no real cluster has keeps the claim Pending there too.
            storage_class_name: Some(
                if bound {
                    "standard"
                } else {
                    "patrol-test-none"
                }
                .into(),
            ),
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), Quantity("1Gi".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: Some(PersistentVolumeClaimStatus {
            phase: Some(if bound { "Bound" } else { "Pending" }.into()),
            ..Default::default()
        }),
    })
}

fn job(ns: &str, name: &str, failed: bool) -> Value {
    let condition = JobCondition {
        type_: if failed { "Failed" } else { "Complete" }.into(),
        status: "True".into(),
        reason: failed.then(|| "BackoffLimitExceeded".into()),
        ..Default::default()
    };
    to_json(&Job {
        metadata: meta(Some(ns), name, &[("app", "reports")], 7200),
        spec: Some(Default::default()),
        status: Some(JobStatus {
            conditions: Some(vec![condition]),
            failed: failed.then_some(4),
            succeeded: (!failed).then_some(1),
            ..Default::default()
        }),
    })
}

fn cronjob(ns: &str, name: &str, schedule: &str, success_ago: i64) -> Value {
    to_json(&CronJob {
        metadata: meta(Some(ns), name, &[("app", "ops")], 90 * 86_400),
        spec: CronJobSpec {
            schedule: schedule.into(),
            ..Default::default()
        },
        status: Some(CronJobStatus {
            last_successful_time: Some(ago(success_ago)),
            last_schedule_time: Some(ago(success_ago)),
            ..Default::default()
        }),
    })
}

fn config_map(ns: &str) -> Value {
    to_json(&ConfigMap {
        metadata: meta(Some(ns), "checkout-settings", &[("app", "checkout")], 600),
        data: Some([("max_connections".to_string(), "250".to_string())].into()),
        ..Default::default()
    })
}

/// Every seeded object of namespace `ns` (and the cluster-scoped nodes).
pub fn objects(ns: &str) -> Vec<Value> {
    vec![
        deployment(ns, "checkout", 3, 2, CHECKOUT_AGE_SECS),
        deployment(ns, "catalog", 2, 2, 86_400),
        pod(
            ns,
            "checkout-7d9f-a",
            "checkout",
            PodState::Ready { restarts: 0 },
        ),
        pod(
            ns,
            "checkout-7d9f-b",
            "checkout",
            PodState::Ready { restarts: 1 },
        ),
        pod(ns, "checkout-7d9f-c", "checkout", PodState::CrashLoop),
        pod(
            ns,
            "catalog-5c4b-a",
            "catalog",
            PodState::Ready { restarts: 0 },
        ),
        pod(
            ns,
            "catalog-5c4b-b",
            "catalog",
            PodState::Ready { restarts: 2 },
        ),
        pod(ns, "migrate-x8k2", "migrate", PodState::Pending),
        node("node-a", true),
        node("node-b", false),
        event(
            ns,
            "checkout-7d9f-c.backoff",
            "Warning",
            "BackOff",
            "checkout-7d9f-c",
            300,
        ),
        event(
            ns,
            "migrate-x8k2.failedscheduling",
            "Warning",
            "FailedScheduling",
            "migrate-x8k2",
            600,
        ),
        event(
            ns,
            "catalog-5c4b-b.failedmount",
            "Warning",
            "FailedMount",
            "catalog-5c4b-b",
            3 * 3600,
        ),
        event(
            ns,
            "catalog-5c4b-a.pulled",
            "Normal",
            "Pulled",
            "catalog-5c4b-a",
            60,
        ),
        pvc(ns, "data-db-0", true),
        pvc(ns, "uploads", false),
        job(ns, "nightly-report", true),
        job(ns, "backfill", false),
        cronjob(ns, "backup", "0 2 * * *", BACKUP_SUCCESS_AGO_SECS),
        cronjob(ns, "cleanup", "*/15 * * * *", 600),
        config_map(ns),
    ]
}
