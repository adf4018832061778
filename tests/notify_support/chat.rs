//! What the chat receiver tests share: the fixed signing vectors, a fixed clock, sending with
//! it, outcome classification (with a check that the token never leaks), and receivers pointed at
//! the fake vendors.

use patrol::alert::notifier::Notifier;
use patrol::alert::notifier::dingtalk::DingTalk;
use patrol::alert::notifier::feishu::{Feishu, MsgType};
use patrol::alert::notifier::slack::Slack;
use patrol::alert::notifier::wecom::WeCom;
use patrol::alert::{Notification, SendError};
use serde_json::Value;

use super::vendors::Robot;
use super::{Answer, Fake, Script, at_millis, client, ctx, small};

/// The robots' token (in the URL path or query): no error message may contain it.
pub const TOKEN: &str = "T0KEN1234567890abcdef";

/// The clock of every test (and of the fake vendors): 2023-11-14T22:13:20Z.
pub const NOW_MS: i64 = 1_700_000_000_000;

pub fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/testdata/signing-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("signing vectors")).unwrap()
}

pub async fn send(
    notifier: &impl Notifier,
    n: &Notification,
    now_ms: i64,
) -> Result<(), SendError> {
    let http = client();
    notifier.send(n, &ctx(&http, at_millis(now_ms))).await
}

/// "ok", "retryable: …" or "permanent: …", with the message checked for the token.
pub fn outcome(r: Result<(), SendError>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => {
            assert!(!e.message().contains(TOKEN), "the token leaked: {e:?}");
            let class = if e.is_retryable() {
                "retryable"
            } else {
                "permanent"
            };
            format!("{class}: {}", e.message())
        }
    }
}

pub fn robot(secret: Option<&str>, now_ms: i64) -> Robot {
    Robot {
        token: TOKEN.into(),
        secret: secret.map(str::to_string),
        now_ms,
        ..Robot::default()
    }
}

/// Sends once per scripted answer and checks each outcome starts with the expected class/message.
pub async fn assert_classified(
    notifier: &impl Notifier,
    script: &Script,
    cases: &[(Answer, &str)],
) {
    for (answer, expected) in cases {
        script.push(answer.clone());
        let got = outcome(send(notifier, &small(), NOW_MS).await);
        assert!(
            got.starts_with(expected),
            "answer {answer:?}: expected {expected:?}, got {got:?}"
        );
    }
}

/// The HTTP-level answers every vendor can give and how they must be classified.
pub fn http_cases() -> Vec<(Answer, &'static str)> {
    vec![
        (Answer::text(429, "Too Many Requests"), "retryable"),
        (Answer::text(500, "Internal Server Error"), "retryable"),
        (Answer::text(503, "Service Unavailable"), "retryable"),
        (Answer::text(400, "Bad Request"), "permanent"),
        (Answer::text(404, "Not Found"), "permanent"),
    ]
}

pub fn dingtalk(fake: &Fake, secret: Option<&str>) -> DingTalk {
    DingTalk {
        url: format!("{}/robot/send?access_token={TOKEN}", fake.base),
        secret: secret.map(str::to_string),
        at_mobiles: vec![],
        at_all: false,
        template: None,
    }
}

pub fn wecom(fake: &Fake) -> WeCom {
    WeCom {
        key: None,
        url: Some(format!("{}/cgi-bin/webhook/send?key={TOKEN}", fake.base)),
        mentioned_mobile_list: vec![],
        template: None,
    }
}

pub fn feishu(fake: &Fake, secret: Option<&str>, msg_type: MsgType) -> Feishu {
    Feishu {
        url: format!("{}/open-apis/bot/v2/hook/{TOKEN}", fake.base),
        secret: secret.map(str::to_string),
        msg_type,
        template: None,
    }
}

pub fn slack(fake: &Fake) -> Slack {
    Slack {
        url: format!("{}/services/T000/B000/{TOKEN}", fake.base),
        template: None,
    }
}

/// Checks a fitted body: within `max` bytes but using most of them, valid UTF-8, ending with
/// "… and N more" where N plus the alerts shown is everything.
pub fn assert_fitted(
    what: &str,
    text: &str,
    (min, max): (usize, usize),
    shown: usize,
    total: usize,
) {
    assert!(text.len() <= max, "{what}: {} bytes > {max}", text.len());
    assert!(
        text.len() >= min,
        "{what}: only {} bytes used of {max}",
        text.len()
    );
    assert!(std::str::from_utf8(text.as_bytes()).is_ok());
    assert!(shown > 0, "{what}: no alert shown");
    assert!(
        text.ends_with(&format!("… and {} more", total - shown)),
        "{what} ends with {:?}",
        &text[text.len().saturating_sub(80)..]
    );
}
