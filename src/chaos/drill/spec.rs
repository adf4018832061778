//! The drill file model (`kind: drill`), as loaded and validated by [`super::load`].
//!
//! ```yaml
//! kind: drill
//! name: sse-node-crash
//! steady_state: [ { check: sse-gateway-health }, { check: orders-api, tolerance: warn } ]
//! workload: { sse: { url: …, subscribers: 2000, publish: {…}, sequence: "json:$.seq" } }
//! proxies: [ { name: lb, listen: "127.0.0.1:28080", upstream: ["127.0.0.1:18081"] } ]
//! faults:
//!   - { at: 10s, for: 20s, process: { pidfile: /run/sse-2.pid, action: kill, … } }
//! abort_when: [ { check: sse-gateway-health, failures: 3 }, { wall_time: { above: 10m } } ]
//! verify: { lost: eq(0), reconnect_p99: lt(5s), recovery: lt(30s), checks: { orders-api: ok } }
//! rollback: [ { command: [systemctl, start, sse-2], timeout: 30s } ]
//! drain: 10s
//! probe_interval: 5s
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::metric::{MetricCondition, Quantity};
use crate::chaos::fault::FaultSpec;
use crate::chaos::fault::command::CommandLine;
use crate::chaos::proxy::ProxySpec;
use crate::chaos::workload::{HttpWorkloadSpec, SseWorkloadSpec};
use crate::config::{Check, RuleSet};
use crate::result::Status;

/// Default time the workload keeps running after the last fault, so late events arrive.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);
/// Default time between two steady-state probes during the fault phase.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// A validated drill, ready to run.
#[derive(Clone, Debug)]
pub struct Drill {
    pub name: String,
    pub description: Option<String>,
    /// The drill file.
    pub file: PathBuf,
    /// The rules its checks come from (targets of Redis faults, score models).
    pub rules: Arc<RuleSet>,
    pub steady_state: Vec<SteadyCheck>,
    pub workload: Workload,
    pub proxies: Vec<ProxySpec>,
    /// In file order; `index` is the position in the file.
    pub faults: Vec<TimedFault>,
    pub abort_when: Vec<AbortRule>,
    pub verify: Verify,
    pub recovery: RecoveryFrom,
    pub rollback: Vec<RollbackStep>,
    pub drain: Duration,
    pub probe_interval: Duration,
}

impl Drill {
    /// When the last fault ends, from the start of the fault phase.
    pub fn fault_phase(&self) -> Duration {
        self.faults
            .iter()
            .map(TimedFault::end)
            .max()
            .unwrap_or_default()
    }

    /// Every check the drill probes: the steady state, the checks named by `abort_when` and
    /// `verify.checks`, and every check of a service whose health score can abort the drill (each
    /// once, steady state first).
    pub fn probed_checks(&self) -> Vec<Arc<Check>> {
        let mut out: Vec<Arc<Check>> = self.steady_state.iter().map(|s| s.check.clone()).collect();
        let mut wanted: Vec<&Arc<Check>> = Vec::new();
        for rule in &self.abort_when {
            match rule {
                AbortRule::CheckFailures { check, .. } => wanted.extend(self.rules.check(check)),
                AbortRule::Score { service, .. } => wanted.extend(
                    self.rules
                        .checks
                        .iter()
                        .filter(|c| c.common.service.as_ref() == Some(service)),
                ),
                AbortRule::Lost { .. } | AbortRule::WallTime { .. } => {}
            }
        }
        wanted.extend(
            self.verify
                .checks
                .keys()
                .filter_map(|n| self.rules.check(n)),
        );
        for check in wanted {
            if !out.iter().any(|c| c.name() == check.name()) {
                out.push(check.clone());
            }
        }
        out
    }
}

/// One steady-state check and what it may report while the system counts as steady.
#[derive(Clone, Debug)]
pub struct SteadyCheck {
    pub check: Arc<Check>,
    pub tolerance: Tolerance,
    /// Written inside the drill rather than named from the rules.
    pub inline: bool,
}

/// The worst status a check may report and still count as holding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tolerance {
    /// Only `ok` (and `skipped`, which says nothing about health).
    #[default]
    Ok,
    /// `ok` or `warn`.
    Warn,
}

