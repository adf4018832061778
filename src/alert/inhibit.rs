//! `inhibit_rules:` — while an alert matching `source_matchers` fires, alerts matching
//! `target_matchers` that agree with it on every `equal` label are not notified: a node that is
//! down mutes the alerts of the pods on it (equal: [node]), a critical alert mutes the warning of
//! the same check. As in Alertmanager, a label missing on both sides counts as equal (both are
//! empty), and an alert never inhibits itself.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::matcher::{Labels, Matcher, is_label_name, matches_all};
use crate::config::{Issues, PathSeg};

/// One inhibition rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    /// Alerts that, while firing, mute others.
    pub source_matchers: Vec<Matcher>,
    /// Alerts that get muted.
    pub target_matchers: Vec<Matcher>,
    /// Labels whose values source and target must share.
    #[serde(default)]
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// Whether any of the `firing` alerts mutes `target` under this rule.
    pub fn inhibits(&self, target: &Labels, firing: &[Labels]) -> bool {
        matches_all(&self.target_matchers, target)
            && firing.iter().any(|source| {
                source != target
                    && matches_all(&self.source_matchers, source)
                    && self
                        .equal
                        .iter()
                        .all(|l| label(source, l) == label(target, l))
            })
    }

    /// Problems with the rule, by path relative to its mapping.
    pub fn validate(&self, issues: &mut Issues) {
        for (key, list) in [
            ("source_matchers", &self.source_matchers),
            ("target_matchers", &self.target_matchers),
        ] {
            if list.is_empty() {
                issues.at(
                    &[key],
                    format!(
                        "`{key}` needs at least one matcher; an empty list matches every alert"
                    ),
                );
            }
        }
        for (i, name) in self.equal.iter().enumerate() {
            if !is_label_name(name) {
                issues.items.push((
                    vec![PathSeg::key("equal"), PathSeg::Index(i)],
                    format!("invalid label name {name:?}"),
                ));
            }
        }
    }
}

fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels.get(name).map_or("", String::as_str)
}

/// Whether any rule mutes `target` given the alerts `firing` now.
pub fn inhibited(rules: &[InhibitRule], target: &Labels, firing: &[Labels]) -> bool {
    rules.iter().any(|r| r.inhibits(target, firing))
}

#[cfg(test)]
#[path = "inhibit_tests.rs"]
mod tests;
