//! Chaos drills: a steady state, a workload, faults on a timeline, abort conditions, verification,
//! guaranteed rollback and a report.
//!
//! `proxy` is the built-in TCP fault proxy (toxics); `fault` holds one file per fault kind behind the
//! `Fault` trait, with the journal that makes every injected fault revertible even after kill -9;
//! `workload` drives load (an SSE swarm with zero-loss accounting, constant-rate HTTP); `drill`
//! reads drill files and runs them.

pub mod drill;
pub mod fault;
pub mod proxy;
pub mod workload;
