//! Health scores as a time series (`scores`) plus the newest score of each service
//! (`latest_scores`), written together so "current scores" reads a few rows, never the history.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::chunks::sized_chunks;
use super::rows::stored_time;
use super::statements::Statements;
use super::{Pool, Store, StoreError, failed, sql_limit};
use crate::score::ServiceScore;

/// One stored score of one service (or of `_overall`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreRecord {
    pub service: String,
    pub at: DateTime<Utc>,
    /// 0–100.
    pub score: f64,
    /// `penalty`, `weighted` or `overall`.
    pub model: String,
    /// The terms that produced the score.
    pub details: serde_json::Value,
}

impl From<&ServiceScore> for ScoreRecord {
    fn from(s: &ServiceScore) -> ScoreRecord {
        ScoreRecord {
            service: s.service.clone(),
            at: s.at,
            score: s.score,
            model: s.model_name().to_string(),
            details: s.details.clone(),
        }
    }
}

pub const SCORE_COLUMNS: &str = "service, at, score, model, details";

/// A row of `scores` and of `latest_scores` (same columns, without the surrogate id).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ScoreRow {
    pub service: String,
    pub at: DateTime<Utc>,
    pub score: f64,
    pub model: String,
    pub details: Json<serde_json::Value>,
}

impl ScoreRow {
    /// The row for `r`; a score outside 0–100 (or NaN) is refused here, where the message can
    /// name the service, rather than by the table's CHECK.
    fn from_record(r: &ScoreRecord) -> Result<ScoreRow, StoreError> {
        if !(0.0..=100.0).contains(&r.score) {
            return Err(StoreError(format!(
                "score {} of service '{}' is outside 0–100",
                r.score, r.service
            )));
        }
        Ok(ScoreRow {
            service: r.service.clone(),
            at: stored_time(r.at),
            score: r.score,
            model: r.model.clone(),
            details: Json(r.details.clone()),
        })
    }

    fn into_record(self) -> ScoreRecord {
        ScoreRecord {
            service: self.service,
            at: self.at,
            score: self.score,
            model: self.model,
            details: self.details.0,
        }
    }
}

/// The newest row of each service in `rows` (the later one on a tie): PostgreSQL refuses an upsert
/// that touches one row twice.
fn newest_per_service(rows: &[ScoreRow]) -> Vec<ScoreRow> {
    let mut newest: HashMap<&str, &ScoreRow> = HashMap::new();
    for r in rows {
        let slot = newest.entry(r.service.as_str()).or_insert(r);
        if r.at >= slot.at {
            *slot = r;
        }
    }
    let mut out: Vec<ScoreRow> = newest.into_values().cloned().collect();
    out.sort_by(|a, b| a.service.cmp(&b.service));
    out
}

impl Store {
    /// Appends scores to the history and updates each service's latest score, in one transaction.
    pub async fn save_scores(&self, scores: &[ScoreRecord]) -> Result<(), StoreError> {
        let rows: Vec<ScoreRow> = scores
            .iter()
            .map(ScoreRow::from_record)
            .collect::<Result<_, _>>()?;
        let latest = newest_per_service(&rows);
        on_pool!(self, |pool, Db| async {
            let mut tx = pool.begin().await?;
            for chunk in sized_chunks(&rows) {
                Db::insert_scores(chunk).build().execute(&mut *tx).await?;
            }
            for chunk in sized_chunks(&latest) {
                Db::upsert_latest_scores(chunk)
                    .build()
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(failed("saving scores"))
    }

    /// The newest score of every service, by service name (byte order, the same on both
    /// backends; PostgreSQL's collation would sort `_overall` differently).
    pub async fn latest_scores(&self) -> Result<Vec<ScoreRecord>, StoreError> {
        let rows: Vec<ScoreRow> = on_pool!(self, |pool, Db| {
            let mut q =
                QueryBuilder::<Db>::new(format!("SELECT {SCORE_COLUMNS} FROM latest_scores"));
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed("reading latest scores"))?;
        let mut scores: Vec<ScoreRecord> = rows.into_iter().map(ScoreRow::into_record).collect();
        scores.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(scores)
    }

    /// Up to `limit` scores of `service` taken at or after `since`, newest first.
    pub async fn score_history(
        &self,
        service: &str,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<ScoreRecord>, StoreError> {
        let rows: Vec<ScoreRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new("");
            push_score_history(&mut q, service, since, limit);
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed(&format!("reading score history of {service}")))?;
        Ok(rows.into_iter().map(ScoreRow::into_record).collect())
    }
}

/// Appends the query behind [`Store::score_history`] to `q`: the index `scores (service, at, id)`
/// read backwards.
pub fn push_score_history<Db: Statements>(
    q: &mut QueryBuilder<Db>,
    service: &str,
    since: Option<DateTime<Utc>>,
    limit: u32,
) where
    for<'q> &'q str: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    i64: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db>,
{
    q.push(format!(
        "SELECT {SCORE_COLUMNS} FROM scores WHERE service = "
    ))
    .push_bind(service);
    if let Some(since) = since {
        q.push(" AND at >= ");
        Db::push_time(q, since);
    }
    q.push(" ORDER BY at DESC, id DESC LIMIT ")
        .push_bind(sql_limit(limit as usize));
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn record(service: &str, minute: i64, score: f64) -> ScoreRecord {
        ScoreRecord {
            service: service.into(),
            at: Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap() + Duration::minutes(minute),
            score,
            model: "penalty".into(),
            details: serde_json::json!({"terms": []}),
        }
    }

    #[test]
    fn scores_outside_the_scale_are_refused_with_the_service_named() {
        for bad in [-0.5, 100.5, f64::NAN] {
            let e = ScoreRow::from_record(&record("orders", 0, bad))
                .unwrap_err()
                .0;
            assert!(e.contains("'orders'") && e.contains("0–100"), "{e}");
        }
        assert!(ScoreRow::from_record(&record("orders", 0, 100.0)).is_ok());
        assert!(ScoreRow::from_record(&record("orders", 0, 0.0)).is_ok());
    }

    #[test]
    fn the_newest_score_of_each_service_is_kept_for_the_latest_table() {
        let rows: Vec<ScoreRow> = [
            record("b", 2, 10.0),
            record("a", 1, 20.0),
            record("b", 3, 30.0),
            record("b", 1, 40.0),
            record("a", 1, 50.0),
        ]
        .iter()
        .map(|r| ScoreRow::from_record(r).unwrap())
        .collect();
        let latest: Vec<(String, f64)> = newest_per_service(&rows)
            .into_iter()
            .map(|r| (r.service, r.score))
            .collect();
        assert_eq!(latest, [("a".into(), 50.0), ("b".into(), 30.0)]);
    }
}
