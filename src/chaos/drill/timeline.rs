//! `faults:` of a drill file — each `{at, for, <kind>: {…}}` — and the checks that keep the
//! timeline sane.

use std::time::Duration;

use super::load::Reader;
use super::spec::{AbortRule, TimedFault};
use crate::chaos::fault::FaultSpec;
use crate::chaos::proxy::ProxySpec;
use crate::config::{Issues, Node, RuleSet};

/// The latest a fault may end, from the start of the fault phase: a drill is a game-day exercise,
/// and a typo such as `for: 20h` must not keep a fault in place all day.
pub const LONGEST_FAULT_PHASE: Duration = Duration::from_secs(6 * 3600);

pub(super) fn read_faults(
    r: &mut Reader<'_>,
    root: &Node,
    proxies: &[ProxySpec],
    rules: &RuleSet,
) -> Vec<TimedFault> {
    let mut out = Vec::new();
    for (index, item) in r.list(root, "faults").iter().enumerate() {
        if let Some(fault) = read_fault(r, index, item, proxies, rules) {
            out.push(fault);
        }
    }
    out
}

fn read_fault(
    r: &mut Reader<'_>,
    index: usize,
    item: &Node,
    proxies: &[ProxySpec],
    rules: &RuleSet,
) -> Option<TimedFault> {
    if item.as_map().is_none() {
        r.at(
            item.loc,
            format!(
                "a fault is a mapping `{{at, for, <kind>: {{…}}}}`, found {}",
                item.type_name()
            ),
        );
        return None;
    }
    let mut allowed = vec!["at", "for"];
    allowed.extend(FaultSpec::KINDS);
    let before = r.diags.len();
    r.unknown_keys(item, &allowed, "a fault");
    let misspelled = r.diags.len() > before;
    let kinds: Vec<&str> = FaultSpec::KINDS
        .iter()
        .copied()
        .filter(|k| item.get(k).is_some())
        .collect();
    let at = required_duration(r, item, "at");
    let duration = required_duration(r, item, "for");
    if duration.is_some_and(|d| d.is_zero()) {
        let loc = item.get("for").map_or(item.loc, |n| n.loc);
        r.at(
            loc,
            "`for` must be longer than zero: a fault lasts a while, then is reverted",
        );
    }
    let kind = match kinds.as_slice() {
        [kind] => *kind,
        // An unknown key is most likely the kind, misspelled: it is reported already.
        [] if misspelled => return None,
        [] => {
            r.at(
                item.loc,
                format!("a fault needs one kind: {}", FaultSpec::KINDS.join(", ")),
            );
            return None;
        }
        [_, second, ..] => {
            let loc = item.entry(second).map_or(item.loc, |(k, _)| k.loc);
            r.at(
                loc,
                format!("a fault has one kind; this one also sets `{}`", kinds[0]),
            );
            return None;
        }
    };
    let body = item.get(kind)?;
    // `FaultSpec::from_node` only sees the kind's own fields: the others are reported here.
    if body.as_map().is_some() {
        let fields = FaultSpec::fields(kind).unwrap_or(&[]);
        r.unknown_keys(body, fields, &format!("the {kind} fault"));
    }
    let spec = match FaultSpec::from_node(kind, body)? {
        Ok(spec) => spec,
        Err(e) => {
            r.de_error(e, body.loc);
            return None;
        }
    };
    let mut issues = Issues::default();
    spec.validate(&mut issues);
    r.issues(body, issues);
    check_references(r, &spec, body, proxies, rules);
    let (Some(at), Some(duration)) = (at, duration) else {
        return None;
    };
    if duration.is_zero() {
        return None;
    }
    Some(TimedFault {
        index,
        at,
        duration,
        spec,
    })
}

