//! Who approves the steps marked `approve: true` (and playbooks with `approve: true`):
//! - [`TerminalApprover`]: the person at the terminal, asked on stderr and answering on
//!   `/dev/tty` (`patrol playbook run` in a terminal);
//! - [`StoreApprover`]: an approval stored with an expiring link, posted to the rules'
//!   `playbooks.notify` receivers and decided through the daemon's approval API
//!   (`POST /api/v1/approvals/{id}`, protected by the link's token) — by anyone who got the link,
//!   from any machine; the waiting run polls the store for the decision.
//!
//! `--yes` is [`crate::playbook::PreApproved`].
//!
//! **Tokens.** 32 random bytes from the operating system's generator, shown once (in the link)
//! and stored only as their SHA-256; a presented token is hashed and compared in constant time.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::notice::{self, Notice};
use crate::config::RuleSet;
use crate::playbook::run::{ApprovalRequest, Approver, BoxFuture};
use crate::store::{ApprovalDecision, NewApproval, Store};

/// First pause between two looks at a waiting approval; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(250);
const MAX_POLL: Duration = Duration::from_secs(2);

/// What waits, for messages: "step restart" or "the run".
fn waiting(request: &ApprovalRequest<'_>) -> String {
    match request.step {
        Some(step) => format!("step {step}"),
        None => "the run".to_string(),
    }
}

fn timed_out(what: &str, timeout: Duration) -> String {
    format!(
        "approval of {what} timed out after {}",
        crate::config::duration::format(timeout)
    )
}

/// Asks the person at the terminal: `Approve step X: <description>? [y/N]` on stderr, the
/// answer read from `/dev/tty`. Use it only when [`TerminalApprover::available`].
pub struct TerminalApprover {
    /// Recorded as `cli:<user>`.
    pub user: String,
}

impl TerminalApprover {
    /// Whether someone sits at a terminal to ask: stdin and stderr are both terminals.
    pub fn available() -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }
}

impl Approver for TerminalApprover {
    fn approve<'a>(
        &'a self,
        request: ApprovalRequest<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let what = waiting(&request);
            let prompt = match request.step {
                Some(step) => format!("Approve step {step}: {}? [y/N] ", request.description),
                None => format!("Approve {}? [y/N] ", request.description),
            };
            // A plain thread, not the blocking pool: an unanswered prompt must not keep the
            // process from exiting once the approval timed out.
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(ask_on_tty(&prompt));
            });
            let who = format!("cli:{}", self.user);
            match tokio::time::timeout(request.timeout, rx).await {
                Ok(Ok(Ok(answer))) if is_yes(&answer) => Ok(who),
                Ok(Ok(Ok(_))) => Err(format!("denied by {who}")),
                Ok(Ok(Err(e))) => Err(format!(
                    "cannot ask for the approval of {what} on the terminal: {e}"
                )),
                Ok(Err(_)) => Err(format!(
                    "cannot ask for the approval of {what} on the terminal"
                )),
                Err(_) => {
                    eprintln!();
                    Err(timed_out(&what, request.timeout))
                }
            }
        })
    }
}

fn ask_on_tty(prompt: &str) -> std::io::Result<String> {
    let mut stderr = std::io::stderr();
    stderr.write_all(prompt.as_bytes())?;
    stderr.flush()?;
    let tty = std::fs::File::open("/dev/tty")?;
    let mut line = String::new();
    std::io::BufReader::new(tty).read_line(&mut line)?;
    Ok(line)
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Asks through the store: an approval row with an expiring link, posted to the
/// `playbooks.notify` receivers; then waits for the approval API's decision.
#[derive(Clone)]
pub struct StoreApprover {
    pub store: Store,
    /// For the `playbooks.notify` receivers.
    pub rules: Arc<RuleSet>,
    /// Base URL of patrol as people reach it (the link).
    pub external_url: String,
}

/// An approval asked and not decided yet.
#[derive(Clone, Debug)]
pub struct OpenApproval {
    pub id: String,
    /// `{external_url}/api/v1/approvals/{id}?token=…`: whoever has it can decide.
    pub link: String,
    pub expires_at: DateTime<Utc>,
}

impl StoreApprover {
    /// Stores the approval and posts its link to the receivers.
    pub async fn open(&self, request: &ApprovalRequest<'_>) -> Result<OpenApproval, String> {
        let token = new_token()?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = Utc::now();
        let expires_at =
            now + chrono::Duration::from_std(request.timeout).unwrap_or(chrono::Duration::days(1));
        let token_hash = token_hash(&token);
        self.store
            .create_approval(&NewApproval {
                id: &id,
                run_id: request.run_id,
                playbook: request.playbook,
                step: request.step,
                description: request.description,
                input: request.input,
                token_hash: &token_hash,
                created_at: now,
                expires_at,
            })
            .await
            .map_err(|e| format!("cannot ask for the approval of {}: {e}", waiting(request)))?;
        let link = format!(
            "{}/api/v1/approvals/{id}?token={token}",
            self.external_url.trim_end_matches('/')
        );
        let open = OpenApproval {
            id,
            link,
            expires_at,
        };
        if self.rules.playbooks.notify.is_empty() {
            tracing::warn!(
                "approval {} waits, but `playbooks.notify` names no receiver to send its link to",
                open.id
            );
        }
        let notice = approval_notice(request, &open);
        notice::post(&self.store, &self.rules, &self.external_url, &notice).await;
        Ok(open)
    }

    /// Waits for the decision on `open` until it expires (then marks it expired): `Ok(who
    /// approved)`, or why not.
    pub async fn wait(
        &self,
        open: &OpenApproval,
        what: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        let mut pause = FIRST_POLL;
        loop {
            match self.store.approval(&open.id).await {
                Ok(Some(approval)) => {
                    let by = approval.decided_by.unwrap_or_default();
                    match approval.decision {
                        Some(ApprovalDecision::Approved) => return Ok(by),
                        Some(ApprovalDecision::Denied) => return Err(format!("denied by {by}")),
                        Some(ApprovalDecision::Expired) => return Err(timed_out(what, timeout)),
                        None => {}
                    }
                }
                Ok(None) => return Err(format!("approval {} is gone from the store", open.id)),
                // Passing trouble (a restarting database): look again until it expires.
                Err(e) => tracing::warn!("approval {}: {e}", open.id),
            }
            let now = Utc::now();
            if now >= open.expires_at {
                match self
                    .store
                    .decide_approval(&open.id, ApprovalDecision::Expired, "timeout", now)
                    .await
                {
                    // Decided at the last moment: the next look reads the decision.
                    Ok(false) => continue,
                    Ok(true) | Err(_) => return Err(timed_out(what, timeout)),
                }
            }
            let left = (open.expires_at - now).to_std().unwrap_or_default();
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

impl Approver for StoreApprover {
    fn approve<'a>(
        &'a self,
        request: ApprovalRequest<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let open = self.open(&request).await?;
            let what = waiting(&request);
            tracing::info!(
                "approval {} of {what} of playbook {} waits until {}",
                open.id,
                request.playbook,
                open.expires_at
            );
            self.wait(&open, &what, request.timeout).await
        })
    }
}

/// A [`StoreApprover`] that also says on stderr what waits and where to decide it (the command
/// line, where the person who started the run is watching).
pub struct AnnouncedStoreApprover(pub StoreApprover);

impl Approver for AnnouncedStoreApprover {
    fn approve<'a>(
        &'a self,
        request: ApprovalRequest<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let open = self.0.open(&request).await?;
            let what = waiting(&request);
            eprintln!(
                "approval {} of {what} ({}) waits until {}: {}",
                open.id,
                request.description,
                open.expires_at.format("%H:%M:%S UTC"),
                open.link
            );
            self.0.wait(&open, &what, request.timeout).await
        })
    }
}

