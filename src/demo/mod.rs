//! `patrol demo`: shows the engine end to end with nothing installed. It starts an HTTP service
//! and an SQLite database on loopback, writes rule files for them, runs rounds of real checks
//! until the baselines have learned what normal looks like, then makes the service slow and the
//! orders pile up — and shows both caught outside their baseline band.
//!
//! Nothing is simulated on the measuring side: every round is a real `run_checks` with real HTTP
//! requests and SQL queries, stored like any `patrol run`.

pub mod drill;
mod orders_db;
mod report;
mod rules;
mod service;
pub mod sse_cluster;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use crate::cli::{DemoArgs, EXIT_FAILED, EXIT_INVALID, EXIT_OK, output};
use crate::config::{self, RuleSet};
use crate::engine::{RunOptions, RunOutcome, run_checks};
use crate::store::Store;
use orders_db::OrdersDb;
use rules::{Endpoints, LATENCY_CHECK, PENDING_CHECK, WARMUP};
use service::{DemoService, Knobs};

/// Normal behaviour of the service: `/health` answers in 20 ms ± 5 ms.
const BASE_LATENCY_MS: u64 = 20;
const JITTER_MS: u64 = 5;
/// The incident: the service becomes this many times slower…
const LATENCY_FACTOR: u64 = 10;
/// …and orders stop shipping: normally 40 ± 5 are pending, then this many.
const NORMAL_PENDING: u64 = 40;
const PENDING_SPREAD: u64 = 5;
const STALLED_PENDING: u64 = 400;
/// A breath between rounds so the progress can be followed; the whole demo stays a few seconds.
const ROUND_PAUSE: Duration = Duration::from_millis(40);
/// Checks whose baselines the incident must trip.
const WATCHED: [&str; 2] = [LATENCY_CHECK, PENDING_CHECK];

/// Runs the demo; 0 when the incident was caught, 1 when not (or the demo could not run),
/// 2 when the store given with `--store` cannot be opened.
pub async fn run(args: DemoArgs) -> u8 {
    let mut demo = match Demo::start(args.store.as_deref()).await {
        Ok(d) => d,
        Err((code, msg)) => {
            eprintln!("patrol demo: {msg}");
            return code;
        }
    };
    demo.introduce();
    match demo.play(args.rounds).await {
        Ok(true) => EXIT_OK,
        Ok(false) => EXIT_FAILED,
        Err(msg) => {
            eprintln!("patrol demo: {msg}");
            EXIT_FAILED
        }
    }
}

/// Everything the demo started; the temporary folder and the service go away with it.
struct Demo {
    dir: TempDir,
    knobs: Arc<Knobs>,
    service: DemoService,
    db: OrdersDb,
    rules: RuleSet,
    rule_files: Vec<PathBuf>,
    store: Store,
    store_url: String,
}

type SetupError = (u8, String);

