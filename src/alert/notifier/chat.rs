//! What the chat receivers (DingTalk, WeCom, Feishu, Slack) share: posting JSON without ever
//! showing the webhook URL (it carries the robot's token), judging the vendor's reply the vendor's
//! way (an HTTP 200 with a non-zero `errcode` is a failure), and HMAC signing.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Url;
use serde::Serialize;
use sha2::Sha256;

use super::SendError;
use crate::alert::template;
use crate::config::Issues;

/// base64(HMAC-SHA256 keyed by `key` over `message`): the signature DingTalk and Feishu check.
pub fn hmac_sha256_base64(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// "host" or "host:port" of a webhook URL, for messages: the full URL holds the token.
pub fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => "?".to_string(),
    }
}

/// The webhook URL parsed, or why it is unusable (never quoting it: it holds the token).
pub fn parse_webhook_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url.trim()).map_err(|e| format!("not a valid URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http:// or https:// URL, not {}://",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(parsed)
}

/// Reports an unusable webhook URL at `field`.
pub fn check_url(issues: &mut Issues, field: &str, url: &str) -> Option<Url> {
    parse_webhook_url(url)
        .map_err(|e| issues.at(&[field], format!("`{field}` {e}")))
        .ok()
}

/// Reports a `template:` that does not compile.
pub fn check_template(issues: &mut Issues, template: Option<&str>) {
    if let Some(Err(e)) = template.map(template::compile_check) {
        issues.at(&["template"], e);
    }
}

/// A vendor's reply: status, `Retry-After` when given, and the body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

/// POSTs `body` as JSON to `url` within `timeout`; errors name `kind` and the host, not the URL.
pub async fn post_json(
    http: &reqwest::Client,
    timeout: Duration,
    kind: &str,
    url: Url,
    body: &impl Serialize,
) -> Result<Reply, SendError> {
    let host = host_of(&url);
    let transport = |e: reqwest::Error| match SendError::from_transport(&e) {
        SendError::Retryable(m) => SendError::Retryable(format!("{kind} ({host}): {m}")),
        SendError::Permanent(m) => SendError::Permanent(format!("{kind} ({host}): {m}")),
    };
    let response = http
        .post(url.clone())
        .timeout(timeout)
        .json(body)
        .send()
        .await
        .map_err(transport)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.map_err(transport)?;
    Ok(Reply {
        status,
        retry_after,
        body,
    })
}

/// How a vendor reports the outcome inside a reply's JSON body.
pub struct VendorCodes {
    /// Fields holding the result code, tried in order (`errcode`; `code` / `StatusCode`).
    pub code_fields: &'static [&'static str],
    /// Fields holding the message that goes with it.
    pub message_fields: &'static [&'static str],
    /// Codes that mean "slow down / busy, try later" rather than "never".
    pub retryable: &'static [i64],
}

/// Success only when HTTP is 2xx and the vendor's code is 0; otherwise retryable (429, 5xx,
/// rate-limit codes) or permanent (bad signature, keyword missing, bad token, other 4xx), each
/// with the vendor's own message.
pub fn judge(kind: &str, url: &Url, reply: &Reply, codes: &VendorCodes) -> Result<(), SendError> {
    let prefix = format!("{kind} ({})", host_of(url));
    let vendor = vendor_code(&reply.body, codes);
    if let Some((code, msg)) = &vendor
        && *code != 0
    {
        let field = codes.code_fields[0];
        let described = format!(
            "{prefix}: {field} {code}: {}",
            crate::alert::truncate::chars(msg, 300)
        );
        let http_retryable = reply.status == 429 || reply.status >= 500;
        return Err(if codes.retryable.contains(code) || http_retryable {
            SendError::Retryable(described)
        } else {
            SendError::Permanent(described)
        });
    }
    if !(200..300).contains(&reply.status) {
        return Err(with_prefix(
            &prefix,
            SendError::from_status(reply.status, &reply.body),
        ));
    }
    if vendor.is_none() {
        let body = crate::alert::truncate::chars(reply.body.trim(), 200);
        return Err(SendError::Permanent(format!(
            "{prefix}: HTTP {} but the reply has no {}: {body}",
            reply.status, codes.code_fields[0]
        )));
    }
    Ok(())
}

/// A judged failure with "kind (host): " in front of its message.
pub fn with_prefix(prefix: &str, e: SendError) -> SendError {
    match e {
        SendError::Retryable(m) => SendError::Retryable(format!("{prefix}: {m}")),
        SendError::Permanent(m) => SendError::Permanent(format!("{prefix}: {m}")),
    }
}

