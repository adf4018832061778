//! Step kinds, one file each, each a struct of the kind's own fields implementing [`StepKind`];
//! the `steps!` list ties the key of a step's mapping (`http:`, `exec:`…) to them (like `faults!`).
//!
//! A step's fields are templates: the loader keeps them as JSON, checks that they deserialize and
//! that every string compiles; the runner renders them and deserializes the rendered copy.

use std::future::Future;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{DeError, Issues, Node, RuleSet, from_node};

pub mod capture;
pub mod check;
pub mod exec;
pub mod http;
pub mod isolate;
pub mod kubernetes;
pub mod notify;
pub mod redis;
pub mod sql;
mod targets;
#[cfg(test)]
mod test_support;
pub mod wait;

/// What a step may use while running.
pub struct StepEnv<'a> {
    pub rules: &'a RuleSet,
    /// The playbook file's directory: commands run there.
    pub base_dir: &'a Path,
    /// Programs `exec` steps may run.
    pub exec_allow: &'a [String],
    /// Run without side effects (only kinds that are [`StepKind::dry_run_safe`] are run, and
    /// those that run their own dry run — SQL in a rolled-back transaction, Kubernetes with
    /// server-side dry-run — look at this).
    pub dry_run: bool,
    /// Where `notify` steps queue what they could not deliver at once.
    pub store: Option<&'a crate::store::Store>,
    /// Base URL of patrol as people reach it (links in messages).
    pub external_url: &'a str,
    /// The run's id.
    pub run_id: &'a str,
    /// Bodies to keep with the step's record (`capture`); the runner moves them there.
    pub attachments: &'a std::sync::Mutex<Vec<crate::playbook::run::Attachment>>,
}

impl StepEnv<'_> {
    /// Keeps `attachment` with the record of the step running now.
    pub fn attach(&self, attachment: crate::playbook::run::Attachment) {
        self.attachments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(attachment);
    }
}

/// A step kind's own fields and its way of running.
pub trait StepKind: DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// Problems beyond types (unknown targets and checks, commands not allowed), by path
    /// relative to the step kind's mapping.
    fn validate(&self, _rules: &RuleSet, _exec_allow: &[String], _issues: &mut Issues) {}

    /// Whether `--dry-run` may run it: it has no side effect, or it runs its own dry run.
    fn dry_run_safe(&self) -> bool;

    /// One line: what the step does.
    fn describe(&self) -> String;

    /// Runs the step; its output (a JSON object) is what later templates see as
    /// `steps.<name>.…`. Err says why the step failed.
    fn run(&self, env: &StepEnv<'_>) -> impl Future<Output = Result<Value, String>> + Send;
}

macro_rules! steps {
    ($($kind:literal => $variant:ident($ty:ty),)*) => {
        /// A step's action, chosen by its kind (the kind key of the step's mapping).
        #[derive(Clone, Debug)]
        pub enum StepAction {
            $($variant($ty),)*
        }

        impl StepAction {
            /// Every step kind, as written in a playbook.
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            pub fn kind(&self) -> &'static str {
                match self {
                    $(StepAction::$variant(_) => $kind,)*
                }
            }

            /// The action of kind `kind` from its located mapping (`None`: not a step kind).
            pub fn from_node(kind: &str, node: &Node) -> Option<Result<StepAction, DeError>> {
                match kind {
                    $($kind => Some(from_node::<$ty>(node, None).map(StepAction::$variant)),)*
                    _ => None,
                }
            }

            /// The action of kind `kind` from its rendered fields.
            pub fn from_json(kind: &str, value: &Value) -> Result<StepAction, String> {
                match kind {
                    $($kind => serde_json::from_value::<$ty>(value.clone())
                        .map(StepAction::$variant)
                        .map_err(|e| format!("{kind} step after rendering: {e}")),)*
                    _ => Err(format!("unknown step kind `{kind}`")),
                }
            }

            pub fn validate(&self, rules: &RuleSet, exec_allow: &[String], issues: &mut Issues) {
                match self {
                    $(StepAction::$variant(s) => s.validate(rules, exec_allow, issues),)*
                }
            }

            pub fn dry_run_safe(&self) -> bool {
                match self {
                    $(StepAction::$variant(s) => s.dry_run_safe(),)*
                }
            }

            pub fn describe(&self) -> String {
                match self {
                    $(StepAction::$variant(s) => s.describe(),)*
                }
            }

            pub async fn run(&self, env: &StepEnv<'_>) -> Result<Value, String> {
                match self {
                    $(StepAction::$variant(s) => s.run(env).await,)*
                }
            }
        }
    };
}

steps! {
    "http" => Http(http::HttpStep),
    "exec" => Exec(exec::ExecStep),
    "wait" => Wait(wait::WaitStep),
    "kubernetes" => Kubernetes(kubernetes::KubeStep),
    "check" => Check(check::CheckStep),
    "sql" => Sql(sql::SqlStep),
    "redis" => Redis(redis::RedisStep),
    "notify" => Notify(notify::NotifyStep),
    "capture" => Capture(capture::CaptureStep),
    "isolate" => Isolate(isolate::IsolateStep),
}
