//! `kind: wecom`: a WeCom (企业微信) group robot, sent a Markdown message of at most 4096 bytes.
//!
//! WeCom Markdown cannot @-mention by mobile number, so `mentioned_mobile_list` is delivered as a
//! short text message (the title) right after the Markdown one; when only that second message
//! fails, the retry sends only it (the outbox keeps the delivered parts). WeCom answers HTTP 200
//! even when it rejects a message: `errcode` 0 is success, 45009 ("api freq out of limit"), 45033
//! and -1 ("system busy") are worth retrying, anything else (93000 invalid webhook url, 40058 bad
//! parameter, …) is permanent.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::chat::{self, VendorCodes};
use super::{Notifier, SendContext, SendError};
use crate::alert::{Notification, template, truncate};
use crate::config::Issues;

/// WeCom caps Markdown content at 4096 bytes (UTF-8).
pub const MAX_MARKDOWN_BYTES: usize = 4096;
/// …and text content at 2048 bytes.
pub const MAX_TEXT_BYTES: usize = 2048;

/// The webhook endpoint a bare `key` is sent to.
pub const DEFAULT_BASE: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send";

const CODES: VendorCodes = VendorCodes {
    code_fields: &["errcode"],
    message_fields: &["errmsg"],
    retryable: &[45009, 45033, -1],
};

/// A WeCom group robot: give its `key`, or its whole webhook `url`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeCom {
    /// The robot's key (the `key=` of its webhook address); reference it as a secret.
    #[serde(default)]
    pub key: Option<String>,
    /// The robot's whole webhook address (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`),
    /// instead of `key` (e.g. behind a proxy).
    #[serde(default)]
    pub url: Option<String>,
    /// Mobile numbers to @-mention (`@all` for everyone), sent as a text message after the
    /// Markdown one since WeCom Markdown cannot mention by mobile.
    #[serde(default)]
    pub mentioned_mobile_list: Vec<String>,
    /// minijinja template replacing the default Markdown content.
    #[serde(default)]
    pub template: Option<String>,
}

impl WeCom {
    /// The webhook address: `url` as given, or the default endpoint with `key`.
    fn endpoint(&self) -> Result<reqwest::Url, String> {
        match (&self.url, &self.key) {
            (Some(url), None) => chat::parse_webhook_url(url).map_err(|e| format!("`url` {e}")),
            (None, Some(key)) if !key.trim().is_empty() => {
                let mut url =
                    reqwest::Url::parse(DEFAULT_BASE).expect("the default endpoint is a URL");
                url.query_pairs_mut().append_pair("key", key.trim());
                Ok(url)
            }
            (None, Some(_)) => Err("`key` is empty".into()),
            (Some(_), Some(_)) => Err("give either `key` or `url`, not both".into()),
            (None, None) => Err("give the robot's `key` (or its whole webhook `url`)".into()),
        }
    }

    /// The Markdown content: the template's or the default, within 4096 bytes.
    fn content(&self, n: &Notification) -> Result<String, String> {
        Ok(match &self.template {
            Some(source) => template::fit_text(&template::render(source, n)?, MAX_MARKDOWN_BYTES),
            None => template::markdown_within(n, MAX_MARKDOWN_BYTES),
        })
    }

    fn markdown_message(&self, n: &Notification) -> Result<serde_json::Value, String> {
        Ok(json!({"msgtype": "markdown", "markdown": {"content": self.content(n)?}}))
    }

    fn mention_message(&self, n: &Notification) -> serde_json::Value {
        json!({"msgtype": "text", "text": {
            "content": truncate::to_bytes(&n.title(), MAX_TEXT_BYTES),
            "mentioned_mobile_list": self.mentioned_mobile_list,
        }})
    }
}

impl Notifier for WeCom {
    fn validate(&self, issues: &mut Issues) {
        match self.endpoint() {
            Err(e) if self.url.is_some() && self.key.is_none() => issues.at(&["url"], e),
            Err(e) => issues.at(&[if self.key.is_some() { "key" } else { "url" }], e),
            Ok(_) => {}
        }
        for (i, m) in self.mentioned_mobile_list.iter().enumerate() {
            let m = m.trim();
            if m != "@all"
                && (m.is_empty()
                    || !m
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '+' || c == '-'))
            {
                issues.at(
                    &["mentioned_mobile_list", &i.to_string()],
                    format!("`{m}` is not a mobile number or @all"),
                );
            }
        }
        chat::check_template(issues, self.template.as_deref());
    }

    /// Part 0 is the Markdown message, part 1 the mention text (when there are mobiles). A part
    /// an earlier attempt delivered is skipped, so a retry after a failed mention does not post
    /// the Markdown again; each delivered part is reported to `ctx.parts`.
    async fn send(&self, n: &Notification, ctx: &SendContext<'_>) -> Result<(), SendError> {
        let url = self
            .endpoint()
            .map_err(|e| SendError::Permanent(format!("wecom: {e}")))?;
        let host = chat::host_of(&url);
        if !ctx.parts.is_done(MARKDOWN_PART) {
            let markdown = self
                .markdown_message(n)
                .map_err(|e| SendError::Permanent(format!("wecom ({host}): {e}")))?;
            post(ctx, &url, &markdown).await?;
            ctx.parts.delivered(MARKDOWN_PART);
        }
        if self.mentioned_mobile_list.is_empty() || ctx.parts.is_done(MENTION_PART) {
            return Ok(());
        }
        post(ctx, &url, &self.mention_message(n)).await?;
        ctx.parts.delivered(MENTION_PART);
        Ok(())
    }
}

/// The parts of a delivery (see [`SendContext::parts`]).
const MARKDOWN_PART: u32 = 0;
const MENTION_PART: u32 = 1;

/// Posts one message and judges WeCom's answer.
async fn post(
    ctx: &SendContext<'_>,
    url: &reqwest::Url,
    message: &serde_json::Value,
) -> Result<(), SendError> {
    let reply = chat::post_json(ctx.http, ctx.timeout, "wecom", url.clone(), message).await?;
    chat::judge("wecom", url, &reply, &CODES)
}
