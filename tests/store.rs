//! The store against real backends: every behaviour test runs once on a fresh SQLite file and once
//! on a fresh PostgreSQL database, with the same body.

mod common;

#[path = "store_support/mod.rs"]
mod fixtures;

use std::collections::HashMap;

use chrono::Duration;
use fixtures::{key, result, run_record, state, t0, varied_results};
use patrol::baseline::EwmaState;
use patrol::result::CheckResult;
use patrol::store::Store;

use common::on_both_backends;

on_both_backends!(
    migrations_are_idempotent,
    saved_run_reads_back_field_for_field,
    timestamps_keep_microseconds,
    second_save_overwrites_baselines,
    failed_save_leaves_nothing_behind,
    duplicate_run_id_changes_nothing,
    failed_baseline_update_rolls_back_the_run,
    baselines_are_filtered_by_check_names,
    recent_reads_are_newest_first_and_limited,
    large_runs_are_saved_in_batches,
);

async fn migrations_are_idempotent(url: &str) {
    let store = Store::open(url).await.unwrap();
    let results = vec![result("run-1", "a", "", t0())];
    let run = run_record("run-1", t0(), &results);
    store.save_run(&run, &results, &[]).await.unwrap();
    drop(store);
    let again = Store::open(url)
        .await
        .expect("opening a migrated store again");
    assert_eq!(again.run("run-1").await.unwrap(), Some(run));
    Store::open(url).await.expect("and a third time");
}

async fn saved_run_reads_back_field_for_field(url: &str) {
    let store = Store::open(url).await.unwrap();
    let results = varied_results("run-varied");
    let run = run_record("run-varied", t0(), &results);
    let baselines = vec![
        (key("orders-latency", ""), state(100.5, 40)),
        (key("mysql-lag", "db-2"), EwmaState::default()),
    ];
    store.save_run(&run, &results, &baselines).await.unwrap();

    assert_eq!(store.run("run-varied").await.unwrap(), Some(run.clone()));
    assert_eq!(store.run("no-such-run").await.unwrap(), None);
    assert_eq!(store.results_of_run("run-varied").await.unwrap(), results);
    assert_eq!(store.recent_runs(10).await.unwrap(), vec![run]);
    let stored = store
        .baselines(&["orders-latency".into(), "mysql-lag".into()])
        .await
        .unwrap();
    assert_eq!(stored, baselines.into_iter().collect::<HashMap<_, _>>());
}

async fn timestamps_keep_microseconds(url: &str) {
    let store = Store::open(url).await.unwrap();
    let with_nanos = t0() + Duration::nanoseconds(789);
    let results = vec![result("run-ns", "a", "", with_nanos)];
    let run = run_record("run-ns", with_nanos, &results);
    store
        .save_run(
            &run,
            &results,
            &[(
                key("a", ""),
                EwmaState {
                    updated_at: Some(with_nanos),
                    ..state(1.0, 1)
                },
            )],
        )
        .await
        .unwrap();

    let read = store.run("run-ns").await.unwrap().unwrap();
    assert_eq!(
        read.started_at,
        t0(),
        "nanoseconds are cut to PostgreSQL's microseconds in both backends"
    );
    assert_eq!(
        store.results_of_run("run-ns").await.unwrap()[0].started_at,
        t0()
    );
    let stored = store.baselines(&["a".into()]).await.unwrap();
    assert_eq!(stored[&key("a", "")].updated_at, Some(t0()));
}

async fn second_save_overwrites_baselines(url: &str) {
    let store = Store::open(url).await.unwrap();
    let first = vec![
        (key("a", ""), state(10.0, 1)),
        (key("a", "eu"), state(20.0, 1)),
    ];
    store
        .save_run(&run_record("run-1", t0(), &[]), &[], &first)
        .await
        .unwrap();
    let second = vec![(key("a", ""), state(11.0, 2))];
    store
        .save_run(
            &run_record("run-2", t0() + Duration::minutes(1), &[]),
            &[],
            &second,
        )
        .await
        .unwrap();

    let stored = store.baselines(&["a".into()]).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[&key("a", "")],
        state(11.0, 2),
        "the second save wins"
    );
    assert_eq!(
        stored[&key("a", "eu")],
        state(20.0, 1),
        "series not updated stay as they were"
    );
}

/// A result naming a run that does not exist violates the foreign key after the run row and the
/// first result were already written: the whole save must be rolled back.
async fn failed_save_leaves_nothing_behind(url: &str) {
    let store = Store::open(url).await.unwrap();
    let before = vec![(key("a", ""), state(10.0, 5))];
    let kept = vec![result("run-1", "a", "", t0())];
    store
        .save_run(&run_record("run-1", t0(), &kept), &kept, &before)
        .await
        .unwrap();

    let later = t0() + Duration::minutes(5);
    let broken = vec![
        result("run-2", "a", "", later),
        result("run-elsewhere", "b", "", later),
    ];
    let updates = vec![
        (key("a", ""), state(99.0, 6)),
        (key("new", ""), state(1.0, 1)),
    ];
    let err = store
        .save_run(&run_record("run-2", later, &broken), &broken, &updates)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("saving run run-2"), "{err}");

    assert_eq!(
        store.run("run-2").await.unwrap(),
        None,
        "the run row is rolled back"
    );
    assert!(
        store.results_of_run("run-2").await.unwrap().is_empty(),
        "no partial results"
    );
    assert_eq!(store.recent_results("a", "", 10).await.unwrap(), kept);
    let stored = store.baselines(&["a".into(), "new".into()]).await.unwrap();
    assert_eq!(
        stored,
        before.into_iter().collect::<HashMap<_, _>>(),
        "no baseline change"
    );
}

