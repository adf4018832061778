//! The daemon's side of the store against real backends: batched saves, check states, the event
//! log, scores, job starts, retention and the plans of the hot reads. Every behaviour test runs
//! once on a fresh SQLite file and once on a fresh PostgreSQL database, with the same body.

mod common;

#[allow(dead_code)]
#[path = "store_support/mod.rs"]
mod fixtures;

#[path = "store_support/daemon.rs"]
mod daemon_fixtures;

use std::collections::{HashMap, HashSet};

use chrono::Duration;
use daemon_fixtures::{at, event, ids, job_started, save, save_scores, score, single, verdict};
use fixtures::{key, result, run_record, state};
use patrol::result::{CheckResult, Status};
use patrol::score::CheckState;
use patrol::store::{PruneCounts, Store};

use common::on_both_backends;

/// The event log's tests, kept apart to keep files short; they use `on_both_backends!` above.
#[path = "store_support/daemon_events.rs"]
mod events;

on_both_backends!(
    batch_is_saved_whole_with_its_events,
    failed_batch_leaves_nothing_behind,
    check_state_follows_the_latest_verdicts,
    failing_streak_across_and_within_batches,
    scores_keep_a_history_and_the_newest_per_service,
    job_starts_keep_the_newest_planned_time,
    baselines_of_one_check_are_deleted,
    results_are_queried_newest_first,
    prune_deletes_history_and_keeps_state,
    large_batches_and_prunes_go_in_chunks,
    hot_reads_are_served_by_indexes,
);

async fn batch_is_saved_whole_with_its_events(url: &str) {
    let store = Store::open(url).await.unwrap();
    let batch = vec![
        single("a", 0, Status::Ok),
        single("b", 0, Status::Crit),
        verdict(
            "c",
            1,
            &[("x", Status::Ok, Some(1.0)), ("y", Status::Warn, Some(3.0))],
        ),
    ];
    let events = vec![event("result", 0, 1), event("result", 1, 2)];
    let stored = store
        .save_runs(&batch, &[(key("a", ""), state(5.0, 2))], &events)
        .await
        .unwrap();

    assert_eq!(stored.len(), 2);
    assert!(stored[0].id < stored[1].id);
    for (s, e) in stored.iter().zip(&events) {
        assert_eq!((&s.kind, s.at, &s.data), (&e.kind, e.at, &e.data));
    }
    assert_eq!(store.events_after(0, 10).await.unwrap(), stored);
    for (run, results) in &batch {
        assert_eq!(store.run(&run.id).await.unwrap().as_ref(), Some(run));
        assert_eq!(&store.results_of_run(&run.id).await.unwrap(), results);
    }
    assert_eq!(
        store.baselines(&["a".into()]).await.unwrap()[&key("a", "")],
        state(5.0, 2)
    );
    let states = store.check_states().await.unwrap();
    assert_eq!(states.len(), 3);
    assert_eq!(
        states["c"],
        CheckState {
            status: Status::Warn,
            failing_since: None,
            value: Some(2.0),
            at: at(1),
        }
    );
    assert_eq!(states["b"].failing_since, Some(at(0)));
}

