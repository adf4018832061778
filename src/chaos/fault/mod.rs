//! Faults: one file per kind, each a struct of the kind's own fields implementing [`Fault`]; the
//! `faults!` list ties the `kind` names of a drill's timeline to them (like `receivers!`).
//!
//! A fault is injected for a window (the timeline entry's `for`) and then reverted. `inject`
//! returns the fault's revert state: everything `revert` needs, as JSON, written to the journal
//! (`journal.rs`) so that a NEW patrol process (after kill -9) can revert it from the journal alone.
//! Every revert is idempotent: reverting twice, or reverting something already healed, is fine.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::chaos::proxy::FaultProxy;
use crate::config::{DeError, Issues, Node, RuleSet, from_node, struct_fields};

pub mod command;
pub mod exec;
pub mod journal;
pub mod kubernetes;
mod pid;
pub mod process;
pub mod proxy;
mod ready;
pub mod redis;
mod size;
pub mod stress;
pub mod stress_child;
#[cfg(test)]
mod test_support;

pub use command::CommandLine;
pub use journal::{
    DrillRunRecord, FaultFailure, FaultOwner, InjectedFault, Journal, JournalEntry, JournalStatus,
    NewJournalEntry, RecoverOutcome, RecoverResult, recover,
};
pub use size::ByteSize;

/// What faults may use while injecting and reverting.
pub struct FaultContext {
    /// The loaded rules: `redis` faults name one of their targets.
    pub rules: Arc<RuleSet>,
    /// The drill's running fault proxies, by name.
    pub proxies: HashMap<String, FaultProxy>,
    /// The drill file's directory: relative pidfiles, commands' working directory and log files
    /// are taken from here (the journal keeps them absolute).
    pub base_dir: PathBuf,
}

impl FaultContext {
    /// `path` made absolute against the drill file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

/// A fault kind's own fields and its way of injecting and reverting.
pub trait Fault:
    DeserializeOwned
    + Serialize
    + schemars::JsonSchema
    + Clone
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// What `revert` needs, journaled between inject and revert.
    type State: Serialize + DeserializeOwned + Send + Sync;

    /// Problems beyond types, by path relative to the fault's mapping.
    fn validate(&self, _issues: &mut Issues) {}

    /// One line: what the fault does and what it can hit (its blast radius).
    fn describe(&self) -> String;

    /// Checks, touching nothing, that inject and revert can work (files readable, target
    /// reachable, permission to signal…).
    fn preflight(&self, ctx: &FaultContext) -> impl Future<Output = Result<(), String>> + Send;

    /// Injects the fault for `window` (faults that can expire by themselves are bounded by it)
    /// and returns the state its revert needs.
    fn inject(
        &self,
        ctx: &FaultContext,
        window: Duration,
    ) -> impl Future<Output = Result<Self::State, String>> + Send;

    /// Undoes an inject from its journaled state alone; idempotent. Ok says what was done.
    fn revert(
        ctx: &FaultContext,
        state: &Self::State,
    ) -> impl Future<Output = Result<String, String>> + Send;

