//! Folding notifications into one digest when a receiver's rate budget is exhausted: the excess is
//! merged, never dropped.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest as _, Sha256};

use crate::alert::{Alert, AlertStatus, Notification};
use crate::store::{NewNotification, OutboxEntry};

/// One notification carrying the alerts of `entries` (in queue order, non-empty, one receiver).
///
/// An alert that appears in several of them (it fired, then resolved) appears once, in its latest
/// state, at the place it first appeared: the digest tells where things stand now. The
/// idempotency key is derived from the folded keys, so folding the same set again yields the same
/// key and the outbox queues it once.
pub fn fold(entries: &[OutboxEntry]) -> NewNotification {
    let first = &entries[0].payload;
    let alerts = latest_alerts(entries.iter().flat_map(|e| e.payload.alerts.iter()));
    let same_group = entries.iter().all(|e| e.group_key == entries[0].group_key);
    let group_key = if same_group {
        entries[0].group_key.clone()
    } else {
        format!("{}:digest", entries[0].receiver)
    };
    let idempotency_key = digest_key(entries.iter().map(|e| e.idempotency_key.as_str()));
    let status = if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
        AlertStatus::Firing
    } else {
        AlertStatus::Resolved
    };
    let payload = Notification {
        receiver: entries[0].receiver.clone(),
        group_key: group_key.clone(),
        status,
        group_labels: common(entries.iter().map(|e| &e.payload.group_labels)),
        common_labels: common(alerts.iter().map(|a| &a.labels)),
        common_annotations: common(alerts.iter().map(|a| &a.annotations)),
        alerts,
        external_url: first.external_url.clone(),
        idempotency_key: idempotency_key.clone(),
    };
    NewNotification {
        receiver: entries[0].receiver.clone(),
        group_key,
        idempotency_key,
        payload,
        not_before: None,
    }
}

fn latest_alerts<'a>(alerts: impl Iterator<Item = &'a Alert>) -> Vec<Alert> {
    let mut position: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<Alert> = Vec::new();
    for a in alerts {
        match position.get(a.fingerprint.as_str()) {
            Some(&i) => out[i] = a.clone(),
            None => {
                position.insert(&a.fingerprint, out.len());
                out.push(a.clone());
            }
        }
    }
    out
}

/// The pairs every map has in common.
fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(mut shared) = maps.next().cloned() else {
        return BTreeMap::new();
    };
    for m in maps {
        shared.retain(|k, v| m.get(k) == Some(v));
    }
    shared
}

/// `digest-` and 32 hex digits of the SHA-256 of the folded keys.
fn digest_key<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for k in keys {
        h.update(k.as_bytes());
        h.update(b"\n");
    }
    format!("digest-{}", &hex::encode(h.finalize())[..32])
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::store::OutboxStatus;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn alert(fp: &str, host: &str, status: AlertStatus) -> Alert {
        Alert {
            status,
            labels: BTreeMap::from([
                ("alertname".into(), "disk".into()),
                ("host".into(), host.into()),
            ]),
            annotations: BTreeMap::from([("summary".into(), format!("disk on {host}"))]),
            starts_at: t0(),
            ends_at: None,
            generator_url: String::new(),
            fingerprint: fp.into(),
        }
    }

    fn entry(id: i64, key: &str, group: &str, alerts: Vec<Alert>) -> OutboxEntry {
        let status = if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        };
        OutboxEntry {
            id,
            receiver: "ding".into(),
            group_key: group.into(),
            idempotency_key: key.into(),
            payload: Notification {
                receiver: "ding".into(),
                group_key: group.into(),
                status,
                group_labels: BTreeMap::from([("alertname".into(), "disk".into())]),
                common_labels: BTreeMap::new(),
                common_annotations: BTreeMap::new(),
                alerts,
                external_url: "https://patrol.example".into(),
                idempotency_key: key.into(),
            },
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: t0(),
            last_error: None,
            created_at: t0(),
            sent_at: None,
            folded_into: None,
            parts_done: 0,
        }
    }

    #[test]
    fn a_digest_keeps_every_alert_once_in_its_latest_state() {
        let entries = [
            entry(1, "k1", "g", vec![alert("a", "n1", AlertStatus::Firing)]),
            entry(2, "k2", "g", vec![alert("b", "n2", AlertStatus::Firing)]),
            entry(3, "k3", "g", vec![alert("a", "n1", AlertStatus::Resolved)]),
        ];
        let d = fold(&entries);
        let got: Vec<(&str, AlertStatus)> = d
            .payload
            .alerts
            .iter()
            .map(|a| (a.fingerprint.as_str(), a.status))
            .collect();
        assert_eq!(
            got,
            [("a", AlertStatus::Resolved), ("b", AlertStatus::Firing)]
        );
        assert_eq!(d.payload.status, AlertStatus::Firing);
        assert_eq!(d.group_key, "g");
        assert_eq!(d.payload.common_labels["alertname"], "disk");
        assert!(!d.payload.common_labels.contains_key("host"));
        assert_eq!(d.payload.idempotency_key, d.idempotency_key);
    }

    #[test]
    fn the_digest_key_depends_on_the_folded_keys_only() {
        let one = [
            entry(1, "k1", "g1", vec![alert("a", "n1", AlertStatus::Firing)]),
            entry(2, "k2", "g2", vec![alert("b", "n2", AlertStatus::Resolved)]),
        ];
        let d = fold(&one);
        assert!(
            d.idempotency_key.starts_with("digest-"),
            "{}",
            d.idempotency_key
        );
        assert_eq!(d.group_key, "ding:digest");
        let mut other = one.clone();
        other[1].idempotency_key = "k3".into();
        assert_ne!(fold(&other).idempotency_key, d.idempotency_key);
        assert_eq!(fold(&one).idempotency_key, d.idempotency_key);
    }
}
