//! A `kind: consul` target — placeholder while it is being written.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Consul endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsulTarget {
    /// Base URL.
    pub url: String,
}

impl ConsulTarget {
    /// Problems beyond types, by field.
    pub fn validate(&self, _issues: &mut crate::config::Issues) {}
}
