//! `health:` — the instances of one service as Consul's health endpoint
//! (`GET /v1/health/service/<name>`) lists them, each with its node's checks (`serfHealth`,
//! maintenance) and its own. An instance is as healthy as its worst check, which is also how
//! Consul's `?passing` filter and DNS interface decide.
//!
//! A service with no registered instances is a failure in every mode: a typo in the service
//! name, or a service that vanished, must not read as "0 critical, all fine".

use std::collections::BTreeMap;

use serde::Deserialize;

use super::api::Api;
use super::{HealthQuery, HealthValue};
use crate::probe::{Measurement, ProbeError, Sample};
use crate::result::Value;

/// A check status, in order of gravity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Health {
    Passing,
    Warning,
    Critical,
}

impl Health {
    /// A status Consul does not document is not vouched for: it counts as critical.
    fn parse(status: &str) -> Health {
        match status {
            "passing" => Health::Passing,
            "warning" => Health::Warning,
            _ => Health::Critical,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Health::Passing => "passing",
            Health::Warning => "warning",
            Health::Critical => "critical",
        }
    }
}

/// One element of Consul's answer: a service instance with its node and checks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceEntry {
    node: NodeInfo,
    service: ServiceInfo,
    #[serde(default)]
    checks: Vec<CheckInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeInfo {
    node: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceInfo {
    #[serde(rename = "ID")]
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckInfo {
    status: String,
}

/// One instance, judged.
#[derive(Debug, PartialEq)]
struct Instance {
    node: String,
    id: String,
    health: Health,
}

pub(super) async fn measure(api: &Api<'_>, query: &HealthQuery) -> Result<Measurement, ProbeError> {
    // Consul answers an unknown service with an empty list; a 404 means the URL is not Consul's API.
    let body = api
        .get(&["health", "service", &query.service], &[])
        .await?
        .ok_or_else(|| api.not_the_api())?;
    let instances = parse_instances(&body, &query.service).map_err(ProbeError::new)?;
    let mut m = Measurement {
        samples: samples(&instances, query.value),
        ..Default::default()
    };
    if instances.is_empty() {
        m.failures.push(format!(
            "service {} has no instances registered in Consul at {}",
            query.service,
            api.place()
        ));
    }
    Ok(m)
}

fn parse_instances(body: &[u8], service: &str) -> Result<Vec<Instance>, String> {
    let entries: Vec<ServiceEntry> = serde_json::from_slice(body).map_err(|e| {
        format!("Consul's health answer for service {service} is not a list of instances: {e}")
    })?;
    Ok(entries
        .into_iter()
        .map(|e| Instance {
            health: worst(&e.checks),
            node: e.node.node,
            id: e.service.id,
        })
        .collect())
}

/// The gravest status among `checks`; an instance without checks is passing, as in Consul.
fn worst(checks: &[CheckInfo]) -> Health {
    checks
        .iter()
        .map(|c| Health::parse(&c.status))
        .max()
        .unwrap_or(Health::Passing)
}

fn samples(instances: &[Instance], value: HealthValue) -> Vec<Sample> {
    let count = |health: Health| {
        let n = instances.iter().filter(|i| i.health == health).count();
        Value::Num(n as f64)
    };
    let named = |health: Health| Sample {
        series: health.name().into(),
        value: count(health),
    };
    match value {
        HealthValue::Counts => vec![
            named(Health::Passing),
            named(Health::Warning),
            named(Health::Critical),
        ],
        HealthValue::Passing => vec![Sample::single(count(Health::Passing))],
        HealthValue::Warning => vec![Sample::single(count(Health::Warning))],
        HealthValue::Critical => vec![Sample::single(count(Health::Critical))],
        HealthValue::Instances => instance_samples(instances),
    }
}

/// One series per instance, named by its service ID; an ID registered on several nodes (the
/// default ID is the service name) is named `node/ID` so that each instance keeps its own series.
fn instance_samples(instances: &[Instance]) -> Vec<Sample> {
    let mut nodes_per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for i in instances {
        *nodes_per_id.entry(&i.id).or_default() += 1;
    }
    instances
        .iter()
        .map(|i| Sample {
            series: match nodes_per_id[i.id.as_str()] {
                1 => i.id.clone(),
                _ => format!("{}/{}", i.node, i.id),
            },
            value: Value::Text(i.health.name().into()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two instances of `web` as Consul answers them (trimmed of fields the probe ignores).
    const ANSWER: &str = r#"[
      {"Node": {"ID": "a1", "Node": "node-a", "Address": "10.0.0.1", "Datacenter": "dc1"},
       "Service": {"ID": "web-1", "Service": "web", "Tags": [], "Address": "", "Port": 80},
       "Checks": [
         {"Node": "node-a", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing",
          "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": ""},
         {"Node": "node-a", "CheckID": "service:web-1", "Name": "http", "Status": "passing",
          "Output": "HTTP GET http://10.0.0.1/health: 200 OK", "ServiceID": "web-1", "ServiceName": "web"}]},
      {"Node": {"ID": "b1", "Node": "node-b", "Address": "10.0.0.2", "Datacenter": "dc1"},
       "Service": {"ID": "web-2", "Service": "web", "Tags": [], "Address": "", "Port": 80},
       "Checks": [
         {"Node": "node-b", "CheckID": "serfHealth", "Status": "critical"},
         {"Node": "node-b", "CheckID": "service:web-2", "Status": "warning"}]}
    ]"#;

    fn instances() -> Vec<Instance> {
        parse_instances(ANSWER.as_bytes(), "web").unwrap()
    }

    fn values(samples: &[Sample]) -> Vec<(String, Value)> {
        samples
            .iter()
            .map(|s| (s.series.clone(), s.value.clone()))
            .collect()
    }

    #[test]
    fn an_instance_is_as_healthy_as_its_worst_check_node_checks_included() {
        let got = instances();
        assert_eq!(got[0].health, Health::Passing);
        assert_eq!(
            got[1].health,
            Health::Critical,
            "node-b's serfHealth is critical"
        );
        assert_eq!(
            (got[1].node.as_str(), got[1].id.as_str()),
            ("node-b", "web-2")
        );
    }

    #[test]
    fn counts_are_three_series_and_a_single_count_is_one_value() {
        let got = values(&samples(&instances(), HealthValue::Counts));
        assert_eq!(
            got,
            [
                ("passing".into(), Value::Num(1.0)),
                ("warning".into(), Value::Num(0.0)),
                ("critical".into(), Value::Num(1.0)),
            ]
        );
        let critical = values(&samples(&instances(), HealthValue::Critical));
        assert_eq!(critical, [(String::new(), Value::Num(1.0))]);
    }

    #[test]
    fn instances_are_series_named_by_id_and_by_node_when_ids_repeat() {
        let mut list = instances();
        assert_eq!(
            values(&instance_samples(&list)),
            [
                ("web-1".into(), Value::Text("passing".into())),
                ("web-2".into(), Value::Text("critical".into())),
            ]
        );
        list.push(Instance {
            node: "node-c".into(),
            id: "web-1".into(),
            health: Health::Warning,
        });
        let names: Vec<String> = instance_samples(&list)
            .into_iter()
            .map(|s| s.series)
            .collect();
        assert_eq!(names, ["node-a/web-1", "web-2", "node-c/web-1"]);
    }

    #[test]
    fn unknown_statuses_count_as_critical_and_no_checks_as_passing() {
        let list = parse_instances(
            br#"[{"Node":{"Node":"n"},"Service":{"ID":"x"},"Checks":[{"Status":"maintenance"}]},
                 {"Node":{"Node":"n"},"Service":{"ID":"y"},"Checks":[]}]"#,
            "s",
        )
        .unwrap();
        assert_eq!(list[0].health, Health::Critical);
        assert_eq!(list[1].health, Health::Passing);
    }

    #[test]
    fn an_answer_that_is_not_a_list_of_instances_is_named() {
        let err = parse_instances(br#"{"error": "x"}"#, "web").unwrap_err();
        assert!(
            err.starts_with("Consul's health answer for service web is not a list"),
            "{err}"
        );
    }
}
