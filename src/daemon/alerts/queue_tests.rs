//! The daemon's alerting against a real (in-memory SQLite) store, driven with results and a clock
//! of the test's choosing: what each queued notification carries and when reminders go out.

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone};

use super::*;
use crate::alert::Notification;
use crate::config::Check;
use crate::result::{CheckResult, Status};
use crate::store::OutboxEntry;

/// Two checks of service orders grouped by one route; `api` also notifies `pager` directly.
/// `{route}` and `{check_repeat}` set the route's and the checks' repeat intervals.
const RULES: &str = r#"
receivers:
  team: {kind: webhook, url: "http://127.0.0.1:9/hook"}
  pager: {kind: webhook, url: "http://127.0.0.1:9/pager"}
routes:
  - receiver: team
    group_by: [service]
    group_wait: 0s
    group_interval: 1m
    repeat_interval: {route}
defaults:
  service: orders
  alert: {repeat_interval: {check_repeat}, flap: {window: 0s}}
checks:
  - {name: api, kind: tcp, address: '127.0.0.1:1', notify: [pager]}
  - {name: db, kind: tcp, address: '127.0.0.1:1'}
  - {name: dark, kind: tcp, address: '127.0.0.1:1', mode: shadow}
"#;

fn rules(route_repeat: &str, check_repeat: &str) -> RuleSet {
    let text = RULES
        .replace("{route}", route_repeat)
        .replace("{check_repeat}", check_repeat);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), text).unwrap();
    crate::config::load_with_env(&[dir.path().to_path_buf()], &BTreeMap::new())
        .unwrap_or_else(|d| panic!("{d:#?}"))
}

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

struct Harness {
    store: Store,
    rules: RuleSet,
    alerting: Alerting,
    /// Outbox rows already looked at.
    seen: usize,
}

impl Harness {
    async fn new(route_repeat: &str, check_repeat: &str) -> Harness {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let alerting = Alerting::load(&store, "http://patrol".into())
            .await
            .unwrap();
        Harness {
            store,
            rules: rules(route_repeat, check_repeat),
            alerting,
            seen: 0,
        }
    }

    fn check(&self, name: &str) -> Arc<Check> {
        self.rules.check(name).unwrap().clone()
    }

    /// One run at `minute` in which each named check reports `status`.
    async fn run(&self, minute: i64, checks: &[(&str, Status)]) {
        let results: Vec<(Arc<Check>, Vec<CheckResult>)> = checks
            .iter()
            .map(|(name, status)| {
                let r = CheckResult::new(name, "", *status, None);
                (self.check(name), vec![r])
            })
            .collect();
        let (store, rules) = (&self.store, &self.rules);
        self.alerting
            .observe_run(store, rules, &results, &HashMap::new(), t(minute))
            .await;
    }

    async fn remind(&self, minute: i64) -> Option<DateTime<Utc>> {
        self.alerting
            .remind(&self.store, &self.rules, t(minute))
            .await
    }

    /// The notifications queued for `receiver` since the last call, oldest first.
    async fn new_for(&mut self, receiver: &str) -> Vec<OutboxEntry> {
        let mut all = self.store.outbox(None, 1000).await.unwrap();
        all.reverse();
        let fresh = all.split_off(self.seen.min(all.len()));
        self.seen += fresh.len();
        fresh
            .into_iter()
            .filter(|e| e.receiver == receiver)
            .collect()
    }
}

/// (alertname, status) of each alert a notification carries, in order.
fn carried(n: &Notification) -> Vec<(String, &'static str)> {
    n.alerts
        .iter()
        .map(|a| (a.labels["alertname"].clone(), a.status.as_str()))
        .collect()
}