impl Tolerance {
    pub fn accepts(self, status: Status) -> bool {
        match status {
            Status::Ok | Status::Skipped => true,
            Status::Warn => self == Tolerance::Warn,
            Status::Crit | Status::Error => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tolerance::Ok => "ok",
            Tolerance::Warn => "warn",
        }
    }
}

/// The load a drill drives while its faults run.
#[derive(Clone, Debug, Default)]
pub struct Workload {
    pub sse: Option<SseWorkloadSpec>,
    pub http: Option<HttpWorkloadSpec>,
}

/// A fault placed on the timeline: injected `at` after the fault phase starts, reverted `for`
/// later.
#[derive(Clone, Debug)]
pub struct TimedFault {
    /// Position in the drill file's `faults:` list.
    pub index: usize,
    pub at: Duration,
    pub duration: Duration,
    pub spec: FaultSpec,
}

impl TimedFault {
    pub fn end(&self) -> Duration {
        self.at + self.duration
    }
}

/// When a drill stops early (its faults reverted, its report marked `aborted`).
#[derive(Clone, Debug, PartialEq)]
pub enum AbortRule {
    /// A probed check failed this many probes in a row.
    CheckFailures { check: String, failures: u32 },
    /// A service's health score fell below a value (0–100).
    Score { service: String, below: f64 },
    /// The SSE workload has lost more than this many events so far.
    Lost { above: u64 },
    /// The drill has run longer than this.
    WallTime { above: Duration },
}

impl AbortRule {
    /// As written, for the plan and the report.
    pub fn describe(&self) -> String {
        match self {
            AbortRule::CheckFailures { check, failures } => {
                format!("check {check} fails {failures} probe(s) in a row")
            }
            AbortRule::Score { service, below } => {
                format!(
                    "health score of {service} below {}",
                    crate::result::format_number(*below)
                )
            }
            AbortRule::Lost { above } => format!("more than {above} event(s) lost"),
            AbortRule::WallTime { above } => {
                format!(
                    "wall time above {}",
                    crate::config::duration::format(*above)
                )
            }
        }
    }
}

/// A quantity `verify:` can judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Lost,
    Duplicates,
    OutOfOrder,
    ReconnectP99,
    MaxGap,
    Recovery,
    SuccessRate,
    LatencyP99,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::Lost,
        Metric::Duplicates,
        Metric::OutOfOrder,
        Metric::ReconnectP99,
        Metric::MaxGap,
        Metric::Recovery,
        Metric::SuccessRate,
        Metric::LatencyP99,
    ];

    /// The key under `verify:`.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Lost => "lost",
            Metric::Duplicates => "duplicates",
            Metric::OutOfOrder => "out_of_order",
            Metric::ReconnectP99 => "reconnect_p99",
            Metric::MaxGap => "max_gap",
            Metric::Recovery => "recovery",
            Metric::SuccessRate => "success_rate",
            Metric::LatencyP99 => "latency_p99",
        }
    }

    pub fn quantity(self) -> Quantity {
        match self {
            Metric::Lost | Metric::Duplicates | Metric::OutOfOrder => Quantity::Count,
            Metric::SuccessRate => Quantity::Ratio,
            Metric::ReconnectP99 | Metric::MaxGap | Metric::Recovery | Metric::LatencyP99 => {
                Quantity::Duration
            }
        }
    }
}

/// `verify:` — conditions on the workload's accounting and the recovery time, and the status
/// checks must report after the drill.
#[derive(Clone, Debug, Default)]
pub struct Verify {
    pub metrics: Vec<(Metric, MetricCondition)>,
    pub checks: BTreeMap<String, Tolerance>,
}

/// Where `recovery` is measured from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryFrom {
    /// The last fault's revert: how long the system takes to heal once the fault is gone.
    #[default]
    FromRevert,
    /// The last fault's injection: how long the system takes to heal itself while the fault stays.
    FromInject,
}

/// An extra rollback step, run after every fault is reverted (also on abort): a command with a
/// timeout, written like an `exec` fault's `revert`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackStep {
    /// A list `[program, arg…]`, or one line (run by `sh -c` only with `shell: true`).
    pub command: CommandLine,
    #[serde(default)]
    pub shell: bool,
    #[serde(default = "default_step_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_step_timeout() -> Duration {
    Duration::from_secs(30)
}
