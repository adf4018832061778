//! Remediation playbooks (`kind: playbook`): steps of several kinds (`step/`), rendered as
//! minijinja templates over the parameters, the trigger and earlier steps' output, run in order
//! with `when:`, `on_error:` and `rollback:`; `--dry-run` runs only what has no side effect.

pub mod load;
pub mod run;
pub mod spec;
pub mod step;
pub mod template;

pub use load::{find_playbook, is_playbook, load_playbook, read_playbook};
pub use run::{PlaybookRun, RunOptions, RunStatus, StepRecord, StepStatus, run_playbook};
pub use spec::{OnError, ParamSpec, Playbook, Step};
