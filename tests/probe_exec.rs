//! `kind: exec` with real processes: the Debian `monitoring-plugins` (`check_tcp`, `check_http`,
//! `check_dummy`) against servers on loopback, shell scripts for exit codes, signals, timeouts
//! (the whole process tree killed), environment, working directory and output expectations, and
//! the load-time checks of the fields with their file:line:col.
//!
//! The plugins are required, not optional: scripts/test.sh installs `monitoring-plugins`, and
//! without them these tests fail saying so rather than skip.

mod net_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use net_support::{
    Rules, assert_contains, assert_starts_with, check_from, closed_port, lone_check,
    lone_check_yaml, measure, measure_lone, number, run, serve_http, single,
};
use patrol::config::Diagnostic;
use patrol::probe::{Measurement, Reported};
use patrol::result::{Status, Value};
use tokio::net::TcpListener;

const PLUGIN_DIR: &str = "/usr/lib/nagios/plugins";

/// The path of a Debian monitoring plugin; its absence fails the test with what to install.
fn plugin(name: &str) -> String {
    let path = Path::new(PLUGIN_DIR).join(name);
    assert!(
        path.is_file(),
        "{} is missing: the exec probe tests run the Debian monitoring-plugins; \
         scripts/test.sh installs them (apt-get install monitoring-plugins)",
        path.display()
    );
    path.display().to_string()
}

/// `args` as a YAML flow list (JSON strings are YAML double-quoted scalars).
fn argv(args: &[&str]) -> String {
    serde_json::to_string(args).unwrap()
}

/// `line` as a YAML double-quoted scalar.
fn quoted(line: &str) -> String {
    serde_json::to_string(line).unwrap()
}

/// Fields of an exec check running `args` (no shell), plus `extra` fields.
fn exec_fields(args: &[&str], extra: &str) -> String {
    let mut fields = format!("kind: exec, command: {}", argv(args));
    if !extra.is_empty() {
        fields.push_str(", ");
        fields.push_str(extra);
    }
    fields
}

/// Fields of an exec check running `line` with `/bin/sh -c`, plus `extra` fields.
fn shell_fields(line: &str, extra: &str) -> String {
    let mut fields = format!("kind: exec, shell: true, command: {}", quoted(line));
    if !extra.is_empty() {
        fields.push_str(", ");
        fields.push_str(extra);
    }
    fields
}

fn reported(m: &Measurement) -> &Reported {
    m.reported
        .as_ref()
        .unwrap_or_else(|| panic!("no reported status in {m:?}"))
}

/// A TCP listener on loopback that accepts (and drops) every connection; its port.
async fn accepting_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    port
}

const BODY: &str = "hello from patrol's test server";

async fn web_server() -> u16 {
    let app = Router::new().route("/ok", get(|| async { BODY })).route(
        "/fail",
        get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
    );
    serve_http(app).await.port()
}

/// What `check_http -H 127.0.0.1 -p PORT -u PATH [more…]` measures, with `extra` check fields.
async fn check_http(port: u16, path: &str, more: &[&str], extra: &str) -> Measurement {
    let http = plugin("check_http");
    let port = port.to_string();
    let mut args = vec![http.as_str(), "-H", "127.0.0.1", "-p", &port, "-u", path];
    args.extend_from_slice(more);
    measure_lone("web", &exec_fields(&args, extra))
        .await
        .unwrap()
}

/// What `check_tcp -H 127.0.0.1 -p PORT` measures with `value: perf:time`.
async fn check_tcp_time(port: u16) -> Measurement {
    let tcp = plugin("check_tcp");
    let port = port.to_string();
    let args = [tcp.as_str(), "-H", "127.0.0.1", "-p", &port];
    measure_lone("tcp", &exec_fields(&args, "value: \"perf:time\""))
        .await
        .unwrap()
}

// ---- monitoring-plugins -------------------------------------------------------------------

#[tokio::test]
async fn check_tcp_against_a_listening_port_is_ok_with_its_response_time() {
    let port = accepting_port().await;
    let m = check_tcp_time(port).await;
    let r = reported(&m);
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_starts_with(&r.message, "TCP OK - ");
    assert_contains(&r.message, &format!("port {port}"));
    assert_eq!(m.unit, "s");
    let seconds = number(&single(&m).cloned());
    assert!((0.0..10.0).contains(&seconds), "{seconds}");
    assert!(m.failures.is_empty(), "{:?}", m.failures);
}

