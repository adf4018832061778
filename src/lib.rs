//! patrol: scheduled inspections with dynamic baselines, health scores, alerts and chaos drills.
//!
//! The layout follows the architecture: `config` reads rule files, `probe` measures, `baseline`
//! learns what is normal, `engine` runs checks and judges results, `store` keeps them, `cli` is the
//! command line.

pub mod actions;
pub mod alert;
pub mod api;
pub mod baseline;
pub mod bench;
pub mod chaos;
pub mod cli;
pub mod condition;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod playbook;
pub mod probe;
pub mod report;
pub mod result;
pub mod schedule;
pub mod score;
pub mod secrets;
pub mod sse;
pub mod store;
pub mod tls;

/// Installs the ring crypto provider for rustls. Must run before any TLS client is built
/// (reqwest, sqlx, redis); calling it twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
