//! Looking up the named target a step acts on (`sql`, `redis`), with the message people need
//! when the name is wrong: which targets of the right kind exist.

use crate::config::{Issues, RuleSet, Target};

/// The target `name` of one of `kinds`, or why not.
pub(super) fn named<'a>(
    rules: &'a RuleSet,
    name: &str,
    kinds: &[&str],
) -> Result<&'a Target, String> {
    match rules.targets.get(name) {
        Some(t) if kinds.contains(&t.spec.kind()) => Ok(t),
        Some(t) => Err(format!(
            "target `{name}` is {}, not {}",
            t.spec.kind(),
            kinds.join(" or ")
        )),
        None => {
            let known: Vec<&str> = rules
                .targets
                .values()
                .filter(|t| kinds.contains(&t.spec.kind()))
                .map(|t| t.name.as_str())
                .collect();
            Err(format!(
                "unknown target `{name}`; {} targets of the rules: {}",
                kinds.join("/"),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        }
    }
}

/// [`named`], its failure reported at `target`.
pub(super) fn validate<'a>(
    rules: &'a RuleSet,
    name: &str,
    kinds: &[&str],
    issues: &mut Issues,
) -> Option<&'a Target> {
    named(rules, name, kinds)
        .map_err(|e| issues.at(&["target"], e))
        .ok()
}

/// Why a write through `target` is refused: the target does not say `allow_write: true`.
pub(super) fn writes_not_allowed(target: &Target) -> String {
    format!(
        "target `{}` does not allow writes: set `allow_write: true` on it in the rules to let \
         steps with `write: true` change it",
        target.name
    )
}
