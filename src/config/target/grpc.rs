//! A `kind: grpc` target — placeholder while it is being written.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Grpc endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcTarget {
    /// Base URL.
    pub url: String,
}

impl GrpcTarget {
    /// Problems beyond types, by field.
    pub fn validate(&self, _issues: &mut crate::config::Issues) {}
}
