use super::*;
use crate::config::{from_node, parse_yaml, path_text};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    from_node(&parse_yaml(text).unwrap(), None).unwrap()
}

/// Receivers an alert is routed to, in order.
fn receivers_of(matches: &[RouteMatch]) -> Vec<&str> {
    matches.iter().map(|m| m.receiver.as_str()).collect()
}

const TREE: &str = r#"
receiver: default
group_by: [alertname]
routes:
  - matchers: ['severity="critical"']
    receiver: pager
    continue: true
    group_wait: 5s
  - matchers: ['service=~"orders|pay.*"']
    receiver: payments-team
    group_by: [service]
    routes:
      - matchers: ['check="mysql-replication-delay"']
        receiver: dba
        repeat_interval: 1h
  - matchers: ['team="sre"']
    receiver: sre
"#;

#[test]
fn first_matching_child_takes_the_alert() {
    let tree: Route = yaml(TREE);
    let alert = labels(&[
        ("service", "payments"),
        ("severity", "warning"),
        ("team", "sre"),
    ]);
    assert_eq!(receivers_of(&tree.route(&alert)), ["payments-team"]);
}

#[test]
fn continue_lets_later_siblings_match_too() {
    let tree: Route = yaml(TREE);
    let alert = labels(&[("severity", "critical"), ("team", "sre")]);
    let matches = tree.route(&alert);
    assert_eq!(receivers_of(&matches), ["pager", "sre"]);
    assert_eq!(matches[0].timings.group_wait, Duration::from_secs(5));
    assert_eq!(matches[1].timings.group_wait, Duration::from_secs(30));
}

#[test]
fn the_parent_delivers_when_no_child_matches() {
    let tree: Route = yaml(TREE);
    let matches = tree.route(&labels(&[("alertname", "disk"), ("team", "web")]));
    assert_eq!(receivers_of(&matches), ["default"]);
    assert_eq!(matches[0].group_labels, labels(&[("alertname", "disk")]));
    // As in Alertmanager, a child that matched with `continue` still took the alert: the root
    // does not deliver it as well.
    let matches = tree.route(&labels(&[("severity", "critical")]));
    assert_eq!(receivers_of(&matches), ["pager"]);
}

#[test]
fn children_inherit_and_override_settings() {
    let tree: Route = yaml(TREE);
    let alert = labels(&[
        ("alertname", "mysql-replication-delay"),
        ("check", "mysql-replication-delay"),
        ("service", "orders"),
    ]);
    let matches = tree.route(&alert);
    assert_eq!(receivers_of(&matches), ["dba"]);
    let dba = &matches[0];
    assert_eq!(dba.group_labels, labels(&[("service", "orders")]));
    assert_eq!(
        dba.timings,
        RouteTimings {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(3600),
        }
    );
    assert_eq!(
        dba.group_key,
        r#"dba/{}/{}/{service=~"orders|pay.*"}/{check="mysql-replication-delay"}:{service="orders"}"#
    );
}

#[test]
fn a_child_without_receiver_inherits_the_parents() {
    let tree: Route = yaml(
        r#"
receiver: ops
routes:
  - matchers: ['env="prod"']
    group_by: [env]
"#,
    );
    let matches = tree.route(&labels(&[("env", "prod")]));
    assert_eq!(receivers_of(&matches), ["ops"]);
    assert_eq!(matches[0].group_labels, labels(&[("env", "prod")]));
}

#[test]
fn group_by_splits_alerts_into_groups() {
    let tree: Route = yaml("receiver: r\ngroup_by: [service]\n");
    let key = |service: &str, check: &str| {
        tree.route(&labels(&[("service", service), ("check", check)]))[0]
            .group_key
            .clone()
    };
    assert_eq!(key("orders", "a"), key("orders", "b"));
    assert_ne!(key("orders", "a"), key("users", "a"));

    let everything: Route = yaml("receiver: r\n");
    let key = |service: &str| {
        everything.route(&labels(&[("service", service)]))[0]
            .group_key
            .clone()
    };
    assert_eq!(key("orders"), key("users"), "no group_by: one group");

    let all: Route = yaml("receiver: r\ngroup_by: ['...']\n");
    let alert = labels(&[("service", "orders"), ("check", "a")]);
    assert_eq!(all.route(&alert)[0].group_labels, alert);
}

#[test]
fn a_group_by_label_the_alert_lacks_is_left_out() {
    let tree: Route = yaml("receiver: r\ngroup_by: [service, node]\n");
    let m = &tree.route(&labels(&[("service", "orders")]))[0];
    assert_eq!(m.group_labels, labels(&[("service", "orders")]));
}

