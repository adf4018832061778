//! The kube client of a `kubernetes` target: kubeconfig + context, or the pod's service account.
//!
//! Clients are built once per target and reused (a client keeps its connections and its token
//! refresh), keyed also by the kubeconfig files' modification times, so a rotated kubeconfig is
//! read again, and by the tokio runtime (a client's connection tasks live on the runtime that
//! built it). Actions and drill faults take their client from here too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::config::KubernetesTarget;
use crate::config::{Target, TargetSpec};

/// More cached clients than this means many short-lived runtimes (tests) or many reloads: start
/// over rather than grow.
const CACHE_LIMIT: usize = 64;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ClientKey {
    target: String,
    settings: String,
    files: Vec<(PathBuf, Option<SystemTime>)>,
    runtime: tokio::runtime::Id,
}

static CLIENTS: LazyLock<Mutex<HashMap<ClientKey, kube::Client>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The kubernetes settings of `target`, or an error naming what the check needs.
pub fn kubernetes_target(target: Option<&Target>) -> Result<&KubernetesTarget, String> {
    match target.map(|t| &t.spec) {
        Some(TargetSpec::Kubernetes(k)) => Ok(k),
        _ => Err("a kubernetes check needs a `target` of kind kubernetes".into()),
    }
}

/// The (cached) client of a kubernetes target.
pub async fn client_for(target: &Target) -> Result<kube::Client, String> {
    let spec = kubernetes_target(Some(target))?;
    let key = ClientKey {
        target: target.name.clone(),
        settings: format!("{spec:?}"),
        files: kubeconfig_files(spec, &target.base_dir)
            .into_iter()
            .map(|p| {
                let modified = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
                (p, modified)
            })
            .collect(),
        runtime: tokio::runtime::Handle::current().id(),
    };
    if let Some(client) = lock().get(&key) {
        return Ok(client.clone());
    }
    let config = config_for(spec, &target.base_dir).await?;
    let client = kube::Client::try_from(config)
        .map_err(|e| format!("cannot build a Kubernetes client: {}", chain(&e)))?;
    let mut cache = lock();
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key, client.clone());
    Ok(client)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<ClientKey, kube::Client>> {
    // A panic while holding the lock leaves a usable map (inserts are single statements).
    CLIENTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The client configuration a target describes. Requests are not retried: a probe reports what
/// the API server said this time.
pub async fn config_for(spec: &KubernetesTarget, base_dir: &Path) -> Result<kube::Config, String> {
    let mut config = if spec.in_cluster {
        kube::Config::incluster().map_err(|e| {
            format!(
                "in_cluster: not running in a pod with a service account: {}",
                chain(&e)
            )
        })?
    } else {
        let kubeconfig = read_kubeconfig(spec, base_dir)?;
        let options = KubeConfigOptions {
            context: spec.context.clone(),
            ..Default::default()
        };
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| format!("kubeconfig: {}", chain(&e)))?
    };
    config.default_retry = false;
    Ok(config)
}

fn read_kubeconfig(spec: &KubernetesTarget, base_dir: &Path) -> Result<Kubeconfig, String> {
    match &spec.kubeconfig {
        Some(path) => {
            let path = resolve_path(path, base_dir);
            Kubeconfig::read_from(&path)
                .map_err(|e| format!("cannot read kubeconfig {}: {}", path.display(), chain(&e)))
        }
        None => Kubeconfig::read().map_err(|e| {
            format!(
                "cannot read the default kubeconfig (KUBECONFIG, else ~/.kube/config): {}",
                chain(&e)
            )
        }),
    }
}

/// Files the target's configuration is read from (for the cache key): its kubeconfig, or those
/// `KUBECONFIG` lists, or `~/.kube/config`; none in the cluster.
fn kubeconfig_files(spec: &KubernetesTarget, base_dir: &Path) -> Vec<PathBuf> {
    if spec.in_cluster {
        return Vec::new();
    }
    if let Some(path) = &spec.kubeconfig {
        return vec![resolve_path(path, base_dir)];
    }
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(&list).collect(),
        None => home_dir()
            .map(|h| vec![h.join(".kube").join("config")])
            .unwrap_or_default(),
    }
}

/// A kubeconfig path as written: `~/` is the home directory, a relative path is relative to the
/// rule file's directory.
pub fn resolve_path(path: &Path, base_dir: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = home_dir()
    {
        return home.join(rest);
    }
    base_dir.join(path)
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// An error with its causes ("kubeconfig: failed to load" alone says nothing).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let m = s.to_string();
        if !msg.contains(&m) {
            msg.push_str(": ");
            msg.push_str(&m);
        }
        src = s.source();
    }
    msg
}

/// What went wrong with a request, in the API server's words when it answered: `verb` and
/// `what` (for example "list", "deployments in namespace shop") say what was attempted.
pub fn describe_error(e: &kube::Error, verb: &str, what: &str) -> String {
    match e {
        kube::Error::Api(status) => {
            let reason = match status.code {
                401 => "unauthorized (the credentials were refused)".to_string(),
                403 => format!("forbidden: patrol may not {verb} {what}"),
                404 => format!("not found: {what}"),
                code => format!("the API server answered {code}"),
            };
            if status.message.is_empty() {
                format!("cannot {verb} {what}: {reason}")
            } else {
                format!("cannot {verb} {what}: {reason} ({})", status.message)
            }
        }
        other => format!("cannot {verb} {what}: {}", chain(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_rule_file_or_home() {
        let base = Path::new("/rules");
        assert_eq!(
            resolve_path(Path::new("kube/config"), base),
            PathBuf::from("/rules/kube/config")
        );
        assert_eq!(
            resolve_path(Path::new("/etc/k"), base),
            PathBuf::from("/etc/k")
        );
        if let Some(home) = home_dir() {
            assert_eq!(
                resolve_path(Path::new("~/.kube/config"), base),
                home.join(".kube/config")
            );
        }
    }

    #[test]
    fn api_errors_name_the_verb_and_the_resource() {
        let status = kube::core::Status::failure("deployments.apps is forbidden", "Forbidden")
            .with_code(403);
        let e = kube::Error::Api(Box::new(status));
        let msg = describe_error(&e, "list", "deployments in namespace shop");
        assert!(
            msg.starts_with(
                "cannot list deployments in namespace shop: forbidden: patrol may not list"
            ),
            "{msg}"
        );
        assert!(msg.contains("deployments.apps is forbidden"), "{msg}");
    }
}
