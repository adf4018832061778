//! The daemon's Prometheus metrics (`/metrics`), built on prometheus-client.
//!
//! **Bounded labels.** Every label value comes from configuration (check, service and series
//! names, the revision) or from a closed set (the five statuses); messages and error strings never
//! become labels, so the number of series is bounded by the rules, not by what the probes see.
//!
//! **Latest state.** The per-series gauges describe the latest result: a result without a numeric
//! value (an error) or without a baseline band removes the value or band series instead of
//! leaving the last reading in place, and [`Metrics::forget_check`] removes every series of a
//! check that a reload removed or changed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::exposition;
use crate::result::{CheckResult, Status};

/// Upper bounds of the lateness buckets, from 1 ms to 60 s.
const LATENESS_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Every status a result can have: the values of the `status` label of `patrol_runs_total`.
const STATUSES: [Status; 5] = [
    Status::Skipped,
    Status::Ok,
    Status::Warn,
    Status::Crit,
    Status::Error,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct SeriesLabels {
    check: String,
    service: String,
    series: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    check: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabel {
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    receiver: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabel {
    revision: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The series written so far, by check and by service: prometheus-client families cannot be
/// listed, and removing a check's series needs its label sets.
#[derive(Default)]
struct Written {
    series: HashMap<String, BTreeSet<SeriesLabels>>,
    services: BTreeSet<String>,
    revision: Option<String>,
}

/// All metrics of one daemon. Shared (`&self` everywhere); cheap to update from many tasks.
pub struct Metrics {
    registry: Registry,
    check_status: Family<SeriesLabels, Gauge>,
    check_value: Family<SeriesLabels, FloatGauge>,
    check_duration: Family<SeriesLabels, FloatGauge>,
    baseline_mean: Family<SeriesLabels, FloatGauge>,
    baseline_lower: Family<SeriesLabels, FloatGauge>,
    baseline_upper: Family<SeriesLabels, FloatGauge>,
    anomaly_score: Family<SeriesLabels, FloatGauge>,
    health_score: Family<ServiceLabel, FloatGauge>,
    runs: Family<RunLabels, Counter>,
    skipped: Family<CheckLabel, Counter>,
    lateness: Histogram,
    revision: Family<RevisionLabel, Gauge>,
    reload_failures: Counter,
    reload_unchanged: Counter,
    notifications: Family<NotificationLabels, Counter>,
    outbox_pending: Gauge,
    written: Mutex<Written>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            check_status: Family::default(),
            check_value: Family::default(),
            check_duration: Family::default(),
            baseline_mean: Family::default(),
            baseline_lower: Family::default(),
            baseline_upper: Family::default(),
            anomaly_score: Family::default(),
            health_score: Family::default(),
            runs: Family::default(),
            skipped: Family::default(),
            lateness: Histogram::new(LATENESS_BUCKETS),
            revision: Family::default(),
            reload_failures: Counter::default(),
            reload_unchanged: Counter::default(),
            notifications: Family::default(),
            outbox_pending: Gauge::default(),
            written: Mutex::new(Written::default()),
        };
        m.registered()
    }

    fn registered(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "patrol_check_status",
            "Latest status of a check's series: 0 ok, 1 warn, 2 crit, 3 error",
            self.check_status.clone(),
        );
        r.register(
            "patrol_check_value",
            "Latest numeric value measured by a check's series",
            self.check_value.clone(),
        );
        r.register(
            "patrol_check_duration_seconds",
            "How long the latest measurement of a check's series took",
            self.check_duration.clone(),
        );
        r.register(
            "patrol_baseline_mean",
            "Mean of the learned baseline the latest value was judged against",
            self.baseline_mean.clone(),
        );
        r.register(
            "patrol_baseline_lower",
            "Lower edge of the baseline band the latest value was judged against",
            self.baseline_lower.clone(),
        );
        r.register(
            "patrol_baseline_upper",
            "Upper edge of the baseline band the latest value was judged against",
            self.baseline_upper.clone(),
        );
        r.register(
            "patrol_anomaly_score",
            "How unusual the latest value is against its baseline, 0 (typical) to 1 (far outside); 0.5 at 3 standard deviations",
            self.anomaly_score.clone(),
        );
        r.register(
            "patrol_health_score",
            "Latest health score of a service (0-100); _overall is the mean of the services",
            self.health_score.clone(),
        );
        r.register(
            "patrol_runs",
            "Results recorded, by check and status (one per series and run)",
            self.runs.clone(),
        );
        r.register(
            "patrol_schedule_skipped",
            "Scheduled runs skipped because the previous run of the job was still going",
            self.skipped.clone(),
        );
        r.register(
            "patrol_schedule_lateness_seconds",
            "Actual start minus planned start of scheduled runs",
            self.lateness.clone(),
        );
        r.register(
            "patrol_config_revision_info",
            "Revision of the rules in force (always 1)",
            self.revision.clone(),
        );
        r.register(
            "patrol_config_reload_failures",
            "Reloads refused because the new rules were invalid",
            self.reload_failures.clone(),
        );
        r.register(
            "patrol_config_reload_unchanged",
            "File-change notices skipped because no rule or playbook file changed since the last attempt",
            self.reload_unchanged.clone(),
        );
        r.register(
            "patrol_notifications",
            "Notification delivery attempts, by receiver and result (sent, failed, dead, folded)",
            self.notifications.clone(),
        );
        r.register(
            "patrol_outbox_pending",
            "Notifications in the outbox waiting for their (next) delivery attempt",
            self.outbox_pending.clone(),
        );
        self
    }

    /// Records the latest result of one series of a check. A skipped result only counts in
    /// `patrol_runs_total`: it says nothing about the state of the series.
    pub fn observe_result(&self, r: &CheckResult) {
        self.runs
            .get_or_create(&RunLabels {
                check: r.check.clone(),
                status: r.status.as_str().to_string(),
            })
            .inc();
        let Some(code) = status_code(r.status) else {
            return;
        };
        let labels = series_labels(r);
        self.check_status.get_or_create(&labels).set(code);
        set_or_remove(&self.check_value, &labels, numeric_value(r));
        set_or_remove(
            &self.check_duration,
            &labels,
            finite(r.duration_ms / 1000.0),
        );
        let band = r.baseline.as_ref();
        set_or_remove(
            &self.baseline_mean,
            &labels,
            band.and_then(|b| finite(b.mean)),
        );
        set_or_remove(
            &self.baseline_lower,
            &labels,
            band.and_then(|b| finite(b.lower)),
        );
        set_or_remove(
            &self.baseline_upper,
            &labels,
            band.and_then(|b| finite(b.upper)),
        );
        set_or_remove(
            &self.anomaly_score,
            &labels,
            band.and_then(|b| finite(b.anomaly_score)),
        );
        self.lock()
            .series
            .entry(r.check.clone())
            .or_default()
            .insert(labels);
    }

    /// Records one run of one check (every series it reported) and removes the series the check
    /// no longer reports, e.g. a row gone from a multi-row SQL check. A run whose results are all
    /// skipped measured nothing and removes nothing.
    pub fn observe_check(&self, check: &str, results: &[CheckResult]) {
        for r in results.iter().filter(|r| r.check == check) {
            self.observe_result(r);
        }
        let reported: BTreeSet<SeriesLabels> = results
            .iter()
            .filter(|r| r.check == check && r.status != Status::Skipped)
            .map(series_labels)
            .collect();
        if reported.is_empty() {
            return;
        }
        let stale: Vec<SeriesLabels> = {
            let mut written = self.lock();
            let known = written.series.entry(check.to_string()).or_default();
            let stale = known.difference(&reported).cloned().collect();
            *known = reported;
            stale
        };
        for labels in &stale {
            self.remove_series(labels);
        }
    }

    /// Records how late a scheduled run started (seconds; an early start counts as 0).
    pub fn observe_lateness(&self, seconds: f64) {
        if seconds.is_nan() {
            return;
        }
        self.lateness.observe(seconds.max(0.0));
    }

    /// Counts a scheduled run of `check` (a check or suite job name) skipped because the
    /// previous one was still running.
    pub fn skipped(&self, check: &str) {
        self.skipped
            .get_or_create(&CheckLabel {
                check: check.to_string(),
            })
            .inc();
    }

    /// Sets the health score of one service (a non-finite score removes the series).
    pub fn set_score(&self, service: &str, score: f64) {
        let labels = ServiceLabel {
            service: service.to_string(),
        };
        set_or_remove(&self.health_score, &labels, finite(score));
        self.lock().services.insert(service.to_string());
    }

    /// Sets the scores of every service at once; services missing from `scores` (removed by a
    /// reload) lose their series.
    pub fn set_scores<'a>(&self, scores: impl IntoIterator<Item = (&'a str, f64)>) {
        let mut current = BTreeSet::new();
        for (service, score) in scores {
            self.set_score(service, score);
            current.insert(service.to_string());
        }
        let gone: Vec<String> = {
            let mut written = self.lock();
            let gone = written.services.difference(&current).cloned().collect();
            written.services = current;
            gone
        };
        for service in gone {
            self.health_score.remove(&ServiceLabel { service });
        }
    }

    /// Marks `revision` as the rules in force; the previous revision's series disappears.
    pub fn set_revision(&self, revision: &str) {
        let previous = self.lock().revision.replace(revision.to_string());
        if let Some(previous) = previous.filter(|p| p != revision) {
            self.revision.remove(&RevisionLabel { revision: previous });
        }
        self.revision
            .get_or_create(&RevisionLabel {
                revision: revision.to_string(),
            })
            .set(1);
    }

    /// Counts a reload refused because the new rules were invalid.
    pub fn reload_failed(&self) {
        self.reload_failures.inc();
    }

    /// Counts a file-change notice that found the files as the last reload attempt read them.
    pub fn reload_unchanged(&self) {
        self.reload_unchanged.inc();
    }

    /// Counts one delivery outcome of a notification to `receiver`. Both labels come from a
    /// bounded set: receiver names from the rules, `result` from the sender's closed list of
    /// outcomes (never an error message).
    pub fn notification(&self, receiver: &str, result: &str) {
        self.notifications
            .get_or_create(&NotificationLabels {
                receiver: receiver.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// Sets how many notifications the outbox holds pending (read from the store by the sender).
    pub fn set_outbox_pending(&self, n: u64) {
        self.outbox_pending
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Removes every series of a check (removed or changed by a reload), counters included.
    pub fn forget_check(&self, name: &str) {
        let series = self.lock().series.remove(name).unwrap_or_default();
        for labels in &series {
            self.remove_series(labels);
        }
        for status in STATUSES {
            self.runs.remove(&RunLabels {
                check: name.to_string(),
                status: status.as_str().to_string(),
            });
        }
        self.skipped.remove(&CheckLabel {
            check: name.to_string(),
        });
    }

    /// The metrics in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The metrics in the Prometheus text format 0.0.4 (what `promtool check metrics` reads).
    pub fn encode_prometheus(&self) -> String {
        exposition::openmetrics_to_prometheus(&self.encode())
    }

    fn remove_series(&self, labels: &SeriesLabels) {
        self.check_status.remove(labels);
        self.check_value.remove(labels);
        self.check_duration.remove(labels);
        self.baseline_mean.remove(labels);
        self.baseline_lower.remove(labels);
        self.baseline_upper.remove(labels);
        self.anomaly_score.remove(labels);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Written> {
        // The bookkeeping stays consistent even if a holder panicked: every update is one insert.
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn series_labels(r: &CheckResult) -> SeriesLabels {
    SeriesLabels {
        check: r.check.clone(),
        service: r.service.clone().unwrap_or_default(),
        series: r.series.clone(),
    }
}

/// The value of `patrol_check_status`; `None` for skipped results.
fn status_code(status: Status) -> Option<i64> {
    match status {
        Status::Skipped => None,
        Status::Ok => Some(0),
        Status::Warn => Some(1),
        Status::Crit => Some(2),
        Status::Error => Some(3),
    }
}

/// The result's value as a number, when it is one (text that spells a number counts).
fn numeric_value(r: &CheckResult) -> Option<f64> {
    r.value.as_ref().and_then(|v| v.as_f64()).and_then(finite)
}

/// Infinities and NaN have no agreed spelling across the text formats; they are not exported.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn set_or_remove<S>(family: &Family<S, FloatGauge>, labels: &S, value: Option<f64>)
where
    S: Clone + std::hash::Hash + Eq,
{
    match value {
        Some(v) => {
            family.get_or_create(labels).set(v);
        }
        None => {
            family.remove(labels);
        }
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
