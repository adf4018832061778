//! `value:` of a kubernetes check: what is measured on the listed objects, which resources each
//! value applies to, and the dispatch to the files that compute them.

use k8s_openapi::jiff::Timestamp;
use serde::de::DeserializeOwned;

use super::resources::BuiltIn;
use super::{objects, pods, workloads};
use crate::probe::Sample;

/// One listed object: its series key (its name, or `namespace/name` across namespaces) and JSON.
#[derive(Clone, Debug)]
pub struct Obj {
    pub series: String,
    pub json: serde_json::Value,
}

impl Obj {
    /// The object through its k8s-openapi type.
    pub fn typed<K: DeserializeOwned>(&self) -> Result<K, String> {
        serde_json::from_value(self.json.clone())
            .map_err(|e| format!("{} is not a valid object: {e}", self.series))
    }
}

/// What a kubernetes check measures.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum ValueSpec {
    /// available / desired replicas, per workload.
    AvailableRatio,
    /// ready / desired replicas per workload; ready share of the pods or nodes.
    ReadyRatio,
    /// desired − available replicas, per workload.
    Unavailable,
    /// Container restarts, per pod.
    Restarts,
    /// Container restarts since the previous run of the check, per pod.
    RestartsIncrease,
    /// Workload replicas, pods (not finished) or nodes that are not ready.
    NotReady,
    /// Pods in phase Pending.
    Pending,
    /// Pods with a container in CrashLoopBackOff.
    Crashloop,
    /// Warning events within the check's `window`.
    WarningEvents,
    /// Seconds since each object was created.
    AgeSeconds,
    /// 1 when a PVC is Bound, else 0, per PVC.
    PvcBound,
    /// 1 when a job has failed, else 0, per job.
    JobFailed,
    /// Seconds since a cronjob's last successful job (since its creation if none), per cronjob.
    CronjobLastSuccessAge,
    /// Number of objects.
    Count,
    /// A JSONPath on each object, per object.
    JsonPath(String),
}

/// Value names and the resources each applies to (`None`: any resource, dynamic ones too).
const NAMES: &[(&str, ValueSpec, Option<&[BuiltIn]>)] = &[
    (
        "available_ratio",
        ValueSpec::AvailableRatio,
        Some(WORKLOADS),
    ),
    (
        "ready_ratio",
        ValueSpec::ReadyRatio,
        Some(WORKLOADS_PODS_NODES),
    ),
    ("unavailable", ValueSpec::Unavailable, Some(WORKLOADS)),
    ("restarts", ValueSpec::Restarts, Some(&[BuiltIn::Pod])),
    (
        "restarts_increase",
        ValueSpec::RestartsIncrease,
        Some(&[BuiltIn::Pod]),
    ),
    ("not_ready", ValueSpec::NotReady, Some(WORKLOADS_PODS_NODES)),
    ("pending", ValueSpec::Pending, Some(&[BuiltIn::Pod])),
    ("crashloop", ValueSpec::Crashloop, Some(&[BuiltIn::Pod])),
    (
        "warning_events",
        ValueSpec::WarningEvents,
        Some(&[BuiltIn::Event]),
    ),
    ("age_seconds", ValueSpec::AgeSeconds, None),
    ("pvc_bound", ValueSpec::PvcBound, Some(&[BuiltIn::Pvc])),
    ("job_failed", ValueSpec::JobFailed, Some(&[BuiltIn::Job])),
    (
        "cronjob_last_success_age",
        ValueSpec::CronjobLastSuccessAge,
        Some(&[BuiltIn::CronJob]),
    ),
    ("count", ValueSpec::Count, None),
];

const WORKLOADS: &[BuiltIn] = &[
    BuiltIn::Deployment,
    BuiltIn::StatefulSet,
    BuiltIn::DaemonSet,
    BuiltIn::ReplicaSet,
];

const WORKLOADS_PODS_NODES: &[BuiltIn] = &[
    BuiltIn::Deployment,
    BuiltIn::StatefulSet,
    BuiltIn::DaemonSet,
    BuiltIn::ReplicaSet,
    BuiltIn::Pod,
    BuiltIn::Node,
];

impl TryFrom<String> for ValueSpec {
    type Error = String;

    fn try_from(text: String) -> Result<ValueSpec, String> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("jsonpath:") {
            let path = normalize_jsonpath(path);
            serde_json_path::JsonPath::parse(&path)
                .map_err(|e| format!("invalid JSONPath {path:?}: {e}"))?;
            return Ok(ValueSpec::JsonPath(path));
        }
        NAMES
            .iter()
            .find(|(name, _, _)| *name == text)
            .map(|(_, v, _)| v.clone())
            .ok_or_else(|| {
                let names: Vec<&str> = NAMES.iter().map(|(n, _, _)| *n).collect();
                format!(
                    "unknown value {text:?}; use one of: {}, or jsonpath:<path>",
                    names.join(", ")
                )
            })
    }
}

/// kubectl writes `{.status.replicas}`; RFC 9535 wants `$.status.replicas`. Both are accepted.
fn normalize_jsonpath(path: &str) -> String {
    let path = path.trim();
    let inner = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path)
        .trim();
    if inner.starts_with('.') || inner.starts_with('[') {
        format!("${inner}")
    } else {
        inner.to_string()
    }
}