fn pairs(list: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

#[tokio::test]
async fn every_notification_carries_the_whole_group_and_the_alerts_resolved_since_the_last() {
    let mut h = Harness::new("4h", "4h").await;
    h.run(0, &[("api", Status::Crit), ("db", Status::Ok)]).await;
    let first = h.new_for("team").await;
    assert_eq!(first.len(), 1);
    assert_eq!(carried(&first[0].payload), pairs(&[("api", "firing")]));

    h.run(10, &[("api", Status::Crit), ("db", Status::Crit)])
        .await;
    let second = h.new_for("team").await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(
        carried(&second[0].payload),
        pairs(&[("db", "firing"), ("api", "firing")]),
        "the news first, then the rest of the group"
    );

    h.run(20, &[("api", Status::Ok), ("db", Status::Crit)])
        .await;
    let third = h.new_for("team").await;
    assert_eq!(
        carried(&third[0].payload),
        pairs(&[("api", "resolved"), ("db", "firing")])
    );
    assert_eq!(third[0].payload.status, AlertStatus::Firing);

    h.run(30, &[("api", Status::Ok), ("db", Status::Ok)]).await;
    let fourth = h.new_for("team").await;
    assert_eq!(
        carried(&fourth[0].payload),
        pairs(&[("db", "resolved")]),
        "api resolved before the previous notification: not carried again"
    );
    assert_eq!(fourth[0].payload.status, AlertStatus::Resolved);
}

#[tokio::test]
async fn a_checks_notify_group_holds_only_its_own_alerts_and_a_shadow_check_none() {
    let mut h = Harness::new("4h", "4h").await;
    h.run(0, &[("dark", Status::Crit), ("db", Status::Crit)])
        .await;
    h.run(5, &[("api", Status::Crit)]).await;
    let pager = h.new_for("pager").await;
    assert_eq!(pager.len(), 1);
    assert_eq!(carried(&pager[0].payload), pairs(&[("api", "firing")]));
    h.seen = 0;
    let team = h.new_for("team").await;
    let last = team.last().unwrap();
    assert_eq!(
        carried(&last.payload),
        pairs(&[("api", "firing"), ("db", "firing")]),
        "the shadow check's firing alert is no member"
    );
}

#[tokio::test]
async fn a_silenced_alert_leaves_its_group_until_the_silence_ends() {
    let mut h = Harness::new("4h", "4h").await;
    h.run(0, &[("api", Status::Crit), ("db", Status::Crit)])
        .await;
    h.new_for("team").await;
    let silence = crate::store::NewSilence {
        matchers: serde_json::json!(["alertname=\"db\""]),
        starts_at: t(0),
        ends_at: t(15),
        created_by: "test".into(),
        comment: "db maintenance".into(),
    };
    h.store.add_silence(&silence).await.unwrap();
    h.run(10, &[("api", Status::Ok), ("db", Status::Crit)])
        .await;
    let during = h.new_for("team").await;
    assert_eq!(carried(&during[0].payload), pairs(&[("api", "resolved")]));
    h.run(20, &[("api", Status::Crit), ("db", Status::Crit)])
        .await;
    let after = h.new_for("team").await;
    assert_eq!(
        carried(&after[0].payload),
        pairs(&[("api", "firing"), ("db", "firing")]),
        "the silence ended at 0:15"
    );
}

#[tokio::test]
async fn an_unchanged_group_is_repeated_every_route_repeat_interval_without_results() {
    // Check reminders off: only the route repeats.
    let mut h = Harness::new("2h", "0s").await;
    h.run(0, &[("api", Status::Crit), ("db", Status::Crit)])
        .await;
    assert_eq!(h.new_for("team").await.len(), 1);
    assert_eq!(
        h.remind(60).await,
        Some(t(120)),
        "next due: the group's repeat"
    );
    assert!(h.new_for("team").await.is_empty(), "not yet due");

    assert_eq!(h.remind(121).await, Some(t(241)));
    let repeat = h.new_for("team").await;
    assert_eq!(repeat.len(), 1);
    assert_eq!(
        carried(&repeat[0].payload),
        pairs(&[("api", "firing"), ("db", "firing")]),
        "the whole group"
    );
    assert_eq!(repeat[0].next_attempt_at, t(121), "a repeat goes at once");
    assert!(
        h.new_for("pager").await.is_empty(),
        "notify: groups have no route repeat"
    );
    h.remind(122).await;
    assert!(
        h.new_for("team").await.is_empty(),
        "one repeat per interval"
    );
}

#[tokio::test]
async fn check_reminders_and_route_repeats_combine_into_one_message_per_interval() {
    // The checks remind hourly, the route every 4h: the hourly reminders win, and one message
    // carries both alerts although they fired half an hour apart.
    let mut h = Harness::new("4h", "1h").await;
    h.run(0, &[("api", Status::Crit)]).await;
    h.run(30, &[("db", Status::Crit)]).await;
    assert_eq!(h.new_for("team").await.len(), 2);
    h.new_for("pager").await;
    assert_eq!(
        h.remind(60).await,
        Some(t(90)),
        "api was told about at 0:30 with db's news"
    );
    assert!(h.new_for("team").await.is_empty());

    h.remind(90).await;
    let team = h.new_for("team").await;
    assert_eq!(team.len(), 1, "one reminder for both: {team:?}");
    assert_eq!(
        carried(&team[0].payload),
        pairs(&[("api", "firing"), ("db", "firing")])
    );
    // A result at 2:30 brings api's next reminder, as the tick would.
    h.run(150, &[("api", Status::Crit), ("db", Status::Crit)])
        .await;
    assert_eq!(h.new_for("team").await.len(), 1);
    assert_eq!(
        h.remind(151).await,
        Some(t(210)),
        "api and db remind again at 3:30"
    );
}

#[tokio::test]
async fn reminder_clocks_survive_a_restart() {
    let mut h = Harness::new("2h", "0s").await;
    h.run(0, &[("api", Status::Crit)]).await;
    h.new_for("team").await;
    // A new process: the group's last notification is estimated from its members' states.
    h.alerting = Alerting::load(&h.store, "http://patrol".into())
        .await
        .unwrap();
    assert_eq!(h.remind(60).await, Some(t(120)));
    assert!(h.new_for("team").await.is_empty());
    h.remind(120).await;
    assert_eq!(h.new_for("team").await.len(), 1);
}

#[tokio::test]
async fn phase_changes_are_announced_as_alert_events_and_nothing_else_is() {
    let h = Harness::new("4h", "4h").await;
    let bus = crate::daemon::events::EventBus::new();
    h.alerting.announce_on(bus.clone());
    let mut live = bus.subscribe();
    // A healthy first sight is no news; the failure fires (threshold 1), a repeat is no news,
    // the recovery resolves.
    h.run(0, &[("api", Status::Ok)]).await;
    h.run(1, &[("api", Status::Crit), ("db", Status::Ok)]).await;
    h.run(2, &[("api", Status::Crit)]).await;
    h.run(3, &[("api", Status::Ok)]).await;
    let mut got = Vec::new();
    while let Ok(e) = live.try_recv() {
        assert_eq!(e.kind, "alert");
        got.push((
            e.data["labels"]["alertname"].as_str().unwrap().to_string(),
            e.data["previous_phase"].clone(),
            e.data["phase"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(
        got,
        vec![
            ("api".into(), serde_json::json!("inactive"), "firing".into()),
            ("api".into(), serde_json::json!("firing"), "inactive".into()),
        ]
    );
    let stored = h.store.events_after(0, 100).await.unwrap();
    assert_eq!(stored.len(), 2, "stored too, for followers who reconnect");
}
