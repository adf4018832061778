//! Remediation playbooks (`kind: playbook`): steps of several kinds (`step/`), rendered as
//! minijinja templates over the parameters, the trigger and earlier steps' output, run in order
//! with `when:`, `on_error:` and `rollback:`; `--dry-run` runs only what has no side effect.

pub mod audit;
pub mod guard;
pub mod load;
pub mod report;
pub mod run;
pub mod runner;
pub mod spec;
pub mod step;
pub mod template;

pub use load::{find_playbook, is_playbook, load_playbook, read_playbook};
pub use run::{
    ApprovalRequest, Approver, Attachment, PlaybookRun, PreApproved, RunObserver, RunOptions,
    RunStatus, StepRecord, StepStatus, run_playbook,
};
pub use spec::{OnError, ParamSpec, Playbook, Step};
