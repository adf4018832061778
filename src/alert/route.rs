//! `routes:` — which receivers get an alert, and how alerts are grouped into notifications.
//!
//! The tree works like Alertmanager's: a route matches when all its matchers hold; its children
//! are tried in order and the first that matches takes the alert, unless that child says
//! `continue: true`, in which case the following siblings are tried too. Only when no child
//! matched at all (a matching `continue` child counts) does the route itself deliver the alert. Children inherit `receiver`, `group_by` and the timings
//! they do not set. The top-level `routes:` list sits under an implicit root that has no
//! receiver, so an alert no route matches goes nowhere here (a check's own `notify:` receivers
//! are added by the caller).
//!
//! Grouping: alerts of one route with equal values of the `group_by` labels form one group and
//! are sent as one notification (`...` groups by all labels, i.e. not at all); an empty
//! `group_by` puts all of the route's alerts into one group, so a nightly run with 40 failures
//! sends one digest.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::matcher::{Labels, Matcher, is_label_name, matches_all};
use crate::config::{Issues, PathSeg};

/// `group_by` value that groups by every label.
pub const GROUP_BY_ALL: &str = "...";

const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 60 * 60);

/// One node of the routing tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Receiver of the alerts this route takes; inherited from the parent when unset.
    #[serde(default)]
    pub receiver: Option<String>,
    /// All must hold for the route to match (none: matches every alert).
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Keep trying the following sibling routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Labels whose values split alerts into groups (`...`: every label); inherited when unset.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// How long a new group waits for more alerts before its first notification (30s).
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<crate::config::duration::DurationSchema>")]
    pub group_wait: Option<Duration>,
    /// How long a group waits before notifying about alerts added to it (5m).
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<crate::config::duration::DurationSchema>")]
    pub group_interval: Option<Duration>,
    /// How long before an unchanged, still-firing group is notified again, whole (4h). A check's
    /// own `alert.repeat_interval` may remind sooner; any notification of the group restarts both.
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<crate::config::duration::DurationSchema>")]
    pub repeat_interval: Option<Duration>,
    /// Child routes, tried in order.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// A route's effective timings (its own, else inherited, else the defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RouteTimings {
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

impl Default for RouteTimings {
    fn default() -> RouteTimings {
        RouteTimings {
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
        }
    }
}

/// Where one alert goes: a receiver, and the group it joins there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteMatch {
    pub receiver: String,
    /// Stable identity of the group: receiver, the matchers on the path to the route, and the
    /// group labels (`team/{}/{severity="critical"}:{service="orders"}`).
    pub group_key: String,
    /// The alert's values of the route's `group_by` labels (those it carries).
    pub group_labels: Labels,
    pub timings: RouteTimings,
}

/// What a route passes down to its children.
#[derive(Clone)]
struct Scope<'a> {
    receiver: Option<&'a str>,
    group_by: Option<&'a [String]>,
    timings: RouteTimings,
    /// `{}/{matchers}/{matchers}…`, Alertmanager's way of naming a route.
    path: String,
}

impl<'a> Scope<'a> {
    fn root() -> Scope<'a> {
        Scope {
            receiver: None,
            group_by: None,
            timings: RouteTimings::default(),
            path: "{}".to_string(),
        }
    }

    fn enter(&self, route: &'a Route) -> Scope<'a> {
        let matchers: Vec<String> = route.matchers.iter().map(Matcher::to_string).collect();
        Scope {
            receiver: route.receiver.as_deref().or(self.receiver),
            group_by: route.group_by.as_deref().or(self.group_by),
            timings: RouteTimings {
                group_wait: route.group_wait.unwrap_or(self.timings.group_wait),
                group_interval: route.group_interval.unwrap_or(self.timings.group_interval),
                repeat_interval: route
                    .repeat_interval
                    .unwrap_or(self.timings.repeat_interval),
            },
            path: format!("{}/{{{}}}", self.path, matchers.join(",")),
        }
    }

    fn deliver(&self, labels: &Labels) -> Option<RouteMatch> {
        let receiver = self.receiver?;
        let group_labels = group_labels(self.group_by.unwrap_or_default(), labels);
        let rendered: Vec<String> = group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        Some(RouteMatch {
            receiver: receiver.to_string(),
            group_key: format!("{receiver}/{}:{{{}}}", self.path, rendered.join(",")),
            group_labels,
            timings: self.timings,
        })
    }
}

