//! The outbox sender: delivers the notifications queued in the store (issue #4 §4).
//!
//! Each pass ([`OutboxSender::tick`]) takes the pending notifications that are due, oldest first,
//! and hands each to its receiver with a timeout:
//! - accepted → `sent`;
//! - a retryable failure (timeout, 5xx, 429, vendor rate-limit codes) → still `pending`, next
//!   attempt after an exponential backoff with jitter (1 s, 2 s, 4 s … capped at 5 min); for a
//!   delivery made of several messages (WeCom) the parts already accepted are stored with it
//!   and skipped by the retry, so none arrives twice;
//! - a permanent failure (bad signature, bad token, other 4xx) → `dead`, with the receiver's reason.
//!
//! **Rate budgets.** Each receiver has token buckets (DingTalk and WeCom 20/min, Feishu 100/min
//! and 5/s, others unlimited; overridable per receiver). When more notifications are due than the
//! budget allows, the excess is folded into ONE digest notification (see [`digest::fold`]) that
//! takes the last token, or waits for the next one: never dropped.
//!
//! **At least once.** A row leaves `pending` only after its outcome is known, so notifications in
//! flight when the process dies are sent again after a restart; each carries its idempotency key
//! so that receivers able to dedupe do.

mod budget;
pub mod digest;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use budget::{Budget, RateLimit};

use super::notifier::Parts;
use super::{ReceiverSpec, SendContext, SendError};
use crate::store::{OutboxEntry, Store, StoreError};

/// What became of one delivery attempt (the `result` label of `patrol_notifications_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryResult {
    /// The receiver accepted it.
    Sent,
    /// It failed in a way worth retrying; a later attempt is scheduled.
    Retry,
    /// The receiver refused it for good; it is dead-lettered.
    Dead,
    /// It was merged into a digest because the receiver's rate budget ran out.
    Folded,
}

impl DeliveryResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Sent => "sent",
            DeliveryResult::Retry => "retry",
            DeliveryResult::Dead => "dead",
            DeliveryResult::Folded => "folded",
        }
    }
}

/// Metrics hooks: the daemon counts `patrol_notifications_total{receiver,result}` and sets
/// `patrol_outbox_pending` from these.
pub trait OutboxObserver: Send + Sync {
    /// One notification's outcome at `receiver`.
    fn delivered(&self, _receiver: &str, _result: DeliveryResult) {}
    /// Pending notifications after a pass of the sender.
    fn pending(&self, _count: u64) {}
}

impl OutboxObserver for () {}

/// Exponential backoff: `initial · 2^(attempts−1)`, capped at `max`, minus up to 20 % jitter so
/// that retries of many notifications do not arrive at a receiver in lockstep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait after the `attempts`-th failed attempt (1-based); `unit` is a random number in
    /// [0, 1) choosing the jitter.
    pub fn delay(&self, attempts: u32, unit: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << doublings).min(self.max);
        base.mul_f64(1.0 - 0.2 * unit.clamp(0.0, 1.0))
    }
}

/// How the sender works.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// Time between passes when nothing wakes the sender earlier.
    pub poll_interval: Duration,
    /// Timeout of one delivery.
    pub send_timeout: Duration,
    /// Due notifications taken per pass.
    pub batch_size: usize,
    pub backoff: Backoff,
    /// Rate limits by receiver name, replacing the defaults of the receiver's kind.
    pub rate_limits: HashMap<String, RateLimit>,
}

impl Default for SenderConfig {
    fn default() -> SenderConfig {
        SenderConfig {
            poll_interval: Duration::from_secs(1),
            send_timeout: Duration::from_secs(10),
            batch_size: 500,
            backoff: Backoff::default(),
            rate_limits: HashMap::new(),
        }
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub sent: u32,
    pub retried: u32,
    pub dead: u32,
    /// Notifications merged into digests.
    pub folded: u32,
    /// Pending notifications after the pass.
    pub pending: u64,
}

/// What to do with one receiver's due notifications, given its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    /// The first `send` are delivered one by one.
    send: usize,
    /// Those from this index on are folded into one digest.
    fold_from: Option<usize>,
    /// Whether the digest is delivered in this pass (else it waits for a token).
    send_digest: bool,
}

/// `due` notifications and `tokens` deliveries allowed: send all if the budget allows; otherwise
/// send `tokens − 1` and fold the rest into a digest sent with the last token, or with no token
/// fold them all (a lone notification simply waits).
fn plan(due: usize, tokens: u32) -> Plan {
    let tokens = usize::try_from(tokens).unwrap_or(usize::MAX);
    match tokens {
        t if due <= t => Plan {
            send: due,
            fold_from: None,
            send_digest: false,
        },
        0 if due == 1 => Plan {
            send: 0,
            fold_from: None,
            send_digest: false,
        },
        0 => Plan {
            send: 0,
            fold_from: Some(0),
            send_digest: false,
        },
        t => Plan {
            send: t - 1,
            fold_from: Some(t - 1),
            send_digest: true,
        },
    }
}

