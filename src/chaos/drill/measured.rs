//! The value of each `verify:` metric, read from the workload reports and the recovery time.
//! Reports are read through their JSON form (field paths below), the shape the drill report
//! stores, so what is verified is exactly what the report shows.

use std::time::Duration;

use super::metric::show_millis;
use super::spec::Metric;
use crate::chaos::workload::{HttpWorkloadReport, SseWorkloadReport};

/// A metric's value (milliseconds for durations) or why there is none.
pub fn value(
    metric: Metric,
    sse: Option<&SseWorkloadReport>,
    http: Option<&HttpWorkloadReport>,
    recovery_ms: Option<f64>,
    drain: Duration,
) -> Result<f64, String> {
    let sse_json = sse.and_then(|r| serde_json::to_value(r).ok());
    let http_json = http.and_then(|r| serde_json::to_value(r).ok());
    let from_sse = |pointer: &str| read(sse_json.as_ref(), pointer, "the sse workload");
    let from_http = |pointer: &str| read(http_json.as_ref(), pointer, "the http workload");
    match metric {
        Metric::Lost => from_sse("/lost"),
        Metric::Duplicates => from_sse("/duplicates"),
        Metric::OutOfOrder => from_sse("/out_of_order"),
        Metric::ReconnectP99 => from_sse("/reconnect_ms/p99"),
        Metric::MaxGap => from_sse("/max_gap_ms"),
        Metric::SuccessRate => from_http("/success_rate"),
        // An HTTP workload's request latency when there is one; else the SSE delivery latency.
        Metric::LatencyP99 if http.is_some() => from_http("/latency_ms/p99"),
        Metric::LatencyP99 => from_sse("/latency_ms/p99"),
        Metric::Recovery => recovery_ms.ok_or_else(|| {
            format!(
                "the steady state did not hold again before the drain ended ({})",
                show_millis(drain.as_secs_f64() * 1000.0)
            )
        }),
    }
}

fn read(report: Option<&serde_json::Value>, pointer: &str, what: &str) -> Result<f64, String> {
    let Some(report) = report else {
        return Err(format!("{what} did not report"));
    };
    match report.pointer(pointer) {
        Some(v) => v.as_f64().ok_or_else(|| {
            format!(
                "{what} measured no {}",
                pointer.trim_start_matches('/').replace('/', " ")
            )
        }),
        None => Err(format!("{what} has no {pointer}")),
    }
}
