//! The chat receivers (DingTalk, WeCom, Feishu, Slack) against fake vendors on loopback that
//! verify what the vendors verify — signatures recomputed independently and checked against the
//! fixed vectors, JSON shape, size limits — and answer with the vendors' own errors, so the
//! Retryable / Permanent classification is tested against the codes vendors really send.

mod notify_support;

use std::time::Duration;

use notify_support::chat::*;
use notify_support::vendors::{self, Robot};
use notify_support::{Answer, Script, at_millis, client, ctx, long_cjk, small};
use patrol::alert::notifier::Notifier;
use patrol::alert::notifier::dingtalk::DingTalk;
use patrol::alert::notifier::feishu::MsgType;
use serde_json::json;

#[test]
fn the_fakes_sign_exactly_like_the_fixed_vectors() {
    let v = vectors();
    for d in v["dingtalk"].as_array().unwrap() {
        let ts = d["timestamp_ms"].as_i64().unwrap().to_string();
        assert_eq!(
            vendors::dingtalk_sign(&ts, d["secret"].as_str().unwrap()),
            d["sign_base64"].as_str().unwrap()
        );
    }
    for f in v["feishu"].as_array().unwrap() {
        let sign = vendors::feishu_sign(
            f["timestamp_s"].as_str().unwrap(),
            f["secret"].as_str().unwrap(),
        );
        assert_eq!(sign, f["sign"].as_str().unwrap());
    }
}

#[tokio::test]
async fn dingtalk_signs_every_request_exactly_like_the_vectors() {
    for v in vectors()["dingtalk"].as_array().unwrap() {
        let (ts, secret) = (
            v["timestamp_ms"].as_i64().unwrap(),
            v["secret"].as_str().unwrap(),
        );
        let fake = vendors::dingtalk(robot(Some(secret), ts)).await;
        assert_eq!(
            outcome(send(&dingtalk(&fake, Some(secret)), &small(), ts).await),
            "ok"
        );
        let expected = format!(
            "access_token={TOKEN}&timestamp={ts}&sign={}",
            v["sign_urlencoded"].as_str().unwrap()
        );
        assert_eq!(fake.last().raw_query, expected);
    }
}

#[tokio::test]
async fn dingtalk_sends_markdown_mentioning_the_mobiles() {
    let fake = vendors::dingtalk(robot(None, NOW_MS)).await;
    let mut d = dingtalk(&fake, None);
    d.at_mobiles = vec!["13800000000".into(), "13900000000".into()];
    assert_eq!(outcome(send(&d, &small(), NOW_MS).await), "ok");
    let r = fake.last();
    assert!(
        r.content_type().starts_with("application/json"),
        "{}",
        r.content_type()
    );
    assert_eq!(
        r.raw_query,
        format!("access_token={TOKEN}"),
        "no signature without a secret"
    );
    let body = r.json().unwrap();
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["markdown"]["title"], "[FIRING:1] orders (orders)");
    assert_eq!(
        body["at"],
        json!({"atMobiles": ["13800000000", "13900000000"], "isAtAll": false})
    );
    let text = body["markdown"]["text"].as_str().unwrap();
    for needle in [
        "### [FIRING:1] orders (orders)",
        "**FIRING** · **api-latency (orders)**",
        "> p99 latency above baseline",
        "- value: 250 ms",
        "- baseline: 120 – 180 ms",
        "- score: 62",
        "- revision: r-42",
        "- [details](https://patrol.example/checks/api-latency)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    assert!(text.ends_with("\n\n@13800000000 @13900000000"), "{text}");
}

#[tokio::test]
async fn dingtalk_wrong_secret_stale_clock_or_token_are_permanent() {
    let fake = vendors::dingtalk(robot(Some("SECright"), NOW_MS)).await;
    let wrong_secret = outcome(send(&dingtalk(&fake, Some("SECwrong")), &small(), NOW_MS).await);
    assert!(
        wrong_secret.starts_with("permanent: dingtalk (127.0.0.1:"),
        "{wrong_secret}"
    );
    assert!(
        wrong_secret.contains("errcode 310000: sign not match"),
        "{wrong_secret}"
    );
    let two_hours_late = outcome(
        send(
            &dingtalk(&fake, Some("SECright")),
            &small(),
            NOW_MS + 7_200_000,
        )
        .await,
    );
    assert!(
        two_hours_late.contains("errcode 310000: sign not match"),
        "{two_hours_late}"
    );
    assert!(two_hours_late.starts_with("permanent"));
    assert_eq!(
        outcome(
            send(
                &dingtalk(&fake, Some("SECright")),
                &small(),
                NOW_MS + 60_000
            )
            .await
        ),
        "ok"
    );
    let mut bad_token = dingtalk(&fake, Some("SECright"));
    bad_token.url = format!("{}/robot/send?access_token=nope", fake.base);
    let got = outcome(send(&bad_token, &small(), NOW_MS).await);
    assert!(
        got.starts_with("permanent") && got.contains("errcode 300005: token is not exist"),
        "{got}"
    );
}

