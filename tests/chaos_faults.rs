//! Faults against real parts: processes with pidfiles (sleep, a python HTTP server), commands
//! writing files, the stress child measured through /proc, Redis CLIENT PAUSE, the fault proxy —
//! and the journal on SQLite and PostgreSQL with recovery after a simulated kill -9.

mod common;

#[path = "chaos_faults_support/mod.rs"]
mod support;

#[path = "chaos_faults_support/journal_tests.rs"]
mod journal_tests;

#[path = "chaos_faults_support/stress_redis_proxy.rs"]
mod stress_redis_proxy;

use std::time::Duration;

use support::{KillOnDrop, Service, alive, context, fault, proc_state, sleeper, wait_for};

const WINDOW: Duration = Duration::from_secs(20);

#[tokio::test]
async fn pause_stops_the_process_and_revert_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let (guard, _) = sleeper(dir.path(), "worker");
    let pid = guard.0;
    let spec = fault("process", "{ pidfile: worker.pid, action: pause }");
    spec.preflight(&ctx).await.unwrap();
    let state = spec.inject(&ctx, WINDOW).await.unwrap();
    assert_eq!(proc_state(pid), Some('T'));
    assert_eq!(state["pid"], pid);
    let done = spec.revert(&ctx, &state).await.unwrap();
    assert!(done.contains("resumed process"), "{done}");
    assert!(wait_for(Duration::from_secs(5), || proc_state(pid) != Some('T')));
    // Reverting again is harmless.
    spec.revert(&ctx, &state).await.unwrap();
    assert!(alive(pid));
}

#[tokio::test]
async fn kill_is_reverted_by_starting_the_service_and_waiting_for_http() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let service = Service::start(dir.path(), "web");
    let old = service.pid();
    let spec = fault(
        "process",
        &format!(
            "{{ pidfile: web.pid, action: kill, shell: true, start: {:?}, \
               ready: 'http://127.0.0.1:{}/', ready_timeout: 20s, log: web.log }}",
            service.start_line(),
            service.port
        ),
    );
    spec.preflight(&ctx).await.unwrap();
    let state = spec.inject(&ctx, WINDOW).await.unwrap();
    assert!(!alive(old), "SIGKILL must have ended {old}");
    assert!(!service.accepts());
    let done = spec.revert(&ctx, &state).await.unwrap();
    assert!(done.contains("ready after"), "{done}");
    let new = service.pid();
    assert_ne!(new, old);
    assert!(alive(new) && service.accepts());
    // Idempotent: the pidfile names a live process, nothing is started twice.
    let again = spec.revert(&ctx, &state).await.unwrap();
    assert_eq!(again, format!("process {new} is running; nothing to start"));
    assert_eq!(service.pid(), new);
}

#[tokio::test]
async fn term_is_reverted_from_the_journaled_state_in_a_fresh_context() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), "api");
    let old = service.pid();
    let spec = fault(
        "process",
        &format!(
            "{{ pidfile: api.pid, action: term, shell: true, start: {:?}, \
               ready: 'tcp://127.0.0.1:{}' }}",
            service.start_line(),
            service.port
        ),
    );
    let state = spec.inject(&context(dir.path()), WINDOW).await.unwrap();
    assert!(wait_for(Duration::from_secs(5), || !alive(old)));
    // Only the JSON survives, as in the journal: revert it by kind in a new context.
    let json = serde_json::to_string(&state).unwrap();
    let fresh = context(dir.path());
    let state: serde_json::Value = serde_json::from_str(&json).unwrap();
    let done = patrol::chaos::fault::FaultSpec::revert_state("process", &fresh, &state)
        .await
        .unwrap();
    assert!(done.contains("tcp://127.0.0.1"), "{done}");
    assert!(service.accepts());
    assert_ne!(service.pid(), old);
}

#[tokio::test]
async fn restart_terminates_and_starts_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let service = Service::start(dir.path(), "node");
    let old = service.pid();
    let spec = fault(
        "process",
        &format!(
            "{{ pidfile: node.pid, action: restart, shell: true, start: {:?}, \
               ready: 'tcp://127.0.0.1:{}' }}",
            service.start_line(),
            service.port
        ),
    );
    let state = spec.inject(&ctx, WINDOW).await.unwrap();
    // The new process may accept connections a moment before it has rewritten its pidfile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while service.pid() == old && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let new = service.pid();
    assert_ne!(new, old);
    // SIGTERM was sent; the old process may take a moment to be reaped.
    assert!(
        wait_for(Duration::from_secs(5), || !alive(old)),
        "the old process {old} is gone"
    );
    assert!(alive(new), "the new process {new} runs");
    assert!(service.accepts());
    let done = spec.revert(&ctx, &state).await.unwrap();
    assert_eq!(done, format!("process {new} is running; nothing to start"));
}

