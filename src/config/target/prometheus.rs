//! A `kind: prometheus` target — placeholder while it is being written.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusTarget {
    /// Base URL.
    pub url: String,
}

impl PrometheusTarget {
    /// Problems beyond types, by field.
    pub fn validate(&self, _issues: &mut crate::config::Issues) {}
}
