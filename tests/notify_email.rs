//! The email receiver against a real SMTP server (aiosmtpd) on loopback: what arrives (multipart
//! plain + HTML, headers, UTF-8 text), how refusals are classified (550 permanent, 451 retried,
//! connection trouble retried, failed AUTH permanent without the password), and transport
//! security (STARTTLS and implicit TLS with a private CA, no credentials in clear text).

mod smtp_support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use patrol::alert::notifier::Notifier;
use patrol::alert::notifier::email::Email;
use patrol::alert::{Alert, AlertStatus, Notification, SendContext, SendError};
use patrol::config::Issues;
use smtp_support::{ServerOptions, SmtpServer, TestPki};

const KEY: &str = "orders-db.1731200000";

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

/// A firing replication-delay alert on the 订单 (orders) service, with Chinese text.
fn notification() -> Notification {
    let labels = map(&[
        ("alertname", "mysql-replication-delay"),
        ("check", "mysql-replication-delay"),
        ("service", "订单"),
        ("severity", "critical"),
    ]);
    let alert = Alert {
        status: AlertStatus::Firing,
        labels: labels.clone(),
        annotations: map(&[
            ("summary", "从库复制延迟过高 <primary>"),
            ("value", "42"),
            ("unit", "s"),
            ("baseline", "0 – 5"),
        ]),
        starts_at: at(1_731_200_000),
        ends_at: None,
        generator_url: "https://patrol.example.com/checks/mysql-replication-delay".into(),
        fingerprint: "f1e2d3".into(),
    };
    Notification {
        receiver: "mail".into(),
        group_key: "{}:{service=\"订单\"}".into(),
        status: AlertStatus::Firing,
        group_labels: map(&[("service", "订单")]),
        common_labels: labels,
        common_annotations: BTreeMap::new(),
        alerts: vec![alert],
        external_url: "https://patrol.example.com".into(),
        idempotency_key: KEY.into(),
    }
}

/// An email receiver from its YAML, checked by `validate()` first (every test uses a valid one).
fn receiver(yaml: &str) -> Email {
    let r: Email = serde_saphyr::from_str(yaml).unwrap();
    let mut issues = Issues::default();
    r.validate(&mut issues);
    assert!(
        issues.items.is_empty(),
        "invalid receiver: {:?}",
        issues.items
    );
    r
}

async fn send_with_timeout(r: &Email, timeout: Duration) -> Result<(), SendError> {
    patrol::install_crypto_provider();
    let http = reqwest::Client::new();
    let ctx = SendContext {
        http: &http,
        timeout,
        now: at(1_731_200_060),
        parts: Default::default(),
    };
    r.send(&notification(), &ctx).await
}

async fn send(r: &Email) -> Result<(), SendError> {
    send_with_timeout(r, Duration::from_secs(20)).await
}

fn pki_server(pki: &TestPki, opts: ServerOptions) -> SmtpServer {
    SmtpServer::start(&ServerOptions {
        tls: Some(pki.server_files()),
        ..opts
    })
}

