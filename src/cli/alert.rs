//! `patrol alert test RECEIVER`: sends a test notification through one receiver now, so a team can
//! see that the webhook, signature, keyword or SMTP credentials work before an incident does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::alert::{Notification, OwnMessage, SendContext};
use crate::config;

#[derive(clap::Args, Debug)]
pub struct AlertArgs {
    #[command(subcommand)]
    pub command: AlertCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum AlertCommand {
    /// Send a test notification through RECEIVER (a name under `receivers:`).
    Test {
        receiver: String,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Base URL of patrol as people reach it (used for links).
        #[arg(
            long,
            env = "PATROL_EXTERNAL_URL",
            default_value = "http://127.0.0.1:9464"
        )]
        external_url: String,
        /// Longest the delivery may take.
        #[arg(long, default_value = "10s", value_parser = config::duration::parse)]
        timeout: Duration,
    },
}

pub async fn alert(args: AlertArgs) -> u8 {
    match args.command {
        AlertCommand::Test {
            receiver,
            rules,
            external_url,
            timeout,
        } => test(&receiver, rules, &external_url, timeout).await,
    }
}

async fn test(name: &str, rules: PathBuf, external_url: &str, timeout: Duration) -> u8 {
    let rules = match config::source::load_optional(Some(&rules)).await {
        Ok(r) => r,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            return EXIT_INVALID;
        }
    };
    let Some(receiver) = rules.receivers.get(name) else {
        let known: Vec<&str> = rules.receivers.keys().map(String::as_str).collect();
        eprintln!(
            "patrol: unknown receiver {name:?}; defined receivers: {}",
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        );
        return EXIT_INVALID;
    };
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("patrol: cannot build an HTTP client: {e}");
            return EXIT_FAILED;
        }
    };
    let ctx = SendContext {
        http: &http,
        timeout,
        now: Utc::now(),
        parts: Default::default(),
    };
    match receiver
        .spec
        .send(&test_notification(name, external_url), &ctx)
        .await
    {
        Ok(()) => {
            println!(
                "sent: a test notification reached {name} ({})",
                receiver.spec.kind()
            );
            EXIT_OK
        }
        Err(e) => {
            let kind = if e.is_retryable() {
                "temporary"
            } else {
                "permanent"
            };
            eprintln!(
                "failed ({kind}): {name} ({}): {}",
                receiver.spec.kind(),
                crate::secrets::redact(e.message())
            );
            EXIT_FAILED
        }
    }
}

/// A firing notification that says plainly it is a test.
pub fn test_notification(receiver: &str, external_url: &str) -> Notification {
    let now = Utc::now();
    let labels: BTreeMap<String, String> = [
        ("alertname", "patrol-test"),
        ("check", "patrol-test"),
        ("severity", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let annotations: BTreeMap<String, String> = [(
        "summary".to_string(),
        format!("Test notification from patrol to receiver {receiver}: delivery works."),
    )]
    .into();
    OwnMessage {
        receiver: receiver.to_string(),
        group_key: format!("test:{receiver}"),
        group_labels: BTreeMap::new(),
        labels,
        annotations,
        generator_url: format!("{}/", external_url.trim_end_matches('/')),
        fingerprint: "patrol-test".into(),
        external_url: external_url.to_string(),
        idempotency_key: format!("test:{receiver}:{}", now.timestamp_millis()),
        at: now,
    }
    .into()
}
