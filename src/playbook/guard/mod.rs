//! Guardrails around a playbook run: the global switch (checked by the runner), one run per
//! lock key at a time (held in the store, so two daemons cannot both run it), rate limits per
//! playbook and key, approvals (terminal prompt, `--yes`, or the store-backed approval API with
//! expiring links), and the alert that says a run was refused.

mod approval;
mod lock;
mod notice;
mod rate;
mod refusal;

pub use approval::{
    AnnouncedStoreApprover, OpenApproval, StoreApprover, TerminalApprover, token_hash,
    token_matches,
};
pub use lock::{LockHeld, acquire_lock, holder};
pub use rate::admit;
pub use refusal::announce_refusal;
