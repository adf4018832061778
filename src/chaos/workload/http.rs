//! Constant-rate HTTP load: one request per tick (an open model: requests do not wait for the
//! previous one), success rate and latency p50/p99 overall and for each second of the run, so
//! a drill shows when a fault hurt and when the service recovered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::pace::{Pacer, parse_rate};
use super::report::{Histogram, Millis};
use super::{issues_text, request_parts};
use crate::config::Issues;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight at once; beyond it the load waits (and falls behind its rate).
const MAX_IN_FLIGHT: usize = 1024;
/// Latencies kept per second for that second's percentiles.
const PER_SECOND_SAMPLE: usize = 10_000;
const ERROR_SAMPLE: usize = 5;

/// `workload: http:` of a drill.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpWorkloadSpec {
    pub url: String,
    /// HTTP method (default GET).
    #[serde(default = "default_method")]
    pub method: String,
    /// Requests per second: `100/s`, `600/m`, or a number per second.
    pub rate: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Per-request timeout (default 10s); a request that times out failed.
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<crate::config::duration::DurationSchema>")]
    pub timeout: Option<Duration>,
}

fn default_method() -> String {
    "GET".into()
}

impl HttpWorkloadSpec {
    /// Reports every problem, at paths relative to the `http:` mapping.
    pub fn validate(&self, issues: &mut Issues) {
        if let Err((field, e)) = request_parts(&self.url, &self.method, &self.headers) {
            issues.at(&[field], e);
        }
        if let Err(e) = parse_rate(&self.rate) {
            issues.at(&["rate"], e);
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            issues.at(&["timeout"], "must be longer than zero");
        }
    }

    pub fn check(&self) -> Result<(), String> {
        let mut issues = Issues::default();
        self.validate(&mut issues);
        issues_text(&issues)
    }
}

/// Live counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpProgress {
    /// Completed requests.
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
}

/// One second of the run (by request start).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondStats {
    /// Seconds since the load started.
    pub second: u64,
    pub requests: u64,
    pub ok: u64,
    pub success_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpWorkloadReport {
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    /// ok / requests (1 when no request completed… there is nothing to fail).
    pub success_rate: f64,
    pub latency_ms: Millis,
    pub per_second: Vec<SecondStats>,
    /// A few distinct failure reasons (`HTTP 502`, a transport error).
    pub errors: Vec<String>,
    pub wall_secs: f64,
}

#[derive(Default)]
struct Second {
    requests: u64,
    ok: u64,
    latencies_us: Vec<u32>,
}

struct Tally {
    started: Instant,
    requests: AtomicU64,
    ok: AtomicU64,
    latency: Histogram,
    seconds: Mutex<Vec<Second>>,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, started: Instant, latency: Duration, outcome: Result<(), String>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.latency.record(latency);
        let second = started.duration_since(self.started).as_secs() as usize;
        let mut seconds = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        if seconds.len() <= second {
            seconds.resize_with(second + 1, Second::default);
        }
        let s = &mut seconds[second];
        s.requests += 1;
        if s.latencies_us.len() < PER_SECOND_SAMPLE {
            s.latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        }
        match outcome {
            Ok(()) => {
                s.ok += 1;
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                drop(seconds);
                let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
                if errors.len() < ERROR_SAMPLE && !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
    }
}

/// A running HTTP load. Dropping it without [`HttpLoad::finish`] stops it.
pub struct HttpLoad {
    tally: Arc<Tally>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl HttpLoad {
    /// Checks the spec and starts sending; must be called inside a tokio runtime.
    pub fn start(spec: &HttpWorkloadSpec, http: reqwest::Client) -> Result<HttpLoad, String> {
        spec.check()?;
        tokio::runtime::Handle::try_current()
            .map_err(|_| "the HTTP load must be started inside a tokio runtime".to_string())?;
        let (url, method, headers) = request_parts(&spec.url, &spec.method, &spec.headers)
            .map_err(|(f, e)| format!("{f}: {e}"))?;
        let rate = parse_rate(&spec.rate).map_err(|e| format!("rate: {e}"))?;
        let request = http
            .request(method, url)
            .headers(headers)
            .timeout(spec.timeout.unwrap_or(DEFAULT_TIMEOUT));
        let request = match &spec.body {
            Some(body) => request.body(body.clone()),
            None => request,
        };
        let tally = Arc::new(Tally {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            latency: Histogram::default(),
            seconds: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(load_loop(request, rate, tally.clone(), stop.clone()));
        Ok(HttpLoad {
            tally,
            stop,
            task: Some(task),
        })
    }

    pub fn progress(&self) -> HttpProgress {
        let requests = self.tally.requests.load(Ordering::Relaxed);
        let ok = self.tally.ok.load(Ordering::Relaxed);
        HttpProgress {
            requests,
            ok,
            failed: requests - ok.min(requests),
        }
    }

    /// Stops sending, waits for the requests in flight (each bounded by its timeout), reports.
    pub async fn finish(mut self) -> HttpWorkloadReport {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        report(&self.tally)
    }
}

impl Drop for HttpLoad {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn load_loop(
    request: reqwest::RequestBuilder,
    rate: f64,
    tally: Arc<Tally>,
    stop: CancellationToken,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut pacer = Pacer::new(rate);
    let mut tasks = JoinSet::new();
    loop {
        let Some(permit) = pacer.next_slot(&in_flight, &stop).await else {
            break;
        };
        // A body that is a stream cannot be cloned; bodies here are text, so this succeeds.
        let Some(request) = request.try_clone() else {
            break;
        };
        let tally = tally.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let outcome = match request.send().await {
                Ok(r) if r.status().is_success() => {
                    // The latency includes reading the body, as a client would.
                    r.bytes()
                        .await
                        .map(drop)
                        .map_err(|e| e.without_url().to_string())
                }
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) => Err(crate::secrets::redact_owned(e.without_url().to_string())),
            };
            tally.record(started, started.elapsed(), outcome);
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

fn report(tally: &Tally) -> HttpWorkloadReport {
    let requests = tally.requests.load(Ordering::Relaxed);
    let ok = tally.ok.load(Ordering::Relaxed);
    let seconds = tally.seconds.lock().unwrap_or_else(|p| p.into_inner());
    let per_second = seconds
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut l = s.latencies_us.clone();
            l.sort_unstable();
            SecondStats {
                second: i as u64,
                requests: s.requests,
                ok: s.ok,
                success_rate: rate_of(s.ok, s.requests),
                p50_ms: percentile_ms(&l, 0.5),
                p99_ms: percentile_ms(&l, 0.99),
            }
        })
        .collect();
    HttpWorkloadReport {
        requests,
        ok,
        failed: requests - ok.min(requests),
        success_rate: rate_of(ok, requests),
        latency_ms: tally.latency.millis(),
        per_second,
        errors: tally
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        wall_secs: tally.started.elapsed().as_secs_f64(),
    }
}

fn rate_of(ok: u64, total: u64) -> f64 {
    if total == 0 {
        1.0
    } else {
        ok as f64 / total as f64
    }
}

/// Nearest-rank percentile of sorted microseconds, in ms (0 when empty).
pub fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q.clamp(0.0, 1.0) * sorted_us.len() as f64).ceil() as usize).max(1);
    f64::from(sorted_us[rank - 1]) / 1000.0
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
