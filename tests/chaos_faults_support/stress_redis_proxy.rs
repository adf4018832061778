//! The stress child measured through /proc, Redis CLIENT PAUSE on the test server, and proxy
//! toxics on a real fault proxy in front of an echo server.

use std::time::Duration;

use patrol::chaos::fault::{FaultSpec, Journal, RecoverResult, recover};
use patrol::chaos::proxy::{FaultProxy, ProxySpec};
use patrol::store::Store;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    KillOnDrop, alive, context, fault, proc_stat_field, rss_bytes, sleeper, wait_for,
};

fn use_built_patrol() {
    patrol::chaos::fault::stress::set_patrol_binary(crate::common::patrol_bin());
}

fn pid_of(state: &serde_json::Value) -> i32 {
    state["pid"].as_i64().unwrap() as i32
}

#[tokio::test]
async fn the_stress_child_burns_cpu_holds_memory_and_ends_by_itself() {
    use_built_patrol();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let spec = fault(
        "stress",
        "{ cpu: { workers: 1, load_percent: 100 }, memory: { bytes: 64MiB } }",
    );
    spec.preflight(&ctx).await.unwrap();
    let state = spec.inject(&ctx, Duration::from_secs(3)).await.unwrap();
    let pid = pid_of(&state);
    let _guard = KillOnDrop(pid);
    if state["engine"] == "builtin" {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(cmdline.contains("__stress"), "{cmdline}");
        assert!(
            cmdline.contains(state["marker"].as_str().unwrap()),
            "{cmdline}"
        );
    }
    let utime = |pid| proc_stat_field(pid, 14).unwrap_or(0);
    let before = utime(pid);
    // 30 clock ticks = 0.3 s of CPU: a worker at 100% gets there in well under a second.
    assert!(
        wait_for(Duration::from_secs(5), || utime(pid) >= before + 30),
        "CPU time stayed at {} ticks",
        utime(pid)
    );
    assert!(
        wait_for(Duration::from_secs(5), || rss_bytes(pid)
            .is_some_and(|r| r >= 64 << 20)),
        "RSS {:?}",
        rss_bytes(pid)
    );
    assert!(
        wait_for(Duration::from_secs(10), || !alive(pid)),
        "the stress child must end by itself after its 3 s window"
    );
    let done = spec.revert(&ctx, &state).await.unwrap();
    assert_eq!(done, format!("the stress process {pid} has already ended"));
}

#[tokio::test]
async fn revert_kills_the_stress_child_and_only_it() {
    use_built_patrol();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let spec = fault("stress", "{ cpu: { workers: 1, load_percent: 20 } }");
    let state = spec.inject(&ctx, Duration::from_secs(60)).await.unwrap();
    let pid = pid_of(&state);
    let _guard = KillOnDrop(pid);
    assert!(alive(pid));
    let done = spec.revert(&ctx, &state).await.unwrap();
    assert_eq!(done, format!("stopped the stress process {pid}"));
    assert!(!alive(pid));
    spec.revert(&ctx, &state).await.unwrap();

    // A journaled pid that now belongs to some other process is left alone.
    let (other, _) = sleeper(dir.path(), "bystander");
    let forged = json!({
        "engine": "builtin",
        "pid": other.0,
        "start_time": proc_stat_field(other.0, 22),
        "marker": "patrol-stress-forged",
        "ends_by": "2030-01-01T00:00:00Z",
    });
    let done = FaultSpec::revert_state("stress", &ctx, &forged)
        .await
        .unwrap();
    assert!(done.contains("already ended"), "{done}");
    assert!(alive(other.0));
}