#[tokio::test]
async fn multipart_mail_arrives_with_headers_and_chinese_text() {
    let server = SmtpServer::start(&ServerOptions::default());
    let r = receiver(&format!(
        "url: {}\nfrom: 'Patrol 巡检 <patrol@example.com>'\n\
         to: [oncall@example.com, '值班 <duty@example.com>']\ncc: [team@example.com]\n",
        server.url("smtp")
    ));
    send(&r)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", server.log()));

    let mail = server.only_mail();
    assert_eq!(mail.mail_from, "patrol@example.com");
    assert_eq!(
        mail.rcpt_tos,
        ["oncall@example.com", "duty@example.com", "team@example.com"]
    );
    assert!(!mail.encrypted, "the server offers no STARTTLS");
    assert_eq!(mail.login, None);

    let m = &mail.message;
    assert_eq!(m.content_type, "multipart/alternative");
    assert_eq!(
        m.header("subject"),
        "[FIRING:1] mysql-replication-delay (订单)"
    );
    assert_eq!(m.header("from"), "Patrol 巡检 <patrol@example.com>");
    assert_eq!(
        m.header("to"),
        "oncall@example.com, 值班 <duty@example.com>"
    );
    assert_eq!(m.header("cc"), "team@example.com");
    assert_eq!(m.header("x-patrol-idempotency-key"), KEY);
    assert_eq!(m.header("message-id"), format!("<{KEY}@example.com>"));
    assert_eq!(m.header("date"), "Sun, 10 Nov 2024 00:54:20 +0000");

    let kinds: Vec<&str> = m.parts.iter().map(|p| p.content_type.as_str()).collect();
    assert_eq!(kinds, ["text/plain", "text/html"]);
    let text = m.part("text/plain");
    assert_eq!(text.charset.as_deref(), Some("utf-8"));
    assert!(
        text.text.contains("从库复制延迟过高 <primary>"),
        "{}",
        text.text
    );
    assert!(text.text.contains("42 s"), "{}", text.text);
    assert!(text.text.contains("0 – 5 s"), "{}", text.text);
    let html = m.part("text/html");
    assert_eq!(html.charset.as_deref(), Some("utf-8"));
    assert!(
        html.text.contains("从库复制延迟过高 &lt;primary&gt;"),
        "{}",
        html.text
    );
    assert!(
        html.text
            .contains("https://patrol.example.com/checks/mysql-replication-delay"),
        "{}",
        html.text
    );
    // Headers are ASCII on the wire (RFC 2047): the Chinese text arrived encoded, and decoded back.
    let raw_headers = mail.raw.split("\r\n\r\n").next().unwrap();
    assert!(raw_headers.is_ascii(), "{raw_headers}");
}

#[tokio::test]
async fn templates_shape_the_subject_and_both_bodies() {
    let server = SmtpServer::start(&ServerOptions::default());
    let r = receiver(&format!(
        "url: {}\nfrom: patrol@example.com\nto: [oncall@example.com]\n\
         subject: |\n  {{{{ status | upper }}}}:\n  {{{{ alerts[0].service }}}} {{{{ alerts[0].value }}}}\n\
         text_template: '{{% for a in alerts %}}{{{{ a.check }}}}={{{{ a.value }}}}{{% endfor %}}'\n\
         html_template: '<b>{{{{ alerts[0].summary }}}}</b>'\n",
        server.url("smtp")
    ));
    send(&r)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", server.log()));

    let m = server.only_mail().message;
    assert_eq!(
        m.header("subject"),
        "FIRING: 订单 42 s",
        "newlines fold into one line"
    );
    assert_eq!(
        m.part("text/plain").text.trim_end(),
        "mysql-replication-delay=42 s"
    );
    assert_eq!(
        m.part("text/html").text.trim_end(),
        "<b>从库复制延迟过高 &lt;primary&gt;</b>",
        "values in the HTML template are escaped"
    );
}