#[tokio::test]
async fn dingtalk_keyword_missing_is_permanent_and_a_template_can_add_it() {
    let fake = vendors::dingtalk(Robot {
        keyword: Some("巡检".into()),
        ..robot(None, NOW_MS)
    })
    .await;
    let got = outcome(send(&dingtalk(&fake, None), &small(), NOW_MS).await);
    assert!(
        got.starts_with("permanent") && got.contains("errcode 310000: keywords not in content"),
        "{got}"
    );
    let mut d = dingtalk(&fake, None);
    d.template = Some(
        "巡检告警 {{ status }}: {% for a in alerts %}{{ a.check }} = {{ a.value }}{% endfor %}"
            .into(),
    );
    assert_eq!(outcome(send(&d, &small(), NOW_MS).await), "ok");
    assert_eq!(
        fake.last().json().unwrap()["markdown"]["text"],
        "巡检告警 firing: api-latency = 250 ms"
    );
}

#[tokio::test]
async fn dingtalk_errcodes_and_http_errors_are_classified() {
    let script = Script::default();
    let fake = vendors::dingtalk(Robot {
        script: script.clone(),
        ..robot(None, NOW_MS)
    })
    .await;
    let ding = |code: i64, msg: &str| Answer::json(200, json!({"errcode": code, "errmsg": msg}));
    let mut cases = vec![
        (
            ding(310000, "sign not match"),
            "permanent: dingtalk (127.0.0.1:",
        ),
        (ding(310000, "keywords not in content"), "permanent"),
        (
            ding(
                300001,
                "错误描述:关键词不匹配;解决方案:请联系群管理员查看此机器人的关键词",
            ),
            "permanent",
        ),
        (
            ding(130101, "send too fast, exceed 20 times per minute"),
            "retryable",
        ),
        (ding(-1, "系统繁忙"), "retryable"),
        (Answer::text(200, "<html>proxy</html>"), "permanent"),
    ];
    cases.extend(http_cases());
    assert_classified(&dingtalk(&fake, None), &script, &cases).await;
    script.push(ding(130101, "send too fast, exceed 20 times per minute"));
    let got = outcome(send(&dingtalk(&fake, None), &small(), NOW_MS).await);
    assert!(
        got.ends_with("errcode 130101: send too fast, exceed 20 times per minute"),
        "{got}"
    );
}

#[tokio::test]
async fn a_silent_vendor_times_out_as_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let d = DingTalk {
        url: format!("http://127.0.0.1:{port}/robot/send?access_token={TOKEN}"),
        secret: None,
        at_mobiles: vec![],
        at_all: false,
        template: None,
    };
    let http = client();
    let mut context = ctx(&http, at_millis(NOW_MS));
    context.timeout = Duration::from_millis(300);
    let got = outcome(d.send(&small(), &context).await);
    assert!(
        got.starts_with(&format!(
            "retryable: dingtalk (127.0.0.1:{port}): timed out"
        )),
        "{got}"
    );
    drop(listener);
    let refused = outcome(d.send(&small(), &context).await);
    assert!(refused.starts_with("retryable: dingtalk"), "{refused}");
}

#[tokio::test]
async fn wecom_sends_markdown_then_mentions_the_mobiles() {
    let fake = vendors::wecom(robot(None, NOW_MS)).await;
    let mut w = wecom(&fake);
    w.mentioned_mobile_list = vec!["13800000000".into(), "@all".into()];
    assert_eq!(outcome(send(&w, &small(), NOW_MS).await), "ok");
    let received = fake.received();
    assert_eq!(received.len(), 2);
    let markdown = received[0].json().unwrap();
    assert_eq!(markdown["msgtype"], "markdown");
    let content = markdown["markdown"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("### [FIRING:1] orders (orders)\n[patrol](https://patrol.example)\n\n"),
        "{content}"
    );
    assert!(content.contains("- baseline: 120 – 180 ms"), "{content}");
    assert_eq!(
        received[1].json().unwrap(),
        json!({"msgtype": "text", "text": {"content": "[FIRING:1] orders (orders)", "mentioned_mobile_list": ["13800000000", "@all"]}})
    );
}

