//! Receivers: where notifications go. One file per kind, each a struct of the kind's own fields
//! implementing [`Notifier`]; the `receivers!` list ties `kind:` names to them (like `probes!`).
//!
//! A delivery either succeeds, fails in a way worth retrying (timeouts, 5xx, 429, vendor rate-limit
//! codes), or fails permanently (bad signature, missing keyword, bad token, other 4xx): permanent
//! failures go to the dead-letter list with the vendor's reason instead of being retried forever.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::notification::Notification;
use crate::config::{DeError, Issues, Node, from_node, struct_fields};

/// Why a delivery failed, and whether trying again can help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Timeouts, connection errors, 5xx, 429, vendor rate limits: retry with backoff.
    Retryable(String),
    /// The receiver will never accept this (bad signature, bad token, 4xx): dead-letter it.
    Permanent(String),
}

impl SendError {
    pub fn message(&self) -> &str {
        match self {
            SendError::Retryable(m) | SendError::Permanent(m) => m,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable(_))
    }

    /// Classifies an HTTP status the generic way: 429 and 5xx are worth retrying, other 4xx not.
    pub fn from_status(status: u16, body: &str) -> SendError {
        let msg = format!(
            "HTTP {status}: {}",
            crate::alert::truncate::chars(body.trim(), 300)
        );
        if status == 429 || status >= 500 {
            SendError::Retryable(msg)
        } else {
            SendError::Permanent(msg)
        }
    }

    /// A transport error (connect, timeout, TLS) is worth retrying.
    pub fn from_transport(e: &reqwest::Error) -> SendError {
        let mut msg = e.without_url_string();
        if e.is_timeout() {
            msg = format!("timed out: {msg}");
        }
        SendError::Retryable(msg)
    }
}

trait WithoutUrl {
    fn without_url_string(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    /// The error without its URL: webhook URLs carry tokens.
    fn without_url_string(&self) -> String {
        let mut msg = String::new();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(self);
        msg.push_str(if self.is_connect() {
            "connection failed"
        } else if self.is_timeout() {
            "request timed out"
        } else {
            "request failed"
        });
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        crate::secrets::scrub_url_credentials(&msg)
    }
}

/// What a notifier may use while sending.
pub struct SendContext<'a> {
    pub http: &'a reqwest::Client,
    pub timeout: Duration,
    /// Now, as seen by the sender (signatures use it; tests fix it).
    pub now: chrono::DateTime<chrono::Utc>,
    /// For deliveries made of several messages: what earlier attempts delivered, and where this
    /// one reports its progress. Notifiers that send one message ignore it.
    pub parts: Parts,
}

/// Progress of a delivery made of several messages (WeCom sends its @-mentions as a second
/// message after the Markdown one). A retry must not send again what an earlier attempt
/// delivered, so the notifier skips the parts [`Parts::is_done`] reports and records each part it
/// delivers; the outbox stores [`Parts::done`] with a failed attempt and resumes from it.
#[derive(Debug, Default)]
pub struct Parts {
    /// Parts delivered by earlier attempts.
    before: u32,
    /// Parts delivered so far, by earlier attempts and this one.
    done: AtomicU32,
}

impl Parts {
    /// An attempt resuming after the first `done` parts (0: a fresh delivery).
    pub fn resume(done: u32) -> Parts {
        Parts {
            before: done,
            done: AtomicU32::new(done),
        }
    }

    /// Whether part `index` (0-based) was delivered by an earlier attempt and must be skipped.
    pub fn is_done(&self, index: u32) -> bool {
        index < self.before
    }

    /// Records that part `index` (0-based) was delivered: parts 0..=index are not sent again.
    pub fn delivered(&self, index: u32) {
        self.done
            .fetch_max(index.saturating_add(1), Ordering::SeqCst);
    }

    /// How many leading parts are delivered, by earlier attempts and this one.
    pub fn done(&self) -> u32 {
        self.done.load(Ordering::SeqCst)
    }
}

/// A receiver kind's own fields and its way of delivering.
pub trait Notifier:
    DeserializeOwned + schemars::JsonSchema + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// Problems beyond types (URLs, templates), by path relative to the receiver's mapping.
    fn validate(&self, _issues: &mut Issues) {}

    /// Delivers `n` once (the outbox retries).
    fn send(
        &self,
        n: &Notification,
        ctx: &SendContext<'_>,
    ) -> impl Future<Output = Result<(), SendError>> + Send;
}

macro_rules! receivers {
    ($($kind:literal => $variant:ident($ty:ty),)*) => {
        /// A receiver's settings, chosen by its `kind:`.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Debug)]
        pub enum ReceiverSpec {
            $($variant($ty),)*
        }

        impl ReceiverSpec {
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            pub fn kind(&self) -> &'static str {
                match self {
                    $(ReceiverSpec::$variant(_) => $kind,)*
                }
            }

            pub fn fields(kind: &str) -> Option<&'static [&'static str]> {
                match kind {
                    $($kind => Some(struct_fields::<$ty>()),)*
                    _ => None,
                }
            }

            pub fn from_node(kind: &str, node: &Node) -> Option<Result<ReceiverSpec, DeError>> {
                let fields = Self::fields(kind)?;
                Some(match kind {
                    $($kind => from_node::<$ty>(node, Some(fields)).map(ReceiverSpec::$variant),)*
                    _ => unreachable!("fields() knows every kind"),
                })
            }

            /// Files named relative to the rule file (an email `ca_file`) are made relative to
            /// its directory, as for targets.
            pub fn resolve_paths(&mut self, base_dir: &std::path::Path) {
                if let ReceiverSpec::Email(e) = self
                    && let Some(p) = &e.ca_file
                    && p.is_relative()
                {
                    e.ca_file = Some(base_dir.join(p));
                }
            }

            pub fn validate(&self, issues: &mut Issues) {
                match self {
                    $(ReceiverSpec::$variant(r) => r.validate(issues),)*
                }
            }

            pub async fn send(&self, n: &Notification, ctx: &SendContext<'_>) -> Result<(), SendError> {
                match self {
                    $(ReceiverSpec::$variant(r) => r.send(n, ctx).await,)*
                }
            }

            pub fn schemas(generator: &mut schemars::SchemaGenerator) -> Vec<(&'static str, schemars::Schema)> {
                vec![$(($kind, generator.subschema_for::<$ty>()),)*]
            }
        }
    };
}

pub mod alertmanager;
pub mod chat;
pub mod dingtalk;
pub mod email;
pub mod feishu;
pub mod pagerduty;
pub mod slack;
pub mod webhook;
pub mod wecom;

receivers! {
    "dingtalk" => DingTalk(dingtalk::DingTalk),
    "wecom" => WeCom(wecom::WeCom),
    "feishu" => Feishu(feishu::Feishu),
    "slack" => Slack(slack::Slack),
    "webhook" => Webhook(webhook::Webhook),
    "email" => Email(email::Email),
    "alertmanager" => Alertmanager(alertmanager::Alertmanager),
    "pagerduty" => PagerDuty(pagerduty::PagerDuty),
}
