//! What the shadow report reads: the results recorded in shadow mode within a time window,
//! streamed oldest first so that a long window (48 h of a check every few seconds) is folded one
//! row at a time instead of being held whole. Only the five columns the report needs are read.
//!
//! The window is served by the index `results (started_at, id)`: the scan follows it in index
//! order (no sort) and keeps the rows whose `shadow` flag is set. The flag is tested as a bare
//! column (`WHERE shadow`) rather than compared with a bound value, so a partial index
//! `… WHERE shadow` would be usable by both backends should enforced results come to dwarf
//! shadow ones.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::QueryBuilder;

use super::statements::Statements;
use super::{Pool, Store, StoreError, failed};
use crate::result::Status;

/// One stored result of a check in shadow mode, with only what the shadow report reads.
#[derive(Clone, Debug, PartialEq)]
pub struct ShadowSample {
    pub check: String,
    pub series: String,
    pub status: Status,
    /// Already redacted when it was stored.
    pub message: String,
    pub started_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ShadowRow {
    check_name: String,
    series: String,
    status: String,
    message: String,
    started_at: DateTime<Utc>,
}

impl ShadowRow {
    fn into_sample(self) -> Result<ShadowSample, StoreError> {
        let status = Status::parse(&self.status)
            .ok_or_else(|| StoreError(format!("unknown stored status '{}'", self.status)))?;
        Ok(ShadowSample {
            check: self.check_name,
            series: self.series,
            status,
            message: self.message,
            started_at: self.started_at,
        })
    }
}

const SHADOW_COLUMNS: &str = "check_name, series, status, message, started_at";

impl Store {
    /// Calls `each` with every result recorded in shadow mode and taken within `[since, until]`,
    /// oldest first (results of the same instant in the order they were saved), and returns how
    /// many there were.
    pub async fn each_shadow_result(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        mut each: impl FnMut(ShadowSample),
    ) -> Result<u64, StoreError> {
        let mut seen = 0u64;
        on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {SHADOW_COLUMNS} FROM results WHERE shadow AND started_at >= "
            ));
            <Db as Statements>::push_time(&mut q, since);
            q.push(" AND started_at <= ");
            <Db as Statements>::push_time(&mut q, until);
            q.push(" ORDER BY started_at, id");
            let mut rows = q.build_query_as::<ShadowRow>().fetch(pool);
            while let Some(row) = rows
                .try_next()
                .await
                .map_err(failed("reading shadow results"))?
            {
                each(row.into_sample()?);
                seen += 1;
            }
        });
        Ok(seen)
    }
}