#[tokio::test]
async fn wecom_errcodes_and_http_errors_are_classified() {
    let script = Script::default();
    let fake = vendors::wecom(Robot {
        script: script.clone(),
        ..robot(None, NOW_MS)
    })
    .await;
    let mut bad_key = wecom(&fake);
    bad_key.url = Some(format!("{}/cgi-bin/webhook/send?key=wrong", fake.base));
    let got = outcome(send(&bad_key, &small(), NOW_MS).await);
    assert!(
        got.starts_with("permanent: wecom (127.0.0.1:")
            && got.contains("errcode 93000: invalid webhook url"),
        "{got}"
    );
    let wx = |code: i64, msg: &str| Answer::json(200, json!({"errcode": code, "errmsg": msg}));
    let mut cases = vec![
        (wx(93000, "invalid webhook url"), "permanent"),
        (
            wx(45009, "api freq out of limit"),
            "retryable: wecom (127.0.0.1:",
        ),
        (wx(-1, "system busy"), "retryable"),
        (
            wx(40058, "markdown.content exceed max length 4096"),
            "permanent",
        ),
    ];
    cases.extend(http_cases());
    assert_classified(&wecom(&fake), &script, &cases).await;
}

#[tokio::test]
async fn feishu_signs_every_body_exactly_like_the_vectors() {
    for v in vectors()["feishu"].as_array().unwrap() {
        let ts_s = v["timestamp_s"].as_str().unwrap();
        let secret = v["secret"].as_str().unwrap();
        let now_ms = ts_s.parse::<i64>().unwrap() * 1000 + 999;
        let fake = vendors::feishu(robot(Some(secret), now_ms)).await;
        assert_eq!(
            outcome(
                send(
                    &feishu(&fake, Some(secret), MsgType::Interactive),
                    &small(),
                    now_ms
                )
                .await
            ),
            "ok"
        );
        let body = fake.last().json().unwrap();
        assert_eq!(body["timestamp"], json!(ts_s), "seconds, as a string");
        assert_eq!(body["sign"], v["sign"]);
    }
}

#[tokio::test]
async fn feishu_sends_a_card_by_default() {
    let fake = vendors::feishu(robot(None, NOW_MS)).await;
    assert_eq!(
        outcome(send(&feishu(&fake, None, MsgType::Interactive), &small(), NOW_MS).await),
        "ok"
    );
    let body = fake.last().json().unwrap();
    assert!(
        body.get("sign").is_none() && body.get("timestamp").is_none(),
        "unsigned without a secret"
    );
    assert_eq!(body["msg_type"], "interactive");
    let card = &body["card"];
    assert_eq!(
        card["header"],
        json!({"template": "red", "title": {"tag": "plain_text", "content": "[FIRING:1] orders (orders)"}})
    );
    let content = card["elements"][0]["text"]["content"].as_str().unwrap();
    assert_eq!(card["elements"][0]["text"]["tag"], "lark_md");
    assert!(content.starts_with("**FIRING** · **api-latency (orders)**\np99 latency above baseline\nvalue: 250 ms\nbaseline: 120 – 180 ms\nscore: 62"), "{content}");
    assert!(
        content.ends_with("[details](https://patrol.example/checks/api-latency)"),
        "{content}"
    );
    assert_eq!(
        card["elements"][1]["actions"][0]["url"],
        "https://patrol.example"
    );
}

#[tokio::test]
async fn feishu_post_messages_are_rich_text_lines() {
    let fake = vendors::feishu(robot(None, NOW_MS)).await;
    assert_eq!(
        outcome(send(&feishu(&fake, None, MsgType::Post), &small(), NOW_MS).await),
        "ok"
    );
    let post = &fake.last().json().unwrap()["content"]["post"]["zh_cn"];
    assert_eq!(post["title"], "[FIRING:1] orders (orders)");
    let lines = post["content"].as_array().unwrap();
    assert_eq!(
        lines[0],
        json!([{"tag": "text", "text": "FIRING api-latency (orders) — p99 latency above baseline"}])
    );
    assert_eq!(lines[1], json!([{"tag": "text", "text": "value: 250 ms"}]));
    assert_eq!(
        lines.last().unwrap(),
        &json!([{"tag": "a", "text": "details", "href": "https://patrol.example/checks/api-latency"}])
    );
}