    /// Undoes whatever an inject that never reported its state may have done (patrol died or the
    /// inject failed half-way), from the fault's fields alone; idempotent.
    fn revert_unconfirmed(
        &self,
        ctx: &FaultContext,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// Decodes a journaled revert state of `kind`.
fn decode_state<S: DeserializeOwned>(kind: &str, state: &serde_json::Value) -> Result<S, String> {
    serde_json::from_value(state.clone())
        .map_err(|e| format!("the journaled state of this {kind} fault is unreadable: {e}"))
}

macro_rules! faults {
    ($($kind:literal => $variant:ident($ty:ty),)*) => {
        /// A fault's settings, chosen by its kind (the key of its mapping on the timeline).
        #[derive(Clone, Debug)]
        pub enum FaultSpec {
            $($variant($ty),)*
        }

        impl FaultSpec {
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            pub fn kind(&self) -> &'static str {
                match self {
                    $(FaultSpec::$variant(_) => $kind,)*
                }
            }

            /// Field names a fault of `kind` accepts; None for an unknown kind.
            pub fn fields(kind: &str) -> Option<&'static [&'static str]> {
                match kind {
                    $($kind => Some(struct_fields::<$ty>()),)*
                    _ => None,
                }
            }

            /// The fault of `kind` from its mapping; None for an unknown kind. Errors carry the
            /// location of the offending node.
            pub fn from_node(kind: &str, node: &Node) -> Option<Result<FaultSpec, DeError>> {
                let fields = Self::fields(kind)?;
                Some(match kind {
                    $($kind => from_node::<$ty>(node, Some(fields)).map(FaultSpec::$variant),)*
                    _ => unreachable!("fields() knows every kind"),
                })
            }

            /// The fault of `kind` from its JSON form (as [`FaultSpec::to_json`] wrote it).
            pub fn from_json(kind: &str, value: &serde_json::Value) -> Result<FaultSpec, String> {
                match kind {
                    $($kind => serde_json::from_value::<$ty>(value.clone())
                        .map(FaultSpec::$variant)
                        .map_err(|e| format!("unreadable {kind} fault: {e}")),)*
                    _ => Err(format!("unknown fault kind `{kind}`")),
                }
            }

            /// The fault's fields as JSON (what the journal keeps).
            pub fn to_json(&self) -> serde_json::Value {
                let value = match self {
                    $(FaultSpec::$variant(f) => serde_json::to_value(f),)*
                };
                value.unwrap_or_else(|e| serde_json::Value::String(format!("unencodable: {e}")))
            }

            pub fn validate(&self, issues: &mut Issues) {
                match self {
                    $(FaultSpec::$variant(f) => Fault::validate(f, issues),)*
                }
            }

            pub fn describe(&self) -> String {
                match self {
                    $(FaultSpec::$variant(f) => Fault::describe(f),)*
                }
            }

            pub async fn preflight(&self, ctx: &FaultContext) -> Result<(), String> {
                match self {
                    $(FaultSpec::$variant(f) => Fault::preflight(f, ctx).await,)*
                }
            }

            /// Injects the fault for `window` (the timeline's `for`); returns the revert state.
            pub async fn inject(
                &self,
                ctx: &FaultContext,
                window: Duration,
            ) -> Result<serde_json::Value, String> {
                match self {
                    $(FaultSpec::$variant(f) => {
                        let state = Fault::inject(f, ctx, window).await?;
                        serde_json::to_value(&state)
                            .map_err(|e| format!("encoding the revert state: {e}"))
                    })*
                }
            }

            /// Reverts from the state `inject` returned; idempotent. Ok says what was done.
            pub async fn revert(
                &self,
                ctx: &FaultContext,
                state: &serde_json::Value,
            ) -> Result<String, String> {
                Self::revert_state(self.kind(), ctx, state).await
            }

            /// Reverts a fault of `kind` from its journaled state alone (recovery).
            pub async fn revert_state(
                kind: &str,
                ctx: &FaultContext,
                state: &serde_json::Value,
            ) -> Result<String, String> {
                match kind {
                    $($kind => <$ty as Fault>::revert(ctx, &decode_state(kind, state)?).await,)*
                    _ => Err(format!("unknown fault kind `{kind}`")),
                }
            }

            /// Undoes whatever an inject that never reported its state may have done.
            pub async fn revert_unconfirmed(&self, ctx: &FaultContext) -> Result<String, String> {
                match self {
                    $(FaultSpec::$variant(f) => Fault::revert_unconfirmed(f, ctx).await,)*
                }
            }

            pub fn schemas(
                generator: &mut schemars::SchemaGenerator,
            ) -> Vec<(&'static str, schemars::Schema)> {
                vec![$(($kind, generator.subschema_for::<$ty>()),)*]
            }
        }
    };
}

faults! {
    "proxy" => Proxy(proxy::ProxyFault),
    "process" => Process(process::ProcessFault),
    "exec" => Exec(exec::ExecFault),
    "stress" => Stress(stress::StressFault),
    "redis" => Redis(redis::RedisFault),
    "kubernetes" => Kubernetes(kubernetes::KubernetesFault),
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
