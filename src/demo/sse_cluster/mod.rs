//! A small SSE push cluster (nodes sharing one event log) for the drill demo and the tests.
//!
//! Each node is a separate process (`patrol demo sse-node`, hidden) so a drill can kill, pause and
//! restart it; nodes share a SQLite event log, so a client resumes with `Last-Event-ID` on any
//! node, within that node's bounded replay buffer. [`SseCluster`] starts N of them.

mod cluster;
mod hub;
mod log;
mod node;

pub use cluster::{ClusterOptions, NodeOptions, READY_PREFIX, SseCluster, SseNode};
pub use log::{EventLog, LoggedEvent};
pub use node::{HEARTBEAT, RETRY_MS, SseNodeArgs, run_node};
