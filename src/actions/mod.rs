//! Side-effecting actions shared by playbooks and drills.
//!
//! Each action changes something outside patrol (a Kubernetes object, for now), supports a dry
//! run that changes nothing, and reports what it did as JSON — including what undoing it needs,
//! so that a drill fault built on an action can be reverted from its journal alone.

pub mod kubernetes;