async fn duplicate_run_id_changes_nothing(url: &str) {
    let store = Store::open(url).await.unwrap();
    let before = vec![(key("a", ""), state(10.0, 5))];
    let first = vec![result("run-1", "a", "", t0())];
    store
        .save_run(&run_record("run-1", t0(), &first), &first, &before)
        .await
        .unwrap();

    let again = vec![result("run-1", "a", "", t0() + Duration::minutes(1))];
    let err = store
        .save_run(
            &run_record("run-1", t0(), &again),
            &again,
            &[(key("a", ""), state(50.0, 6))],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("saving run run-1"), "{err}");
    assert_eq!(store.results_of_run("run-1").await.unwrap(), first);
    assert_eq!(
        store.baselines(&["a".into()]).await.unwrap()[&key("a", "")],
        state(10.0, 5)
    );
}

/// The baseline upsert is the last statement of a save; when it fails (a negative variance breaks
/// the table's CHECK), the run and results written before it are rolled back too.
async fn failed_baseline_update_rolls_back_the_run(url: &str) {
    let store = Store::open(url).await.unwrap();
    let results = vec![result("run-1", "a", "", t0())];
    let bad = EwmaState {
        var: -1.0,
        ..state(10.0, 5)
    };
    let updates = vec![(key("a", ""), state(10.0, 5)), (key("b", ""), bad)];
    let err = store
        .save_run(&run_record("run-1", t0(), &results), &results, &updates)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("saving run run-1"), "{err}");
    assert_eq!(store.run("run-1").await.unwrap(), None);
    assert!(store.recent_results("a", "", 10).await.unwrap().is_empty());
    assert!(
        store
            .baselines(&["a".into(), "b".into()])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn baselines_are_filtered_by_check_names(url: &str) {
    let store = Store::open(url).await.unwrap();
    let all = vec![
        (key("a", ""), state(1.0, 1)),
        (key("a", "eu"), state(2.0, 2)),
        (key("b", ""), state(3.0, 3)),
        (key("c", "x"), state(4.0, 4)),
    ];
    store
        .save_run(&run_record("run-1", t0(), &[]), &[], &all)
        .await
        .unwrap();

    let picked = store
        .baselines(&["a".into(), "c".into(), "unknown".into()])
        .await
        .unwrap();
    let mut keys: Vec<_> = picked.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, vec![key("a", ""), key("a", "eu"), key("c", "x")]);
    assert!(store.baselines(&[]).await.unwrap().is_empty());
    assert!(
        store.baselines(&["A".into()]).await.unwrap().is_empty(),
        "names are case-sensitive"
    );
}

async fn recent_reads_are_newest_first_and_limited(url: &str) {
    let store = Store::open(url).await.unwrap();
    let mut runs = Vec::new();
    for i in 0..4i64 {
        let at = t0() + Duration::minutes(i);
        let id = format!("run-{i}");
        let results = vec![
            result(&id, "lag", "db-1", at),
            result(&id, "lag", "db-2", at),
            result(&id, "other", "db-1", at),
        ];
        let run = run_record(&id, at, &results);
        store.save_run(&run, &results, &[]).await.unwrap();
        runs.push((run, results));
    }
    let recent = store.recent_results("lag", "db-1", 2).await.unwrap();
    assert_eq!(recent, vec![runs[3].1[0].clone(), runs[2].1[0].clone()]);
    assert_eq!(
        store
            .recent_results("lag", "db-1", 100)
            .await
            .unwrap()
            .len(),
        4
    );
    assert!(
        store
            .recent_results("lag", "db-3", 10)
            .await
            .unwrap()
            .is_empty()
    );

    let ids: Vec<String> = store
        .recent_runs(3)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["run-3", "run-2", "run-1"]);
    assert_eq!(store.recent_runs(3).await.unwrap()[0], runs[3].0);
}

/// More results and baselines than one multi-row statement takes, all in one save.
async fn large_runs_are_saved_in_batches(url: &str) {
    let store = Store::open(url).await.unwrap();
    let results: Vec<CheckResult> = (0..1_201)
        .map(|i| {
            result(
                "run-big",
                &format!("check-{i}"),
                "",
                t0() + Duration::microseconds(i),
            )
        })
        .collect();
    let updates: Vec<_> = (0..1_201)
        .map(|i| (key(&format!("check-{i}"), ""), state(i as f64, 3)))
        .collect();
    store
        .save_run(&run_record("run-big", t0(), &results), &results, &updates)
        .await
        .unwrap();

    assert_eq!(
        store.results_of_run("run-big").await.unwrap(),
        results,
        "all results, in saved order"
    );
    let names: Vec<String> = (0..1_201).map(|i| format!("check-{i}")).collect();
    assert_eq!(store.baselines(&names).await.unwrap().len(), 1_201);
}

