//! Server-Sent Events: a WHATWG-conforming incremental parser shared by the drill workload, the demo cluster and probes.

mod parser;

pub use parser::{SseEvent, SseItem, SseParser};