#[tokio::test]
async fn check_tcp_against_a_closed_port_is_critical_without_a_second_failure() {
    let port = closed_port().await;
    let m = check_tcp_time(port).await;
    let r = reported(&m);
    assert_eq!(r.status, Status::Crit, "{r:?}");
    assert_contains(&r.message, "Connection refused");
    assert_contains(&r.message, &port.to_string());
    // No performance data from a failed connect: the plugin's own words explain it.
    assert!(m.samples.is_empty() && m.failures.is_empty(), "{m:?}");
}

#[tokio::test]
async fn check_http_200_is_ok_with_time_and_size_as_series() {
    let port = web_server().await;
    let m = check_http(port, "/ok", &[], "value: perf").await;
    let r = reported(&m);
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_starts_with(&r.message, "HTTP OK: HTTP/1.1 200 OK");
    let series: Vec<&str> = m.samples.iter().map(|s| s.series.as_str()).collect();
    assert_eq!(series, vec!["time", "size"]);
    let time = number(&Some(m.samples[0].value.clone()));
    let size = number(&Some(m.samples[1].value.clone()));
    assert!((0.0..10.0).contains(&time), "{time}");
    // check_http counts the whole response, headers included.
    assert!(size > BODY.len() as f64 && size < 2000.0, "{size}");
    // Seconds and bytes: no unit shared by all series.
    assert_eq!(m.unit, "");
}

#[tokio::test]
async fn check_http_500_is_critical() {
    let port = web_server().await;
    let m = check_http(port, "/fail", &[], "value: \"perf:size\"").await;
    let r = reported(&m);
    assert_eq!(r.status, Status::Crit, "{r:?}");
    assert_starts_with(
        &r.message,
        "HTTP CRITICAL: HTTP/1.1 500 Internal Server Error",
    );
    assert_eq!(m.unit, "B");
    assert!(number(&single(&m).cloned()) > 4.0);
}

#[tokio::test]
async fn check_http_string_expectation_decides_the_status() {
    let port = web_server().await;
    let found = check_http(port, "/ok", &["-s", "from patrol"], "").await;
    assert_eq!(reported(&found).status, Status::Ok, "{found:?}");
    let missing = check_http(port, "/ok", &["-s", "not there"], "").await;
    let r = reported(&missing);
    assert_eq!(r.status, Status::Crit, "{r:?}");
    assert_contains(&r.message, "string 'not there' not found");
    // value: exit_code by default.
    assert_eq!(single(&missing), Some(&Value::Num(2.0)));
}

#[tokio::test]
async fn check_dummy_by_bare_name_warns_with_its_text_unsplit() {
    plugin("check_dummy");
    // A bare name is found in the plugin directory, and "text with spaces" stays one argument
    // (split, check_dummy would print only "text").
    let m = measure_lone(
        "dummy",
        &exec_fields(&["check_dummy", "1", "text with spaces"], ""),
    )
    .await
    .unwrap();
    let r = reported(&m);
    assert_eq!(r.status, Status::Warn, "{r:?}");
    assert_eq!(r.message, "WARNING: text with spaces");
    assert_eq!(single(&m), Some(&Value::Num(1.0)));
}

#[tokio::test]
async fn the_engine_judges_by_the_plugin_exit_status() {
    plugin("check_dummy");
    for (code, status, text) in [
        ("0", Status::Ok, "OK: all good"),
        ("1", Status::Warn, "WARNING: all good"),
        ("2", Status::Crit, "CRITICAL: all good"),
        ("3", Status::Error, "UNKNOWN: all good"),
    ] {
        let (_rules, check) = lone_check(
            "dummy",
            &exec_fields(&["check_dummy", code, "all good"], ""),
        );
        let r = run(&check).await;
        assert_eq!(r.status, status, "{r:?}");
        assert_starts_with(&r.message, text);
    }
}

// ---- exit codes, signals, timeouts ----------------------------------------------------------

#[tokio::test]
async fn exit_3_is_an_error_showing_stderr() {
    let m = measure_lone(
        "unknown",
        &shell_fields(
            "echo 'UNKNOWN - cannot read /etc/app.conf'; echo 'permission denied' >&2; exit 3",
            "",
        ),
    )
    .await
    .unwrap();
    let r = reported(&m);
    assert_eq!(r.status, Status::Error);
    assert_eq!(
        r.message,
        "UNKNOWN - cannot read /etc/app.conf; stderr: permission denied"
    );
}

