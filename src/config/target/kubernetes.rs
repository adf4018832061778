//! `kind: kubernetes` targets: which cluster and credentials, as kubectl would pick them.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Issues;

/// A Kubernetes cluster: a kubeconfig file (default `KUBECONFIG`, else `~/.kube/config`) and one
/// of its contexts (default: its current context), or the service account of the pod patrol runs
/// in (`in_cluster: true`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesTarget {
    /// Kubeconfig file (relative to the rule file; `~/` is the home directory).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (default: its `current-context`).
    #[serde(default)]
    pub context: Option<String>,
    /// Use the pod's service account and the API server it was given (patrol runs in the cluster).
    #[serde(default)]
    pub in_cluster: bool,
    /// Namespace of checks that name none (default: the context's namespace, else `default`).
    #[serde(default)]
    pub namespace: Option<String>,
}

impl KubernetesTarget {
    /// Problems beyond types, by field.
    pub fn validate(&self, issues: &mut Issues) {
        if self.in_cluster {
            for (field, set) in [
                ("kubeconfig", self.kubeconfig.is_some()),
                ("context", self.context.is_some()),
            ] {
                if set {
                    issues.at_key(
                        &[field],
                        format!(
                            "set either `in_cluster: true` or `{field}`, not both: in the cluster \
                             patrol uses its service account"
                        ),
                    );
                }
            }
        }
        if self
            .kubeconfig
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            issues.at(&["kubeconfig"], "kubeconfig is empty");
        }
        if self.context.as_deref().is_some_and(|c| c.trim().is_empty()) {
            issues.at(&["context"], "context is empty");
        }
        if let Some(ns) = &self.namespace
            && let Err(e) = check_namespace_name(ns)
        {
            issues.at(&["namespace"], e);
        }
    }

    /// How a message names the cluster: never a credential, only where its settings come from.
    pub fn describe(&self) -> String {
        if self.in_cluster {
            return "in-cluster service account".into();
        }
        let file = match &self.kubeconfig {
            Some(p) => p.display().to_string(),
            None => "the default kubeconfig".into(),
        };
        match &self.context {
            Some(c) => format!("context {c} of {file}"),
            None => format!("current context of {file}"),
        }
    }
}

/// A namespace name is a DNS label (RFC 1123): lowercase letters, digits and `-`, at most 63
/// characters, starting and ending with a letter or digit.
pub fn check_namespace_name(ns: &str) -> Result<(), String> {
    let valid_chars = ns
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ends_ok = ns
        .bytes()
        .next()
        .zip(ns.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if ns.is_empty() || ns.len() > 63 || !valid_chars || !ends_ok {
        return Err(format!(
            "namespace {ns:?} is not a valid namespace name: lowercase letters, digits and '-', \
             at most 63 characters, starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_follow_rfc_1123() {
        for ok in ["default", "kube-system", "a", "team-1"] {
            assert!(check_namespace_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Prod", "-a", "a-", "a_b", &"x".repeat(64)] {
            assert!(check_namespace_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn in_cluster_excludes_kubeconfig_and_context() {
        let t = KubernetesTarget {
            in_cluster: true,
            kubeconfig: Some("k".into()),
            context: Some("c".into()),
            namespace: Some("Bad".into()),
        };
        let mut issues = Issues::default();
        t.validate(&mut issues);
        let messages: Vec<&str> = issues.items.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("`in_cluster: true` or `kubeconfig`"));
        assert!(messages[1].contains("`in_cluster: true` or `context`"));
        assert!(messages[2].contains("not a valid namespace name"));
    }

    #[test]
    fn describe_names_no_credentials() {
        let t = KubernetesTarget {
            kubeconfig: Some("/etc/k.yaml".into()),
            context: Some("prod".into()),
            ..Default::default()
        };
        assert_eq!(t.describe(), "context prod of /etc/k.yaml");
        assert_eq!(
            KubernetesTarget::default().describe(),
            "current context of the default kubeconfig"
        );
    }
}
