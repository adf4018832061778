//! The fault journal and drill runs on SQLite and PostgreSQL, and recovery after a simulated
//! kill -9: everything of the injecting "process" is dropped, a fresh context reverts.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use patrol::chaos::fault::{
    DrillRunRecord, FaultOwner, Journal, JournalStatus, NewJournalEntry, RecoverResult, recover,
};
use patrol::store::Store;
use serde_json::json;

use crate::common::on_both_backends;
use crate::support::{alive, context, fault, proc_state, sleeper, spawn_reaped, wait_for};

on_both_backends!(
    journal_entries_go_from_intended_to_reverted,
    a_failed_revert_keeps_the_entry_active,
    drill_runs_are_saved_and_listed_newest_first,
    recover_reverts_a_pause_after_the_injector_vanished,
    recover_reverts_an_intended_fault_from_its_fields,
    recover_skips_faults_of_a_live_patrol_and_of_other_hosts,
    a_failed_exec_inject_is_reverted_and_journaled,
);

async fn journal_entries_go_from_intended_to_reverted(url: &str) {
    let journal = Journal::new(Store::open(url).await.unwrap());
    let spec = fault("redis", "{ target: cache, mode: write }");
    let id = journal.intend("run-1", "drill-a", 2, &spec).await.unwrap();
    let active = journal.active().await.unwrap();
    assert_eq!(active.len(), 1);
    let e = &active[0];
    assert_eq!((e.id, e.index, e.kind.as_str()), (id, 2, "redis"));
    assert_eq!(
        (e.drill_run.as_str(), e.drill.as_str()),
        ("run-1", "drill-a")
    );
    assert_eq!(e.status, JournalStatus::Intended);
    assert_eq!(e.spec, json!({"target": "cache", "mode": "write"}));
    assert_eq!(e.state, None);
    assert_eq!(e.owner, FaultOwner::current());

    let state = json!({"target": "cache", "mode": "write", "until": "2030-01-01T00:00:00Z"});
    journal.injected(id, &state).await.unwrap();
    let e = &journal.active().await.unwrap()[0];
    assert_eq!(e.status, JournalStatus::Injected);
    assert_eq!(e.state.as_ref(), Some(&state));
    assert!(e.injected_at.is_some());
    // Injected twice is a bug in the caller, and said so.
    assert!(journal.injected(id, &state).await.is_err());

    journal.reverted(id, Ok(())).await.unwrap();
    assert!(journal.active().await.unwrap().is_empty());
    let all = journal.of_run("run-1").await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, JournalStatus::Reverted);
    assert_eq!(all[0].outcome.as_deref(), Some("reverted"));
    assert!(all[0].reverted_at.is_some());
    assert!(
        journal.reverted(id, Ok(())).await.is_err(),
        "already reverted"
    );
    assert!(journal.of_run("run-2").await.unwrap().is_empty());
}

async fn a_failed_revert_keeps_the_entry_active(url: &str) {
    let journal = Journal::new(Store::open(url).await.unwrap());
    let spec = fault("redis", "{ target: cache }");
    let id = journal.intend("run-1", "d", 0, &spec).await.unwrap();
    journal.injected(id, &json!({})).await.unwrap();
    journal
        .reverted(id, Err("connection refused"))
        .await
        .unwrap();
    let e = &journal.active().await.unwrap()[0];
    assert_eq!(e.status, JournalStatus::Injected);
    assert_eq!(e.revert_error.as_deref(), Some("connection refused"));
    journal
        .reverted_with(id, Ok("CLIENT UNPAUSE on 127.0.0.1:6379"))
        .await
        .unwrap();
    assert!(journal.active().await.unwrap().is_empty());
    let e = &journal.of_run("run-1").await.unwrap()[0];
    assert_eq!(e.revert_error, None);
    assert_eq!(
        e.outcome.as_deref(),
        Some("CLIENT UNPAUSE on 127.0.0.1:6379")
    );
}