/// A result naming a run outside the batch breaks the foreign key after runs, results and
/// baselines were written: nothing of the batch may remain, events and check states included.
async fn failed_batch_leaves_nothing_behind(url: &str) {
    let store = Store::open(url).await.unwrap();
    save(&store, single("a", 0, Status::Ok)).await;
    let mut stray = single("b", 1, Status::Crit);
    stray.1[0].run_id = "no-such-run".into();
    let batch = vec![single("a", 1, Status::Crit), stray];
    let err = store
        .save_runs(
            &batch,
            &[(key("a", ""), state(9.0, 9))],
            &[event("result", 1, 1)],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("saving 2 runs (a-1 …)"), "{err}");

    assert_eq!(store.run("a-1").await.unwrap(), None);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    assert!(store.baselines(&["a".into()]).await.unwrap().is_empty());
    let states = store.check_states().await.unwrap();
    assert_eq!(states.keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!((states["a"].status, states["a"].at), (Status::Ok, at(0)));
}

async fn check_state_follows_the_latest_verdicts(url: &str) {
    let store = Store::open(url).await.unwrap();
    let state_of = |check: &'static str| {
        let store = store.clone();
        async move { store.check_states().await.unwrap().remove(check) }
    };
    assert_eq!(state_of("lag").await, None);

    save(&store, single("lag", 0, Status::Ok)).await;
    let s = state_of("lag").await.unwrap();
    assert_eq!(
        (s.status, s.failing_since, s.value, s.at),
        (Status::Ok, None, Some(0.0), at(0))
    );

    save(&store, single("lag", 1, Status::Crit)).await;
    assert_eq!(state_of("lag").await.unwrap().failing_since, Some(at(1)));

    save(&store, verdict("lag", 2, &[("", Status::Error, None)])).await;
    let s = state_of("lag").await.unwrap();
    assert_eq!(
        (s.status, s.failing_since, s.value, s.at),
        (Status::Error, Some(at(1)), None, at(2)),
        "still failing: the streak keeps its start; nothing numeric was measured"
    );

    save(
        &store,
        verdict("lag", 3, &[("", Status::Skipped, Some(99.0))]),
    )
    .await;
    assert_eq!(
        state_of("lag").await.unwrap().at,
        at(2),
        "a skipped run says nothing"
    );

    save(&store, single("lag", 4, Status::Warn)).await;
    let s = state_of("lag").await.unwrap();
    assert_eq!(
        (s.status, s.failing_since),
        (Status::Warn, None),
        "warn ends the streak"
    );

    save(&store, single("lag", 5, Status::Crit)).await;
    let mut late = single("lag", 4, Status::Ok);
    late.0.id = "late".into();
    late.1[0].run_id = "late".into();
    save(&store, late).await;
    let s = state_of("lag").await.unwrap();
    assert_eq!(
        (s.status, s.failing_since, s.at),
        (Status::Crit, Some(at(5)), at(5)),
        "an older run saved late does not replace the newer state"
    );

    let pool = &[
        ("a", Status::Ok, Some(10.0)),
        ("b", Status::Warn, Some(20.0)),
        ("c", Status::Ok, None),
    ];
    save(&store, verdict("pool", 0, pool)).await;
    let s = state_of("pool").await.unwrap();
    assert_eq!(
        (s.status, s.value),
        (Status::Warn, Some(15.0)),
        "worst status, mean value"
    );
    assert_eq!(store.check_states().await.unwrap().len(), 2);
}

async fn failing_streak_across_and_within_batches(url: &str) {
    let store = Store::open(url).await.unwrap();
    let first = vec![single("a", 0, Status::Crit), single("b", 0, Status::Crit)];
    store.save_runs(&first, &[], &[]).await.unwrap();

    let second = vec![
        single("a", 1, Status::Crit),
        single("a", 2, Status::Ok),
        single("a", 3, Status::Error),
        single("b", 1, Status::Crit),
        single("b", 2, Status::Error),
        single("c", 2, Status::Crit),
        single("c", 1, Status::Crit),
    ];
    store.save_runs(&second, &[], &[]).await.unwrap();
    let states = store.check_states().await.unwrap();
    assert_eq!(
        states["a"].failing_since,
        Some(at(3)),
        "recovered inside the batch: the streak restarts"
    );
    assert_eq!(states["a"].status, Status::Error);
    assert_eq!(
        states["b"].failing_since,
        Some(at(0)),
        "failing throughout: the stored start stays"
    );
    assert_eq!(
        (states["c"].failing_since, states["c"].at),
        (Some(at(1)), at(2)),
        "runs are taken in time order, not batch order"
    );
}