#[tokio::test]
async fn other_exit_codes_and_signals_are_errors() {
    let err = measure_lone(
        "seven",
        &shell_fields("echo 'half way'; echo 'it broke' >&2; exit 7", ""),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.0,
        "/bin/sh -c exited with code 7 (plugins exit with 0 ok, 1 warning, 2 critical, 3 unknown); \
         output: half way; stderr: it broke"
    );
    let err = measure_lone("term", &shell_fields("kill -TERM $$", ""))
        .await
        .unwrap_err();
    assert_starts_with(&err.0, "/bin/sh -c was killed by signal 15 (SIGTERM)");
    let err = measure_lone("missing", &shell_fields("no-such-command-xyz", ""))
        .await
        .unwrap_err();
    assert_contains(&err.0, "exited with code 127 (command not found)");
    assert_contains(&err.0, "no-such-command-xyz: not found");
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet: it runs no more).
fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// The pid a script wrote to `file`, waiting (bounded) for it to appear.
async fn pid_written_to(file: &Path) -> u32 {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no pid in {}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_ends_soon(pid: u32) {
    let started = Instant::now();
    while !has_ended(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "process {pid} is still running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_hung_command_is_killed_with_its_children_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let line = format!(
        "echo waiting; sleep 30 & echo $! > '{}'; wait",
        pidfile.display()
    );
    let (_rules, check) = lone_check("hung", &shell_fields(&line, "timeout: 2s"));
    let started = Instant::now();
    let judged = patrol::engine::execute_check(&check, &Default::default(), "run", "rev").await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(took >= Duration::from_millis(1900), "took {took:?}");
    let r = &judged.results[0];
    assert_eq!(r.status, Status::Error, "{r:?}");
    assert_eq!(
        r.message,
        "timed out after 2s; /bin/sh -c and the processes it started were killed; output: waiting"
    );
    // The shell's background child, not only the shell, is gone.
    assert_ends_soon(pid_written_to(&pidfile).await).await;
}

#[tokio::test]
async fn an_abandoned_run_kills_the_process_tree() {
    // The engine drops a measurement that outlives the check's timeout; dropping must not leave
    // the command's processes behind.
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let line = format!("sleep 30 & echo $! > '{}'; wait", pidfile.display());
    let (_rules, check) = lone_check("hung", &shell_fields(&line, "timeout: 60s"));
    let child = {
        let measuring = measure(&check);
        tokio::pin!(measuring);
        tokio::select! {
            pid = pid_written_to(&pidfile) => pid,
            outcome = &mut measuring => panic!("the command should still be running: {outcome:?}"),
        }
        // The measurement is dropped here, its command still running.
    };
    assert_ends_soon(child).await;
}

// ---- arguments, environment, working directory, values -------------------------------------

#[tokio::test]
async fn arguments_with_spaces_and_quotes_are_passed_as_they_are() {
    let m = measure_lone(
        "args",
        &exec_fields(
            &["printf", "[%s]", "a b", "it's", "$HOME", "*"],
            "expect: { stdout_matches: '^\\[a b\\]\\[it''s\\]\\[\\$HOME\\]\\[\\*\\]$' }",
        ),
    )
    .await
    .unwrap();
    assert!(m.failures.is_empty(), "{:?}", m.failures);
    assert_eq!(reported(&m).message, "[a b][it's][$HOME][*]");
}

#[tokio::test]
async fn env_reaches_the_command_and_stdout_is_the_value() {
    let m = measure_lone(
        "env",
        &shell_fields(
            "test \"$PATROL_GREETING\" = 'hello world' && printf '%s\\n' \"$ANSWER\"",
            "env: { PATROL_GREETING: hello world, ANSWER: 42 }, value: stdout",
        ),
    )
    .await
    .unwrap();
    assert_eq!(reported(&m).status, Status::Ok, "{m:?}");
    assert_eq!(single(&m), Some(&Value::Num(42.0)));
    assert!(m.failures.is_empty(), "{:?}", m.failures);
}

#[tokio::test]
async fn secret_env_values_never_reach_messages() {
    let secret = "s3cr3t-exec-token-4711";
    let yaml = lone_check_yaml(
        "secret",
        &shell_fields(
            "echo \"token is $API_TOKEN\"; echo \"bad token $API_TOKEN\" >&2; exit 9",
            "env: { API_TOKEN: \"${env:API_TOKEN}\" }",
        ),
    );
    let rules = Rules::new().env("API_TOKEN", secret).file("r.yaml", &yaml);
    let check = rules.check("secret");
    let err = measure(&check).await.unwrap_err();
    assert!(!err.0.contains(secret), "{err}");
    assert_contains(&err.0, "token is ••••••");
    assert_contains(&err.0, "bad token ••••••");
}

#[tokio::test]
async fn stdout_that_is_not_a_number_is_a_failure_quoting_it() {
    let m = measure_lone(
        "nan",
        &shell_fields("echo 'about 12 items'", "value: stdout"),
    )
    .await
    .unwrap();
    assert!(m.samples.is_empty());
    assert_eq!(
        m.failures,
        vec!["value: stdout is not a number: \"about 12 items\""]
    );
}

#[tokio::test]
async fn stdout_matches_is_checked_line_by_line() {
    // `^` and `$` match at each line, as with grep.
    let ok = measure_lone(
        "m",
        &shell_fields(
            "printf 'role: primary\\nreplication: streaming\\nlag: 0\\n'",
            "expect: { stdout_matches: '^replication: streaming$' }",
        ),
    )
    .await
    .unwrap();
    assert!(ok.failures.is_empty(), "{:?}", ok.failures);
    let bad = measure_lone(
        "m",
        &shell_fields(
            "echo 'replication: stopped'",
            "expect: { stdout_matches: 'streaming$' }",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        bad.failures,
        vec![
            "expect.stdout_matches: stdout does not match \"streaming$\" (stdout starts \"replication: stopped\")"
        ]
    );
}

#[tokio::test]
async fn a_missing_perf_label_names_the_labels_there_are() {
    let m = measure_lone(
        "p",
        &shell_fields("echo 'OK | rta=0.5ms;100;500 pl=0%'", "value: \"perf:rtt\""),
    )
    .await
    .unwrap();
    assert_eq!(
        m.failures,
        vec!["value: perf:rtt: no such performance data; labels: rta, pl"]
    );
}

#[tokio::test]
async fn long_output_perfdata_on_later_lines_is_read() {
    let script = "printf '%s\\n' \
        'DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968' \
        '/boot 68 MB (69%);' \
        \"/var/log 819 MB (84%); | '/var log'=818MB;970;975;0;980\" \
        '/boot=68MB;88;93;0;98'";
    let m = measure_lone("disk", &shell_fields(script, "value: perf"))
        .await
        .unwrap();
    assert_eq!(
        reported(&m).message,
        "DISK OK - free space: / 3326 MB (56%);"
    );
    let got: Vec<(&str, f64)> = m
        .samples
        .iter()
        .map(|s| (s.series.as_str(), number(&Some(s.value.clone()))))
        .collect();
    assert_eq!(
        got,
        vec![("/", 2643.0), ("/var log", 818.0), ("/boot", 68.0)]
    );
    assert_eq!(m.unit, "MB");
}

#[tokio::test]
async fn workdir_and_program_paths_start_at_the_rule_file() {
    let rules = Rules::new();
    std::fs::create_dir_all(rules.path().join("data")).unwrap();
    std::fs::write(rules.path().join("data/answer.txt"), "42\n").unwrap();
    let script = rules.path().join("bin/check_answer.sh");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"OK $(cat answer.txt) | answer=$(cat answer.txt)c\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let yaml = lone_check_yaml(
        "answer",
        &exec_fields(
            &["bin/check_answer.sh"],
            "workdir: data, value: \"perf:answer\"",
        ),
    );
    let rules = rules.file("r.yaml", &yaml);
    let m = measure(&rules.check("answer")).await.unwrap();
    assert_eq!(reported(&m).message, "OK 42");
    assert_eq!(single(&m), Some(&Value::Num(42.0)));
    assert_eq!(m.unit, "c");
}

#[tokio::test]
async fn missing_and_unrunnable_programs_are_named() {
    let err = measure_lone("a", &exec_fields(&["/nonexistent/check_x", "-v"], ""))
        .await
        .unwrap_err();
    assert_eq!(err.0, "command /nonexistent/check_x not found");
    let err = measure_lone("b", &exec_fields(&["check_no_such_plugin_xyz"], ""))
        .await
        .unwrap_err();
    assert_eq!(
        err.0,
        "command check_no_such_plugin_xyz not found in PATH or the plugin directories \
         (/usr/lib/nagios/plugins, /usr/lib64/nagios/plugins, /usr/local/nagios/libexec)"
    );
    let rules = Rules::new();
    std::fs::write(rules.path().join("plain.sh"), "#!/bin/sh\necho OK\n").unwrap();
    std::fs::set_permissions(
        rules.path().join("plain.sh"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let rules = rules.file(
        "r.yaml",
        &lone_check_yaml("c", &exec_fields(&["./plain.sh"], "")),
    );
    let err = measure(&rules.check("c")).await.unwrap_err();
    assert_eq!(
        err.0,
        format!(
            "command {} is not executable (no permission to run it)",
            rules.path().join("./plain.sh").display()
        )
    );
    let (_rules, check) = lone_check("d", &exec_fields(&["true"], "workdir: /nonexistent/dir"));
    let err = measure(&check).await.unwrap_err();
    assert_starts_with(
        &err.0,
        "workdir /nonexistent/dir: No such file or directory",
    );
}

// ---- load-time validation ---------------------------------------------------------------------

/// The diagnostics of a rule file `r.yaml` with `yaml`, which must not load.
fn diagnostics(yaml: &str) -> Vec<Diagnostic> {
    Rules::new()
        .file("r.yaml", yaml)
        .try_load()
        .expect_err("the rules must not load")
}

/// Asserts one diagnostic at `line:col` whose message contains `part`.
fn assert_diagnostic(diags: &[Diagnostic], line: u32, col: u32, part: &str) {
    assert!(
        diags.iter().any(|d| d.line == line
            && d.column == col
            && d.message.contains(part)
            && d.file.ends_with("r.yaml")),
        "no diagnostic at {line}:{col} containing {part:?} in {diags:#?}"
    );
}

#[test]
fn command_and_shell_must_agree() {
    let diags = diagnostics(
        "checks:
  - name: list-with-shell
    kind: exec
    shell: true
    command: [check_tcp, -H, db]
  - name: line-without-shell
    kind: exec
    command: check_tcp -H db
  - name: empty
    kind: exec
    command: []
  - name: not-a-command
    kind: exec
    command: { program: x }
",
    );
    assert_diagnostic(
        &diags,
        5,
        14,
        "with shell: true, command is one command line",
    );
    assert_diagnostic(&diags, 8, 14, "set shell: true to run a command line");
    assert_diagnostic(&diags, 11, 14, "command is empty");
    assert_diagnostic(&diags, 14, 14, "a list of arguments");
    assert_eq!(diags.len(), 4, "{diags:#?}");
}

#[test]
fn regex_value_env_and_unknown_fields_are_checked_when_loading() {
    let diags = diagnostics(
        "checks:
  - name: bad-regex
    kind: exec
    command: [true]
    expect:
      stdout_matches: 'up('
  - name: bad-value
    kind: exec
    command: [true]
    value: perf
  - name: bad-value-2
    kind: exec
    command: [true]
    value: status
  - name: bad-env
    kind: exec
    command: [true]
    env:
      'A=B': x
  - name: typo
    kind: exec
    command: [true]
    timout: 5s
",
    );
    assert_diagnostic(&diags, 6, 23, "invalid regular expression \"up(\"");
    assert_diagnostic(
        &diags,
        14,
        12,
        "expected exit_code, stdout, perf:<label> or perf",
    );
    assert_diagnostic(&diags, 19, 7, "not a valid environment variable name");
    assert_diagnostic(&diags, 23, 5, "timout");
    assert_eq!(diags.len(), 4, "{diags:#?}");
}

#[test]
fn a_valid_exec_check_loads() {
    let (_rules, check) = check_from(
        "checks:
  - name: ok
    kind: exec
    command: [/usr/lib/nagios/plugins/check_tcp, -H, db, -p, 5432]
    timeout: 3s
    env: { LANG: C }
    value: perf:time
    crit: gt(0.5)
",
        "ok",
    );
    assert_eq!(check.kind(), "exec");
    assert_eq!(check.common.timeout, Duration::from_secs(3));
}
