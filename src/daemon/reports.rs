//! The end of a suite run in the daemon: once the run and its scores are stored, its reports are
//! written to `--report-dir` and its summary queued for the suite's `notify:` receivers (see
//! [`crate::report::deliver`]).

use std::sync::Arc;

use super::core::Daemon;

pub(super) async fn suite_run_ended(daemon: &Arc<Daemon>, suite: &str, run_id: &str) {
    let rules = daemon.state.rules.load_full();
    let notifies = rules
        .suites
        .get(suite)
        .is_some_and(|s| !s.notify.is_empty());
    if daemon.report_dir.is_none() && !notifies {
        return;
    }
    // The writer batches runs: the report reads this one from the store.
    daemon.writer.flush().await;
    crate::report::after_suite_run(
        &daemon.state.store,
        &rules,
        suite,
        run_id,
        daemon.report_dir.as_deref(),
        daemon.state.playbooks.external_url(),
    )
    .await;
}
