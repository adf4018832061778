//! The demo's rule files. They are written out as ordinary YAML (the same files a user keeps in
//! `rules/`) and loaded with [`crate::config::load`], so the demo exercises the real loader.

use std::io;
use std::path::{Path, PathBuf};

/// Samples each baseline learns before it judges. Short so the demo is quick (the default is 20).
pub const WARMUP: u64 = 10;

/// The checks whose baselines the injected anomaly must trip.
pub const LATENCY_CHECK: &str = "orders-api-latency";
pub const PENDING_CHECK: &str = "orders-pending";

/// Where the demo's services listen.
pub struct Endpoints<'a> {
    /// Base URL of the HTTP service (`http://127.0.0.1:PORT`).
    pub api_url: &'a str,
    /// `host:port` of the HTTP service, for the TCP check.
    pub api_addr: &'a str,
    /// `sqlite://…` URL of the orders database.
    pub db_url: &'a str,
}

/// The rule files as (file name, YAML text).
pub fn rule_files(e: &Endpoints<'_>) -> Vec<(&'static str, String)> {
    vec![
        ("orders-api.yaml", orders_api_yaml(e.api_url, e.api_addr)),
        ("orders-db.yaml", orders_db_yaml(e.db_url)),
    ]
}

/// Writes the rule files into `dir` and returns their paths.
pub fn write_rules(dir: &Path, e: &Endpoints<'_>) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    rule_files(e)
        .into_iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        })
        .collect()
}

/// A YAML double-quoted string.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn orders_api_yaml(api_url: &str, api_addr: &str) -> String {
    let url = quoted(api_url);
    let addr = quoted(api_addr);
    format!(
        r#"# Written by `patrol demo`: checks of the demo's orders service. These are ordinary rule files;
# copy them into rules/ and point the target at your own service.
vars:
  team: orders-team

targets:
  orders-api:
    kind: http
    url: {url}
    headers:
      User-Agent: patrol-demo

defaults:
  service: orders
  timeout: 2s
  every: 30s
  labels: {{ team: "${{var:team}}", env: demo }}

checks:
  # How long /health takes, judged against what this endpoint has learned is normal for itself.
  # A short warm-up so the demo is quick (the default is 20 samples).
  - name: {LATENCY_CHECK}
    kind: http
    target: orders-api
    description: Health endpoint latency; slower than its baseline band is a warning.
    request: {{ method: GET, path: /health }}
    value: latency_ms
    crit: gt(1500)
    baseline: {{ method: ewma, alpha: 0.2, k: 4, warmup: {WARMUP}, direction: up, severity: warn }}
    severity: critical
    weight: 0.4

  # The service must say it is UP; its reported queue depth is the measured value.
  - name: orders-api-health
    kind: http
    target: orders-api
    request:
      path: /health
    value: json:$.queue_depth
    expect:
      status: 200
      json:
        "$.status": eq("UP")
    warn: gt(1000)

  # A stricter latency rule on trial: shadow mode records what it would say but never fails a run.
  - name: orders-api-latency-strict
    kind: http
    target: orders-api
    request:
      path: /health
    crit: gt(100)
    mode: shadow
    labels: {{ team: "${{var:team}}", env: demo, trial: "true" }}

  # The port accepts connections (connect time in ms); an inline address instead of a target.
  - name: orders-api-port
    kind: tcp
    address: {addr}
    crit: gt(500)
"#
    )
}

fn orders_db_yaml(db_url: &str) -> String {
    let url = quoted(db_url);
    format!(
        r#"# Written by `patrol demo`: checks of the demo's orders database (SQLite).
targets:
  orders-db:
    kind: sqlite
    url: {url}

defaults:
  service: orders
  timeout: 2s
  every: 1m

checks:
  # Orders waiting to ship. The query runs read-only; a jump above the learned band means the
  # consumers have stalled, long before the static threshold would notice.
  - name: {PENDING_CHECK}
    kind: sql
    target: orders-db
    query: "SELECT COUNT(*) AS pending FROM orders WHERE status = 'pending'"
    value: pending
    expect:
      rows: eq(1)
    warn: gt(5000)
    baseline: {{ method: ewma, alpha: 0.2, k: 4, warmup: {WARMUP}, direction: up, severity: crit }}
    severity: critical
    weight: 0.35
    labels: {{ team: orders-team, env: demo }}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, TargetSpec};

    fn endpoints() -> (String, String, String) {
        (
            "http://127.0.0.1:4321".into(),
            "127.0.0.1:4321".into(),
            "sqlite:///tmp/some dir/orders.db".into(),
        )
    }

    #[test]
    fn demo_rules_load_with_the_real_loader() {
        let (api_url, api_addr, db_url) = endpoints();
        let dir = tempfile::tempdir().unwrap();
        let e = Endpoints {
            api_url: &api_url,
            api_addr: &api_addr,
            db_url: &db_url,
        };
        let files = write_rules(dir.path(), &e).unwrap();
        let rules = config::load(&files).unwrap_or_else(|d| panic!("demo rules invalid: {d:#?}"));
        let names: Vec<&str> = rules.checks.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                LATENCY_CHECK,
                "orders-api-health",
                "orders-api-latency-strict",
                "orders-api-port",
                PENDING_CHECK
            ]
        );
        for name in [LATENCY_CHECK, PENDING_CHECK] {
            let b = rules.check(name).unwrap().common.baseline.clone().unwrap();
            assert_eq!(b.warmup, WARMUP, "{name}");
        }
        assert!(
            rules
                .check("orders-api-latency-strict")
                .unwrap()
                .is_shadow()
        );
        assert_eq!(
            rules.check(LATENCY_CHECK).unwrap().common.labels["team"],
            "orders-team"
        );
        assert_eq!(
            rules.targets["orders-db"].spec.sql_url(),
            Some(db_url.as_str())
        );
        let port = rules.check("orders-api-port").unwrap();
        assert!(
            matches!(&port.target.as_ref().unwrap().spec, TargetSpec::Tcp(t) if t.address == api_addr)
        );
    }

    #[test]
    fn quoting_escapes_what_yaml_would_misread() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
