//! The store: runs, results and baseline state in SQLite (default) or PostgreSQL, same schema.
//! INTERFACE ONLY — being implemented.

use std::collections::HashMap;

use crate::baseline::EwmaState;
use crate::result::{CheckResult, RunRecord};

#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// Identity of a baseline: (check name, series key).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BaselineKey {
    pub check: String,
    pub series: String,
}

pub struct Store {}

impl Store {
    /// Opens (creating when needed) and migrates the store at `url`.
    pub async fn open(_url: &str) -> Result<Store, StoreError> {
        unimplemented!()
    }

    /// Stored baselines of every series of the named checks.
    pub async fn baselines(&self, _checks: &[String]) -> Result<HashMap<BaselineKey, EwmaState>, StoreError> {
        unimplemented!()
    }

    /// Writes a run, its results and the baseline updates in one transaction.
    pub async fn save_run(&self, _run: &RunRecord, _results: &[CheckResult], _baselines: &[(BaselineKey, EwmaState)]) -> Result<(), StoreError> {
        unimplemented!()
    }
}