async fn scores_keep_a_history_and_the_newest_per_service(url: &str) {
    let store = Store::open(url).await.unwrap();
    let first = [
        score("orders", 0, 80.0),
        score("payments", 0, 90.0),
        score("_overall", 0, 85.0),
    ];
    save_scores(&store, &first).await;
    save_scores(&store, &[score("orders", 1, 60.0)]).await;
    save_scores(&store, &[score("orders", 0, 10.0)]).await;

    let latest = store.latest_scores().await.unwrap();
    assert_eq!(
        latest,
        vec![
            score("_overall", 0, 85.0),
            score("orders", 1, 60.0),
            score("payments", 0, 90.0)
        ],
        "an older score saved late does not replace the newest"
    );
    let history = |since, limit| store.score_history("orders", since, limit);
    let values =
        |h: Vec<patrol::store::ScoreRecord>| h.into_iter().map(|s| s.score).collect::<Vec<_>>();
    assert_eq!(
        values(history(None, 10).await.unwrap()),
        [60.0, 10.0, 80.0],
        "newest first"
    );
    assert_eq!(values(history(Some(at(1)), 10).await.unwrap()), [60.0]);
    assert_eq!(values(history(None, 1).await.unwrap()), [60.0]);
    assert!(
        store
            .score_history("nobody", None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let err = store
        .save_scores(&[score("orders", 2, 50.0), score("payments", 2, 101.0)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("'payments'"), "{err}");
    assert_eq!(
        store.score_history("orders", None, 10).await.unwrap().len(),
        3,
        "nothing saved"
    );
}

async fn job_starts_keep_the_newest_planned_time(url: &str) {
    let store = Store::open(url).await.unwrap();
    assert!(store.job_last_runs().await.unwrap().is_empty());
    let late = Duration::milliseconds(30);
    job_started(&store, "check:a", at(0), at(0) + late).await;
    job_started(&store, "suite:nightly", at(5), at(5) + late).await;
    job_started(&store, "check:a", at(10), at(10) + late).await;
    job_started(&store, "check:a", at(3), at(11)).await;
    let expected = HashMap::from([
        ("check:a".to_string(), at(10)),
        ("suite:nightly".to_string(), at(5)),
    ]);
    assert_eq!(store.job_last_runs().await.unwrap(), expected);
}

async fn baselines_of_one_check_are_deleted(url: &str) {
    let store = Store::open(url).await.unwrap();
    let all = [
        (key("a", ""), state(1.0, 1)),
        (key("a", "eu"), state(2.0, 2)),
        (key("b", ""), state(3.0, 3)),
    ];
    store
        .save_run(&run_record("run-1", at(0), &[]), &[], &all)
        .await
        .unwrap();
    assert_eq!(store.delete_baselines("a").await.unwrap(), 2);
    assert_eq!(store.delete_baselines("a").await.unwrap(), 0);
    let left = store.baselines(&["a".into(), "b".into()]).await.unwrap();
    assert_eq!(left.keys().collect::<Vec<_>>(), [&key("b", "")]);
}

async fn results_are_queried_newest_first(url: &str) {
    let store = Store::open(url).await.unwrap();
    let mut saved = Vec::new();
    for minute in 0..5 {
        let lag = verdict(
            "lag",
            minute,
            &[
                ("db-1", Status::Ok, Some(1.0)),
                ("db-2", Status::Warn, Some(2.0)),
            ],
        );
        let other = single("other", minute, Status::Ok);
        saved.extend(lag.1.clone());
        saved.extend(other.1.clone());
        store.save_runs(&[lag, other], &[], &[]).await.unwrap();
    }
    // Newest first; results of one instant in reverse save order.
    let newest_first = |keep: &dyn Fn(&CheckResult) -> bool| -> Vec<CheckResult> {
        saved.iter().rev().filter(|r| keep(r)).cloned().collect()
    };
    let lag = newest_first(&|r| r.check == "lag");
    let q = |check, since, limit| store.query_results(check, since, limit);
    assert_eq!(ids(&q(Some("lag"), None, 3).await.unwrap()), ids(&lag[..3]));
    assert_eq!(q(Some("lag"), None, 3).await.unwrap(), lag[..3]);
    assert_eq!(q(Some("lag"), Some(at(3)), 100).await.unwrap(), lag[..4]);
    let recent = newest_first(&|r| r.started_at >= at(4));
    assert_eq!(q(None, Some(at(4)), 100).await.unwrap(), recent);
    assert_eq!(
        q(None, None, 2).await.unwrap(),
        newest_first(&|_| true)[..2]
    );
    assert!(q(Some("nope"), None, 10).await.unwrap().is_empty());
}

async fn prune_deletes_history_and_keeps_state(url: &str) {
    let store = Store::open(url).await.unwrap();
    let old = single("a", 0, Status::Crit);
    // A run that straddles the cutoff: one result before it, one after.
    let straddle: Vec<CheckResult> = [9, 11]
        .iter()
        .map(|m| result("straddle", "b", &format!("s{m}"), at(*m)))
        .collect();
    let new = single("a", 20, Status::Crit);
    let batch = vec![
        old,
        (run_record("straddle", at(9), &straddle), straddle),
        new,
    ];
    store
        .save_runs(
            &batch,
            &[(key("a", ""), state(1.0, 1))],
            &[event("result", 0, 1), event("result", 20, 2)],
        )
        .await
        .unwrap();
    save_scores(&store, &[score("gone", 0, 50.0), score("orders", 0, 40.0)]).await;
    save_scores(&store, &[score("orders", 20, 70.0)]).await;
    job_started(&store, "check:a", at(0), at(0)).await;
    let states_before = store.check_states().await.unwrap();

    let counts = store.prune(at(10)).await.unwrap();
    assert_eq!(
        counts,
        PruneCounts {
            results: 2,
            runs: 1,
            scores: 2,
            events: 1,
            notifications: 0,
            ..PruneCounts::default()
        }
    );
    assert_eq!(store.run("a-0").await.unwrap(), None);
    let left = store.results_of_run("straddle").await.unwrap();
    assert_eq!(
        ids(&left),
        [(String::from("straddle"), String::from("s11"))],
        "the run stays while it has results"
    );
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), 1);
    let latest: Vec<String> = store
        .latest_scores()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.service)
        .collect();
    assert_eq!(latest, ["orders"]);
    assert_eq!(
        store.check_states().await.unwrap(),
        states_before,
        "check states are kept"
    );
    assert_eq!(
        store.baselines(&["a".into()]).await.unwrap().len(),
        1,
        "baselines are kept"
    );
    assert_eq!(
        store.job_last_runs().await.unwrap().len(),
        1,
        "job starts are kept"
    );

    assert_eq!(store.prune(at(10)).await.unwrap(), PruneCounts::default());
    let rest = store.prune(at(30)).await.unwrap();
    assert_eq!(
        rest,
        PruneCounts {
            results: 2,
            runs: 2,
            scores: 1,
            events: 1,
            notifications: 0,
            ..PruneCounts::default()
        }
    );
    assert!(store.recent_runs(10).await.unwrap().is_empty());
}

