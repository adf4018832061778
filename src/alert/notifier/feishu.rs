//! `kind: feishu`: a Feishu / Lark custom bot, sent an interactive card (default) or a rich-text
//! `post` message.
//!
//! With `secret` (the bot's "签名校验" setting) every body carries `timestamp` (seconds, a string)
//! and `sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = ""))` — the key is
//! the string to sign and the message is empty, exactly as Feishu's reference code does. Feishu
//! replies `code` 0 on success; 9499 / 11232 (frequency limited) are worth retrying, anything else
//! (19021 sign match fail, 19024 keyword not found, 19022 IP not allowed, …) is permanent.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::chat::{self, VendorCodes};
use super::{Notifier, SendContext, SendError};
use crate::alert::template::{self, AlertView};
use crate::alert::{AlertStatus, Notification};
use crate::config::Issues;

/// Feishu rejects request bodies over 20 KB.
pub const MAX_BODY_BYTES: usize = 20_000;

const CODES: VendorCodes = VendorCodes {
    code_fields: &["code", "StatusCode"],
    message_fields: &["msg", "StatusMessage"],
    retryable: &[9499, 11232],
};

/// The message format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MsgType {
    /// An interactive card: coloured header (red firing, green resolved) and Markdown body.
    #[default]
    Interactive,
    /// A rich-text post: title and lines of text with links.
    Post,
}

/// A Feishu / Lark custom bot.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Feishu {
    /// The bot's webhook, `https://open.feishu.cn/open-apis/bot/v2/hook/…`; reference it as a
    /// secret, the token is in it.
    pub url: String,
    /// The bot's signing secret, when its security setting is "签名校验" (signature).
    #[serde(default)]
    pub secret: Option<String>,
    /// `interactive` (a card, the default) or `post` (rich text).
    #[serde(default)]
    pub msg_type: MsgType,
    /// minijinja template replacing the default message body (card Markdown or post text).
    #[serde(default)]
    pub template: Option<String>,
}

/// The signature of a request sent at `timestamp_s` (seconds).
pub fn sign(timestamp_s: i64, secret: &str) -> String {
    chat::hmac_sha256_base64(format!("{timestamp_s}\n{secret}").as_bytes(), b"")
}

/// One alert as card Markdown (`lark_md`: bold and links, no headings or lists).
fn card_block(a: &AlertView) -> String {
    let mut out = format!(
        "**{}** · **{}**",
        a.status_word(),
        template::one_line(&a.heading())
    );
    if let Some(s) = a.summary.as_ref().or(a.description.as_ref()) {
        out.push_str(&format!("\n{}", template::one_line(s)));
    }
    for (name, v) in a.facts() {
        out.push_str(&format!("\n{name}: {}", template::one_line(&v)));
    }
    if let Some(link) = &a.link {
        out.push_str(&format!("\n[details]({link})"));
    }
    out
}

fn text(s: &str) -> Value {
    json!({"tag": "text", "text": s})
}

/// One alert as post paragraphs: heading, facts, link.
fn post_block(a: &AlertView) -> Vec<Value> {
    let mut heading = format!("{} {}", a.status_word(), a.heading());
    if let Some(s) = a.summary.as_ref().or(a.description.as_ref()) {
        heading.push_str(&format!(" — {s}"));
    }
    let mut paragraphs = vec![json!([text(&heading)])];
    paragraphs.extend(
        a.facts()
            .into_iter()
            .map(|(name, v)| json!([text(&format!("{name}: {v}"))])),
    );
    if let Some(link) = &a.link {
        paragraphs.push(json!([{"tag": "a", "text": "details", "href": link}]));
    }
    paragraphs
}