/// Delivers the outbox. Build one per daemon with [`OutboxSender::new`] and [`OutboxSender::run`] it.
pub struct OutboxSender {
    store: Store,
    receivers: HashMap<String, ReceiverSpec>,
    http: reqwest::Client,
    config: SenderConfig,
    budgets: HashMap<String, Budget>,
    observer: Arc<dyn OutboxObserver>,
    wake: Arc<Notify>,
}

impl OutboxSender {
    /// A sender for the named receivers (a notification for a receiver not in the map is
    /// dead-lettered: it can never be delivered).
    pub fn new(
        store: Store,
        receivers: HashMap<String, ReceiverSpec>,
        http: reqwest::Client,
        config: SenderConfig,
    ) -> OutboxSender {
        OutboxSender {
            store,
            receivers,
            http,
            config,
            budgets: HashMap::new(),
            observer: Arc::new(()),
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn with_observer(mut self, observer: Arc<dyn OutboxObserver>) -> OutboxSender {
        self.observer = observer;
        self
    }

    /// Notify this after queueing notifications to start a pass at once instead of at the next
    /// poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Passes until `shutdown`: one pass, then a pause of `poll_interval` (cut short by the
    /// waker). Store errors are logged and the next pass tries again.
    pub async fn run(mut self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.tick(Utc::now()).await {
                Ok(report) => self.observer.pending(report.pending),
                Err(e) => tracing::warn!("outbox: {e}"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// One pass at `now`: delivers, retries, dead-letters and folds the due notifications.
    /// Receivers are served concurrently, each one's notifications in order.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let due = self
            .store
            .due_notifications(now, self.config.batch_size)
            .await?;
        let mut report = TickReport::default();
        let mut queues: Vec<(&ReceiverSpec, Vec<OutboxEntry>)> = Vec::new();
        for (receiver, entries) in by_receiver(due) {
            let Some(spec) = self.receivers.get(&receiver) else {
                let reason = format!("receiver '{receiver}' is not configured");
                for e in entries {
                    self.store.mark_dead(e.id, &reason, now).await?;
                    self.observer.delivered(&receiver, DeliveryResult::Dead);
                    report.dead += 1;
                }
                continue;
            };
            let limit = self
                .config
                .rate_limits
                .get(&receiver)
                .copied()
                .unwrap_or_else(|| RateLimit::default_for_kind(spec.kind()));
            let budget = self
                .budgets
                .entry(receiver.clone())
                .or_insert_with(|| Budget::new(limit, now));
            let entries =
                fold_groups(&self.store, &*self.observer, entries, now, &mut report).await?;
            let queue = apply_plan(
                &self.store,
                &*self.observer,
                entries,
                budget,
                now,
                &mut report,
            )
            .await?;
            queues.push((spec, queue));
        }
        let this = &*self;
        let outcomes = futures::future::join_all(
            queues
                .iter()
                .map(|(spec, queue)| this.deliver_in_order(spec, queue, now)),
        )
        .await;
        for outcome in outcomes {
            for result in outcome? {
                match result {
                    DeliveryResult::Sent => report.sent += 1,
                    DeliveryResult::Retry => report.retried += 1,
                    DeliveryResult::Dead => report.dead += 1,
                    DeliveryResult::Folded => report.folded += 1,
                }
            }
        }
        report.pending = self.store.pending_notifications().await?;
        Ok(report)
    }

    async fn deliver_in_order(
        &self,
        spec: &ReceiverSpec,
        queue: &[OutboxEntry],
        now: DateTime<Utc>,
    ) -> Result<Vec<DeliveryResult>, StoreError> {
        let mut results = Vec::with_capacity(queue.len());
        for entry in queue {
            results.push(self.deliver(spec, entry, now).await?);
        }
        Ok(results)
    }

    /// One attempt at `entry`, and its outcome recorded.
    async fn deliver(
        &self,
        spec: &ReceiverSpec,
        entry: &OutboxEntry,
        now: DateTime<Utc>,
    ) -> Result<DeliveryResult, StoreError> {
        let ctx = SendContext {
            http: &self.http,
            timeout: self.config.send_timeout,
            now,
            // A multi-message delivery resumes after the parts earlier attempts delivered.
            parts: Parts::resume(entry.parts_done),
        };
        // The notifier applies the timeout to its requests; this one also bounds SMTP dialogues
        // and anything else that could hang.
        let limit = self.config.send_timeout + Duration::from_secs(1);
        let sent = tokio::time::timeout(limit, spec.send(&entry.payload, &ctx))
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Retryable(format!(
                    "no answer within {}",
                    humantime::format_duration(limit)
                )))
            });
        let result = match sent {
            Ok(()) => {
                self.store.mark_sent(entry.id, now).await?;
                DeliveryResult::Sent
            }
            Err(SendError::Retryable(why)) => {
                let wait = self
                    .config
                    .backoff
                    .delay(entry.attempts.saturating_add(1), fastrand::f64());
                let next = chrono::Duration::from_std(wait)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                self.store
                    .mark_failed(entry.id, &why, next, ctx.parts.done())
                    .await?;
                tracing::info!(receiver = %entry.receiver, id = entry.id, "notification failed, retrying: {why}");
                DeliveryResult::Retry
            }
            Err(SendError::Permanent(why)) => {
                self.store.mark_dead(entry.id, &why, now).await?;
                tracing::warn!(receiver = %entry.receiver, id = entry.id, "notification dead-lettered: {why}");
                DeliveryResult::Dead
            }
        };
        self.observer.delivered(&entry.receiver, result);
        Ok(result)
    }
}

/// Notifications of the same group that are due together (alerts that arrived within the
/// route's `group_wait`/`group_interval`) go out as one: they are folded into a digest.
async fn fold_groups(
    store: &Store,
    observer: &dyn OutboxObserver,
    entries: Vec<OutboxEntry>,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut groups: Vec<(String, Vec<OutboxEntry>)> = Vec::new();
    for e in entries {
        match groups.iter_mut().find(|(k, _)| *k == e.group_key) {
            Some((_, list)) => list.push(e),
            None => groups.push((e.group_key.clone(), vec![e])),
        }
    }
    let mut out = Vec::new();
    for (_, mut list) in groups {
        if list.len() == 1 {
            out.append(&mut list);
            continue;
        }
        let digest = digest::fold(&list);
        let ids: Vec<i64> = list.iter().map(|e| e.id).collect();
        // None: another sender took them; they are no longer ours this pass.
        if let Some(id) = store.fold_notifications(&ids, &digest, now).await? {
            for e in &list {
                observer.delivered(&e.receiver, DeliveryResult::Folded);
            }
            report.folded += list.len() as u32;
            out.push(digest_entry(id, digest, now));
        }
    }
    out.sort_by_key(|e| (e.next_attempt_at, e.id));
    Ok(out)
}

/// Folds what the budget cannot carry and returns what to deliver now, with a token taken for
/// each.
async fn apply_plan(
    store: &Store,
    observer: &dyn OutboxObserver,
    mut entries: Vec<OutboxEntry>,
    budget: &mut Budget,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let plan = plan(entries.len(), budget.available(now));
    let folded = plan.fold_from.map(|from| entries.split_off(from));
    entries.truncate(plan.send);
    if let Some(folded) = folded {
        let digest = digest::fold(&folded);
        let ids: Vec<i64> = folded.iter().map(|e| e.id).collect();
        // None: another sender got there first; the rows are no longer ours this pass.
        if let Some(id) = store.fold_notifications(&ids, &digest, now).await? {
            for e in &folded {
                observer.delivered(&e.receiver, DeliveryResult::Folded);
            }
            report.folded += folded.len() as u32;
            if plan.send_digest {
                entries.push(digest_entry(id, digest, now));
            }
        }
    }
    for _ in &entries {
        budget.take(now);
    }
    Ok(entries)
}

/// The stored form of a digest just queued, to deliver it in the same pass.
fn digest_entry(id: i64, digest: crate::store::NewNotification, now: DateTime<Utc>) -> OutboxEntry {
    OutboxEntry {
        id,
        receiver: digest.receiver,
        group_key: digest.group_key,
        idempotency_key: digest.idempotency_key,
        payload: digest.payload,
        status: crate::store::OutboxStatus::Pending,
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        sent_at: None,
        folded_into: None,
        parts_done: 0,
    }
}

/// `entries` grouped by receiver, receivers in order of their oldest entry, each group in queue
/// order.
fn by_receiver(entries: Vec<OutboxEntry>) -> Vec<(String, Vec<OutboxEntry>)> {
    let mut groups: Vec<(String, Vec<OutboxEntry>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for e in entries {
        let i = *index.entry(e.receiver.clone()).or_insert_with(|| {
            groups.push((e.receiver.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(e);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_five_minutes_with_at_most_20_percent_jitter() {
        let b = Backoff::default();
        let secs = |attempts, unit| b.delay(attempts, unit).as_secs_f64();
        assert_eq!([1, 2, 3, 4].map(|n| secs(n, 0.0)), [1.0, 2.0, 4.0, 8.0]);
        assert_eq!(secs(9, 0.0), 256.0);
        assert_eq!(secs(10, 0.0), 300.0);
        assert_eq!(secs(u32::MAX, 0.0), 300.0);
        assert!((secs(3, 0.999) - 3.2).abs() < 0.01);
        assert_eq!(secs(0, 0.0), 1.0, "a first failure waits the initial delay");
    }

    #[test]
    fn plans_send_what_the_budget_allows_and_fold_the_rest() {
        let p = |send, fold_from, send_digest| Plan {
            send,
            fold_from,
            send_digest,
        };
        assert_eq!(plan(3, u32::MAX), p(3, None, false));
        assert_eq!(plan(3, 3), p(3, None, false));
        assert_eq!(plan(5, 2), p(1, Some(1), true));
        assert_eq!(plan(5, 1), p(0, Some(0), true));
        assert_eq!(plan(5, 0), p(0, Some(0), false));
        assert_eq!(plan(1, 0), p(0, None, false));
        assert_eq!(plan(0, 0), p(0, None, false));
    }
}
