//! "Ready again" after pods were deleted: as many pods matching the selector are Ready as before
//! (not counting the deleted ones, which may linger as Terminating or — for a StatefulSet —
//! come back under the same name with a new uid), and each owning workload has, in a status that
//! is current, as many ready replicas as before (all of them when it was fully ready).
//! Polled, bounded by a timeout.

use std::time::Duration;

use serde_json::Value;

use super::context::KubeContext;
use super::delete_pod::{ControllerBefore, live_pods, pod_is_ready};
use super::workload::{Workload, readiness, status_is_current};

/// What must be ready again.
#[derive(Clone, Debug)]
pub struct ReadyAgain<'a> {
    pub namespace: &'a str,
    pub selector: &'a str,
    pub deleted_uids: &'a [String],
    pub ready_before: usize,
    pub controllers: &'a [ControllerBefore],
}

impl ReadyAgain<'_> {
    /// Waits (polling, at most `timeout`) until ready again; Ok says how long it took.
    pub async fn wait(&self, ctx: &KubeContext, timeout: Duration) -> Result<String, String> {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        let mut pause = Duration::from_millis(50);
        loop {
            let missing = match self.missing(ctx).await {
                Ok(None) => {
                    return Ok(format!(
                        "{} ready again after {} ms",
                        self.what(),
                        started.elapsed().as_millis()
                    ));
                }
                Ok(Some(missing)) => missing,
                // The API server may be briefly unreachable during a drill: keep asking.
                Err(e) => e,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(format!(
                    "{} not ready again within {}: {missing}",
                    self.what(),
                    crate::config::duration::format(timeout)
                ));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    fn what(&self) -> String {
        let owners: Vec<String> = self
            .controllers
            .iter()
            .map(|c| c.object.describe())
            .collect();
        if owners.is_empty() {
            format!(
                "pods matching `{}` in namespace {}",
                self.selector, self.namespace
            )
        } else {
            format!("pods of {}", owners.join(", "))
        }
    }

    /// None when ready again, else what is still missing.
    async fn missing(&self, ctx: &KubeContext) -> Result<Option<String>, String> {
        let pods = live_pods(ctx, self.namespace, self.selector).await?;
        let ready = pods
            .iter()
            .filter(|p| !self.was_deleted(p) && pod_is_ready(p))
            .count();
        if ready < self.ready_before {
            return Ok(Some(format!("{ready} of {} pods Ready", self.ready_before)));
        }
        for c in self.controllers {
            let Some(kind) = Workload::of_kind(&c.object.kind) else {
                continue;
            };
            let Some(now) = c.object.get(&ctx.client).await? else {
                return Ok(Some(format!("{} is gone", c.object.describe())));
            };
            let (ready, desired) = readiness(kind, &now);
            let wanted = desired.min(c.ready);
            if !status_is_current(&now) || ready < wanted {
                return Ok(Some(format!(
                    "{} has {ready} of {wanted} replicas ready",
                    c.object.describe()
                )));
            }
        }
        Ok(None)
    }

    fn was_deleted(&self, pod: &Value) -> bool {
        pod["metadata"]["uid"]
            .as_str()
            .is_some_and(|uid| self.deleted_uids.iter().any(|d| d == uid))
    }
}