/// A proxy fault names a declared proxy; a redis or kubernetes fault a target of that kind in
/// the rules.
fn check_references(
    r: &mut Reader<'_>,
    spec: &FaultSpec,
    body: &Node,
    proxies: &[ProxySpec],
    rules: &RuleSet,
) {
    let target = match spec {
        FaultSpec::Redis(f) => Some(("redis", f.target.as_str())),
        FaultSpec::Kubernetes(f) => Some(("kubernetes", f.target.as_str())),
        _ => None,
    };
    if let Some((kind, name)) = target
        && r.resolve
    {
        let known: Vec<&str> = rules
            .targets
            .iter()
            .filter(|(_, t)| t.kind() == kind)
            .map(|(n, _)| n.as_str())
            .collect();
        if !known.contains(&name) {
            let loc = body.get("target").map_or(body.loc, |n| n.loc);
            r.at(
                loc,
                format!(
                    "unknown {kind} target `{name}`; {kind} targets of the rules: {}",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
    }
    if let FaultSpec::Proxy(toxic) = &spec
        && !proxies.iter().any(|p| p.name == toxic.proxy)
    {
        let declared: Vec<&str> = proxies.iter().map(|p| p.name.as_str()).collect();
        let loc = body.get("proxy").map_or(body.loc, |n| n.loc);
        r.at(
            loc,
            format!(
                "unknown proxy `{}`; proxies declared under `proxies:`: {}",
                toxic.proxy,
                if declared.is_empty() {
                    "none".into()
                } else {
                    declared.join(", ")
                }
            ),
        );
    }
}

fn required_duration(r: &mut Reader<'_>, item: &Node, key: &str) -> Option<Duration> {
    match item.get(key) {
        Some(node) => r.duration_of(node),
        None => {
            r.at(
                item.loc,
                format!("a fault needs `{key}` (a duration such as 10s)"),
            );
            None
        }
    }
}

/// Faults must end within [`LONGEST_FAULT_PHASE`] and start before a wall-time abort (a fault
/// after the drill's own time limit would never be injected).
pub(super) fn validate_timeline(
    r: &mut Reader<'_>,
    root: &Node,
    faults: &[TimedFault],
    abort_when: &[AbortRule],
) {
    let fault_node = |f: &TimedFault| {
        root.get("faults")
            .and_then(Node::as_seq)
            .and_then(|s| s.get(f.index))
            .map(|n| n.get("for").unwrap_or(n))
    };
    for f in faults {
        if f.end() > LONGEST_FAULT_PHASE {
            let loc = fault_node(f).map_or(root.loc, |n| n.loc);
            r.at(
                loc,
                format!(
                    "this fault ends {} after the faults start; a drill's faults end within {}",
                    crate::config::duration::format(f.end()),
                    crate::config::duration::format(LONGEST_FAULT_PHASE)
                ),
            );
        }
    }
    for rule in abort_when {
        let AbortRule::WallTime { above } = rule else {
            continue;
        };
        for f in faults.iter().filter(|f| f.at >= *above) {
            let loc = root
                .get("faults")
                .and_then(Node::as_seq)
                .and_then(|s| s.get(f.index))
                .map_or(root.loc, |n| n.get("at").unwrap_or(n).loc);
            r.at(
                loc,
                format!(
                    "this fault starts at {}, after the wall-time abort at {}: it would never be injected",
                    crate::config::duration::format(f.at),
                    crate::config::duration::format(*above)
                ),
            );
        }
    }
}

/// One step of the fault phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Inject(usize),
    Revert(usize),
}

/// Every inject and revert in time order (by position in `faults`); at the same instant reverts
/// come first, so a fault that ends as another begins is gone before the next is injected.
pub fn schedule(faults: &[TimedFault]) -> Vec<(Duration, Step)> {
    let mut steps: Vec<(Duration, Step)> = faults
        .iter()
        .enumerate()
        .flat_map(|(i, f)| [(f.at, Step::Inject(i)), (f.end(), Step::Revert(i))])
        .collect();
    steps.sort_by_key(|(t, step)| (*t, matches!(step, Step::Inject(_))));
    steps
}
