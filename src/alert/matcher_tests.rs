use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn m(text: &str) -> Matcher {
    text.parse().unwrap()
}

#[test]
fn the_four_operators_parse_and_match() {
    let alert = labels(&[("severity", "critical"), ("service", "payments")]);
    let cases = [
        (r#"severity="critical""#, true),
        (r#"severity!="critical""#, false),
        (r#"service=~"orders|pay.*""#, true),
        (r#"service!~"orders|pay.*""#, false),
        (r#"severity="warning""#, false),
        (r#"service!~"orders""#, true),
    ];
    for (text, expected) in cases {
        assert_eq!(m(text).matches(&alert), expected, "{text}");
    }
}

#[test]
fn regexes_are_anchored_at_both_ends() {
    let matcher = m(r#"service=~"pay""#);
    assert!(matcher.matches(&labels(&[("service", "pay")])));
    assert!(!matcher.matches(&labels(&[("service", "prepay")])));
    assert!(!matcher.matches(&labels(&[("service", "payments")])));
    let alternation = m(r#"service=~"a|b""#);
    assert!(!alternation.matches(&labels(&[("service", "xa")])));
}

#[test]
fn a_missing_label_counts_as_empty() {
    let none = Labels::new();
    assert!(m(r#"env!="dev""#).matches(&none));
    assert!(m(r#"env="""#).matches(&none));
    assert!(!m(r#"env="prod""#).matches(&none));
    assert!(m(r#"env=~".*""#).matches(&none));
    assert!(m(r#"env=~".*""#).matches_empty());
    assert!(!m(r#"env=~".+""#).matches_empty());
}

#[test]
fn spaces_bare_values_and_escapes_are_accepted() {
    let spaced = m(r#"  severity  =   "critical"  "#);
    assert_eq!(
        (spaced.name.as_str(), spaced.op, spaced.value.as_str()),
        ("severity", MatchOp::Eq, "critical")
    );
    assert_eq!(m("team = sre core ").value, "sre core");
    assert_eq!(m(r#"msg="say \"hi\"\\n""#).value, r#"say "hi"\n"#);
    assert_eq!(m(r#"msg="a\nb""#).value, "a\nb");
}

#[test]
fn display_round_trips() {
    for text in [
        r#"severity="critical""#,
        r#"service=~"orders|pay.*""#,
        r#"msg!="quote \" and \\ and \n""#,
        r#"env!~"dev|qa""#,
    ] {
        let parsed = m(text);
        assert_eq!(parsed.to_string().parse::<Matcher>().unwrap(), parsed);
    }
    assert_eq!(m(" a = b ").to_string(), r#"a="b""#);
}

#[test]
fn errors_name_the_column() {
    let cases = [
        (r#"="x""#, 1, "expected a label name"),
        (r#"severity"x""#, 9, "expected an operator"),
        (r#"sev ~ "x""#, 5, "expected an operator"),
        (r#"9sev="x""#, 1, "must not start with a digit"),
        (r#"a="unterminated"#, 3, "unterminated quoted value"),
        (r#"a="x" trailing"#, 7, "unexpected text"),
        (r#"svc=~"(open""#, 6, "invalid regular expression"),
        ("", 1, "expected a label name"),
    ];
    for (text, column, message) in cases {
        let err = text.parse::<Matcher>().unwrap_err();
        assert_eq!(err.column, column, "{text}: {err}");
        assert!(err.message.contains(message), "{text}: {err}");
    }
}

#[test]
fn columns_count_characters_not_bytes() {
    let err = r#"服务="订单" x"#.parse::<Matcher>().unwrap_err();
    assert_eq!(err.column, 1, "{err}");
    assert!(err.message.contains("expected a label name"), "{err}");
    let err = r#"svc="订单" x"#.parse::<Matcher>().unwrap_err();
    assert_eq!(err.column, 10, "{err}");
}

#[test]
fn lists_parse_with_or_without_braces() {
    let list = parse_matchers(r#"{severity="critical", service=~"a,b|c", team=sre}"#).unwrap();
    let texts: Vec<String> = list.iter().map(Matcher::to_string).collect();
    assert_eq!(
        texts,
        [
            r#"severity="critical""#,
            r#"service=~"a,b|c""#,
            r#"team="sre""#
        ]
    );
    assert_eq!(parse_matchers(r#"a="1",b!="2""#).unwrap().len(), 2);
    assert!(parse_matchers("{}").unwrap().is_empty());
    assert!(parse_matchers("").unwrap().is_empty());
    let err = parse_matchers(r#"{a="1" b="2"}"#).unwrap_err();
    assert_eq!(err.column, 8, "{err}");
    let err = parse_matchers(r#"{a="1""#).unwrap_err();
    assert!(err.message.contains("closing `}`"), "{err}");
}

#[test]
fn matches_all_needs_every_matcher() {
    let alert = labels(&[("a", "1"), ("b", "2")]);
    assert!(matches_all(&[], &alert));
    assert!(matches_all(&[m("a=1"), m("b=~[0-9]")], &alert));
    assert!(!matches_all(&[m("a=1"), m("b=3")], &alert));
}

#[test]
fn new_rejects_bad_names_and_regexes() {
    assert!(Matcher::new("ok_name", MatchOp::Eq, "x").is_ok());
    assert!(Matcher::new("bad-name", MatchOp::Eq, "x").is_err());
    assert!(Matcher::new("", MatchOp::Eq, "x").is_err());
    let err = Matcher::new("a", MatchOp::NotRe, "[").unwrap_err();
    assert!(err.contains("invalid regular expression"), "{err}");
}

#[test]
fn deserializes_from_text_or_mapping_and_serializes_as_text() {
    let from_text: Matcher =
        serde_json::from_value(serde_json::json!("service=~\"pay.*\"")).unwrap();
    let from_map: Matcher = serde_json::from_value(serde_json::json!(
        {"name": "service", "op": "=~", "value": "pay.*"}
    ))
    .unwrap();
    assert_eq!(from_text, from_map);
    let default_op: Matcher =
        serde_json::from_value(serde_json::json!({"name": "a", "value": "b"})).unwrap();
    assert_eq!(default_op.op, MatchOp::Eq);
    assert_eq!(
        serde_json::to_value(&from_text).unwrap(),
        serde_json::json!("service=~\"pay.*\"")
    );
    let err = serde_json::from_value::<Matcher>(serde_json::json!("sev ~ x")).unwrap_err();
    assert!(err.to_string().contains("column 5"), "{err}");
    let err = serde_json::from_value::<Matcher>(serde_json::json!(
        {"name": "a", "value": "b", "extra": 1}
    ))
    .unwrap_err();
    assert!(err.to_string().contains("extra"), "{err}");
}
