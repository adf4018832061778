//! The event log behind the SSE stream, on both backends: ids only grow, and a reader following
//! with `events_after` sees every event once, also while writers append concurrently.

use patrol::result::Status;
use patrol::store::{Store, StoredEvent};

use crate::common::on_both_backends;
use crate::daemon_fixtures::{at, event, single};
use crate::fixtures::run_record;

on_both_backends!(
    event_ids_grow_and_resume_reads_each_once,
    concurrent_appends_are_read_in_order_with_none_missed,
);

async fn event_ids_grow_and_resume_reads_each_once(url: &str) {
    let store = Store::open(url).await.unwrap();
    assert!(store.append_events(&[]).await.unwrap().is_empty());
    let mut all = store
        .append_events(&[
            event("result", 0, 1),
            event("score", 0, 2),
            event("reload", 1, 3),
        ])
        .await
        .unwrap();
    all.extend(
        store
            .save_runs(
                &[single("a", 2, Status::Ok)],
                &[],
                &[event("result", 2, 4), event("result", 2, 5)],
            )
            .await
            .unwrap(),
    );
    let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["result", "score", "reload", "result", "result"]);

    assert_eq!(store.events_after(0, 100).await.unwrap(), all);
    assert_eq!(store.events_after(ids[1], 2).await.unwrap(), all[2..4]);
    assert!(store.events_after(ids[4], 10).await.unwrap().is_empty());
    // Paging through with a small limit yields every event exactly once.
    let (mut paged, mut last) = (Vec::new(), 0);
    for _ in 0..10 {
        let page = store.events_after(last, 2).await.unwrap();
        let Some(end) = page.last() else { break };
        last = end.id;
        paged.extend(page);
    }
    assert_eq!(paged, all);

    let pruned = store.prune(at(60)).await.unwrap();
    assert_eq!(pruned.events, 5);
    let next = store
        .append_events(&[event("result", 61, 6)])
        .await
        .unwrap();
    assert!(
        next[0].id > ids[4],
        "ids are never reused, not even after pruning the newest"
    );
}

/// Writers append concurrently while a reader follows with `events_after`: the reader must see
/// every event once, in increasing id order. An id that became visible after a larger one (a
/// transaction committing out of order) would be skipped by the reader and fail the count.
async fn concurrent_appends_are_read_in_order_with_none_missed(url: &str) {
    const WRITERS: usize = 4;
    const APPENDS: usize = 25;
    let store = Store::open(url).await.unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                for i in 0..APPENDS {
                    let id = format!("w{w}-{i}");
                    let run = run_record(&id, at(0), &[]);
                    let events = [event("result", 0, (w * APPENDS + i) as u64)];
                    written.extend(
                        store
                            .save_runs(&[(run, vec![])], &[], &events)
                            .await
                            .unwrap(),
                    );
                }
                written
            })
        })
        .collect();

    let mut seen = Vec::new();
    let mut last = 0;
    let mut read = |page: Vec<StoredEvent>, last: &mut i64| {
        for e in page {
            assert!(e.id > *last, "ids arrive in increasing order");
            *last = e.id;
            seen.push(e.id);
        }
    };
    while !writers.iter().all(|w| w.is_finished()) {
        read(store.events_after(last, 1_000).await.unwrap(), &mut last);
        tokio::task::yield_now().await;
    }
    read(store.events_after(last, 1_000).await.unwrap(), &mut last);

    let mut written = Vec::new();
    for w in writers {
        written.extend(w.await.unwrap().into_iter().map(|e| e.id));
    }
    written.sort();
    assert_eq!(written.len(), WRITERS * APPENDS);
    assert_eq!(seen, written, "the reader saw every event exactly once");
}
