//! Silences: made at run time (API or `patrol silence add`), they mute the notifications of the
//! alerts their matchers select between `starts_at` and `ends_at`. The alert itself still fires
//! and is recorded; only telling people is suppressed. Validation follows Alertmanager's rules:
//! a silence needs a creator, a comment, an end after its start and in the future, and at least
//! one matcher that an alert without labels would fail (otherwise it would mute everything).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::matcher::{Labels, Matcher, matches_all};
use crate::config::{Issues, path_text};

/// A silence as stored and listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

/// Where a silence is in its life, for listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl Silence {
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.state(now) == SilenceState::Active
    }

    /// Whether this silence mutes an alert with `labels` at `now`.
    pub fn mutes(&self, labels: &Labels, now: DateTime<Utc>) -> bool {
        self.is_active(now) && matches_all(&self.matchers, labels)
    }

    /// Ends the silence at `now` (a pending one never starts). False when it had already ended.
    pub fn expire(&mut self, now: DateTime<Utc>) -> bool {
        if self.ends_at <= now {
            return false;
        }
        self.starts_at = self.starts_at.min(now);
        self.ends_at = now;
        true
    }
}

/// The id of the first silence that mutes `labels` at `now`, if any.
pub fn silenced<'a>(
    silences: &'a [Silence],
    labels: &Labels,
    now: DateTime<Utc>,
) -> Option<&'a str> {
    silences
        .iter()
        .find(|s| s.mutes(labels, now))
        .map(|s| s.id.as_str())
}

/// A request to create a silence (`POST /api/v1/silences`, `patrol silence add`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    /// Defaults to now.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

impl NewSilence {
    /// Problems with the request at `now`, by field.
    pub fn validate(&self, now: DateTime<Utc>, issues: &mut Issues) {
        if self.matchers.is_empty() {
            issues.at(&["matchers"], "a silence needs at least one matcher");
        } else if self.matchers.iter().all(Matcher::matches_empty) {
            issues.at(
                &["matchers"],
                "these matchers also match an alert without labels and would silence everything; add one that requires a label value",
            );
        }
        let starts_at = self.starts_at.unwrap_or(now);
        if self.ends_at <= starts_at {
            issues.at(&["ends_at"], "`ends_at` must be after `starts_at`");
        } else if self.ends_at <= now {
            issues.at(&["ends_at"], "`ends_at` is in the past");
        }
        for (key, value) in [("created_by", &self.created_by), ("comment", &self.comment)] {
            if value.trim().is_empty() {
                issues.at(&[key], format!("`{key}` must not be empty"));
            }
        }
    }

    /// The silence this request makes at `now`, with a fresh id; or every problem, one per line
    /// as `field: message`.
    pub fn into_silence(self, now: DateTime<Utc>) -> Result<Silence, String> {
        let mut issues = Issues::default();
        self.validate(now, &mut issues);
        if !issues.is_empty() {
            let lines: Vec<String> = issues
                .items
                .iter()
                .map(|(path, message)| format!("{}: {message}", path_text(path)))
                .collect();
            return Err(lines.join("\n"));
        }
        Ok(Silence {
            id: uuid::Uuid::now_v7().to_string(),
            matchers: self.matchers,
            starts_at: self.starts_at.unwrap_or(now),
            ends_at: self.ends_at,
            created_by: self.created_by,
            comment: self.comment,
        })
    }
}

/// Reads a stored silence back into matchers (stored as the strings a [`Silence`] serialises to).
pub fn from_stored(s: crate::store::StoredSilence) -> Result<Silence, crate::store::StoreError> {
    let matchers = serde_json::from_value(s.matchers).map_err(|e| {
        crate::store::StoreError(format!(
            "silence {} has matchers that no longer parse: {e}",
            s.id
        ))
    })?;
    Ok(Silence {
        id: s.id,
        matchers,
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        created_by: s.created_by,
        comment: s.comment,
    })
}

/// The store's form of a validated silence (matchers as JSON strings).
pub fn to_store(s: &Silence) -> crate::store::NewSilence {
    crate::store::NewSilence {
        matchers: serde_json::to_value(&s.matchers).unwrap_or_default(),
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
    }
}

#[cfg(test)]
#[path = "silence_tests.rs"]
mod tests;