fn approval_notice(request: &ApprovalRequest<'_>, open: &OpenApproval) -> Notice {
    let mut labels = std::collections::BTreeMap::from([
        ("alertname".to_string(), "playbook_approval".to_string()),
        ("playbook".to_string(), request.playbook.to_string()),
        ("severity".to_string(), "info".to_string()),
    ]);
    if let Some(step) = request.step {
        labels.insert("step".to_string(), step.to_string());
    }
    let what = waiting(request);
    let annotations = std::collections::BTreeMap::from([
        (
            "summary".to_string(),
            format!(
                "approval needed: {what} of playbook {}: {}",
                request.playbook, request.description
            ),
        ),
        (
            "description".to_string(),
            format!(
                "Open {} to approve or deny; it expires at {}.",
                open.link,
                open.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        ),
        ("approve_url".to_string(), open.link.clone()),
        ("approval_id".to_string(), open.id.clone()),
        ("run_id".to_string(), request.run_id.to_string()),
        ("expires_at".to_string(), open.expires_at.to_rfc3339()),
    ]);
    Notice {
        labels,
        annotations,
        generator_url: open.link.clone(),
        event: format!("approval:{}", open.id),
    }
}

/// A new random token (hex of 32 bytes from the operating system's generator).
fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| {
            "no random numbers from the operating system for an approval token".to_string()
        })?;
    Ok(hex::encode(bytes))
}

/// What is stored of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` is the one whose hash is `stored_hash`, compared in constant time.
pub fn token_matches(token: &str, stored_hash: &str) -> bool {
    let given = Sha256::digest(token.as_bytes());
    let Ok(stored) = hex::decode(stored_hash) else {
        return false;
    };
    if stored.len() != given.len() {
        return false;
    }
    let diff = given
        .iter()
        .zip(&stored)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_own_hash_matches() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let stored = token_hash(&a);
        assert!(token_matches(&a, &stored));
        assert!(!token_matches(&b, &stored));
        assert!(!token_matches("", &stored));
        assert!(!token_matches(&a, "not hex"));
    }

    #[test]
    fn only_y_and_yes_approve() {
        for yes in ["y", "Y\n", " yes \n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yess"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

    #[tokio::test]
    async fn an_undecided_approval_expires_and_a_decided_one_answers() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let approver = StoreApprover {
            store: store.clone(),
            rules: Arc::new(crate::config::load(&[]).unwrap()),
            external_url: "http://patrol:9464/".to_string(),
        };
        let input = serde_json::json!({"url": "http://x"});
        let request = ApprovalRequest {
            run_id: "run-1",
            playbook: "fix",
            step: Some("restart"),
            description: "POST http://x",
            input: &input,
            timeout: Duration::from_millis(300),
        };
        let e = approver.approve(request.clone()).await.unwrap_err();
        assert_eq!(e, "approval of step restart timed out after 300ms");
        let open = approver.open(&request).await.unwrap();
        assert!(open.link.starts_with(&format!(
            "http://patrol:9464/api/v1/approvals/{}?token=",
            open.id
        )));
        let stored = store.approval(&open.id).await.unwrap().unwrap();
        let token = open.link.split("token=").nth(1).unwrap();
        assert!(token_matches(token, &stored.token_hash));
        assert!(
            store
                .decide_approval(&open.id, ApprovalDecision::Denied, "api:bob", Utc::now())
                .await
                .unwrap()
        );
        let e = approver
            .wait(&open, "step restart", request.timeout)
            .await
            .unwrap_err();
        assert_eq!(e, "denied by api:bob");
    }
}