impl Feishu {
    /// The message body for a content budget of `budget` bytes (before JSON escaping).
    fn body(&self, n: &Notification, budget: usize) -> Result<Value, String> {
        let rendered = self
            .template
            .as_deref()
            .map(|source| template::render(source, n))
            .transpose()?;
        let title = n.title();
        Ok(match self.msg_type {
            MsgType::Interactive => {
                let content = match rendered {
                    Some(r) => template::fit_text(&r, budget),
                    None if template::own_body(n).is_some() => {
                        template::fit_text(template::own_body(n).unwrap_or_default(), budget)
                    }
                    None => {
                        let blocks: Vec<String> =
                            template::views(n).iter().map(card_block).collect();
                        template::fit_blocks("", &blocks, "", budget)
                    }
                };
                let mut elements =
                    vec![json!({"tag": "div", "text": {"tag": "lark_md", "content": content}})];
                if !n.external_url.is_empty() {
                    elements.push(json!({"tag": "action", "actions": [{"tag": "button",
                        "text": {"tag": "plain_text", "content": "patrol"}, "url": n.external_url, "type": "default"}]}));
                }
                let colour = if n.status == AlertStatus::Firing {
                    "red"
                } else {
                    "green"
                };
                json!({"msg_type": "interactive", "card": {
                    "config": {"wide_screen_mode": true},
                    "header": {"template": colour, "title": {"tag": "plain_text", "content": title}},
                    "elements": elements,
                }})
            }
            MsgType::Post => {
                let paragraphs = match rendered.as_deref().or(template::own_body(n)) {
                    Some(r) => template::fit_text(r, budget)
                        .lines()
                        .map(|l| json!([text(l)]))
                        .collect(),
                    None => post_paragraphs(n, budget),
                };
                json!({"msg_type": "post", "content": {"post": {"zh_cn": {"title": title, "content": paragraphs}}}})
            }
        })
    }

    /// The body within Feishu's size limit, signed when there is a secret.
    fn signed_body(&self, n: &Notification, now_s: i64) -> Result<Value, String> {
        let mut budget = MAX_BODY_BYTES - 2_000;
        let mut body = self.body(n, budget)?;
        // JSON escaping (newlines, quotes) grows the content; shrink until the body fits.
        for _ in 0..8 {
            let size = serde_json::to_vec(&body).map_or(usize::MAX, |b| b.len());
            if size <= MAX_BODY_BYTES - 200 {
                break;
            }
            budget = budget * (MAX_BODY_BYTES - 200) / size * 9 / 10;
            body = self.body(n, budget)?;
        }
        if let Some(secret) = &self.secret {
            body["timestamp"] = json!(now_s.to_string());
            body["sign"] = json!(sign(now_s, secret));
        }
        Ok(body)
    }
}

/// Post paragraphs of every alert that fits in `budget` bytes (serialized), a blank paragraph
/// between alerts, and "… and N more" for the rest.
fn post_paragraphs(n: &Notification, budget: usize) -> Vec<Value> {
    let views = template::views(n);
    let mut out: Vec<Value> = Vec::new();
    let mut used = 0;
    for (i, view) in views.iter().enumerate() {
        let mut block = if out.is_empty() {
            Vec::new()
        } else {
            vec![json!([])]
        };
        block.extend(post_block(view));
        let size: usize = block.iter().map(|p| p.to_string().len() + 1).sum();
        let more_room = if i + 1 < views.len() { 64 } else { 0 };
        if used + size + more_room > budget {
            out.push(json!([text(&template::more_line(views.len() - i))]));
            return out;
        }
        used += size;
        out.extend(block);
    }
    out
}

impl Notifier for Feishu {
    fn validate(&self, issues: &mut Issues) {
        chat::check_url(issues, "url", &self.url);
        if self.secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
            issues.at(
                &["secret"],
                "`secret` is empty; remove it or give the bot's signing secret",
            );
        }
        chat::check_template(issues, self.template.as_deref());
    }

    async fn send(&self, n: &Notification, ctx: &SendContext<'_>) -> Result<(), SendError> {
        let url = chat::parse_webhook_url(&self.url)
            .map_err(|e| SendError::Permanent(format!("feishu: url {e}")))?;
        let host = chat::host_of(&url);
        let body = self
            .signed_body(n, ctx.now.timestamp())
            .map_err(|e| SendError::Permanent(format!("feishu ({host}): {e}")))?;
        let reply = chat::post_json(ctx.http, ctx.timeout, "feishu", url.clone(), &body).await?;
        chat::judge("feishu", &url, &reply, &CODES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_fixed_vectors() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/testdata/signing-vectors.json"
        );
        let vectors: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("signing vectors")).unwrap();
        let cases = vectors["feishu"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        for v in cases {
            let ts: i64 = v["timestamp_s"].as_str().unwrap().parse().unwrap();
            assert_eq!(
                sign(ts, v["secret"].as_str().unwrap()),
                v["sign"].as_str().unwrap(),
                "{v}"
            );
        }
    }
}
