//! What baselines read back: a check's numeric values over a recent span, per series — the
//! history a `seasonal`/`ets` model is refitted on and the window a `peer` comparison spans.
//! Served by the index `results (check_name, started_at, id)`.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::statements::Statements;
use super::{Pool, Store, StoreError, failed};

/// One stored numeric sample, with the band it was judged against (if any).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct HistoryPoint {
    pub series: String,
    pub started_at: DateTime<Utc>,
    pub value: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// The method that drew the band (`ewma (seasonal learning: …)` for a fallback).
    pub method: Option<String>,
}

impl HistoryPoint {
    /// Whether the sample lay outside the band it was judged against.
    pub fn was_outside(&self) -> bool {
        self.lower.is_some_and(|l| self.value < l) || self.upper.is_some_and(|u| self.value > u)
    }
}

impl Store {
    /// Numeric values of `check` since `since` (shadow results too: a shadow check learns like
    /// an enforced one), oldest first.
    pub async fn value_history(
        &self,
        check: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<HistoryPoint>, StoreError> {
        on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "SELECT series, started_at, value_num AS value, baseline_lower AS lower, \
                 baseline_upper AS upper, baseline_method AS method FROM results WHERE check_name = ",
            );
            q.push_bind(check);
            q.push(" AND value_num IS NOT NULL AND started_at >= ");
            <Db as Statements>::push_time(&mut q, since);
            q.push(" ORDER BY started_at, id");
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed(&format!("reading the value history of {check}")))
    }
}
