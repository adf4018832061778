//! `patrol validate --online`: connect to every target (being implemented).

use crate::config::{Diagnostic, RuleSet};

pub async fn ping_all(_rules: &RuleSet) -> Vec<Diagnostic> {
    unimplemented!()
}