#[tokio::test]
async fn an_unavailable_mailbox_550_is_permanent_with_the_servers_text() {
    let server = SmtpServer::start(&ServerOptions {
        rcpt_reply: Some("550 5.1.1 <oncall@example.com>: mailbox unavailable".into()),
        ..Default::default()
    });
    let r = receiver(&format!(
        "url: {}\nfrom: patrol@example.com\nto: [oncall@example.com]\n",
        server.url("smtp")
    ));
    let err = send(&r).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    let msg = err.message();
    assert!(msg.contains("550"), "{msg}");
    assert!(msg.contains("mailbox unavailable"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{}", server.port)), "{msg}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_temporary_refusal_451_is_retried() {
    let server = SmtpServer::start(&ServerOptions {
        data_reply: Some("451 4.7.1 Greylisted, please try again later".into()),
        ..Default::default()
    });
    let r = receiver(&format!(
        "url: {}\nfrom: patrol@example.com\nto: [oncall@example.com]\n",
        server.url("smtp")
    ));
    let err = send(&r).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.message().contains("451"), "{err:?}");
    assert!(err.message().contains("Greylisted"), "{err:?}");
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = receiver(&format!(
        "url: smtp://127.0.0.1:{port}\nfrom: patrol@example.com\nto: [oncall@example.com]\n"
    ));
    let err = send(&r).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        err.message().contains(&format!("127.0.0.1:{port}")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_greets_times_out_as_retryable() {
    // Accepts connections (the kernel's backlog does) but never says 220.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let r = receiver(&format!(
        "url: smtp://127.0.0.1:{port}\nfrom: patrol@example.com\nto: [oncall@example.com]\n"
    ));
    let started = std::time::Instant::now();
    let err = send_with_timeout(&r, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        err.message().contains("timed out (not done within 500ms)"),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test]
async fn starttls_with_a_private_ca_delivers_encrypted_and_authenticated() {
    let pki = TestPki::new();
    let server = pki_server(
        &pki,
        ServerOptions {
            require_starttls: true,
            auth: Some(("patrol".into(), "s3cret-mail-pw".into())),
            ..Default::default()
        },
    );
    let r = receiver(&format!(
        "url: {}\nusername: patrol\npassword: s3cret-mail-pw\nca_file: {}\n\
         from: patrol@example.com\nto: [oncall@example.com]\n",
        server.url("smtp"),
        pki.ca_file().display()
    ));
    send(&r)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", server.log()));
    let mail = server.only_mail();
    assert!(
        mail.encrypted,
        "STARTTLS was required by default with credentials"
    );
    assert_eq!(mail.login.as_deref(), Some("patrol"));
    assert_eq!(mail.message.content_type, "multipart/alternative");
}

#[tokio::test]
async fn an_untrusted_certificate_stops_the_send_before_any_mail() {
    let pki = TestPki::new();
    let server = pki_server(
        &pki,
        ServerOptions {
            require_starttls: true,
            ..Default::default()
        },
    );
    let r = receiver(&format!(
        "url: {}\nstarttls: required\nfrom: patrol@example.com\nto: [oncall@example.com]\n",
        server.url("smtp")
    ));
    let err = send(&r).await.unwrap_err();
    // Retried like other transport trouble: a certificate is fixed on the server's side, and the
    // notification should still arrive then.
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.message().contains("UnknownIssuer"), "{err:?}");
    assert!(err.message().contains("set ca_file"), "{err:?}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn smtps_is_tls_from_the_first_byte() {
    let pki = TestPki::new();
    let server = pki_server(
        &pki,
        ServerOptions {
            implicit_tls: true,
            ..Default::default()
        },
    );
    let r = receiver(&format!(
        "url: {}\nca_file: {}\nfrom: patrol@example.com\nto: [oncall@example.com]\n",
        server.url("smtps"),
        pki.ca_file().display()
    ));
    send(&r)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", server.log()));
    let mail = server.only_mail();
    assert!(mail.encrypted);
    assert_eq!(mail.message.header("x-patrol-idempotency-key"), KEY);
}

#[tokio::test]
async fn failed_auth_is_permanent_and_never_shows_the_password() {
    let pki = TestPki::new();
    let server = pki_server(
        &pki,
        ServerOptions {
            auth: Some(("patrol".into(), "the-right-one".into())),
            ..Default::default()
        },
    );
    let r = receiver(&format!(
        "url: {}\nusername: patrol\npassword: wrong-zebra-horse-7\nca_file: {}\n\
         from: patrol@example.com\nto: [oncall@example.com]\n",
        server.url("smtp"),
        pki.ca_file().display()
    ));
    let err = send(&r).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.message().contains("535"), "{err:?}");
    assert!(!err.message().contains("wrong-zebra-horse-7"), "{err:?}");
    assert!(!format!("{r:?}").contains("wrong-zebra-horse-7"));
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn credentials_are_not_sent_to_a_server_without_starttls() {
    let server = SmtpServer::start(&ServerOptions {
        auth: Some(("patrol".into(), "cleartext-pw-9".into())),
        ..Default::default()
    });
    let r = receiver(&format!(
        "url: {}\nusername: patrol\npassword: cleartext-pw-9\n\
         from: patrol@example.com\nto: [oncall@example.com]\n",
        server.url("smtp")
    ));
    let err = send(&r).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.message().contains("STARTTLS"), "{err:?}");
    assert!(server.received().is_empty());

    // Said explicitly, clear text is the user's choice (a relay on the same host).
    let clear = receiver(&format!(
        "url: {}\nstarttls: never\nusername: patrol\npassword: cleartext-pw-9\n\
         from: patrol@example.com\nto: [oncall@example.com]\n",
        server.url("smtp")
    ));
    send(&clear)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", server.log()));
    assert_eq!(server.only_mail().login.as_deref(), Some("patrol"));
}