#[tokio::test]
async fn feishu_codes_and_http_errors_are_classified() {
    let script = Script::default();
    let fake = vendors::feishu(Robot {
        script: script.clone(),
        ..robot(Some("right"), NOW_MS)
    })
    .await;
    let wrong = outcome(
        send(
            &feishu(&fake, Some("wrong"), MsgType::Interactive),
            &small(),
            NOW_MS,
        )
        .await,
    );
    assert!(
        wrong.starts_with("permanent: feishu (127.0.0.1:")
            && wrong.contains("code 19021: sign match fail"),
        "{wrong}"
    );
    let late = outcome(
        send(
            &feishu(&fake, Some("right"), MsgType::Interactive),
            &small(),
            NOW_MS + 7_200_000,
        )
        .await,
    );
    assert!(
        late.starts_with("permanent") && late.contains("code 19021"),
        "{late}"
    );
    let lark =
        |code: i64, msg: &str| Answer::json(200, json!({"code": code, "msg": msg, "data": {}}));
    let mut cases = vec![
        (
            lark(
                19021,
                "sign match fail or timestamp is not within one hour from current time",
            ),
            "permanent",
        ),
        (lark(19024, "Key Words Not Found"), "permanent"),
        (
            lark(9499, "too many request"),
            "retryable: feishu (127.0.0.1:",
        ),
        (lark(11232, "frequency limited"), "retryable"),
        (
            Answer::json(200, json!({"StatusCode": 0, "StatusMessage": "success"})),
            "ok",
        ),
    ];
    cases.extend(http_cases());
    assert_classified(
        &feishu(&fake, Some("right"), MsgType::Interactive),
        &script,
        &cases,
    )
    .await;
}

#[tokio::test]
async fn slack_sends_text_and_a_section_per_alert() {
    let fake = vendors::slack(robot(None, NOW_MS)).await;
    assert_eq!(outcome(send(&slack(&fake), &small(), NOW_MS).await), "ok");
    let body = fake.last().json().unwrap();
    assert_eq!(body["text"], "[FIRING:1] orders (orders)");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(
        blocks[0],
        json!({"type": "header", "text": {"type": "plain_text", "text": "[FIRING:1] orders (orders)", "emoji": true}})
    );
    assert_eq!(
        blocks[1]["elements"][0]["text"],
        "<https://patrol.example|patrol>"
    );
    let section = blocks[2]["text"]["text"].as_str().unwrap();
    assert!(section.starts_with("*FIRING* · *api-latency (orders)*\np99 latency above baseline\n• value: 250 ms\n• baseline: 120 – 180 ms"), "{section}");
    assert!(
        section.ends_with("<https://patrol.example/checks/api-latency|details>"),
        "{section}"
    );
    assert_eq!(blocks.len(), 3);
}

/// A suite report's summary: one alert whose `body` annotation is the whole Markdown message.
fn report_summary() -> (patrol::alert::Notification, &'static str) {
    let body = "### patrol · nightly: FAILED (2 crit of 7)\n\n**Changed since the last run**\n- new failure: orders-api\n\n[full report](https://patrol.example/r/1)";
    let mut a = notify_support::alert("suite_report", "patrol · nightly: FAILED");
    a.annotations
        .insert(patrol::alert::template::keys::BODY.into(), body.into());
    (notify_support::notification(vec![a]), body)
}

