//! `kind: sql` — runs a query in a read-only transaction with a statement timeout and measures a
//! column (one series per row when `series:` names a key column).

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError};
use crate::condition::Condition;
use crate::config::{CheckCommon, Issues};

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlProbe {
    /// The query. It runs read-only: a statement that writes fails the check as `error`.
    pub query: String,
    /// Column to measure (default: the first column).
    #[serde(default)]
    pub value: Option<String>,
    /// Column whose value names the series of each row (one sample per row).
    #[serde(default)]
    pub series: Option<String>,
    #[serde(default)]
    pub expect: SqlExpect,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SqlExpect {
    /// Condition on the number of rows returned.
    pub rows: Option<Condition>,
}

impl Probe for SqlProbe {
    const TARGET_KINDS: &'static [&'static str] = &["postgres", "mysql", "sqlite"];

    fn validate(&self, _check: &CheckCommon, issues: &mut Issues) {
        if self.query.trim().is_empty() {
            issues.at(&["query"], "query is empty");
        }
        issues.condition(&["expect", "rows"], self.expect.rows.as_ref());
    }

    async fn measure(&self, _ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        Err(ProbeError::new("PLACEHOLDER: sql probe"))
    }
}
