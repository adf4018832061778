use chrono::{TimeDelta, TimeZone};

use super::*;
use crate::alert::matcher::parse_matchers;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn t(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, hour, minute, 0).unwrap()
}

fn request(matchers: &str, starts_at: Option<DateTime<Utc>>, ends_at: DateTime<Utc>) -> NewSilence {
    NewSilence {
        matchers: parse_matchers(matchers).unwrap(),
        starts_at,
        ends_at,
        created_by: "alice".into(),
        comment: "db failover drill".into(),
    }
}

#[test]
fn a_silence_mutes_matching_alerts_only_within_its_time() {
    let silence = request(
        r#"service="orders",severity=~"warn.*""#,
        Some(t(10, 0)),
        t(12, 0),
    )
    .into_silence(t(9, 0))
    .unwrap();
    let orders_warn = labels(&[("service", "orders"), ("severity", "warning")]);
    let orders_crit = labels(&[("service", "orders"), ("severity", "critical")]);
    assert!(!silence.mutes(&orders_warn, t(9, 59)), "pending");
    assert!(silence.mutes(&orders_warn, t(10, 0)), "starts inclusive");
    assert!(silence.mutes(&orders_warn, t(11, 59)));
    assert!(!silence.mutes(&orders_warn, t(12, 0)), "ends exclusive");
    assert!(!silence.mutes(&orders_crit, t(11, 0)), "other severity");
    assert_eq!(silence.state(t(9, 0)), SilenceState::Pending);
    assert_eq!(silence.state(t(11, 0)), SilenceState::Active);
    assert_eq!(silence.state(t(12, 0)), SilenceState::Expired);
}

#[test]
fn silenced_names_the_first_active_silence() {
    let now = t(8, 0);
    let mut expired = request(r#"service="orders""#, None, t(9, 0))
        .into_silence(now)
        .unwrap();
    expired.expire(t(8, 30));
    let active = request(r#"service=~"ord.*""#, None, t(13, 0))
        .into_silence(now)
        .unwrap();
    let silences = vec![expired, active.clone()];
    let alert = labels(&[("service", "orders")]);
    assert_eq!(
        silenced(&silences, &alert, t(10, 0)),
        Some(active.id.as_str())
    );
    assert_eq!(
        silenced(&silences, &labels(&[("service", "users")]), t(10, 0)),
        None
    );
    assert_eq!(silenced(&silences, &alert, t(13, 0)), None);
}

#[test]
fn expiring_ends_now_and_a_pending_silence_never_starts() {
    let mut active = request("a=1", Some(t(10, 0)), t(12, 0))
        .into_silence(t(10, 0))
        .unwrap();
    assert!(active.expire(t(11, 0)));
    assert_eq!((active.starts_at, active.ends_at), (t(10, 0), t(11, 0)));
    assert!(!active.expire(t(11, 30)), "already over");

    let mut pending = request("a=1", Some(t(10, 0)), t(12, 0))
        .into_silence(t(9, 0))
        .unwrap();
    assert!(pending.expire(t(9, 30)));
    assert_eq!(pending.state(t(10, 30)), SilenceState::Expired);
    assert!(!pending.mutes(&labels(&[("a", "1")]), t(10, 30)));
}

#[test]
fn new_silences_get_distinct_ids_and_default_to_start_now() {
    let a = request("a=1", None, t(12, 0))
        .into_silence(t(10, 0))
        .unwrap();
    let b = request("a=1", None, t(12, 0))
        .into_silence(t(10, 0))
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(a.starts_at, t(10, 0));
}

#[test]
fn invalid_requests_are_refused_with_every_reason() {
    let now = t(10, 0);
    let mut bad = request(r#"env!="prod",team=~".*""#, Some(t(11, 0)), t(11, 0));
    bad.created_by = " ".into();
    bad.comment = String::new();
    let err = bad.into_silence(now).unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].starts_with("matchers: ") && lines[0].contains("silence everything"));
    assert!(lines[1].starts_with("ends_at: ") && lines[1].contains("after `starts_at`"));
    assert!(lines[2].starts_with("created_by: "));
    assert!(lines[3].starts_with("comment: "));

    let err = request("", None, t(12, 0)).into_silence(now).unwrap_err();
    assert!(err.contains("at least one matcher"), "{err}");
    let err = request("a=1", Some(t(8, 0)), t(9, 0))
        .into_silence(now)
        .unwrap_err();
    assert!(err.contains("in the past"), "{err}");
}

#[test]
fn a_request_deserializes_from_api_json() {
    let now = t(10, 0);
    let body = serde_json::json!({
        "matchers": ["node=\"db-1\"", {"name": "severity", "op": "!=", "value": "info"}],
        "ends_at": (now + TimeDelta::hours(1)).to_rfc3339(),
        "created_by": "bob",
        "comment": "kernel upgrade"
    });
    let req: NewSilence = serde_json::from_value(body).unwrap();
    let silence = req.into_silence(now).unwrap();
    assert!(silence.mutes(&labels(&[("node", "db-1"), ("severity", "critical")]), now));
    let stored = serde_json::to_value(&silence).unwrap();
    assert_eq!(stored["matchers"][1], "severity!=\"info\"");
    let back: Silence = serde_json::from_value(stored).unwrap();
    assert_eq!(back, silence);
    let unknown = serde_json::json!({"matchers": [], "ends_at": now, "created_by": "a", "comment": "b", "x": 1});
    assert!(serde_json::from_value::<NewSilence>(unknown).is_err());
}