/// More runs, results and events in one save than one multi-row statement takes, and more
/// expired rows than one retention chunk deletes.
async fn large_batches_and_prunes_go_in_chunks(url: &str) {
    let store = Store::open(url).await.unwrap();
    let series: Vec<(String, Status, Option<f64>)> = (0..5)
        .map(|s| (format!("s{s}"), Status::Ok, Some(s as f64)))
        .collect();
    let series: Vec<(&str, Status, Option<f64>)> = series
        .iter()
        .map(|(n, st, v)| (n.as_str(), *st, *v))
        .collect();
    let batch: Vec<_> = (0..1_201)
        .map(|i| verdict(&format!("check-{i}"), 0, &series))
        .collect();
    let events: Vec<_> = (0..1_201).map(|i| event("result", 0, i)).collect();
    let stored = store.save_runs(&batch, &[], &events).await.unwrap();
    assert_eq!(stored.len(), 1_201);
    assert!(stored.windows(2).all(|w| w[0].id < w[1].id));
    let ns: HashSet<u64> = stored
        .iter()
        .map(|e| e.data["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns.len(), 1_201, "every event stored once");
    let states = store.check_states().await.unwrap();
    assert_eq!(states.len(), 1_201);
    assert_eq!(states["check-600"].value, Some(2.0));
    assert_eq!(
        store.results_of_run("check-1200-0").await.unwrap(),
        batch[1_200].1
    );

    let counts = store.prune(at(1)).await.unwrap();
    assert_eq!(
        counts,
        PruneCounts {
            results: 6_005,
            runs: 1_201,
            scores: 0,
            events: 1_201,
            notifications: 0,
            ..PruneCounts::default()
        }
    );
    assert!(
        store
            .query_results(None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The reads the daemon and the API issue all the time must not scan or sort whole tables.
async fn hot_reads_are_served_by_indexes(url: &str) {
    let store = Store::open(url).await.unwrap();
    let postgres = store.backend() == "postgres";
    let expected_index = |read: &str| match (read, postgres) {
        ("events_after", false) => "INTEGER PRIMARY KEY",
        ("events_after", true) => "events_pkey",
        ("query_results(check, since)", _) => "results_check_started",
        ("query_results(since)" | "query_results()", _) => "results_started",
        ("score_history", _) => "scores_service_at",
        (other, _) => panic!("unexpected read {other}"),
    };
    let plans = store.hot_read_plans().await.unwrap();
    assert_eq!(plans.len(), 5);
    for p in plans {
        assert!(
            p.plan.contains(expected_index(p.read)),
            "{}:\n{}",
            p.read,
            p.plan
        );
        for bad in ["Seq Scan", "Sort", "TEMP B-TREE"] {
            assert!(!p.plan.contains(bad), "{} has {bad}:\n{}", p.read, p.plan);
        }
    }
}
