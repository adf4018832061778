//! `kind: consul` — asks a `kind: consul` target one of three things, chosen by which of these
//! mappings the check sets (exactly one):
//!
//! - `kv: {key: app/limit}` — the key's value: a number when it reads as one, else its text
//!   (`value: age`: seconds since its `ModifyIndex` last changed; see [`kv`]). A missing key
//!   is `crit` ("key … not found").
//! - `health: {service: web}` — how many of the service's instances are passing, warning and
//!   critical (three series; `value: passing|warning|critical` for one of the counts, or
//!   `value: instances` for one series per instance with its status as text). An instance is as
//!   healthy as its worst check, node checks included.
//! - `leader: {}` — 1 when the cluster has a raft leader; without one, 0 and `crit` ("no leader").
//!
//! Consul refusing the token, an unknown datacenter, or no answer at all are probe errors
//! (`status: error`) with a message that says what to fix and never shows the token.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError, Sample};
use crate::config::{CheckCommon, Issues};
use crate::result::Value;

mod api;
mod health;
mod kv;

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsulProbe {
    /// Read one KV key: `kv: {key: app/limit}` (`value: age` for its age in seconds).
    #[serde(default)]
    pub kv: Option<KvQuery>,
    /// A service's instances by health: `health: {service: web}`.
    #[serde(default)]
    pub health: Option<HealthQuery>,
    /// Whether the cluster has a leader: `leader: {}`.
    #[serde(default)]
    pub leader: Option<LeaderQuery>,
}

/// `kv:` — one key of the KV store.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KvQuery {
    /// The key, as `consul kv get` takes it (`app/limit`, no leading `/`).
    pub key: String,
    /// `content` (default): the value, a number when it reads as one (surrounding whitespace
    /// ignored), else text; `age`: seconds since the key's ModifyIndex last changed, counted
    /// from when patrol first saw that index (a lower bound until patrol has seen a change).
    #[serde(default)]
    pub value: KvValue,
}

/// What `kv:` measures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KvValue {
    /// The key's value.
    #[default]
    Content,
    /// Seconds since the key's ModifyIndex last changed.
    Age,
}

/// `health:` — the instances of one service.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthQuery {
    /// The service name, as registered in Consul.
    pub service: String,
    /// `counts` (default): series `passing`, `warning`, `critical` with the number of instances
    /// in each state; `passing` / `warning` / `critical`: that one count; `instances`: one series
    /// per instance (its service ID, `node/ID` when an ID repeats across nodes) with its status
    /// as text (`crit: eq("critical")`).
    #[serde(default)]
    pub value: HealthValue,
}

/// What `health:` measures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthValue {
    /// Three series: passing, warning, critical instance counts.
    #[default]
    Counts,
    /// Instances whose checks all pass.
    Passing,
    /// Instances whose worst check is warning.
    Warning,
    /// Instances with a critical check.
    Critical,
    /// One series per instance, valued passing / warning / critical.
    Instances,
}

/// `leader: {}` — no settings.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderQuery {}

/// The modes, by field name, in the order the YAML shape documents them.
const MODES: [&str; 3] = ["kv", "health", "leader"];

impl ConsulProbe {
    /// Field names of the modes this check sets.
    fn modes_set(&self) -> Vec<&'static str> {
        let set = [
            self.kv.is_some(),
            self.health.is_some(),
            self.leader.is_some(),
        ];
        MODES
            .into_iter()
            .zip(set)
            .filter_map(|(name, on)| on.then_some(name))
            .collect()
    }
}

impl Probe for ConsulProbe {
    const TARGET_KINDS: &'static [&'static str] = &["consul"];

    fn validate(&self, _check: &CheckCommon, issues: &mut Issues) {
        let modes = self.modes_set();
        if modes.is_empty() {
            issues.at(
                &["kind"],
                "a consul check asks one thing: set `kv: {key: …}`, `health: {service: …}` or \
                 `leader: {}`",
            );
        }
        for extra in modes.iter().skip(1) {
            issues.at_key(
                &[extra],
                format!(
                    "a consul check asks one thing: set only one of kv, health and leader (found {})",
                    modes.join(" and ")
                ),
            );
        }
        if let Some(kv) = &self.kv
            && let Err(e) = check_key(&kv.key)
        {
            issues.at(&["kv", "key"], e);
        }
        if let Some(h) = &self.health
            && let Err(e) = check_service(&h.service)
        {
            issues.at(&["health", "service"], e);
        }
    }

    fn remembers(&self) -> bool {
        // Only the age needs the previous run; the other modes cost no memory.
        self.kv.as_ref().is_some_and(|kv| kv.value == KvValue::Age)
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let api = api::Api::of(ctx)?;
        match (&self.kv, &self.health, &self.leader) {
            (Some(query), None, None) => {
                check_key(&query.key).map_err(ProbeError::new)?;
                kv::measure(&api, query, ctx.memory).await
            }
            (None, Some(query), None) => {
                check_service(&query.service).map_err(ProbeError::new)?;
                health::measure(&api, query).await
            }
            (None, None, Some(_)) => leader(&api).await,
            // Checked again here: a check built in code never went through `patrol validate`.
            _ => Err(ProbeError::new(
                "a consul check asks one thing: set exactly one of kv, health and leader",
            )),
        }
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.trim().is_empty() {
        return Err("key is empty".into());
    }
    if key.starts_with('/') {
        return Err(format!(
            "Consul keys do not start with `/`: write {:?}",
            key.trim_start_matches('/')
        ));
    }
    Ok(())
}

