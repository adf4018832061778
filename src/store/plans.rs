//! How the backend executes the reads the daemon issues all the time: the SSE backlog
//! (`events_after`), the results API (`query_results`) and score history. These must stay on
//! indexes as tables grow to millions of rows; the plans make that checkable (and visible when
//! diagnosing a slow store).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::QueryBuilder;

use super::events::push_events_after;
use super::scores::push_score_history;
use super::statements::Statements;
use super::{Pool, Store, StoreError, failed, push_query_results};

/// The plan of one read, as the backend describes it (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN`
/// on PostgreSQL), one plan line per line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueryPlan {
    /// Which read: `events_after`, `query_results(check, since)`, `query_results(since)`,
    /// `query_results()`, `score_history`.
    pub read: &'static str,
    pub plan: String,
}

/// The reads whose plans are reported.
#[derive(Clone, Copy, Debug)]
enum HotRead {
    EventsAfter,
    ResultsOfCheckSince,
    ResultsSince,
    NewestResults,
    ScoreHistory,
}

impl HotRead {
    const ALL: [HotRead; 5] = [
        HotRead::EventsAfter,
        HotRead::ResultsOfCheckSince,
        HotRead::ResultsSince,
        HotRead::NewestResults,
        HotRead::ScoreHistory,
    ];

    /// The name [`QueryPlan::read`] gives it.
    fn name(self) -> &'static str {
        match self {
            HotRead::EventsAfter => "events_after",
            HotRead::ResultsOfCheckSince => "query_results(check, since)",
            HotRead::ResultsSince => "query_results(since)",
            HotRead::NewestResults => "query_results()",
            HotRead::ScoreHistory => "score_history",
        }
    }

    /// The read's query, with `prefix` (the EXPLAIN keyword) in front.
    fn query<Db: Statements>(self, prefix: &str) -> QueryBuilder<Db>
    where
        for<'q> &'q str: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
        i64: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    {
        let mut q = QueryBuilder::<Db>::new(prefix);
        let since = Some(sample_time());
        match self {
            HotRead::EventsAfter => push_events_after(&mut q, 0, 100),
            HotRead::ResultsOfCheckSince => push_query_results(&mut q, Some("check"), since, 100),
            HotRead::ResultsSince => push_query_results(&mut q, None, since, 100),
            HotRead::NewestResults => push_query_results(&mut q, None, None, 100),
            HotRead::ScoreHistory => push_score_history(&mut q, "service", since, 100),
        }
        q
    }
}

/// A stand-in value for a bound time: plans do not depend on it.
fn sample_time() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

impl Store {
    /// The plans of the hot reads. On PostgreSQL sequential scans, bitmap scans and sorts are
    /// disabled for the `EXPLAIN` (inside a transaction that is rolled back), so the plan says
    /// whether an index CAN serve the read's filter and order, whatever the tables hold right now:
    /// on a small table the planner would rightly scan and sort instead. A plan that still shows
    /// a scan or a sort has no index to use.
    pub async fn hot_read_plans(&self) -> Result<Vec<QueryPlan>, StoreError> {
        let mut plans = Vec::new();
        for read in HotRead::ALL {
            let plan = self
                .explain(read)
                .await
                .map_err(failed(&format!("explaining {}", read.name())))?;
            plans.push(QueryPlan {
                read: read.name(),
                plan,
            });
        }
        Ok(plans)
    }

    async fn explain(&self, read: HotRead) -> Result<String, sqlx::Error> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut q = read.query::<sqlx::Sqlite>("EXPLAIN QUERY PLAN ");
                let rows: Vec<(i64, i64, i64, String)> = q.build_query_as().fetch_all(pool).await?;
                Ok(lines(rows.into_iter().map(|(_, _, _, detail)| detail)))
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for setting in ["enable_seqscan", "enable_bitmapscan", "enable_sort"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL {setting} = off")))
                        .execute(&mut *tx)
                        .await?;
                }
                let mut q = read.query::<sqlx::Postgres>("EXPLAIN ");
                let rows: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await?;
                tx.rollback().await?;
                Ok(lines(rows))
            }
        }
    }
}

fn lines(rows: impl IntoIterator<Item = String>) -> String {
    rows.into_iter().collect::<Vec<_>>().join("\n")
}
