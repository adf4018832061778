use super::*;

fn receiver(yaml: &str) -> Email {
    serde_saphyr::from_str(yaml).unwrap()
}

fn issues_of(r: &Email) -> Vec<String> {
    let mut issues = Issues::default();
    r.validate(&mut issues);
    issues
        .items
        .iter()
        .map(|(path, msg)| format!("{path:?}: {msg}"))
        .collect()
}

const BASE: &str =
    "url: smtp://mail.example.com:587\nfrom: patrol@example.com\nto: [oncall@example.com]\n";

#[test]
fn endpoints_take_the_scheme_defaults_and_keep_ipv6_hosts_usable() {
    let e = Endpoint::parse("smtp://mail.example.com").unwrap();
    assert_eq!(
        (e.host.as_str(), e.port, e.implicit_tls),
        ("mail.example.com", 25, false)
    );
    let e = Endpoint::parse("smtps://mail.example.com").unwrap();
    assert_eq!((e.port, e.implicit_tls), (465, true));
    let e = Endpoint::parse("smtp://[::1]:2525/").unwrap();
    assert_eq!((e.host.as_str(), e.port), ("::1", 2525));
    assert_eq!(e.to_string(), "[::1]:2525");
}

#[test]
fn endpoint_errors_explain_without_repeating_the_url() {
    let err = Endpoint::parse("https://mail.example.com").unwrap_err();
    assert!(err.contains("smtp:// or smtps://"), "{err}");
    let err = Endpoint::parse("smtp://bob:hunter2@mail.example.com").unwrap_err();
    assert!(err.contains("username and password"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(Endpoint::parse("smtp://mail.example.com/inbox").is_err());
    assert!(Endpoint::parse("not a url").is_err());
}

#[test]
fn a_sound_receiver_has_no_issues() {
    let r = receiver(&format!(
        "{BASE}cc: ['Team <team@example.com>']\nusername: bob\npassword: pw\nsubject: '{{{{ title }}}}'\n"
    ));
    assert_eq!(issues_of(&r), Vec::<String>::new());
}

#[test]
fn validation_reports_each_problem_at_its_field() {
    let r = receiver(
        "url: smtps://mail.example.com\nstarttls: required\nfrom: not-an-address\nto: []\n\
         cc: [also bad]\nusername: bob\ntext_template: '{% if %}'\nca_file: /nonexistent/ca.pem\n",
    );
    let issues = issues_of(&r).join("\n");
    for expected in [
        "starttls applies to smtp:// only",
        "username needs a password",
        "\"not-an-address\" is not a mail address",
        "needs at least one recipient",
        "\"also bad\" is not a mail address",
        "template error",
        "ca_file /nonexistent/ca.pem",
    ] {
        assert!(
            issues.contains(expected),
            "missing {expected:?} in:\n{issues}"
        );
    }
}

#[test]
fn unknown_fields_are_rejected() {
    let err =
        serde_saphyr::from_str::<Email>(&format!("{BASE}bcc: [x@example.com]\n")).unwrap_err();
    assert!(err.to_string().contains("bcc"), "{err}");
}

#[test]
fn credentials_make_starttls_required_unless_said_otherwise() {
    assert_eq!(receiver(BASE).starttls_mode(), StartTls::Opportunistic);
    let with_login = receiver(&format!("{BASE}username: bob\npassword: pw\n"));
    assert_eq!(with_login.starttls_mode(), StartTls::Required);
    let explicit = receiver(&format!(
        "{BASE}username: bob\npassword: pw\nstarttls: never\n"
    ));
    assert_eq!(explicit.starttls_mode(), StartTls::Never);
}

#[test]
fn debug_output_masks_the_password() {
    let r = receiver(&format!(
        "{BASE}username: bob\npassword: zebra-horse-battery\n"
    ));
    let shown = format!("{r:?}");
    assert!(!shown.contains("zebra-horse-battery"), "{shown}");
    assert!(shown.contains("bob"), "{shown}");
}

#[test]
fn message_ids_are_stable_and_always_valid() {
    assert_eq!(
        message_id("grp-1.42", "example.com"),
        "<grp-1.42@example.com>"
    );
    let odd = message_id("group {a=\"b\"}:7", "example.com");
    assert_eq!(odd, message_id("group {a=\"b\"}:7", "example.com"));
    assert!(
        odd.starts_with("<patrol-") && odd.ends_with("@example.com>"),
        "{odd}"
    );
    assert_ne!(odd, message_id("group {a=\"b\"}:8", "example.com"));
    assert!(message_id("a..b", "例子.中国").ends_with("@patrol.invalid>"));
}

#[test]
fn scrub_removes_an_unregistered_password() {
    let out = scrub(
        "535 bad credentials for pw-not-registered-9",
        Some("pw-not-registered-9"),
    );
    assert!(!out.contains("pw-not-registered-9"), "{out}");
}