#[test]
fn top_level_routes_sit_under_a_root_without_receiver() {
    let routes: Vec<Route> = yaml(
        r#"
- matchers: ['severity="critical"']
  receiver: pager
  continue: true
- matchers: ['service="orders"']
  receiver: orders
"#,
    );
    let route = |pairs: &[(&str, &str)]| route_all(&routes, &labels(pairs));
    assert_eq!(
        receivers_of(&route(&[("severity", "critical"), ("service", "orders")])),
        ["pager", "orders"]
    );
    assert_eq!(receivers_of(&route(&[("service", "orders")])), ["orders"]);
    assert!(route(&[("service", "users")]).is_empty());
}

#[test]
fn a_root_whose_matchers_fail_routes_nothing() {
    let tree: Route = yaml("receiver: r\nmatchers: ['env=\"prod\"']\n");
    assert!(tree.route(&labels(&[("env", "dev")])).is_empty());
}

#[test]
fn the_same_group_is_listed_once() {
    let tree: Route = yaml(
        r#"
receiver: r
routes:
  - matchers: ['a="1"']
    continue: true
  - matchers: ['a="1"']
"#,
    );
    assert_eq!(tree.route(&labels(&[("a", "1")])).len(), 1);
}

#[test]
fn durations_default_and_parse() {
    let route: Route = yaml("receiver: r\ngroup_interval: 1m30s\n");
    let m = &route.route(&Labels::new())[0];
    assert_eq!(m.timings.group_interval, Duration::from_secs(90));
    assert_eq!(m.timings.repeat_interval, Duration::from_secs(4 * 3600));
}

#[test]
fn repeat_interval_is_inherited_by_child_routes_unless_they_set_their_own() {
    let tree: Route = yaml(
        r#"
receiver: r
repeat_interval: 2h
routes:
  - matchers: ['team="db"']
    routes:
      - matchers: ['severity="critical"']
        repeat_interval: 15m
      - matchers: ['severity="warning"']
"#,
    );
    let repeat = |severity: &str| {
        tree.route(&labels(&[("team", "db"), ("severity", severity)]))[0]
            .timings
            .repeat_interval
    };
    assert_eq!(repeat("critical"), Duration::from_secs(15 * 60));
    assert_eq!(
        repeat("warning"),
        Duration::from_secs(2 * 3600),
        "from the root"
    );
    let top: Vec<Route> = yaml("- {receiver: r, repeat_interval: 45s}\n");
    let m = &route_all(&top, &labels(&[("a", "1")]))[0];
    assert_eq!(m.timings.repeat_interval, Duration::from_secs(45));
}

#[test]
fn bad_matchers_and_unknown_fields_fail_to_load() {
    let node = parse_yaml("receiver: r\nmatchers: ['sev ~ \"x\"']\n").unwrap();
    let err = from_node::<Route>(&node, None).unwrap_err();
    assert!(err.to_string().contains("column 5"), "{err}");
    assert_eq!(err.loc.unwrap().line, 2);
    let node = parse_yaml("receiver: r\ncontinu: true\n").unwrap();
    assert!(from_node::<Route>(&node, None).is_err());
}

fn problems(route: &Route, receivers: &[&str]) -> Vec<(String, String)> {
    let mut issues = Issues::default();
    route.validate(receivers, &mut issues);
    issues
        .items
        .iter()
        .map(|(path, message)| (path_text(path), message.clone()))
        .collect()
}

#[test]
fn validate_reports_problems_by_path() {
    let tree: Route = yaml(
        r#"
group_by: [service, 'bad-label']
group_interval: 0s
routes:
  - receiver: pager
    routes:
      - receiver: nobody
        group_by: ['...', service]
  - matchers: ['a="1"']
    repeat_interval: 0
"#,
    );
    let found = problems(&tree, &["pager", "team"]);
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "receiver",
            "group_by[1]",
            "group_interval",
            "routes[0].routes[0].receiver",
            "routes[0].routes[0].group_by[0]",
            "routes[1].receiver",
            "routes[1].repeat_interval",
        ],
        "{found:?}"
    );
    assert!(found[0].1.contains("no `receiver`"), "{found:?}");
    assert!(
        found[3].1.contains("unknown receiver `nobody`"),
        "{found:?}"
    );
    assert!(found[3].1.contains("pager, team"), "{found:?}");
}

#[test]
fn a_valid_tree_has_no_problems() {
    let tree: Route = yaml(TREE);
    let all = ["default", "pager", "payments-team", "dba", "sre"];
    assert!(problems(&tree, &all).is_empty());
    let issues = problems(&tree, &["default"]);
    assert_eq!(issues.len(), 4, "{issues:?}");
}