#[tokio::test]
async fn unknown_scheme_names_the_accepted_ones() {
    let err = Store::open("mysql://root:hunter22@127.0.0.1/test")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sqlite://") && err.contains("sqlite::memory:") && err.contains("postgres://"),
        "{err}"
    );
    assert!(!err.contains("hunter22"), "{err}");
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let err = Store::open(&format!("sqlite://{}", missing.join("p.db").display()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("directory {} does not exist", missing.display())),
        "{err}"
    );
    assert!(!missing.exists(), "nothing is created on the way");
}

#[tokio::test]
async fn sqlite_relative_path_is_taken_from_the_current_directory() {
    // A relative URL resolves against the process's working directory; the test binary runs in
    // the crate root, so use a unique name and remove it (and its WAL files) afterwards.
    let name = format!("{}.db", common::unique_name("store_rel"));
    let store = Store::open(&format!("sqlite://{name}")).await.unwrap();
    let exists = std::path::Path::new(&name).exists();
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{name}{suffix}"));
    }
    assert!(exists, "{name} was created in the current directory");
}

#[tokio::test]
async fn sqlite_memory_store_works_and_is_private() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let results = varied_results("run-m");
    let run = run_record("run-m", t0(), &results);
    store
        .save_run(&run, &results, &[(key("a", ""), state(1.0, 1))])
        .await
        .unwrap();
    assert_eq!(store.results_of_run("run-m").await.unwrap(), results);
    let other = Store::open("sqlite::memory:").await.unwrap();
    assert_eq!(
        other.run("run-m").await.unwrap(),
        None,
        "each in-memory store is its own database"
    );
}

/// A daemon and a CLI run share one SQLite file: concurrent writers from two stores all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_share_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let (daemon, cli) = (
        Store::open(&url).await.unwrap(),
        Store::open(&url).await.unwrap(),
    );
    let write = |store: Store, who: &'static str| async move {
        for i in 0..20i64 {
            let id = format!("{who}-{i}");
            let results = vec![result(&id, who, "", t0() + Duration::seconds(i))];
            store
                .save_run(
                    &run_record(&id, t0(), &results),
                    &results,
                    &[(key(who, ""), state(i as f64, i as u64 + 1))],
                )
                .await
                .unwrap();
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(write(daemon.clone(), "daemon")),
        tokio::spawn(write(cli, "cli"))
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(daemon.recent_runs(100).await.unwrap().len(), 40);
    assert_eq!(
        daemon
            .baselines(&["daemon".into(), "cli".into()])
            .await
            .unwrap()[&key("cli", "")]
            .samples,
        20
    );
}

#[tokio::test]
async fn postgres_errors_name_the_host_not_the_password() {
    patrol::install_crypto_provider();
    let err = Store::open("postgres://patrol:Sup3r%40Secret@127.0.0.1:1/inspections")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:1/inspections"), "{err}");
    assert!(!err.contains("Sup3r"), "{err}");
}

#[tokio::test]
async fn postgresql_scheme_and_a_password_are_accepted_and_never_shown() {
    patrol::install_crypto_provider();
    // The test server trusts loopback, so the password is accepted and ignored.
    let url = common::fresh_pg_database().await.replacen(
        "postgres://postgres@",
        "postgresql://postgres:Debug-Pw-4711@",
        1,
    );
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    let shown = format!("{store:?}");
    assert!(!shown.contains("Debug-Pw-4711"), "{shown}");
}

/// The two migration folders must describe the same logical schema: same tables, same columns.
#[tokio::test]
async fn both_backends_have_the_same_tables_and_columns() {
    use sqlx::Connection;
    patrol::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let pg_url = common::fresh_pg_database().await;
    Store::open(&pg_url).await.unwrap();

    let mut lite = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mut lite_columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE '\\_%' ESCAPE '\\' AND m.name NOT LIKE 'sqlite%' \
         ORDER BY m.name, p.name",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap();
    let mut pg = sqlx::PgConnection::connect(&pg_url).await.unwrap();
    let mut pg_columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_%' ORDER BY 1, 2",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    lite_columns.sort();
    pg_columns.sort();
    assert_eq!(lite_columns, pg_columns);
    assert!(lite_columns.contains(&("results".into(), "started_at".into())));

    let started_type: String = sqlx::query_scalar(
        "SELECT data_type::text FROM information_schema.columns WHERE table_name = 'results' AND column_name = 'started_at'",
    )
    .fetch_one(&mut pg)
    .await
    .unwrap();
    assert_eq!(started_type, "timestamp with time zone");
}