/// The vendor's (code, message) from a JSON reply body, if it has one.
fn vendor_code(body: &str, codes: &VendorCodes) -> Option<(i64, String)> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let code = codes
        .code_fields
        .iter()
        .find_map(|f| json.get(*f)?.as_i64())?;
    let msg = codes
        .message_fields
        .iter()
        .find_map(|f| json.get(*f)?.as_str())
        .unwrap_or("")
        .to_string();
    Some((code, msg))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::Notifier;
    use super::super::{dingtalk::DingTalk, feishu::Feishu, slack::Slack, wecom::WeCom};
    use super::*;

    const DING: VendorCodes = VendorCodes {
        code_fields: &["errcode"],
        message_fields: &["errmsg"],
        retryable: &[130101],
    };

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: body.into(),
        }
    }

    fn url() -> Url {
        Url::parse("https://oapi.example.com/robot/send?access_token=SECRET").unwrap()
    }

    #[test]
    fn vendor_codes_decide_over_http_200() {
        assert_eq!(
            judge(
                "dingtalk",
                &url(),
                &reply(200, r#"{"errcode":0,"errmsg":"ok"}"#),
                &DING
            ),
            Ok(())
        );
        assert_eq!(
            judge(
                "dingtalk",
                &url(),
                &reply(200, r#"{"errcode":310000,"errmsg":"sign not match"}"#),
                &DING
            ),
            Err(SendError::Permanent(
                "dingtalk (oapi.example.com): errcode 310000: sign not match".into()
            ))
        );
        assert!(
            judge(
                "dingtalk",
                &url(),
                &reply(200, r#"{"errcode":130101,"errmsg":"send too fast"}"#),
                &DING
            )
            .unwrap_err()
            .is_retryable()
        );
        assert!(
            judge("dingtalk", &url(), &reply(503, "busy"), &DING)
                .unwrap_err()
                .is_retryable()
        );
        assert!(
            judge("dingtalk", &url(), &reply(429, ""), &DING)
                .unwrap_err()
                .is_retryable()
        );
        assert!(
            !judge("dingtalk", &url(), &reply(404, "nope"), &DING)
                .unwrap_err()
                .is_retryable()
        );
        let no_code = judge("dingtalk", &url(), &reply(200, "<html>"), &DING).unwrap_err();
        assert!(
            !no_code.is_retryable() && no_code.message().contains("no errcode"),
            "{no_code:?}"
        );
    }

    #[test]
    fn messages_never_show_the_token() {
        let e = judge("dingtalk", &url(), &reply(400, "bad"), &DING).unwrap_err();
        assert!(!e.message().contains("SECRET"), "{e:?}");
        assert_eq!(
            parse_webhook_url("ftp://x/y?access_token=SECRET").unwrap_err(),
            "must be an http:// or https:// URL, not ftp://"
        );
        assert!(parse_webhook_url("not a url").is_err());
    }

    #[test]
    fn validation_reports_urls_fields_and_templates_without_tokens() {
        fn issues<T: Notifier>(config: Value) -> Vec<String> {
            let notifier: T = serde_json::from_value(config).unwrap();
            let mut issues = Issues::default();
            notifier.validate(&mut issues);
            issues
                .items
                .into_iter()
                .map(|(path, msg)| format!("{path:?} {msg}"))
                .collect()
        }
        let url = "https://oapi.dingtalk.com/robot/send?access_token=T0KEN123";
        assert_eq!(
            issues::<DingTalk>(
                json!({"url": url, "secret": "SECx", "at_mobiles": ["13800000000"]})
            ),
            Vec::<String>::new()
        );
        let got = issues::<DingTalk>(
            json!({"url": "ftp://x/?access_token=T0KEN123", "template": "{{ oops"}),
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.iter().all(|m| !m.contains("T0KEN123")), "{got:?}");
        assert!(
            got[0].contains("must be an http:// or https:// URL")
                && got[1].contains("template error"),
            "{got:?}"
        );
        assert_eq!(
            issues::<WeCom>(json!({"key": "T0KEN123"})),
            Vec::<String>::new()
        );
        assert_eq!(issues::<WeCom>(json!({})).len(), 1);
        assert_eq!(
            issues::<WeCom>(json!({"key": "k", "url": "https://qyapi.weixin.qq.com/x"})).len(),
            1
        );
        assert_eq!(
            issues::<WeCom>(json!({"key": "k", "mentioned_mobile_list": ["boss"]})).len(),
            1
        );
        assert_eq!(
            issues::<Feishu>(
                json!({"url": "https://open.feishu.cn/open-apis/bot/v2/hook/x", "msg_type": "post"})
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            issues::<Feishu>(json!({"url": "open.feishu.cn/hook", "secret": ""})).len(),
            2
        );
        assert_eq!(
            issues::<Slack>(
                json!({"url": "https://hooks.slack.com/services/T/B/X", "template": "{% for %}"})
            )
            .len(),
            1
        );
        assert!(
            serde_json::from_value::<Feishu>(json!({"url": "https://x", "msg_type": "card"}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<Slack>(json!({"url": "https://x", "channel": "#ops"}))
                .is_err(),
            "unknown fields are refused"
        );
    }
}
