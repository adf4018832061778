//! `kv:` — one key of Consul's KV store: its value (a number when it reads as one, else text) or
//! its age, the time since its `ModifyIndex` last changed.
//!
//! Consul keeps no modification *time*, only the raft index of the last write, so the age is
//! measured by the probe: its memory keeps the index it saw and when it first saw it. The first
//! run (and the first run after a change the probe did not witness, such as after the check's
//! settings changed) counts from that observation, so until patrol has seen the key change once,
//! the age is a lower bound: "unchanged for at least this long".

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::api::Api;
use super::{KvQuery, KvValue};
use crate::probe::memory::Memory;
use crate::probe::{Measurement, ProbeError, Sample};
use crate::result::Value;

/// Characters of a text value kept as the sample (a KV value may be 512 KiB).
const TEXT_LIMIT: usize = 4096;

/// One entry of `GET /v1/kv/<key>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KvEntry {
    key: String,
    /// Base64; `null` for an empty value.
    value: Option<String>,
    modify_index: u64,
}

/// What the probe remembers between runs for `value: age`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Seen {
    key: String,
    modify_index: u64,
    /// When this probe first saw `modify_index`.
    changed_at: DateTime<Utc>,
}

pub(super) async fn measure(
    api: &Api<'_>,
    query: &KvQuery,
    memory: &Memory,
) -> Result<Measurement, ProbeError> {
    let mut segments = vec!["kv"];
    segments.extend(query.key.split('/'));
    let Some(body) = api.get(&segments, &[]).await? else {
        return Ok(Measurement {
            failures: vec![format!(
                "key {} not found in Consul at {}",
                query.key,
                api.place()
            )],
            ..Default::default()
        });
    };
    let entry = parse_entry(&body, &query.key).map_err(ProbeError::new)?;
    match query.value {
        KvValue::Content => {
            let bytes = decode(&entry).map_err(ProbeError::new)?;
            Ok(single(content_value(&bytes), ""))
        }
        KvValue::Age => {
            let (age, seen) = age(memory.previous(), &entry, Utc::now());
            memory.remember(serde_json::to_value(seen).unwrap_or_default());
            Ok(single(Value::Num(age), "s"))
        }
    }
}

fn single(value: Value, unit: &str) -> Measurement {
    Measurement {
        samples: vec![Sample::single(value)],
        unit: unit.into(),
        ..Default::default()
    }
}

/// The entry for `key` in Consul's answer (a list of one).
fn parse_entry(body: &[u8], key: &str) -> Result<KvEntry, String> {
    let entries: Vec<KvEntry> = serde_json::from_slice(body)
        .map_err(|e| format!("Consul's answer for key {key} is not a KV entry list: {e}"))?;
    entries
        .into_iter()
        .find(|e| e.key == key)
        .ok_or_else(|| format!("Consul's answer for key {key} does not contain it"))
}

fn decode(entry: &KvEntry) -> Result<Vec<u8>, String> {
    match &entry.value {
        None => Ok(Vec::new()),
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the value of key {} is not valid base64: {e}", entry.key)),
    }
}

/// A number when the value (without surrounding whitespace) is a finite number, else its text
/// (cut at [`TEXT_LIMIT`] characters).
fn content_value(bytes: &[u8]) -> Value {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Value::Num(n),
        _ => Value::Text(text.chars().take(TEXT_LIMIT).collect()),
    }
}

