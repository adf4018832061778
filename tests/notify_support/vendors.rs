//! Fake DingTalk, WeCom, Feishu and Slack webhooks: each checks what the real vendor checks
//! (path and token, content type, signature recomputed here independently of patrol's code, JSON
//! shape, size limits) and answers the way the vendor answers, or with a scripted answer.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Answer, Fake, Received, Script};

/// base64(HMAC-SHA256(key, message)), computed with the crates directly, not with patrol's code.
pub fn hmac_b64(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// DingTalk: HMAC keyed by the secret over "timestamp_ms\nsecret".
pub fn dingtalk_sign(timestamp_ms: &str, secret: &str) -> String {
    hmac_b64(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    )
}

/// Feishu: HMAC keyed by "timestamp_s\nsecret" over nothing.
pub fn feishu_sign(timestamp_s: &str, secret: &str) -> String {
    hmac_b64(format!("{timestamp_s}\n{secret}").as_bytes(), b"")
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)?.as_str().filter(|s| !s.is_empty())
}

fn is_json(r: &Received) -> bool {
    r.content_type().starts_with("application/json")
}

/// What a fake robot knows: its token, secret and keyword, and the server's clock.
#[derive(Clone, Default)]
pub struct Robot {
    pub token: String,
    pub secret: Option<String>,
    pub keyword: Option<String>,
    /// The vendor's clock, in milliseconds: signed timestamps more than an hour off are refused.
    pub now_ms: i64,
    pub script: Script,
}

fn ding(code: i64, msg: &str) -> Answer {
    Answer::json(200, json!({"errcode": code, "errmsg": msg}))
}

/// DingTalk custom robot, `POST /robot/send?access_token=…[&timestamp=…&sign=…]`.
pub async fn dingtalk(robot: Robot) -> Fake {
    Fake::start(move |r| dingtalk_verdict(&robot, r)).await
}

fn dingtalk_verdict(robot: &Robot, r: &Received) -> Answer {
    if r.path != "/robot/send" || r.method != "POST" {
        return Answer::text(404, "Not Found");
    }
    if r.query("access_token").as_deref() != Some(robot.token.as_str()) {
        return ding(300005, "token is not exist");
    }
    if let Some(secret) = &robot.secret {
        let ts = r.query("timestamp").unwrap_or_default();
        let fresh = ts
            .parse::<i64>()
            .is_ok_and(|t| (t - robot.now_ms).abs() <= 3_600_000);
        if !fresh || r.query("sign") != Some(dingtalk_sign(&ts, secret)) {
            return ding(
                310000,
                "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
            );
        }
    }
    let Some(body) = r.json().filter(|_| is_json(r)) else {
        return ding(43004, "无效的HTTP HEADER Content-Type");
    };
    let (Some("markdown"), Some(title), Some(text)) = (
        str_at(&body, "/msgtype"),
        str_at(&body, "/markdown/title"),
        str_at(&body, "/markdown/text"),
    ) else {
        return ding(40035, "缺少参数 json");
    };
    if text.len() > 20_000 {
        return ding(460101, "message too long, exceed 20000 bytes");
    }
    let mobiles = body
        .pointer("/at/atMobiles")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if mobiles
        .iter()
        .any(|m| !m.as_str().is_some_and(|m| text.contains(&format!("@{m}"))))
    {
        return ding(40035, "缺少参数 json: atMobiles must be mentioned in text");
    }
    if let Some(k) = &robot.keyword
        && !title.contains(k.as_str())
        && !text.contains(k.as_str())
    {
        return ding(310000, "keywords not in content");
    }
    robot.script.next().unwrap_or_else(|| ding(0, "ok"))
}

/// WeCom group robot, `POST /cgi-bin/webhook/send?key=…`.
pub async fn wecom(robot: Robot) -> Fake {
    Fake::start(move |r| wecom_verdict(&robot, r)).await
}

fn wecom_verdict(robot: &Robot, r: &Received) -> Answer {
    if r.path != "/cgi-bin/webhook/send" || r.query("key").as_deref() != Some(robot.token.as_str())
    {
        return ding(
            93000,
            "invalid webhook url, hint: [1700000000_1_abc], from ip: 127.0.0.1",
        );
    }
    let Some(body) = r.json().filter(|_| is_json(r)) else {
        return ding(40035, "invalid json");
    };
    match str_at(&body, "/msgtype") {
        Some("markdown") => match str_at(&body, "/markdown/content") {
            Some(c) if c.len() > 4096 => {
                return ding(40058, "markdown.content exceed max length 4096");
            }
            Some(_) => {}
            None => return ding(44004, "empty content"),
        },
        Some("text") => {
            let mobiles = body
                .pointer("/text/mentioned_mobile_list")
                .and_then(Value::as_array);
            match str_at(&body, "/text/content") {
                Some(c) if c.len() > 2048 => {
                    return ding(40058, "text.content exceed max length 2048");
                }
                Some(_) if mobiles.is_some_and(|m| m.iter().all(Value::is_string)) => {}
                _ => return ding(40058, "invalid text message"),
            }
        }
        _ => return ding(40008, "invalid message type"),
    }
    robot.script.next().unwrap_or_else(|| ding(0, "ok"))
}