fn group_labels(group_by: &[String], labels: &Labels) -> Labels {
    if group_by.iter().any(|l| l == GROUP_BY_ALL) {
        return labels.clone();
    }
    group_by
        .iter()
        .filter_map(|name| labels.get(name).map(|v| (name.clone(), v.clone())))
        .collect()
}

impl Route {
    /// Where this tree sends an alert with `labels` (empty when the route does not match or no
    /// receiver applies). Each (receiver, group) appears once.
    pub fn route(&self, labels: &Labels) -> Vec<RouteMatch> {
        let mut out = Vec::new();
        self.walk(labels, &Scope::root(), &mut out);
        dedupe(out)
    }

    /// Depth-first: true when this route matched (and so took the alert, itself or by a child).
    fn walk<'a>(&'a self, labels: &Labels, parent: &Scope<'a>, out: &mut Vec<RouteMatch>) -> bool {
        if !matches_all(&self.matchers, labels) {
            return false;
        }
        let scope = parent.enter(self);
        if !walk_children(&self.routes, labels, &scope, out) {
            out.extend(scope.deliver(labels));
        }
        true
    }

    /// Problems with this route and its children, by path relative to the route's mapping.
    /// Assumes a top-level route (nothing inherited): one without a receiver is reported.
    pub fn validate(&self, receivers: &[&str], issues: &mut Issues) {
        self.validate_at(&mut Vec::new(), false, receivers, issues);
    }

    fn validate_at(
        &self,
        path: &mut Vec<PathSeg>,
        has_receiver: bool,
        receivers: &[&str],
        issues: &mut Issues,
    ) {
        let mut report = |tail: &[PathSeg], message: String| {
            let mut at = path.clone();
            at.extend_from_slice(tail);
            issues.items.push((at, message));
        };
        match &self.receiver {
            Some(name) if !receivers.contains(&name.as_str()) => report(
                &[PathSeg::key("receiver")],
                format!(
                    "unknown receiver `{name}`; defined receivers: {}",
                    list_or_none(receivers)
                ),
            ),
            None if !has_receiver => report(
                &[PathSeg::KeyName("receiver".into())],
                "route has no `receiver` and its parent sets none".to_string(),
            ),
            _ => {}
        }
        if let Some(group_by) = &self.group_by {
            for (i, name) in group_by.iter().enumerate() {
                let at = [PathSeg::key("group_by"), PathSeg::Index(i)];
                if name == GROUP_BY_ALL && group_by.len() > 1 {
                    report(&at, "`...` groups by every label; list it alone".into());
                } else if name != GROUP_BY_ALL && !is_label_name(name) {
                    report(&at, format!("invalid label name {name:?}"));
                }
            }
        }
        for (key, value) in [
            ("group_interval", self.group_interval),
            ("repeat_interval", self.repeat_interval),
        ] {
            if value == Some(Duration::ZERO) {
                report(&[PathSeg::key(key)], format!("`{key}` must be more than 0"));
            }
        }
        let has_receiver = has_receiver || self.receiver.is_some();
        for (i, child) in self.routes.iter().enumerate() {
            path.extend([PathSeg::key("routes"), PathSeg::Index(i)]);
            child.validate_at(path, has_receiver, receivers, issues);
            path.truncate(path.len() - 2);
        }
    }
}

/// Routes a list of top-level routes (the rule files' `routes:`) as children of an implicit
/// root without receiver.
pub fn route_all(routes: &[Route], labels: &Labels) -> Vec<RouteMatch> {
    let mut out = Vec::new();
    walk_children(routes, labels, &Scope::root(), &mut out);
    dedupe(out)
}

/// First matching child takes the alert, unless it continues; true when any child matched.
fn walk_children<'a>(
    children: &'a [Route],
    labels: &Labels,
    scope: &Scope<'a>,
    out: &mut Vec<RouteMatch>,
) -> bool {
    let mut matched = false;
    for child in children {
        if child.walk(labels, scope, out) {
            matched = true;
            if !child.continue_matching {
                break;
            }
        }
    }
    matched
}

fn dedupe(matches: Vec<RouteMatch>) -> Vec<RouteMatch> {
    let mut out: Vec<RouteMatch> = Vec::with_capacity(matches.len());
    for m in matches {
        if !out
            .iter()
            .any(|o| o.receiver == m.receiver && o.group_key == m.group_key)
        {
            out.push(m);
        }
    }
    out
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