impl Demo {
    async fn start(store_url: Option<&str>) -> Result<Demo, SetupError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| (EXIT_FAILED, format!("{what}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("patrol-demo-")
            .tempdir()
            .map_err(|e| failed("cannot create a temporary folder", &e))?;
        let knobs = Knobs::new(BASE_LATENCY_MS, JITTER_MS);
        knobs.set_queue_depth(NORMAL_PENDING);
        let service = DemoService::start(knobs.clone())
            .await
            .map_err(|e| failed("cannot start the demo service on 127.0.0.1", &e))?;
        let mut db = OrdersDb::create(&dir.path().join("orders.db"))
            .await
            .map_err(|e| failed("cannot create the demo database", &e))?;
        db.set_pending(NORMAL_PENDING)
            .await
            .map_err(|e| failed("cannot fill the demo database", &e))?;
        let (api_url, api_addr, db_url) = (service.url(), service.addr.to_string(), db.url());
        let endpoints = Endpoints {
            api_url: &api_url,
            api_addr: &api_addr,
            db_url: &db_url,
        };
        let rule_files = rules::write_rules(&dir.path().join("rules"), &endpoints)
            .map_err(|e| failed("cannot write the demo rules", &e))?;
        let rules = config::load(&rule_files).map_err(|diags| {
            let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
            (
                EXIT_FAILED,
                format!(
                    "the demo rules do not load (a bug in patrol):\n{}",
                    lines.join("\n")
                ),
            )
        })?;
        let store_url = match store_url {
            Some(url) => url.to_string(),
            None => format!("sqlite://{}", dir.path().join("patrol-demo.db").display()),
        };
        let store = Store::open(&store_url)
            .await
            .map_err(|e| (EXIT_INVALID, format!("cannot open the store: {e}")))?;
        Ok(Demo {
            dir,
            knobs,
            service,
            db,
            rules,
            rule_files,
            store,
            store_url,
        })
    }

    /// What runs where.
    fn introduce(&self) {
        let files: Vec<String> = self
            .rule_files
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        println!(
            "patrol demo: a service and a database on loopback, rules that learn their normal, then an incident."
        );
        println!();
        println!(
            "  orders-api  {}/health  axum; answers in ~{BASE_LATENCY_MS} ms ± {JITTER_MS} ms with {{\"status\":\"UP\",\"queue_depth\":N,…}}",
            self.service.url()
        );
        println!(
            "  orders-db   {}  SQLite; table orders, ~{NORMAL_PENDING} pending",
            self.db.url()
        );
        println!(
            "  rules       {}  {} ({} checks, revision {}; removed when the demo ends)",
            self.dir.path().join("rules").display(),
            files.join(", "),
            self.rules.checks.len(),
            self.rules.revision
        );
        println!("  store       {}", self.store_url);
        println!();
    }

    /// Learns, injects the incident, shows it caught, recovers. `Ok(true)` when both watched
    /// checks were caught outside their band.
    async fn play(&mut self, requested: u32) -> Result<bool, String> {
        let rounds = u64::from(requested).max(WARMUP);
        println!("Learning what normal looks like (each baseline judges after {WARMUP} samples):");
        if rounds > u64::from(requested) {
            println!(
                "(--rounds {requested} raised to {rounds}: a baseline needs its warm-up before it judges)"
            );
        }
        let width = format!("round {rounds}/{rounds}").len();
        for i in 1..=rounds {
            self.normal_traffic().await?;
            let outcome = self.round().await?;
            let label = format!("round {i:>w$}/{rounds}", w = rounds.to_string().len());
            println!(
                "{}",
                report::progress_line(
                    &format!("{label:<width$}"),
                    &outcome.results,
                    &WATCHED,
                    WARMUP
                )
            );
            tokio::time::sleep(ROUND_PAUSE).await;
        }
        self.inject_incident().await?;
        let incident = self.round().await?;
        print!("{}", output::table(&incident.results, color_stdout()));
        println!();
        let (caught, missed) = report::verdict(&incident.results, &WATCHED);
        let verdict = report::verdict_line(&caught, &missed);
        self.normal_traffic().await?;
        let recovery = self.round().await?;
        println!(
            "{}  (the incident was kept out of the baselines: learn_anomalies is off)",
            report::progress_line(
                &format!("{:<width$}", "recovered"),
                &recovery.results,
                &WATCHED,
                WARMUP
            )
        );
        println!("{verdict}");
        Ok(missed.is_empty())
    }

    /// One round of every demo check, stored like `patrol run`.
    async fn round(&self) -> Result<RunOutcome, String> {
        let opts = RunOptions {
            trigger: "demo".into(),
            ..RunOptions::default()
        };
        run_checks(&self.rules, &self.rules.checks, &self.store, &opts)
            .await
            .map_err(|e| e.to_string())
    }

    /// Usual latency, and orders arriving and shipping around their usual level.
    async fn normal_traffic(&mut self) -> Result<(), String> {
        self.knobs.set_latency(BASE_LATENCY_MS, JITTER_MS);
        let pending = NORMAL_PENDING - PENDING_SPREAD + fastrand::u64(0..=2 * PENDING_SPREAD);
        self.set_pending(pending).await
    }

    async fn inject_incident(&mut self) -> Result<(), String> {
        let slow = BASE_LATENCY_MS * LATENCY_FACTOR;
        self.knobs.set_latency(slow, JITTER_MS);
        self.set_pending(STALLED_PENDING).await?;
        println!();
        println!(
            "Incident: /health now takes ~{slow} ms (×{LATENCY_FACTOR}) and the consumers stall: {STALLED_PENDING} orders pending. Next round:"
        );
        Ok(())
    }

    /// The database and the health body agree on the queue.
    async fn set_pending(&mut self, n: u64) -> Result<(), String> {
        self.db
            .set_pending(n)
            .await
            .map_err(|e| format!("cannot update the demo database: {e}"))?;
        self.knobs.set_queue_depth(n);
        Ok(())
    }
}

fn color_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