#[tokio::test]
async fn preflight_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let missing = fault("process", "{ pidfile: none.pid, action: pause }");
    let err = missing.preflight(&ctx).await.unwrap_err();
    assert!(
        err.contains("cannot read pidfile") && err.contains("none.pid"),
        "{err}"
    );

    // A pid that has exited.
    let pid = support::spawn_reaped(&["true"]);
    assert!(wait_for(Duration::from_secs(5), || !alive(pid)));
    std::fs::write(dir.path().join("gone.pid"), pid.to_string()).unwrap();
    let gone = fault("process", "{ pidfile: gone.pid, action: pause }");
    let err = gone.preflight(&ctx).await.unwrap_err();
    assert!(err.contains(&pid.to_string()), "{err}");

    let (_guard, _) = sleeper(dir.path(), "s");
    let no_program = fault(
        "process",
        "{ pidfile: s.pid, action: kill, start: [/nonexistent/server] }",
    );
    let err = no_program.preflight(&ctx).await.unwrap_err();
    assert!(
        err.contains("/nonexistent/server") && err.contains("not found"),
        "{err}"
    );
    assert!(
        fault(
            "process",
            "{ pidfile: s.pid, action: kill, start: [sleep, '1'] }"
        )
        .preflight(&ctx)
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn a_start_command_that_fails_is_reported_with_its_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let (guard, _) = sleeper(dir.path(), "x");
    let port = support::free_port();
    let spec = fault(
        "process",
        &format!(
            "{{ pidfile: x.pid, action: kill, shell: true, start: 'exit 7', \
               ready: 'tcp://127.0.0.1:{port}', ready_timeout: 20s }}"
        ),
    );
    let state = spec.inject(&ctx, WINDOW).await.unwrap();
    assert!(!alive(guard.0));
    let started = std::time::Instant::now();
    let err = spec.revert(&ctx, &state).await.unwrap_err();
    assert!(err.contains("exited (status 7)"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up early");
}

#[tokio::test]
async fn exec_runs_inject_and_revert_with_env_and_keeps_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let flag = dir.path().join("flag");
    let spec = fault(
        "exec",
        &format!(
            "{{ shell: true, env: {{ FLAG: {:?} }}, timeout: 10s, \
               inject: 'echo on > \"$FLAG\"; echo injected-ok', \
               revert: 'rm \"$FLAG\" && echo reverted-ok' }}",
            flag.display().to_string()
        ),
    );
    spec.preflight(&ctx).await.unwrap();
    let state = spec.inject(&ctx, WINDOW).await.unwrap();
    assert_eq!(std::fs::read_to_string(&flag).unwrap(), "on\n");
    assert_eq!(state["inject_output"]["stdout"], "injected-ok\n");
    assert_eq!(state["inject_output"]["code"], 0);
    let done = spec.revert(&ctx, &state).await.unwrap();
    assert!(done.contains("reverted-ok"), "{done}");
    assert!(!flag.exists());
    // A second revert fails (rm of a missing file) and says so with the command's words.
    let err = spec.revert(&ctx, &state).await.unwrap_err();
    assert!(
        err.contains("exited with status 1") && err.contains("No such file"),
        "{err}"
    );
}

#[tokio::test]
async fn exec_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let spec = fault(
        "exec",
        "{ shell: true, timeout: 500ms, inject: 'sleep 60 & echo $! > bg.pid; wait', \
           revert: [true] }",
    );
    let started = std::time::Instant::now();
    let err = spec.inject(&ctx, WINDOW).await.unwrap_err();
    assert!(err.contains("timed out after 500ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let bg: i32 = std::fs::read_to_string(dir.path().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _guard = KillOnDrop(bg);
    assert!(
        wait_for(Duration::from_secs(5), || !alive(bg)),
        "the background sleep {bg} of the timed-out shell must be killed too"
    );
}

#[tokio::test]
async fn an_unconfirmed_kill_starts_nothing_it_cannot_verify() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let spec = fault(
        "process",
        "{ pidfile: svc.pid, action: kill, start: [sleep, '30'] }",
    );
    let err = spec.revert_unconfirmed(&ctx).await.unwrap_err();
    assert!(
        err.contains("cannot tell whether the service runs"),
        "{err}"
    );
    // The inject never happened: the pidfile's process still runs, nothing is started.
    let (guard, _) = sleeper(dir.path(), "svc");
    let done = spec.revert_unconfirmed(&ctx).await.unwrap();
    assert_eq!(
        done,
        format!("process {} is running; nothing to start", guard.0)
    );
}
