//! Probe memories (`probe_memory`): one row per check holding the JSON value its probe left at
//! the end of its last run (see [`crate::probe::memory`]), with the check's measure fingerprint
//! at the time. Rows are written with the run that produced them ([`Store::save_run_with_memory`],
//! [`Store::save_runs_with_memory`]). One row per check, not per fingerprint: a check whose
//! settings changed replaces its row instead of piling up old ones, and the fingerprint stored
//! tells a reader whether the memory still applies. The value is state kept verbatim (pod UIDs
//! and counts), not text for reading.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::chunks::StatementSize;
use super::rows::stored_time;
use super::{BATCH, Pool, Store, StoreError, failed};

/// What a check's probe remembered after a run.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeMemory {
    pub check: String,
    /// The check's measure fingerprint when it was remembered.
    pub fingerprint: String,
    pub state: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

impl ProbeMemory {
    /// The remembered value if it was remembered under `fingerprint` (the check measures as it
    /// did then); `None` when the check changed since.
    pub fn state_for(&self, fingerprint: &str) -> Option<&serde_json::Value> {
        (self.fingerprint == fingerprint).then_some(&self.state)
    }
}

pub const PROBE_MEMORY_COLUMNS: &str = "check_name, fingerprint, state, updated_at";

/// A row of `probe_memory`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ProbeMemoryRow {
    pub check_name: String,
    pub fingerprint: String,
    pub state: Json<serde_json::Value>,
    pub updated_at: DateTime<Utc>,
}

impl ProbeMemoryRow {
    fn into_memory(self) -> ProbeMemory {
        ProbeMemory {
            check: self.check_name,
            fingerprint: self.fingerprint,
            state: self.state.0,
            updated_at: self.updated_at,
        }
    }
}

/// One row per check, the last memory of a check winning (a batch may hold two runs of one
/// check, and PostgreSQL refuses an upsert that touches a row twice).
pub fn memory_rows(memories: &[ProbeMemory]) -> Vec<ProbeMemoryRow> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, m) in memories.iter().enumerate() {
        last.insert(&m.check, i);
    }
    memories
        .iter()
        .enumerate()
        .filter(|(i, m)| last.get(m.check.as_str()) == Some(i))
        .map(|(_, m)| ProbeMemoryRow {
            check_name: m.check.clone(),
            fingerprint: m.fingerprint.clone(),
            state: Json(m.state.clone()),
            updated_at: stored_time(m.updated_at),
        })
        .collect()
}

impl StatementSize for ProbeMemoryRow {
    fn statement_bytes(&self) -> usize {
        let state = serde_json::to_vec(&self.state.0).map_or(0, |v| v.len());
        4 * 20 + self.check_name.len() + self.fingerprint.len() + state
    }
}

impl Store {
    /// The stored memories of the named checks, by check name (checks without one are absent).
    pub async fn probe_memories(
        &self,
        checks: &[String],
    ) -> Result<HashMap<String, ProbeMemory>, StoreError> {
        let mut found = HashMap::new();
        for names in checks.chunks(BATCH) {
            let rows: Vec<ProbeMemoryRow> = on_pool!(self, |pool, Db| {
                let mut q = QueryBuilder::<Db>::new(format!(
                    "SELECT {PROBE_MEMORY_COLUMNS} FROM probe_memory WHERE check_name IN ("
                ));
                let mut list = q.separated(", ");
                for name in names {
                    list.push_bind(name.as_str());
                }
                q.push(")");
                q.build_query_as().fetch_all(pool).await
            })
            .map_err(failed("reading probe memories"))?;
            found.extend(
                rows.into_iter()
                    .map(|r| (r.check_name.clone(), r.into_memory())),
            );
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn memory(check: &str, n: i64) -> ProbeMemory {
        ProbeMemory {
            check: check.into(),
            fingerprint: "f1".into(),
            state: json!({"n": n}),
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_last_memory_of_a_check_wins() {
        let rows = memory_rows(&[memory("a", 1), memory("b", 2), memory("a", 3)]);
        let got: Vec<(&str, &serde_json::Value)> = rows
            .iter()
            .map(|r| (r.check_name.as_str(), &r.state.0))
            .collect();
        assert_eq!(got, [("b", &json!({"n": 2})), ("a", &json!({"n": 3}))]);
    }

    #[test]
    fn memory_applies_only_under_its_fingerprint() {
        let m = memory("a", 1);
        assert_eq!(m.state_for("f1"), Some(&json!({"n": 1})));
        assert_eq!(m.state_for("f2"), None);
    }
}