/// Seconds since the key's `ModifyIndex` was first seen, and what to remember for next time.
fn age(previous: Option<&serde_json::Value>, entry: &KvEntry, now: DateTime<Utc>) -> (f64, Seen) {
    let previous = previous.and_then(|p| serde_json::from_value::<Seen>(p.clone()).ok());
    let changed_at = match previous {
        Some(p) if p.key == entry.key && p.modify_index == entry.modify_index => p.changed_at,
        // First sight, or written since the last run: the change is dated now.
        _ => now,
    };
    // A clock set back must not give a negative age.
    let age = (now - changed_at).num_milliseconds().max(0) as f64 / 1000.0;
    let seen = Seen {
        key: entry.key.clone(),
        modify_index: entry.modify_index,
        changed_at,
    };
    (age, seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Consul's answer for `app/limit` = "42" (as `curl /v1/kv/app/limit` shows it).
    const ANSWER: &str = r#"[{"LockIndex":0,"Key":"app/limit","Flags":0,"Value":"NDI=","CreateIndex":12,"ModifyIndex":17}]"#;

    #[test]
    fn an_entry_is_read_from_consuls_answer() {
        let e = parse_entry(ANSWER.as_bytes(), "app/limit").unwrap();
        assert_eq!((e.key.as_str(), e.modify_index), ("app/limit", 17));
        assert_eq!(decode(&e).unwrap(), b"42");
    }

    #[test]
    fn an_empty_value_is_null_in_consul_and_empty_text_here() {
        let e = parse_entry(
            br#"[{"Key":"k","Value":null,"ModifyIndex":3,"CreateIndex":3,"Flags":0,"LockIndex":0}]"#,
            "k",
        )
        .unwrap();
        assert_eq!(
            content_value(&decode(&e).unwrap()),
            Value::Text(String::new())
        );
    }

    #[test]
    fn answers_that_are_not_entries_are_named() {
        assert!(
            parse_entry(b"{}", "k")
                .unwrap_err()
                .contains("not a KV entry list")
        );
        assert!(
            parse_entry(b"[]", "k")
                .unwrap_err()
                .contains("does not contain it")
        );
        let bad = parse_entry(br#"[{"Key":"k","Value":"***","ModifyIndex":1}]"#, "k").unwrap();
        assert!(decode(&bad).unwrap_err().contains("not valid base64"));
    }

    #[test]
    fn numbers_are_numbers_and_everything_else_is_trimmed_text() {
        assert_eq!(content_value(b" 42\n"), Value::Num(42.0));
        assert_eq!(content_value(b"-0.5"), Value::Num(-0.5));
        assert_eq!(content_value(b"on\n"), Value::Text("on".into()));
        assert_eq!(content_value(b"NaN"), Value::Text("NaN".into()));
        assert_eq!(content_value(b"inf"), Value::Text("inf".into()));
        let long = "x".repeat(TEXT_LIMIT + 10);
        assert_eq!(
            content_value(long.as_bytes()),
            Value::Text("x".repeat(TEXT_LIMIT))
        );
    }

    fn entry(index: u64) -> KvEntry {
        KvEntry {
            key: "app/limit".into(),
            value: None,
            modify_index: index,
        }
    }

    #[test]
    fn the_age_counts_from_first_sight_and_grows_while_the_index_stays() {
        let t0 = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let (age, seen) = age(None, &entry(17), t0);
        assert_eq!(age, 0.0);
        let memory = serde_json::to_value(&seen).unwrap();
        assert_eq!(
            memory,
            json!({"key": "app/limit", "modify_index": 17, "changed_at": "2024-05-01T10:00:00Z"})
        );
        let later = t0 + chrono::Duration::seconds(90);
        let (age_later, kept) = super::age(Some(&memory), &entry(17), later);
        assert_eq!(age_later, 90.0);
        assert_eq!(kept.changed_at, t0);
    }

    #[test]
    fn a_new_index_restarts_the_age() {
        let t0 = Utc::now();
        let (_, seen) = age(None, &entry(17), t0);
        let memory = serde_json::to_value(seen).unwrap();
        let later = t0 + chrono::Duration::seconds(30);
        let (age_after_write, seen) = age(Some(&memory), &entry(18), later);
        assert_eq!(age_after_write, 0.0);
        assert_eq!((seen.modify_index, seen.changed_at), (18, later));
    }

    #[test]
    fn unreadable_or_foreign_memory_counts_as_first_sight() {
        let now = Utc::now();
        let other_key =
            json!({"key": "other", "modify_index": 17, "changed_at": "2020-01-01T00:00:00Z"});
        assert_eq!(age(Some(&other_key), &entry(17), now).0, 0.0);
        assert_eq!(age(Some(&json!("garbage")), &entry(17), now).0, 0.0);
    }

    #[test]
    fn a_clock_set_back_gives_age_zero_not_negative() {
        let now = Utc::now();
        let future = json!({"key": "app/limit", "modify_index": 17,
                            "changed_at": (now + chrono::Duration::hours(1)).to_rfc3339()});
        assert_eq!(age(Some(&future), &entry(17), now).0, 0.0);
    }
}
