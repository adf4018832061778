//! `kind: dingtalk`: a DingTalk group robot (custom robot webhook), sent a Markdown message.
//!
//! With `secret` (the robot's "加签" security setting) every request is signed as DingTalk
//! requires: `sign = urlencode(base64(HMAC-SHA256(key = secret, timestamp_ms + "\n" + secret)))`,
//! appended to the URL as `&timestamp=…&sign=…`. DingTalk answers HTTP 200 even when it rejects a
//! message, so the reply's `errcode` decides: 0 is success, 130101 ("send too fast") and -1
//! ("system busy") are worth retrying, anything else (310000 sign not match / keywords not in
//! content / IP not allowed, 300001 keyword missing, 300005 token does not exist, …) is permanent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::chat::{self, VendorCodes};
use super::{Notifier, SendContext, SendError};
use crate::alert::{Notification, template};
use crate::config::Issues;

/// DingTalk caps a message at 20000 bytes.
pub const MAX_BYTES: usize = 20_000;

const CODES: VendorCodes = VendorCodes {
    code_fields: &["errcode"],
    message_fields: &["errmsg"],
    retryable: &[130101, -1],
};

/// A DingTalk group robot.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DingTalk {
    /// The robot's webhook, `https://oapi.dingtalk.com/robot/send?access_token=…`; reference it
    /// as a secret (`${env:DINGTALK_URL}`), the token is in it.
    pub url: String,
    /// The robot's signing secret (`SEC…`), when its security setting is "加签" (sign).
    #[serde(default)]
    pub secret: Option<String>,
    /// Mobile numbers of group members to @-mention (also written as @mobile in the text, as
    /// DingTalk requires).
    #[serde(default)]
    pub at_mobiles: Vec<String>,
    /// @-mention everyone in the group.
    #[serde(default)]
    pub at_all: bool,
    /// minijinja template replacing the default Markdown text (fields: `status`, `alerts`,
    /// `firing`, `resolved`, `common_labels`, `external_url`, …).
    #[serde(default)]
    pub template: Option<String>,
}

#[derive(Debug, Serialize)]
struct Message<'a> {
    msgtype: &'static str,
    markdown: Markdown,
    at: At<'a>,
}

#[derive(Debug, Serialize)]
struct Markdown {
    title: String,
    text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct At<'a> {
    at_mobiles: &'a [String],
    is_at_all: bool,
}

/// The signature of a request sent at `timestamp_ms` (base64, before URL-encoding).
pub fn sign(timestamp_ms: i64, secret: &str) -> String {
    chat::hmac_sha256_base64(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    )
}

/// `url` with `timestamp` and the URL-encoded `sign` appended.
pub fn signed_url(mut url: reqwest::Url, timestamp_ms: i64, secret: &str) -> reqwest::Url {
    url.query_pairs_mut()
        .append_pair("timestamp", &timestamp_ms.to_string())
        .append_pair("sign", &sign(timestamp_ms, secret));
    url
}

impl DingTalk {
    /// The Markdown text: the template's or the default, mentions last, within DingTalk's limit.
    fn text(&self, n: &Notification) -> Result<String, String> {
        let mentions = self.mentions();
        let room = MAX_BYTES.saturating_sub(if mentions.is_empty() {
            0
        } else {
            mentions.len() + 2
        });
        let body = match &self.template {
            Some(source) => template::fit_text(&template::render(source, n)?, room),
            None => template::markdown_within(n, room),
        };
        Ok(if mentions.is_empty() {
            body
        } else {
            format!("{body}\n\n{mentions}")
        })
    }

    /// "@13800000000 @13900000000": DingTalk only notifies mobiles that appear in the text.
    fn mentions(&self) -> String {
        let mut at: Vec<String> = self
            .at_mobiles
            .iter()
            .map(|m| format!("@{}", m.trim()))
            .collect();
        if self.at_all {
            at.push("@all".into());
        }
        at.join(" ")
    }

    fn message(&self, n: &Notification) -> Result<Message<'_>, String> {
        Ok(Message {
            msgtype: "markdown",
            markdown: Markdown {
                title: crate::alert::truncate::chars(&n.title(), 60),
                text: self.text(n)?,
            },
            at: At {
                at_mobiles: &self.at_mobiles,
                is_at_all: self.at_all,
            },
        })
    }
}

