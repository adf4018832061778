use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alert(check: &str, status: AlertStatus, annotations: &[(&str, &str)]) -> Alert {
    Alert {
        status,
        labels: map(&[
            ("alertname", check),
            ("check", check),
            ("service", "orders"),
            ("severity", "critical"),
        ]),
        annotations: map(annotations),
        starts_at: Utc.with_ymd_and_hms(2025, 3, 1, 2, 0, 0).unwrap(),
        ends_at: (status == AlertStatus::Resolved)
            .then(|| Utc.with_ymd_and_hms(2025, 3, 1, 2, 5, 0).unwrap()),
        generator_url: format!("https://patrol.example/checks/{check}"),
        fingerprint: format!("fp-{check}"),
    }
}

fn notification(alerts: Vec<Alert>) -> Notification {
    Notification {
        receiver: "oncall".into(),
        group_key: "{}:{service=\"orders\"}".into(),
        status: if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        },
        group_labels: map(&[("service", "orders")]),
        common_labels: map(&[("service", "orders")]),
        common_annotations: BTreeMap::new(),
        alerts,
        external_url: "https://patrol.example".into(),
        idempotency_key: "idem-1".into(),
    }
}

fn latency() -> Alert {
    alert(
        "api-latency",
        AlertStatus::Firing,
        &[
            ("summary", "p99 latency above baseline"),
            ("value", "250"),
            ("unit", "ms"),
            ("baseline_low", "120"),
            ("baseline_high", "180"),
            ("score", "62"),
            ("revision", "r-abc123"),
        ],
    )
}

#[test]
fn views_pull_out_value_baseline_score_revision_and_link() {
    let v = AlertView::new(&latency());
    assert_eq!(v.check, "api-latency");
    assert_eq!(v.value.as_deref(), Some("250 ms"));
    assert_eq!(v.baseline.as_deref(), Some("120 – 180 ms"));
    assert_eq!(v.score.as_deref(), Some("62"));
    assert_eq!(v.revision.as_deref(), Some("r-abc123"));
    assert_eq!(
        v.link.as_deref(),
        Some("https://patrol.example/checks/api-latency")
    );
    assert_eq!(v.starts_at, "2025-03-01 02:00:00 UTC");
    let preformatted = alert(
        "x",
        AlertStatus::Firing,
        &[("baseline", "≈ 3"), ("baseline_low", "1")],
    );
    assert_eq!(
        AlertView::new(&preformatted).baseline.as_deref(),
        Some("≈ 3")
    );
}