impl ValueSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ValueSpec::JsonPath(_) => "jsonpath",
            v => NAMES
                .iter()
                .find(|(_, spec, _)| spec == v)
                .map(|(n, _, _)| *n)
                .unwrap_or("?"),
        }
    }

    /// Whether this value can be measured on `resource` (`None`: a dynamic kind); the error
    /// names the resources it applies to.
    pub fn applies_to(&self, resource: Option<BuiltIn>) -> Result<(), String> {
        let Some((_, _, Some(allowed))) = NAMES.iter().find(|(_, v, _)| v == self) else {
            return Ok(());
        };
        if resource.is_some_and(|r| allowed.contains(&r)) {
            return Ok(());
        }
        let names: Vec<&str> = allowed.iter().map(|b| b.name()).collect();
        let what = resource.map_or("a dynamic kind".to_string(), |r| r.name().to_string());
        Err(format!(
            "value {} applies to {} only, not to {what}",
            self.name(),
            names.join(", ")
        ))
    }

    /// Seconds for ages, nothing for counts and ratios.
    pub fn unit(&self) -> &'static str {
        match self {
            ValueSpec::AgeSeconds | ValueSpec::CronjobLastSuccessAge => "s",
            _ => "",
        }
    }
}

/// Everything a value needs besides the objects.
pub struct Inputs<'a> {
    pub resource: Option<BuiltIn>,
    pub now: Timestamp,
    /// `window` of warning_events.
    pub window: std::time::Duration,
    /// The check's probe memory (restart counts of restarts_increase).
    pub memory: &'a crate::probe::memory::Memory,
}

/// What a value yields: samples, and failures (objects a JSONPath matched nothing in).
#[derive(Debug, Default, PartialEq)]
pub struct Computed {
    pub samples: Vec<Sample>,
    pub failures: Vec<String>,
}

impl From<Vec<Sample>> for Computed {
    fn from(samples: Vec<Sample>) -> Computed {
        Computed {
            samples,
            failures: Vec::new(),
        }
    }
}

/// Measures `value` on `objects`.
pub fn compute(value: &ValueSpec, list: &[Obj], inputs: &Inputs<'_>) -> Result<Computed, String> {
    value.applies_to(inputs.resource)?;
    let resource = inputs.resource;
    Ok(match value {
        ValueSpec::AvailableRatio => workloads::available_ratio(list, resource)?.into(),
        ValueSpec::Unavailable => workloads::unavailable(list, resource)?.into(),
        ValueSpec::ReadyRatio => match resource {
            Some(BuiltIn::Pod) => vec![pods::ready_ratio(list)?].into(),
            Some(BuiltIn::Node) => vec![objects::nodes_ready_ratio(list)?].into(),
            _ => workloads::ready_ratio(list, resource)?.into(),
        },
        ValueSpec::NotReady => match resource {
            Some(BuiltIn::Pod) => vec![pods::not_ready(list)?].into(),
            Some(BuiltIn::Node) => vec![objects::nodes_not_ready(list)?].into(),
            _ => workloads::not_ready(list, resource)?.into(),
        },
        ValueSpec::Restarts => pods::restarts(list)?.into(),
        ValueSpec::RestartsIncrease => pods::restarts_increase(list, inputs.memory)?.into(),
        ValueSpec::Pending => vec![pods::pending(list)?].into(),
        ValueSpec::Crashloop => vec![pods::crashloop(list)?].into(),
        ValueSpec::WarningEvents => {
            vec![objects::warning_events(list, inputs.now, inputs.window)?].into()
        }
        ValueSpec::AgeSeconds => objects::age_seconds(list, inputs.now).into(),
        ValueSpec::PvcBound => objects::pvc_bound(list)?.into(),
        ValueSpec::JobFailed => objects::job_failed(list)?.into(),
        ValueSpec::CronjobLastSuccessAge => {
            objects::cronjob_last_success_age(list, inputs.now)?.into()
        }
        ValueSpec::Count => {
            vec![Sample::single(crate::result::Value::Num(list.len() as f64))].into()
        }
        ValueSpec::JsonPath(path) => objects::json_path(list, path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_are_listed() {
        assert_eq!(
            ValueSpec::try_from("crashloop".to_string()),
            Ok(ValueSpec::Crashloop)
        );
        let err = ValueSpec::try_from("ready".to_string()).unwrap_err();
        assert!(
            err.starts_with("unknown value \"ready\"; use one of: available_ratio"),
            "{err}"
        );
        assert_eq!(ValueSpec::PvcBound.name(), "pvc_bound");
    }

    #[test]
    fn kubectl_and_rfc_jsonpaths_are_accepted() {
        for (text, path) in [
            ("jsonpath:{.status.replicas}", "$.status.replicas"),
            ("jsonpath: .spec.replicas", "$.spec.replicas"),
            ("jsonpath:$.metadata.labels.app", "$.metadata.labels.app"),
        ] {
            assert_eq!(
                ValueSpec::try_from(text.to_string()),
                Ok(ValueSpec::JsonPath(path.into()))
            );
        }
        assert!(ValueSpec::try_from("jsonpath:$.[".to_string()).is_err());
    }

    #[test]
    fn values_apply_to_their_resources_only() {
        assert!(ValueSpec::Crashloop.applies_to(Some(BuiltIn::Pod)).is_ok());
        assert!(ValueSpec::Count.applies_to(None).is_ok());
        assert!(ValueSpec::NotReady.applies_to(Some(BuiltIn::Node)).is_ok());
        assert_eq!(
            ValueSpec::PvcBound.applies_to(Some(BuiltIn::Pod)),
            Err("value pvc_bound applies to pvc only, not to pod".into())
        );
        assert_eq!(
            ValueSpec::AvailableRatio.applies_to(None),
            Err("value available_ratio applies to deployment, statefulset, daemonset, replicaset only, not to a dynamic kind".into())
        );
    }
}
