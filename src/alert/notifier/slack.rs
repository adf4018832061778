//! `kind: slack`: a Slack incoming webhook, sent `text` (the notification's title, what Slack shows
//! in notifications) and `blocks`: a header, a link to patrol, then one section per alert, within Slack's limits (50
//! blocks, 150 characters of header, 3000 of section text).
//!
//! Slack answers `ok` on success and an HTTP error with a short reason otherwise (`invalid_payload`,
//! `invalid_token`, `no_service`, `channel_is_archived`, …: permanent). A 429 carries
//! `Retry-After`; a short wait is taken once here, a longer one is left to the outbox's backoff.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::chat::{self, Reply};
use super::{Notifier, SendContext, SendError};
use crate::alert::template::{self, AlertView};
use crate::alert::{Notification, truncate};
use crate::config::Issues;

/// Slack rejects messages with more than 50 blocks.
pub const MAX_BLOCKS: usize = 50;
/// Header blocks take at most 150 characters.
pub const MAX_HEADER_CHARS: usize = 150;
/// Section text takes at most 3000 characters.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Slack truncates `text` beyond 40000 characters; bytes bound characters from above.
pub const MAX_TEXT_BYTES: usize = 40_000;
/// A 429 asking to wait at most this long is retried once within the same send.
pub const MAX_INLINE_WAIT: Duration = Duration::from_secs(2);

/// A Slack incoming webhook.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    /// The incoming webhook, `https://hooks.slack.com/services/…`; reference it as a secret.
    pub url: String,
    /// minijinja template replacing the default message: its output is sent as the message's
    /// `text` (Slack mrkdwn), without blocks.
    #[serde(default)]
    pub template: Option<String>,
}

/// Escapes the three characters Slack's mrkdwn reserves (`&`, `<`, `>`).
pub fn mrkdwn_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One alert as a section's mrkdwn text, within Slack's section limit.
fn section_text(a: &AlertView) -> String {
    let mut lines = vec![format!(
        "*{}* · *{}*",
        a.status_word(),
        mrkdwn_escape(&template::one_line(&a.heading()))
    )];
    if let Some(s) = a.summary.as_ref().or(a.description.as_ref()) {
        lines.push(mrkdwn_escape(s));
    }
    lines.extend(
        a.facts()
            .into_iter()
            .map(|(name, v)| format!("• {name}: {}", mrkdwn_escape(&v))),
    );
    if let Some(link) = &a.link {
        lines.push(format!("<{}|details>", link.replace('|', "%7C")));
    }
    truncate::lines_within(&lines, MAX_SECTION_CHARS, template::more_line)
}

fn context(text: String) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
}

/// A Markdown message patrol wrote itself (a report summary) in Slack's mrkdwn: headings and
/// `**bold**` become `*bold*`, `[text](url)` becomes `<url|text>`; whole lines within a section.
fn own_section(body: &str) -> String {
    static LINK: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\[([^\]]*)\]\(([^)\s]+)\)").expect("a valid pattern")
    });
    let lines: Vec<String> = body
        .lines()
        .map(|line| {
            let escaped = mrkdwn_escape(line);
            let linked = LINK.replace_all(&escaped, |c: &regex::Captures<'_>| {
                format!("<{}|{}>", c[2].replace('|', "%7C"), &c[1])
            });
            let bold = linked.replace("**", "*");
            match bold.trim_start_matches('#') {
                heading if heading.len() < bold.len() => format!("*{}*", heading.trim()),
                _ => bold,
            }
        })
        .collect();
    truncate::lines_within(&lines, MAX_SECTION_CHARS, template::more_line)
}

impl Slack {
    /// The default message: header, link to patrol, a section per alert, "… and N more" (or
    /// one section holding the message patrol wrote itself).
    fn default_message(&self, n: &Notification) -> Value {
        let title = n.title();
        if let Some(body) = template::own_body(n) {
            let section =
                json!({"type": "section", "text": {"type": "mrkdwn", "text": own_section(body)}});
            return json!({"text": title, "blocks": [section]});
        }
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": truncate::chars(&title, MAX_HEADER_CHARS - 1), "emoji": true}}),
        ];
        if !n.external_url.is_empty() {
            blocks.push(context(format!(
                "<{}|patrol>",
                n.external_url.replace('|', "%7C")
            )));
        }
        let views = template::views(n);
        let room = MAX_BLOCKS - blocks.len() - usize::from(views.len() > MAX_BLOCKS - blocks.len());
        blocks.extend(views.iter().take(room).map(
            |a| json!({"type": "section", "text": {"type": "mrkdwn", "text": section_text(a)}}),
        ));
        if views.len() > room {
            blocks.push(context(template::more_line(views.len() - room)));
        }
        json!({"text": title, "blocks": blocks})
    }

    fn message(&self, n: &Notification) -> Result<Value, String> {
        Ok(match &self.template {
            Some(source) => {
                json!({"text": template::fit_text(&template::render(source, n)?, MAX_TEXT_BYTES)})
            }
            None => self.default_message(n),
        })
    }
}

/// Slack's verdict: any 2xx is delivered; otherwise the status decides, with Slack's reason.
fn judge(url: &reqwest::Url, reply: &Reply) -> Result<(), SendError> {
    if (200..300).contains(&reply.status) {
        return Ok(());
    }
    let prefix = format!("slack ({})", chat::host_of(url));
    let mut e = chat::with_prefix(&prefix, SendError::from_status(reply.status, &reply.body));
    if let (Some(wait), SendError::Retryable(m)) = (reply.retry_after, &mut e) {
        m.push_str(&format!(" (retry after {}s)", wait.as_secs()));
    }
    Err(e)
}

impl Notifier for Slack {
    fn validate(&self, issues: &mut Issues) {
        chat::check_url(issues, "url", &self.url);
        chat::check_template(issues, self.template.as_deref());
    }

    async fn send(&self, n: &Notification, ctx: &SendContext<'_>) -> Result<(), SendError> {
        let url = chat::parse_webhook_url(&self.url)
            .map_err(|e| SendError::Permanent(format!("slack: url {e}")))?;
        let host = chat::host_of(&url);
        let message = self
            .message(n)
            .map_err(|e| SendError::Permanent(format!("slack ({host}): {e}")))?;
        let reply = chat::post_json(ctx.http, ctx.timeout, "slack", url.clone(), &message).await?;
        let wait = reply.retry_after.unwrap_or(Duration::from_secs(1));
        if reply.status != 429 || wait > MAX_INLINE_WAIT {
            return judge(&url, &reply);
        }
        tokio::time::sleep(wait).await;
        let reply = chat::post_json(ctx.http, ctx.timeout, "slack", url.clone(), &message).await?;
        judge(&url, &reply)
    }
}