#[tokio::test]
async fn a_report_summary_is_the_whole_message_on_every_chat() {
    let (n, body) = report_summary();
    let ding = vendors::dingtalk(robot(None, NOW_MS)).await;
    assert_eq!(
        outcome(send(&dingtalk(&ding, None), &n, NOW_MS).await),
        "ok"
    );
    assert_eq!(ding.last().json().unwrap()["markdown"]["text"], body);

    let we = vendors::wecom(robot(None, NOW_MS)).await;
    assert_eq!(outcome(send(&wecom(&we), &n, NOW_MS).await), "ok");
    assert_eq!(we.last().json().unwrap()["markdown"]["content"], body);

    let fs = vendors::feishu(robot(None, NOW_MS)).await;
    let card = feishu(&fs, None, MsgType::Interactive);
    assert_eq!(outcome(send(&card, &n, NOW_MS).await), "ok");
    let sent = fs.last().json().unwrap();
    assert_eq!(sent["card"]["elements"][0]["text"]["content"], body);

    let sl = vendors::slack(robot(None, NOW_MS)).await;
    assert_eq!(outcome(send(&slack(&sl), &n, NOW_MS).await), "ok");
    let sent = sl.last().json().unwrap();
    let blocks = sent["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1, "{sent}");
    assert_eq!(
        blocks[0]["text"]["text"],
        "*patrol · nightly: FAILED (2 crit of 7)*\n\n*Changed since the last run*\n- new failure: orders-api\n\n<https://patrol.example/r/1|full report>",
        "Markdown in Slack's mrkdwn"
    );
}

#[tokio::test]
async fn slack_waits_out_a_short_429_once_and_leaves_long_ones_to_the_outbox() {
    let script = Script::default();
    let fake = vendors::slack(Robot {
        script: script.clone(),
        ..robot(None, NOW_MS)
    })
    .await;
    script.push(Answer::text(429, "rate_limited").with_header("retry-after", "0"));
    assert_eq!(outcome(send(&slack(&fake), &small(), NOW_MS).await), "ok");
    assert_eq!(fake.received().len(), 2);
    script.push(Answer::text(429, "rate_limited").with_header("retry-after", "30"));
    let got = outcome(send(&slack(&fake), &small(), NOW_MS).await);
    assert!(
        got.starts_with("retryable: slack (127.0.0.1:")
            && got.ends_with("HTTP 429: rate_limited (retry after 30s)"),
        "{got}"
    );
    assert_eq!(fake.received().len(), 3, "no in-send retry for a long wait");
    script.push(Answer::text(429, "rate_limited").with_header("retry-after", "0"));
    script.push(Answer::text(429, "rate_limited").with_header("retry-after", "0"));
    assert!(outcome(send(&slack(&fake), &small(), NOW_MS).await).starts_with("retryable"));
    assert_eq!(fake.received().len(), 5, "one in-send retry at most");
}

#[tokio::test]
async fn slack_errors_are_classified() {
    let script = Script::default();
    let fake = vendors::slack(Robot {
        script: script.clone(),
        ..robot(None, NOW_MS)
    })
    .await;
    let mut cases = vec![
        (
            Answer::text(400, "invalid_payload"),
            "permanent: slack (127.0.0.1:",
        ),
        (Answer::text(403, "invalid_token"), "permanent"),
        (Answer::text(404, "no_service"), "permanent"),
        (Answer::text(410, "channel_is_archived"), "permanent"),
    ];
    cases.extend(http_cases().into_iter().filter(|(a, _)| a.status != 429));
    assert_classified(&slack(&fake), &script, &cases).await;
}

#[tokio::test]
async fn long_cjk_notifications_arrive_within_every_vendor_limit() {
    let n = long_cjk(400);
    let ding_fake = vendors::dingtalk(robot(Some("SECx"), NOW_MS)).await;
    assert_eq!(
        outcome(send(&dingtalk(&ding_fake, Some("SECx")), &n, NOW_MS).await),
        "ok"
    );
    let text = ding_fake.last().json().unwrap()["markdown"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_fitted(
        "dingtalk",
        &text,
        (19_000, 20_000),
        text.matches("**FIRING**").count(),
        400,
    );

    let wecom_fake = vendors::wecom(robot(None, NOW_MS)).await;
    assert_eq!(outcome(send(&wecom(&wecom_fake), &n, NOW_MS).await), "ok");
    let content = wecom_fake.last().json().unwrap()["markdown"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert_fitted(
        "wecom",
        &content,
        (3_700, 4096),
        content.matches("**FIRING**").count(),
        400,
    );
    assert!(std::str::from_utf8(&wecom_fake.last().body).is_ok());

    let feishu_fake = vendors::feishu(robot(Some("s"), NOW_MS)).await;
    for msg_type in [MsgType::Interactive, MsgType::Post] {
        assert_eq!(
            outcome(send(&feishu(&feishu_fake, Some("s"), msg_type), &n, NOW_MS).await),
            "ok"
        );
        let r = feishu_fake.last();
        assert!(
            (16_000..=20_000).contains(&r.body.len()),
            "feishu {msg_type:?}: {} bytes",
            r.body.len()
        );
        let body = r.json().unwrap();
        let last = match msg_type {
            MsgType::Interactive => body["card"]["elements"][0]["text"]["content"]
                .as_str()
                .unwrap()
                .to_string(),
            MsgType::Post => body["content"]["post"]["zh_cn"]["content"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()[0]["text"]
                .as_str()
                .unwrap()
                .to_string(),
        };
        let shown = String::from_utf8_lossy(&r.body).matches("FIRING").count() - 1;
        assert_fitted("feishu", &last, (0, 20_000), shown, 400);
    }

    let slack_fake = vendors::slack(robot(None, NOW_MS)).await;
    assert_eq!(outcome(send(&slack(&slack_fake), &n, NOW_MS).await), "ok");
    let blocks = slack_fake.last().json().unwrap()["blocks"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(blocks.len(), 50);
    let sections = blocks.iter().filter(|b| b["type"] == "section").count();
    let more = blocks.last().unwrap()["elements"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_fitted("slack", &more, (0, 3000), sections, 400);
}
