//! Where an action runs: the target's client, the namespace of actions that name none, and the
//! directory relative manifest files are read from.

use std::path::{Path, PathBuf};

use crate::config::Target;
use crate::probe::kubernetes::client::{client_for, kubernetes_target};

/// What every action runs with.
#[derive(Clone)]
pub struct KubeContext {
    pub client: kube::Client,
    /// Namespace of actions that name none: the target's, else the context's (else `default`).
    pub namespace: String,
    /// Relative `file:` manifests are read from here.
    pub base_dir: PathBuf,
}

impl KubeContext {
    /// The context of a `kind: kubernetes` target (its client is cached and shared with checks);
    /// files are relative to the target's rule file until [`KubeContext::with_base_dir`].
    pub async fn for_target(target: &Target) -> Result<KubeContext, String> {
        let spec = kubernetes_target(Some(target))
            .map_err(|_| format!("target `{}` is not a kubernetes target", target.name))?;
        let client = client_for(target).await?;
        let namespace = spec
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        Ok(KubeContext {
            client,
            namespace,
            base_dir: target.base_dir.clone(),
        })
    }

    pub fn with_base_dir(mut self, dir: &Path) -> KubeContext {
        self.base_dir = dir.to_path_buf();
        self
    }

    /// An action's `namespace:`, else the context's.
    pub fn namespace_or(&self, own: Option<&str>) -> String {
        own.unwrap_or(&self.namespace).to_string()
    }

    /// `path` made absolute against [`KubeContext::base_dir`].
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}