#[tokio::test]
async fn client_pause_write_holds_writes_until_unpause() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let spec = fault("redis", "{ target: cache, mode: write }");
    spec.preflight(&ctx).await.unwrap();
    let client = redis::Client::open(crate::common::REDIS_URL).unwrap();
    let mut reader = client.get_multiplexed_async_connection().await.unwrap();
    // The crate's default response timeout would give up on the held write too early.
    let patient =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    let mut writer = client
        .get_multiplexed_async_connection_with_config(&patient)
        .await
        .unwrap();
    let key = crate::common::unique_name("fault_pause");

    let state = spec.inject(&ctx, Duration::from_secs(10)).await.unwrap();
    let mut get = redis::cmd("GET");
    get.arg(&key);
    let read = get.query_async::<Option<String>>(&mut reader);
    let read = tokio::time::timeout(Duration::from_secs(2), read).await;
    assert!(matches!(read, Ok(Ok(None))), "reads pass a WRITE pause");
    let key2 = key.clone();
    let mut write = tokio::spawn(async move {
        redis::cmd("SET")
            .arg(&key2)
            .arg("v")
            .query_async::<()>(&mut writer)
            .await
    });
    let held = tokio::time::timeout(Duration::from_millis(500), &mut write).await;
    assert!(held.is_err(), "the write must wait while paused");

    let done = spec.revert(&ctx, &state).await.unwrap();
    assert!(
        done.starts_with("CLIENT UNPAUSE on 127.0.0.1:6379"),
        "{done}"
    );
    let released = tokio::time::timeout(Duration::from_secs(5), write).await;
    assert!(matches!(released, Ok(Ok(Ok(())))), "{released:?}");
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut reader)
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("v"));
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut reader)
        .await
        .unwrap();
}

#[tokio::test]
async fn redis_faults_name_a_redis_target_and_outlive_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let err = fault("redis", "{ target: web }")
        .preflight(&ctx)
        .await
        .unwrap_err();
    assert_eq!(err, "target `web` is a tcp target, not redis");
    let err = fault("redis", "{ target: nope }")
        .preflight(&ctx)
        .await
        .unwrap_err();
    assert_eq!(err, "no target `nope` in the rules");
    let expired = json!({"target": "nope", "mode": "all", "until": "2000-01-01T00:00:00Z"});
    let done = FaultSpec::revert_state("redis", &ctx, &expired)
        .await
        .unwrap();
    assert!(done.starts_with("the pause ended by itself"), "{done}");
    let pending = json!({"target": "nope", "mode": "all", "until": "2999-01-01T00:00:00Z"});
    let err = FaultSpec::revert_state("redis", &ctx, &pending)
        .await
        .unwrap_err();
    assert!(
        err.contains("no target `nope`") && err.contains("ends by itself"),
        "{err}"
    );
}

/// An echo server on loopback; returns its address.
async fn echo_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Whether "ping" comes back through `addr` within 2 s.
async fn echoes(addr: std::net::SocketAddr) -> bool {
    let attempt = async {
        let mut conn = tokio::net::TcpStream::connect(addr).await?;
        conn.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await?;
        Ok::<bool, std::io::Error>(&buf == b"ping")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

#[tokio::test]
async fn a_proxy_toxic_is_journaled_removed_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = FaultProxy::start(&ProxySpec {
        name: "lb".into(),
        listen: "127.0.0.1:0".into(),
        upstream: vec![echo_server().await],
    })
    .await
    .unwrap();
    let mut ctx = context(dir.path());
    ctx.proxies.insert("lb".into(), proxy.clone());
    let spec = fault("proxy", "{ proxy: lb, down: true }");
    spec.preflight(&ctx).await.unwrap();
    assert!(echoes(proxy.local_addr()).await);

    let url = format!("sqlite://{}", dir.path().join("patrol.db").display());
    let journal = Journal::new(Store::open(&url).await.unwrap());
    let injected = journal
        .inject(&ctx, "run-p", "d", 0, &spec, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(proxy.active_toxics().len(), 1);
    assert!(
        !echoes(proxy.local_addr()).await,
        "down refuses new connections"
    );
    let done = journal.revert(&ctx, &injected).await.unwrap();
    assert!(done.starts_with("removed toxic fault-"), "{done}");
    assert!(proxy.active_toxics().is_empty());
    assert!(echoes(proxy.local_addr()).await);

    // After a crash the proxy is gone with its process: recovery says there is nothing to do.
    journal
        .inject(&ctx, "run-p", "d", 1, &spec, Duration::from_secs(30))
        .await
        .unwrap();
    let outcomes = recover(journal.store(), &context(dir.path()))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    assert!(
        matches!(&outcomes[0].result, RecoverResult::Reverted(m)
            if m.contains("not running in this process")),
        "{outcomes:?}"
    );
    let missing = fault("proxy", "{ proxy: other, latency: 1s }");
    assert!(missing.preflight(&ctx).await.unwrap_err().contains("other"));
    proxy.shutdown().await;
}
