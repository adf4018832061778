//! `validate --online` for kubernetes checks. A target answering `/version` (see [`super::ping`])
//! says nothing about what its credentials may read, so each check also makes the request its
//! probe makes — a list with the same namespace and selectors — once, with `limit=1`. A missing
//! RBAC grant, a kind that is not installed or a selector the API server refuses is then reported
//! at the check, in CI, rather than at its first run; a 403 names the verb and resource to grant
//! and the role that grants them.

use std::time::Duration;

use futures::StreamExt;

use super::resources::{self, LIST, Namespaces, Resolved};
use super::{KubernetesProbe, client_for, describe_error};
use crate::config::{Check, Diagnostic, RuleSet, Target};
use crate::probe::ProbeSpec;

/// The role granting what kubernetes checks read.
pub const INSPECT_ROLE_FILE: &str = "deploy/kubernetes/rbac-inspect.yaml";

/// Checks tried at once (they share a few API servers).
const CONCURRENCY: usize = 16;

/// Tries the list of every kubernetes check whose target is in `reachable` (those that did not
/// answer are reported once, as targets) within `timeout` each; a diagnostic at the check for
/// each that fails.
pub async fn check_access(
    rules: &RuleSet,
    reachable: &[&Target],
    timeout: Duration,
) -> Vec<Diagnostic> {
    let checks: Vec<(&Check, &KubernetesProbe, &Target)> = rules
        .checks
        .iter()
        .filter_map(|c| {
            let ProbeSpec::Kubernetes(probe) = &c.probe else {
                return None;
            };
            let target = c.target.as_deref()?;
            let answered = reachable
                .iter()
                .any(|r| r.name == target.name && r.kind() == target.kind());
            answered.then_some((&**c, probe, target))
        })
        .collect();
    let outcomes: Vec<Result<(), String>> =
        futures::stream::iter(checks.iter().map(|(_, probe, target)| async move {
            tokio::time::timeout(timeout, try_list(probe, target))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {}s", timeout.as_secs())))
        }))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    checks
        .iter()
        .zip(outcomes)
        .filter_map(|((check, _, _), outcome)| {
            let reason = outcome.err()?;
            let message = format!("check {}: {reason}", check.name());
            Some(Diagnostic::new(
                &check.origin.file,
                check.origin.loc,
                message,
            ))
        })
        .collect()
}

/// Lists at most one of the objects `probe` reads, as it reads them.
async fn try_list(probe: &KubernetesProbe, target: &Target) -> Result<(), String> {
    let client = client_for(target).await?;
    let resolved = resources::resolve(&client, &probe.resource).await?;
    let ns = probe.namespaces(target, &client)?;
    let api = resources::api(&client, &resolved, &ns);
    let params = resources::list_params(&probe.selection(), 1);
    match api.list(&params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 403 => Err(forbidden(&resolved, &ns)),
        Err(e) => Err(describe_error(
            &e,
            LIST,
            &resources::describe_place(&resolved, &ns),
        )),
    }
}

/// What was refused and what to grant: `patrol may not list pods in namespace shop (forbidden);
/// grant "list" on "pods" (see deploy/kubernetes/rbac-inspect.yaml)`. Cluster-scoped resources
/// and lists across all namespaces need a cluster-wide binding; a kind the role does not cover
/// needs a rule of its own.
pub fn forbidden(r: &Resolved, ns: &Namespaces) -> String {
    let place = resources::describe_place(r, ns);
    let group = match r.api.group.as_str() {
        "" => String::new(),
        g => format!(" in API group \"{g}\""),
    };
    let cluster_wide = !r.namespaced() || *ns == Namespaces::All;
    let scope = if cluster_wide {
        " cluster-wide (a ClusterRoleBinding)"
    } else {
        ""
    };
    let see = match r.builtin {
        Some(_) => format!("see {INSPECT_ROLE_FILE}"),
        None => format!("add a rule for it to {INSPECT_ROLE_FILE}"),
    };
    format!(
        "patrol may not {LIST} {place} (forbidden); grant \"{LIST}\" on \"{}\"{group}{scope} ({see})",
        r.plural()
    )
}

#[cfg(test)]
mod tests {
    use super::super::resources::BuiltIn;
    use super::*;

    fn builtin(b: BuiltIn) -> Resolved {
        Resolved {
            api: b.api_resource(),
            scope: b.scope(),
            builtin: Some(b),
        }
    }

    #[test]
    fn a_refusal_names_the_verb_the_resource_and_the_role() {
        let shop = Namespaces::One("shop".into());
        assert_eq!(
            forbidden(&builtin(BuiltIn::Pod), &shop),
            "patrol may not list pods in namespace shop (forbidden); grant \"list\" on \"pods\" \
             (see deploy/kubernetes/rbac-inspect.yaml)"
        );
        assert_eq!(
            forbidden(&builtin(BuiltIn::Deployment), &Namespaces::All),
            "patrol may not list deployments in all namespaces (forbidden); grant \"list\" on \
             \"deployments\" in API group \"apps\" cluster-wide (a ClusterRoleBinding) (see \
             deploy/kubernetes/rbac-inspect.yaml)"
        );
        let nodes = forbidden(&builtin(BuiltIn::Node), &shop);
        assert!(
            nodes.starts_with(
                "patrol may not list nodes (forbidden); grant \"list\" on \"nodes\" cluster-wide"
            ),
            "{nodes}"
        );
    }

    #[test]
    fn a_kind_the_role_does_not_cover_needs_a_rule() {
        let gvk = kube::api::GroupVersionKind::gvk("chaos-mesh.org", "v1alpha1", "PodChaos");
        let r = Resolved {
            api: kube::discovery::ApiResource::from_gvk_with_plural(&gvk, "podchaos"),
            scope: kube::discovery::Scope::Namespaced,
            builtin: None,
        };
        let msg = forbidden(&r, &Namespaces::One("shop".into()));
        assert!(
            msg.ends_with(
                "grant \"list\" on \"podchaos\" in API group \"chaos-mesh.org\" (add a rule for \
                 it to deploy/kubernetes/rbac-inspect.yaml)"
            ),
            "{msg}"
        );
    }
}