impl Notifier for DingTalk {
    fn validate(&self, issues: &mut Issues) {
        if let Some(url) = chat::check_url(issues, "url", &self.url)
            && !url
                .query_pairs()
                .any(|(k, v)| k == "access_token" && !v.is_empty())
        {
            issues.at(
                &["url"],
                "`url` has no access_token: copy the robot's whole webhook address",
            );
        }
        if self.secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
            issues.at(
                &["secret"],
                "`secret` is empty; remove it or give the robot's SEC… secret",
            );
        }
        for (i, m) in self.at_mobiles.iter().enumerate() {
            if m.trim().is_empty()
                || !m
                    .trim()
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '+' || c == '-')
            {
                issues.at(
                    &["at_mobiles", &i.to_string()],
                    format!("`{m}` is not a mobile number"),
                );
            }
        }
        chat::check_template(issues, self.template.as_deref());
    }

    async fn send(&self, n: &Notification, ctx: &SendContext<'_>) -> Result<(), SendError> {
        let mut url = chat::parse_webhook_url(&self.url)
            .map_err(|e| SendError::Permanent(format!("dingtalk: url {e}")))?;
        let host = chat::host_of(&url);
        let message = self
            .message(n)
            .map_err(|e| SendError::Permanent(format!("dingtalk ({host}): {e}")))?;
        if let Some(secret) = &self.secret {
            url = signed_url(url, ctx.now.timestamp_millis(), secret);
        }
        let reply =
            chat::post_json(ctx.http, ctx.timeout, "dingtalk", url.clone(), &message).await?;
        chat::judge("dingtalk", &url, &reply, &CODES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed vectors computed independently of this code (Python hmac).
    fn vectors() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/testdata/signing-vectors.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("signing vectors")).unwrap()
    }

    #[test]
    fn signatures_match_the_fixed_vectors() {
        let vectors = vectors();
        let cases = vectors["dingtalk"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        for v in cases {
            let ts = v["timestamp_ms"].as_i64().unwrap();
            let secret = v["secret"].as_str().unwrap();
            assert_eq!(sign(ts, secret), v["sign_base64"].as_str().unwrap(), "{v}");
            let url = signed_url(
                reqwest::Url::parse("https://oapi.dingtalk.com/robot/send?access_token=abc")
                    .unwrap(),
                ts,
                secret,
            );
            let expected = format!(
                "access_token=abc&timestamp={ts}&sign={}",
                v["sign_urlencoded"].as_str().unwrap()
            );
            assert_eq!(url.query(), Some(expected.as_str()), "{v}");
        }
    }

    #[test]
    fn mentions_are_written_into_the_text() {
        let d = DingTalk {
            url: "https://oapi.dingtalk.com/robot/send?access_token=abc".into(),
            secret: None,
            at_mobiles: vec!["13800000000".into(), "13900000000".into()],
            at_all: true,
            template: Some("告警 {{ status }}".into()),
        };
        let n = Notification {
            receiver: "r".into(),
            group_key: "g".into(),
            status: crate::alert::AlertStatus::Firing,
            group_labels: Default::default(),
            common_labels: Default::default(),
            common_annotations: Default::default(),
            alerts: vec![],
            external_url: String::new(),
            idempotency_key: "k".into(),
        };
        assert_eq!(
            d.text(&n).unwrap(),
            "告警 firing\n\n@13800000000 @13900000000 @all"
        );
    }

    #[test]
    fn validation_names_the_field_without_the_token() {
        let mut d = DingTalk {
            url: "https://oapi.dingtalk.com/robot/send".into(),
            secret: Some(" ".into()),
            at_mobiles: vec!["boss".into()],
            at_all: false,
            template: Some("{% if %}".into()),
        };
        let mut issues = Issues::default();
        d.validate(&mut issues);
        let fields: Vec<String> = issues.items.iter().map(|(p, _)| format!("{p:?}")).collect();
        assert_eq!(issues.items.len(), 4, "{fields:?}");
        d.url = "ftp://h/robot/send?access_token=TOKEN".into();
        let mut issues = Issues::default();
        d.validate(&mut issues);
        assert!(
            issues.items.iter().all(|(_, m)| !m.contains("TOKEN")),
            "{:?}",
            issues.items
        );
    }
}
