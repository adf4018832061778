use super::*;
use crate::chaos::fault::FaultSpec;
use crate::chaos::fault::test_support::{issues_of, spec_of};

fn process(yaml: &str) -> ProcessFault {
    match spec_of("process", yaml) {
        FaultSpec::Process(p) => p,
        other => panic!("not a process fault: {other:?}"),
    }
}

#[test]
fn a_full_process_fault_parses() {
    let p = process(
        "{ pidfile: run/sse-2.pid, action: kill, start: ['./sse', '--port', '18082'], \
         ready: 'tcp://127.0.0.1:18082', ready_timeout: 10s, log: sse.log, env: {A: b} }",
    );
    assert_eq!(p.pidfile, Some(PathBuf::from("run/sse-2.pid")));
    assert_eq!(p.action, ProcessAction::Kill);
    assert_eq!(p.ready_timeout, Some(Duration::from_secs(10)));
    assert_eq!(
        p.start.as_ref().unwrap().argv(false).unwrap(),
        ["./sse", "--port", "18082"]
    );
    assert!(issues_of(&FaultSpec::Process(p.clone())).is_empty());
    let text = FaultSpec::Process(p).describe();
    assert!(
        text.contains("SIGKILL the process in run/sse-2.pid"),
        "{text}"
    );
    assert!(text.contains("tcp://127.0.0.1:18082 (up to 10s)"), "{text}");
    assert!(text.contains("blast radius"), "{text}");
}

#[test]
fn a_process_is_never_chosen_by_name() {
    let spec = spec_of("process", "{ name: nginx, action: pause }");
    let found = issues_of(&spec);
    assert!(
        found
            .iter()
            .any(|i| i.contains("name") && i.contains("never by name")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|i| i.contains("`pidfile` or `pid` is required")),
        "{found:?}"
    );
}

#[test]
fn kill_and_term_need_a_start_command() {
    for action in ["kill", "term", "restart"] {
        let spec = spec_of("process", &format!("{{ pid: 4242, action: {action} }}"));
        let found = issues_of(&spec);
        assert!(
            found
                .iter()
                .any(|i| i.starts_with("start:") && i.contains("needs `start`")),
            "{action}: {found:?}"
        );
    }
    assert!(issues_of(&spec_of("process", "{ pid: 4242, action: pause }")).is_empty());
}

#[test]
fn bad_values_are_reported_at_their_field() {
    let found = issues_of(&spec_of(
        "process",
        "{ pid: 1, action: kill, start: 'a | b', ready: 'localhost:80' }",
    ));
    assert!(
        found
            .iter()
            .any(|i| i.starts_with("pid:") && i.contains("above 1")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|i| i.starts_with("start:") && i.contains("shell: true")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|i| i.starts_with("ready:") && i.contains("tcp://")),
        "{found:?}"
    );
    let found = issues_of(&spec_of(
        "process",
        "{ pid: 4242, pidfile: x.pid, action: pause, start: ./x }",
    ));
    assert!(found.iter().any(|i| i.contains("not both")), "{found:?}");
    assert!(
        found.iter().any(|i| i.contains("nothing is started")),
        "{found:?}"
    );
    // A shell line is fine once `shell: true` says so.
    assert!(
        issues_of(&spec_of(
            "process",
            "{ pid: 4242, action: term, start: 'a | b', shell: true }"
        ))
        .is_empty()
    );
}

#[test]
fn unknown_actions_and_fields_fail_with_a_location() {
    let node = crate::config::parse_yaml("{ pid: 4242,\n  action: explode }").unwrap();
    let err = FaultSpec::from_node("process", &node).unwrap().unwrap_err();
    assert_eq!(err.field.as_deref(), Some("action"));
    assert_eq!(err.loc.map(|l| l.line), Some(2));
    assert!(err.message.contains("explode"), "{}", err.message);
}

#[test]
fn the_revert_state_survives_json() {
    let state = ProcessState {
        action: ProcessAction::Term,
        pid: 4242,
        start_time: Some(99),
        pidfile: Some("/run/x.pid".into()),
        start: Some(Resolved {
            argv: vec!["sh".into(), "-c".into(), "exec x".into()],
            cwd: "/srv".into(),
            env: BTreeMap::new(),
        }),
        ready: Some(Ready::Tcp("127.0.0.1:1".into())),
        ready_timeout: Duration::from_secs(30),
        log: None,
    };
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(serde_json::from_value::<ProcessState>(json).unwrap(), state);
}