fn check_service(service: &str) -> Result<(), String> {
    if service.trim().is_empty() {
        return Err("service is empty".into());
    }
    if service.contains('/') {
        return Err(format!(
            "{service:?} is not a Consul service name (it has a `/`)"
        ));
    }
    Ok(())
}

/// `GET /v1/status/leader`: the leader's address, or `""` while none is elected.
async fn leader(api: &api::Api<'_>) -> Result<Measurement, ProbeError> {
    let body = api
        .get(&["status", "leader"], &[])
        .await?
        .ok_or_else(|| api.not_the_api())?;
    let elected = leader_elected(&body).map_err(ProbeError::new)?;
    let mut m = Measurement {
        samples: vec![Sample::single(Value::Num(if elected { 1.0 } else { 0.0 }))],
        ..Default::default()
    };
    if !elected {
        m.failures.push(format!(
            "Consul at {} has no leader (no raft leader elected)",
            api.place()
        ));
    }
    Ok(m)
}

fn leader_elected(body: &[u8]) -> Result<bool, String> {
    let leader: String = serde_json::from_slice(body)
        .map_err(|e| format!("Consul's answer to /v1/status/leader is not a JSON string: {e}"))?;
    Ok(!leader.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(yaml: &str) -> ConsulProbe {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn problems(p: &ConsulProbe) -> Vec<(String, String)> {
        let common: CheckCommon =
            serde_saphyr::from_str("{name: c, kind: consul, target: t}").unwrap();
        let mut issues = Issues::default();
        p.validate(&common, &mut issues);
        issues
            .items
            .into_iter()
            .map(|(path, m)| (format!("{path:?}"), m))
            .collect()
    }

    #[test]
    fn the_yaml_shapes_read_as_documented() {
        let kv = probe("kv: {key: app/limit, value: age}");
        assert_eq!(kv.kv.as_ref().unwrap().value, KvValue::Age);
        assert!(kv.remembers());
        let health = probe("health: {service: web}");
        assert_eq!(health.health.unwrap().value, HealthValue::Counts);
        let leader = probe("leader: {}");
        assert!(leader.leader.is_some() && !leader.remembers());
        assert!(!probe("kv: {key: k}").remembers());
        assert!(serde_saphyr::from_str::<ConsulProbe>("leader: {x: 1}").is_err());
    }

    #[test]
    fn exactly_one_mode_is_asked_for() {
        let none = problems(&ConsulProbe::default());
        assert_eq!(none.len(), 1);
        assert!(none[0].1.contains("set `kv: {key: …}`"), "{none:?}");
        let two = problems(&probe("{kv: {key: k}, leader: {}}"));
        assert_eq!(two.len(), 1, "{two:?}");
        assert!(two[0].0.contains("leader"), "points at the second: {two:?}");
        assert!(two[0].1.contains("found kv and leader"), "{two:?}");
        assert!(problems(&probe("leader: {}")).is_empty());
    }

    #[test]
    fn keys_and_service_names_are_checked() {
        assert!(
            problems(&probe("kv: {key: ''}"))[0]
                .1
                .contains("key is empty")
        );
        assert!(
            problems(&probe("kv: {key: /app/limit}"))[0]
                .1
                .contains("write \"app/limit\"")
        );
        assert!(
            problems(&probe("health: {service: a/b}"))[0]
                .1
                .contains("not a Consul service name")
        );
    }

    #[test]
    fn the_leader_answer_is_a_json_string() {
        assert_eq!(leader_elected(br#""10.0.0.1:8300""#), Ok(true));
        assert_eq!(leader_elected(br#""""#), Ok(false));
        assert!(
            leader_elected(b"[]")
                .unwrap_err()
                .contains("not a JSON string")
        );
    }
}