async fn drill_runs_are_saved_and_listed_newest_first(url: &str) {
    let store = Store::open(url).await.unwrap();
    let t = |s: i64| Utc.timestamp_opt(1_800_000_000 + s, 123_456_000).unwrap();
    let mut first = DrillRunRecord {
        id: "r1".into(),
        drill: "sse-node-crash".into(),
        status: "running".into(),
        started_at: t(0),
        finished_at: None,
        report: json!({"name": "sse-node-crash"}),
    };
    store.save_drill_run(&first).await.unwrap();
    first.status = "passed".into();
    first.finished_at = Some(t(60));
    first.report = json!({"name": "sse-node-crash", "lost": 0});
    store.save_drill_run(&first).await.unwrap();
    let second = DrillRunRecord {
        id: "r2".into(),
        drill: "redis-pause".into(),
        status: "failed".into(),
        started_at: t(100),
        finished_at: Some(t(130)),
        report: json!({"lost": 3}),
    };
    store.save_drill_run(&second).await.unwrap();

    let all = store.recent_drill_runs(None, 10).await.unwrap();
    assert_eq!(all, vec![second.clone(), first.clone()]);
    assert_eq!(
        store.recent_drill_runs(None, 1).await.unwrap(),
        vec![second]
    );
    let one = store
        .recent_drill_runs(Some("sse-node-crash"), 10)
        .await
        .unwrap();
    assert_eq!(one, vec![first]);
    assert!(
        store
            .recent_drill_runs(Some("x"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn recover_reverts_a_pause_after_the_injector_vanished(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (guard, _) = sleeper(dir.path(), "victim");
    let pid = guard.0;
    let spec = fault("process", "{ pidfile: victim.pid, action: pause }");
    {
        // The injecting patrol: journal, context and store are all dropped, as by kill -9.
        let journal = Journal::new(Store::open(url).await.unwrap());
        let injected = journal
            .inject(
                &context(dir.path()),
                "run-9",
                "pause-drill",
                0,
                &spec,
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert_eq!(injected.kind, "process");
        assert_eq!(proc_state(pid), Some('T'));
    }
    let store = Store::open(url).await.unwrap();
    let outcomes = recover(&store, &context(dir.path())).await.unwrap();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].was, JournalStatus::Injected);
    assert!(
        matches!(&outcomes[0].result, RecoverResult::Reverted(m) if m.contains("resumed process")),
        "{outcomes:?}"
    );
    assert!(wait_for(Duration::from_secs(5), || {
        matches!(proc_state(pid), Some('R' | 'S'))
    }));
    assert!(
        Journal::new(store.clone())
            .active()
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing left: a second recovery does nothing.
    assert!(
        recover(&store, &context(dir.path()))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn recover_reverts_an_intended_fault_from_its_fields(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (guard, _) = sleeper(dir.path(), "half");
    let pid = guard.0;
    let spec = fault("process", "{ pidfile: half.pid, action: pause }");
    let store = Store::open(url).await.unwrap();
    Journal::new(store.clone())
        .intend("run-3", "d", 0, &spec)
        .await
        .unwrap();
    // The SIGSTOP went out, then patrol died before journaling the state.
    // SAFETY: kill(2) touches no memory.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    assert!(wait_for(Duration::from_secs(5), || proc_state(pid) == Some('T')));
    let outcomes = recover(&store, &context(dir.path())).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].was, JournalStatus::Intended);
    assert!(outcomes[0].is_reverted(), "{outcomes:?}");
    assert!(wait_for(Duration::from_secs(5), || proc_state(pid) != Some('T')));
}

async fn recover_skips_faults_of_a_live_patrol_and_of_other_hosts(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(url).await.unwrap();
    let other = spawn_reaped(&["sleep", "60"]);
    let _guard = crate::support::KillOnDrop(other);
    let me = FaultOwner::current();
    let live = FaultOwner {
        pid: other,
        start_time: crate::support::proc_stat_field(other, 22),
        ..me.clone()
    };
    let remote = FaultOwner {
        host: format!("{}-elsewhere", me.host),
        ..me.clone()
    };
    let spec = json!({"target": "cache"});
    for (i, owner) in [&live, &remote].into_iter().enumerate() {
        store
            .journal_intend(&NewJournalEntry {
                drill_run: "run-x",
                drill: "d",
                index: i,
                kind: "redis",
                spec: &spec,
                owner,
                at: Utc::now(),
            })
            .await
            .unwrap();
    }
    let outcomes = recover(&store, &context(dir.path())).await.unwrap();
    assert_eq!(outcomes.len(), 2);
    let messages: Vec<String> = outcomes.iter().map(|o| o.to_string()).collect();
    assert!(
        messages[0].contains("elsewhere: recover it there"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains(&format!(
            "patrol process {other} that injected it is still running"
        )),
        "{messages:?}"
    );
    assert_eq!(Journal::new(store).active().await.unwrap().len(), 2);
    assert!(alive(other));
}

async fn a_failed_exec_inject_is_reverted_and_journaled(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let journal = Journal::new(Store::open(url).await.unwrap());
    let spec = fault(
        "exec",
        "{ shell: true, inject: 'touch half-done; echo boom >&2; exit 3', \
           revert: 'rm -f half-done; echo cleaned' }",
    );
    let failure = journal
        .inject(&ctx, "run-e", "d", 1, &spec, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        failure.error.contains("exited with status 3: boom"),
        "{failure}"
    );
    assert_eq!(failure.cleanup, Some(Ok("`sh` exited 0: cleaned".into())));
    assert!(!dir.path().join("half-done").exists());
    let e = &journal.of_run("run-e").await.unwrap()[0];
    assert_eq!(e.status, JournalStatus::Reverted);
    assert!(e.inject_error.as_deref().unwrap().contains("boom"));
}