#[test]
fn default_markdown_has_every_fact_firing_first() {
    let resolved = alert(
        "disk",
        AlertStatus::Resolved,
        &[("value", "40"), ("unit", "%")],
    );
    let md = default_markdown(&notification(vec![resolved, latency()]));
    assert!(
        md.starts_with(
            "### [FIRING:1] orders (orders)\n[patrol](https://patrol.example)\n\n**FIRING**"
        ),
        "{md}"
    );
    for needle in [
        "**FIRING** · **api-latency (orders)**",
        "> p99 latency above baseline",
        "- value: 250 ms",
        "- baseline: 120 – 180 ms",
        "- score: 62",
        "- revision: r-abc123",
        "- [details](https://patrol.example/checks/api-latency)",
        "**RESOLVED** · **disk (orders)**",
        "- resolved at: 2025-03-01 02:05:00 UTC",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    assert!(md.find("api-latency (orders)**").unwrap() < md.find("disk (orders)").unwrap());
}

#[test]
fn default_text_and_html() {
    let n = notification(vec![latency()]);
    let text = default_text(&n);
    assert!(
        text.contains("FIRING api-latency (orders) — p99 latency above baseline"),
        "{text}"
    );
    assert!(text.contains("\n  value: 250 ms\n"), "{text}");
    assert!(
        text.starts_with("[FIRING:1] orders (orders)\npatrol: https://patrol.example\n\nFIRING"),
        "{text}"
    );
    let html = default_html(&n);
    assert!(html.contains("<td>120 – 180 ms</td>"), "{html}");
    assert!(
        html.contains("<a href=\"https://patrol.example/checks/api-latency\">details</a>"),
        "{html}"
    );
}

#[test]
fn html_escapes_everything_from_the_alert() {
    let evil = alert(
        "<script>",
        AlertStatus::Firing,
        &[("summary", "a & b \"q\" 'x' </p>")],
    );
    let html = default_html(&notification(vec![evil]));
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(
        html.contains("a &amp; b &quot;q&quot; &#39;x&#39; &lt;/p&gt;"),
        "{html}"
    );
}

#[test]
fn user_templates_see_the_fields() {
    let n = notification(vec![latency()]);
    let src = "{{ status }}|{{ receiver }}|{% for a in firing %}{{ a.check }}={{ a.value }} [{{ a.baseline }}] \
               {{ a.labels.severity }} {{ a.annotations.revision }} {{ a.link }}{% endfor %}|{{ resolved|length }}|{{ external_url }}";
    assert_eq!(
        render(src, &n).unwrap(),
        "firing|oncall|api-latency=250 ms [120 – 180 ms] critical r-abc123 https://patrol.example/checks/api-latency|0|https://patrol.example"
    );
    assert_eq!(render("{{ nothing_here }}x", &n).unwrap(), "x");
    let bare = notification(vec![alert("bare", AlertStatus::Firing, &[])]);
    let missing = "{{ alerts[0].score }}|{% if alerts[0].value %}v{% else %}no value{% endif %}";
    assert_eq!(
        render(missing, &bare).unwrap(),
        "|no value",
        "missing facts print nothing, not none"
    );
    let evil = notification(vec![alert("<b>", AlertStatus::Firing, &[])]);
    assert_eq!(
        render_html("{{ alerts[0].check }}", &evil).unwrap(),
        "&lt;b&gt;"
    );
    assert_eq!(render("{{ alerts[0].check }}", &evil).unwrap(), "<b>");
}

#[test]
fn broken_templates_are_reported_with_their_line() {
    assert_eq!(
        compile_check("{{ status }} {% for a in alerts %}{{ a.check }}{% endfor %}"),
        Ok(())
    );
    let err = compile_check("line one\n{% for a in alerts %}\n{{ a.check }").unwrap_err();
    assert!(err.starts_with("template error: "), "{err}");
    assert!(err.contains("line 3"), "{err}");
    let n = notification(vec![latency()]);
    assert!(
        render("{{ 1 / 0 }}", &n)
            .unwrap_err()
            .starts_with("template error: ")
    );
}

#[test]
fn long_cjk_notifications_fit_with_a_more_line() {
    let alerts: Vec<Alert> = (0..200)
        .map(|i| {
            alert(
                &format!("磁盘使用率过高-{i}"),
                AlertStatus::Firing,
                &[
                    ("summary", "数据库主库磁盘使用率超过阈值，请立即处理"),
                    ("value", "97"),
                ],
            )
        })
        .collect();
    let n = notification(alerts);
    for max in [4096, 20000, 3000, 600] {
        let md = markdown_within(&n, max);
        assert!(md.len() <= max, "{} > {max}", md.len());
        let kept = md.matches("**FIRING**").count();
        assert!(kept >= 1, "{md}");
        assert!(
            md.ends_with(&format!("\n\n… and {} more", 200 - kept)),
            "{md}"
        );
        let text = text_within(&n, max);
        assert!(text.len() <= max);
        assert!(
            text.ends_with(&format!(
                "… and {} more",
                200 - text.matches("FIRING 磁盘").count()
            )),
            "{text}"
        );
    }
    assert!(!markdown_within(&n, usize::MAX).contains("more"));
}

#[test]
fn fit_text_cuts_whole_lines() {
    let text = (0..100)
        .map(|i| format!("第{i}行"))
        .collect::<Vec<_>>()
        .join("\n");
    let fitted = fit_text(&text, 100);
    assert!(fitted.len() <= 100);
    let kept = fitted.lines().count() - 1;
    assert!(
        fitted.ends_with(&format!("… and {} more", 100 - kept)),
        "{fitted}"
    );
    assert_eq!(fit_text("a\nb", 100), "a\nb");
}

#[test]
fn one_line_joins_lines() {
    assert_eq!(one_line("a\n\nb\r\nc"), "a b c");
}

#[test]
fn a_message_patrol_wrote_itself_is_sent_as_it_is() {
    let body =
        "### patrol · nightly: FAILED\n\n| check | status |\n|---|---|\n| api <x> | crit |\n";
    let own = alert(
        "suite_report",
        AlertStatus::Firing,
        &[("summary", "headline"), (keys::BODY, body)],
    );
    let n = notification(vec![own.clone()]);
    assert_eq!(own_body(&n), Some(body));
    assert_eq!(default_markdown(&n), body.trim_end());
    assert_eq!(default_text(&n), body.trim_end());
    let html = default_html(&n);
    assert!(html.contains("| api &lt;x&gt; | crit |"), "{html}");
    assert!(
        !html.contains("headline"),
        "no alert layout under the body: {html}"
    );
    // Within a chat's cap: whole lines, then "… and N more".
    let short = markdown_within(&n, 60);
    assert!(short.len() <= 60, "{short}");
    assert!(
        short.starts_with("### patrol") && short.ends_with("more"),
        "{short}"
    );
    // With other alerts beside it, it is one alert among others, shown the usual way.
    let mixed = notification(vec![own, latency()]);
    assert_eq!(own_body(&mixed), None);
    assert!(default_markdown(&mixed).contains("headline"));
}
