//! `rate_limit: 3/h` — at most so many runs of a playbook per key in a sliding window, counted
//! in the store (shared by every daemon and command line run using it).

use chrono::{DateTime, Utc};

use super::lock::clock;
use crate::playbook::spec::RateLimit;
use crate::store::{Admission, Store};

/// Admits run `run_id` of (`playbook`, `key`) under `limit` at `now`, counting it; Err says how
/// many ran in the window and when the next is allowed. A store that cannot be reached refuses
/// too: the limit cannot be known.
pub async fn admit(
    store: &Store,
    playbook: &str,
    key: &str,
    run_id: &str,
    limit: RateLimit,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let window = chrono::Duration::from_std(limit.per).unwrap_or(chrono::Duration::MAX);
    let window_start = now
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    match store
        .admit_playbook_run(playbook, key, run_id, limit.count, window_start, now)
        .await
    {
        Ok(Admission::Admitted) => Ok(()),
        Ok(Admission::Refused(admitted)) => Err(refusal(key, limit, &admitted, window)),
        Err(e) => Err(format!("could not check the rate limit of {key}: {e}")),
    }
}

/// "rate limit 3/1h reached for KEY: 3 runs since 14:02 UTC; next allowed at 15:02:11 UTC".
/// `admitted` (oldest first) holds at least `limit.count` times.
fn refusal(
    key: &str,
    limit: RateLimit,
    admitted: &[DateTime<Utc>],
    window: chrono::Duration,
) -> String {
    let first = admitted.first().copied().unwrap_or_else(Utc::now);
    // The next run fits once all but count − 1 of these have left the window.
    let freeing = admitted.len().saturating_sub(limit.count as usize);
    let next = admitted.get(freeing).copied().unwrap_or(first) + window;
    format!(
        "rate limit {}/{} reached for {key}: {} runs since {}; next allowed at {}",
        limit.count,
        crate::config::duration::format(limit.per),
        admitted.len(),
        first.format("%H:%M UTC"),
        clock(next)
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_third_run_in_an_hour_is_refused_with_when_the_next_may_run() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let limit = RateLimit::parse("2/h").unwrap();
        let t0 = "2030-01-02T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let t1 = t0 + chrono::Duration::minutes(5);
        admit(&store, "fix", "fix:db1", "a", limit, t0)
            .await
            .unwrap();
        admit(&store, "fix", "fix:db1", "b", limit, t1)
            .await
            .unwrap();
        // Another key has its own budget.
        admit(&store, "fix", "fix:db2", "c", limit, t1)
            .await
            .unwrap();
        let e = admit(
            &store,
            "fix",
            "fix:db1",
            "d",
            limit,
            t1 + chrono::Duration::minutes(1),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e,
            "rate limit 2/1h reached for fix:db1: 2 runs since 10:00 UTC; next allowed at 2030-01-02 11:00:00 UTC"
        );
        admit(
            &store,
            "fix",
            "fix:db1",
            "e",
            limit,
            t0 + chrono::Duration::from_std(Duration::from_secs(3601)).unwrap(),
        )
        .await
        .unwrap();
    }

    #[test]
    fn a_lowered_limit_waits_for_enough_runs_to_leave_the_window() {
        let t0 = "2030-01-02T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let admitted: Vec<_> = (0..3).map(|i| t0 + chrono::Duration::minutes(i)).collect();
        let limit = RateLimit::parse("1/h").unwrap();
        let text = refusal("k", limit, &admitted, chrono::Duration::hours(1));
        assert!(
            text.ends_with("next allowed at 2030-01-02 11:02:00 UTC"),
            "{text}"
        );
        assert!(text.contains("3 runs since 10:00 UTC"), "{text}");
    }
}