fn lark(code: i64, msg: &str) -> Answer {
    Answer::json(200, json!({"code": code, "msg": msg, "data": {}}))
}

/// Feishu custom bot, `POST /open-apis/bot/v2/hook/{token}`; `now_ms` is its clock.
pub async fn feishu(robot: Robot) -> Fake {
    Fake::start(move |r| feishu_verdict(&robot, r)).await
}

fn feishu_verdict(robot: &Robot, r: &Received) -> Answer {
    if r.path != format!("/open-apis/bot/v2/hook/{}", robot.token) {
        return lark(
            19001,
            "param invalid: incoming webhook access token invalid",
        );
    }
    if r.body.len() > 20 * 1024 {
        return Answer::json(
            400,
            json!({"code": 9499, "msg": "request body exceeds 20KB"}),
        );
    }
    let Some(body) = r.json().filter(|_| is_json(r)) else {
        return lark(9499, "Bad Request");
    };
    if let Some(secret) = &robot.secret {
        let ts = str_at(&body, "/timestamp").unwrap_or_default();
        let fresh = ts
            .parse::<i64>()
            .is_ok_and(|t| (t - robot.now_ms / 1000).abs() <= 3600);
        if !fresh || str_at(&body, "/sign") != Some(feishu_sign(ts, secret).as_str()) {
            return lark(
                19021,
                "sign match fail or timestamp is not within one hour from current time",
            );
        }
    }
    let shaped = match str_at(&body, "/msg_type") {
        Some("interactive") => {
            str_at(&body, "/card/header/title/content").is_some()
                && body
                    .pointer("/card/elements")
                    .and_then(Value::as_array)
                    .is_some_and(|e| {
                        !e.is_empty() && e.iter().all(|el| str_at(el, "/tag").is_some())
                    })
        }
        Some("post") => {
            str_at(&body, "/content/post/zh_cn/title").is_some()
                && body
                    .pointer("/content/post/zh_cn/content")
                    .and_then(Value::as_array)
                    .is_some_and(|lines| {
                        lines.iter().all(|l| {
                            l.as_array().is_some_and(|items| {
                                items
                                    .iter()
                                    .all(|i| matches!(str_at(i, "/tag"), Some("text" | "a" | "at")))
                            })
                        })
                    })
        }
        _ => false,
    };
    if !shaped {
        return lark(19002, "params error, msg_type or content invalid");
    }
    robot.script.next().unwrap_or_else(|| lark(0, "success"))
}

/// Slack incoming webhook, `POST /services/T000/B000/{token}`.
pub async fn slack(robot: Robot) -> Fake {
    Fake::start(move |r| slack_verdict(&robot, r)).await
}

fn slack_verdict(robot: &Robot, r: &Received) -> Answer {
    if r.path != format!("/services/T000/B000/{}", robot.token) {
        return Answer::text(404, "no_service");
    }
    let Some(body) = r.json().filter(|_| is_json(r)) else {
        return Answer::text(400, "invalid_payload");
    };
    if str_at(&body, "/text").is_none() {
        return Answer::text(400, "no_text");
    }
    if let Some(blocks) = body.get("blocks") {
        let valid = blocks
            .as_array()
            .is_some_and(|b| b.len() <= 50 && b.iter().all(valid_block));
        if !valid {
            return Answer::text(400, "invalid_blocks");
        }
    }
    robot
        .script
        .next()
        .unwrap_or_else(|| Answer::text(200, "ok"))
}

fn valid_block(b: &Value) -> bool {
    let chars = |p: &str| str_at(b, p).map(|s| s.chars().count());
    match str_at(b, "/type") {
        Some("header") => {
            str_at(b, "/text/type") == Some("plain_text")
                && chars("/text/text").is_some_and(|n| n <= 150)
        }
        Some("section") => {
            str_at(b, "/text/type") == Some("mrkdwn")
                && chars("/text/text").is_some_and(|n| n <= 3000)
        }
        Some("context") => b["elements"]
            .as_array()
            .is_some_and(|e| !e.is_empty() && e.len() <= 10),
        _ => false,
    }
}
