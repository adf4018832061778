//! `patrol validate --online`: after the files are valid, try every target once — an HTTP request,
//! a database connection with `SELECT 1`, a Redis `PING`, a TCP connect — so a wrong host, port or
//! password is found in CI rather than at 02:00. Each unreachable target becomes a diagnostic at
//! the place that defined it (the check's place for an inline `url`/`address`). Kubernetes checks
//! on targets that answered also list what they read once, so a refused verb is reported at the
//! check (`kubernetes::access`).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sqlx::{ConnectOptions, Connection};

use crate::config::{Diagnostic, Loc, Origin, RuleSet, Target, TargetSpec};

/// Longest wait for one target; a target that takes longer is reported as unreachable.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Targets tried at once.
const CONCURRENCY: usize = 64;

/// One endpoint to try, and every place that names it.
struct Endpoint {
    target: Arc<Target>,
    /// Defined under `targets:` (named) rather than inline in a check.
    named: bool,
    origins: Vec<Origin>,
}

/// Tries every target of `rules` and returns a diagnostic for each that does not answer.
pub async fn ping_all(rules: &RuleSet) -> Vec<Diagnostic> {
    let endpoints = endpoints(rules);
    let outcomes: Vec<Result<(), String>> =
        futures::stream::iter(endpoints.iter().map(|e| ping(&e.target)))
            .buffered(CONCURRENCY)
            .collect()
            .await;
    let fallback = Origin {
        file: rules.files.first().cloned().unwrap_or_default(),
        loc: Loc { line: 1, col: 1 },
    };
    // Kubernetes checks on targets that answered also try what they read (RBAC, kinds).
    let answered: Vec<&Target> = endpoints
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_ok())
        .map(|(e, _)| &*e.target)
        .collect();
    let mut diags =
        crate::probe::kubernetes::access::check_access(rules, &answered, PING_TIMEOUT).await;
    for (e, outcome) in endpoints.iter().zip(outcomes) {
        let Err(reason) = outcome else { continue };
        let message = format!("{} unreachable: {reason}", describe(e));
        let origins = if e.origins.is_empty() {
            std::slice::from_ref(&fallback)
        } else {
            &e.origins[..]
        };
        diags.extend(
            origins
                .iter()
                .map(|o| Diagnostic::new(&o.file, o.loc, message.clone())),
        );
    }
    diags.sort();
    diags
}

/// Named targets, then inline ones; an inline endpoint written in several checks is tried once
/// and reported at each of them.
fn endpoints(rules: &RuleSet) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = rules
        .targets
        .values()
        .map(|t| Endpoint {
            target: t.clone(),
            named: true,
            origins: t.origin.iter().cloned().collect(),
        })
        .collect();
    let mut inline: BTreeMap<(&'static str, String), Endpoint> = BTreeMap::new();
    for check in &rules.checks {
        let (None, Some(t)) = (&check.common.target, &check.target) else {
            continue;
        };
        let origin = t.origin.clone().unwrap_or_else(|| check.origin.clone());
        inline
            .entry((t.kind(), t.name.clone()))
            .or_insert_with(|| Endpoint {
                target: t.clone(),
                named: false,
                origins: Vec::new(),
            })
            .origins
            .push(origin);
    }
    out.extend(inline.into_values());
    out
}

/// How a message names the endpoint: its name and kind, and where it is (never credentials).
fn describe(e: &Endpoint) -> String {
    let kind = e.target.kind();
    let place = location_of(&e.target.spec);
    if e.named {
        format!("target {:?} ({kind} at {place})", e.target.name)
    } else {
        format!("inline {kind} target at {place}")
    }
}

/// `host:port` of a network target, or the file of an SQLite one.
pub fn location_of(spec: &TargetSpec) -> String {
    match spec {
        TargetSpec::Tcp(t) => t.address.clone(),
        TargetSpec::Sqlite(t) => {
            let rest = t
                .url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            rest.split('?').next().unwrap_or_default().to_string()
        }
        TargetSpec::Http(t) => host_port(&t.url, 0),
        TargetSpec::Postgres(t) => host_port(&t.url, 5432),
        TargetSpec::Mysql(t) => host_port(&t.url, 3306),
        TargetSpec::Redis(t) => host_port(&t.url, 6379),
        TargetSpec::Kubernetes(t) => t.describe(),
        TargetSpec::Prometheus(t) => host_port(&t.url, 9090),
        TargetSpec::Consul(t) => host_port(&t.url, 8500),
        TargetSpec::Grpc(t) => host_port(&t.url, 443),
    }
}

fn host_port(url: &str, default_port: u16) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u
                .host_str()
                .filter(|h| !h.is_empty())
                .unwrap_or("localhost");
            let port = u.port_or_known_default().unwrap_or(default_port);
            format!("{host}:{port}")
        }
        Err(_) => "an invalid URL".into(),
    }
}

/// Tries one target within [`PING_TIMEOUT`]; the error is the reason, without credentials.
async fn ping(target: &Target) -> Result<(), String> {
    let attempt = async {
        match &target.spec {
            TargetSpec::Http(_) => ping_http(target).await,
            TargetSpec::Postgres(t) => ping_postgres(&t.url).await,
            TargetSpec::Mysql(t) => ping_mysql(&t.url).await,
            TargetSpec::Sqlite(t) => ping_sqlite(&t.url).await,
            TargetSpec::Redis(t) => ping_redis(&t.url).await,
            TargetSpec::Kubernetes(_) => crate::probe::kubernetes::ping(target).await,
            TargetSpec::Tcp(t) => connect(&t.address).await,
            // Their probes prove the protocol; reaching the port is what `--online` can promise.
            TargetSpec::Prometheus(_) | TargetSpec::Consul(_) | TargetSpec::Grpc(_) => {
                connect(&location_of(&target.spec)).await
            }
        }
    };
    match tokio::time::timeout(PING_TIMEOUT, attempt).await {
        Ok(r) => r.map_err(|e| crate::secrets::scrub_url_credentials(&e)),
        Err(_) => Err(format!("no answer within {}s", PING_TIMEOUT.as_secs())),
    }
}

async fn connect(address: &str) -> Result<(), String> {
    tokio::net::TcpStream::connect(address)
        .await
        .map(drop)
        .map_err(|e| reason(&e))
}

/// Any HTTP response (even 404 or 500) proves the service is there; redirects are not followed.
async fn ping_http(target: &Target) -> Result<(), String> {
    let TargetSpec::Http(t) = &target.spec else {
        unreachable!("ping_http is called for http targets")
    };
    let mut builder = reqwest::Client::builder()
        .timeout(PING_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .tls_danger_accept_invalid_certs(t.tls.insecure_skip_verify);
    if let Some(ca) = &t.tls.ca_file {
        let path = target.base_dir.join(ca);
        let pem = std::fs::read(&path)
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca_file {}: {}", path.display(), reason(&e)))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(|e| reason(&e))?;
    client
        .get(&t.url)
        .send()
        .await
        .map(drop)
        .map_err(|e| reason(&e))
}

/// Connects with `$opts` (never creating anything), runs `SELECT 1` and closes the connection.
/// A macro because each driver's connection is its own type.
macro_rules! select_one {
    ($opts:expr) => {{
        let mut conn = $opts.connect().await.map_err(|e| sql_reason(&e))?;
        sqlx::query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(|e| sql_reason(&e))?;
        conn.close().await.map_err(|e| sql_reason(&e))
    }};
}

/// The server's own words for a database error (sqlx appends the line in the server's C source,
/// which means nothing to the reader); the deepest cause for anything else.
fn sql_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => reason(other),
    }
}

async fn ping_postgres(url: &str) -> Result<(), String> {
    select_one!(sqlx::postgres::PgConnectOptions::from_str(url).map_err(|e| sql_reason(&e))?)
}

async fn ping_mysql(url: &str) -> Result<(), String> {
    select_one!(sqlx::mysql::MySqlConnectOptions::from_str(url).map_err(|e| sql_reason(&e))?)
}

/// Opens the file read-only: validation must never create a database.
async fn ping_sqlite(url: &str) -> Result<(), String> {
    select_one!(
        sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .map_err(|e| sql_reason(&e))?
            .read_only(true)
            .create_if_missing(false)
    )
}

async fn ping_redis(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| reason(&e))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(PING_TIMEOUT))
        .set_response_timeout(Some(PING_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| reason(&e))?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map(drop)
        .map_err(|e| reason(&e))
}

/// The most specific message of an error chain ("Connection refused (os error 111)" rather than
/// "error sending request for url (…)"), which is also the one least likely to quote a URL.
fn reason(e: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = e;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    deepest.to_string()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;

    use super::*;
    use crate::config;

    const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
    const MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";
    const REDIS_URL: &str = "redis://127.0.0.1:6379";

    fn load(dir: &Path, yaml: &str) -> RuleSet {
        let file = dir.join("rules.yaml");
        std::fs::write(&file, yaml).unwrap();
        config::load(&[file]).unwrap_or_else(|d| panic!("test rules invalid: {d:#?}"))
    }

    /// A port nothing listens on (bound, then released).
    async fn closed_port() -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    }

    /// An HTTP server that answers 404 to everything: still reachable.
    async fn http_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, axum::Router::new()).await });
        addr
    }

    #[tokio::test]
    async fn reachable_targets_give_no_diagnostics() {
        crate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        opts.connect().await.unwrap().close().await.unwrap();
        let web = http_server().await;
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let yaml = format!(
            "targets:\n  web: {{ kind: http, url: \"http://{web}/nothing-here\" }}\n  pg: {{ kind: postgres, url: \"{PG_URL}\" }}\n  my: {{ kind: mysql, url: \"{MYSQL_URL}\" }}\n  lite: {{ kind: sqlite, url: \"sqlite://{}\" }}\n  cache: {{ kind: redis, url: \"{REDIS_URL}\" }}\n  port: {{ kind: tcp, address: \"{}\" }}\n",
            db.display(),
            tcp.local_addr().unwrap()
        );
        let rules = load(dir.path(), &yaml);
        assert_eq!(rules.targets.len(), 6);
        let diags = ping_all(&rules).await;
        assert!(diags.is_empty(), "{diags:#?}");
    }

    #[tokio::test]
    async fn unreachable_targets_are_reported_where_defined_without_passwords() {
        crate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let p = closed_port().await;
        let missing = dir.path().join("missing.db");
        let yaml = format!(
            "targets:\n  web:\n    kind: http\n    url: \"http://127.0.0.1:{p}/health\"\n  orders-db:\n    kind: postgres\n    url: \"postgres://app:s3cret-pw@127.0.0.1:{p}/orders\"\n  my:\n    kind: mysql\n    url: \"mysql://root:s3cret-pw@127.0.0.1:{p}/test\"\n  lite:\n    kind: sqlite\n    url: \"sqlite://{}\"\n  cache:\n    kind: redis\n    url: \"redis://:s3cret-pw@127.0.0.1:{p}\"\n  port:\n    kind: tcp\n    address: \"127.0.0.1:{p}\"\n",
            missing.display()
        );
        let rules = load(dir.path(), &yaml);
        let diags = ping_all(&rules).await;
        let got: Vec<(u32, u32, String)> = diags
            .iter()
            .map(|d| (d.line, d.column, d.message.clone()))
            .collect();
        let expect_prefix = [
            (
                2,
                format!("target \"web\" (http at 127.0.0.1:{p}) unreachable: "),
            ),
            (
                5,
                format!("target \"orders-db\" (postgres at 127.0.0.1:{p}) unreachable: "),
            ),
            (
                8,
                format!("target \"my\" (mysql at 127.0.0.1:{p}) unreachable: "),
            ),
            (
                11,
                format!(
                    "target \"lite\" (sqlite at {}) unreachable: ",
                    missing.display()
                ),
            ),
            (
                14,
                format!("target \"cache\" (redis at 127.0.0.1:{p}) unreachable: "),
            ),
            (
                17,
                format!("target \"port\" (tcp at 127.0.0.1:{p}) unreachable: "),
            ),
        ];
        assert_eq!(got.len(), expect_prefix.len(), "{got:#?}");
        for ((line, col, msg), (want_line, prefix)) in got.iter().zip(&expect_prefix) {
            assert_eq!((*line, *col), (*want_line, 3), "{msg}");
            assert!(
                msg.starts_with(prefix.as_str()),
                "{msg:?} should start with {prefix:?}"
            );
            assert!(!msg.contains("s3cret-pw"), "a password leaked: {msg}");
        }
        assert!(got[0].2.to_lowercase().contains("refused"), "{}", got[0].2);
        assert!(
            diags
                .iter()
                .all(|d| d.file == dir.path().join("rules.yaml"))
        );
    }

    #[tokio::test]
    async fn inline_targets_are_reported_at_each_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = closed_port().await;
        let yaml = format!(
            "checks:\n  - name: a\n    kind: tcp\n    address: \"127.0.0.1:{p}\"\n  - name: b\n    kind: tcp\n    address: \"127.0.0.1:{p}\"\n"
        );
        let rules = load(dir.path(), &yaml);
        let diags = ping_all(&rules).await;
        let lines: Vec<(u32, u32)> = diags.iter().map(|d| (d.line, d.column)).collect();
        assert_eq!(lines, [(2, 5), (5, 5)], "{diags:#?}");
        assert!(
            diags[0]
                .message
                .starts_with(&format!("inline tcp target at 127.0.0.1:{p} unreachable: ")),
            "{}",
            diags[0].message
        );
    }

    #[tokio::test]
    async fn database_errors_are_the_servers_own_words() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "targets:\n  pg: { kind: postgres, url: \"postgres://postgres@127.0.0.1:5432/patrol_no_such_db\" }\n";
        let diags = ping_all(&load(dir.path(), yaml)).await;
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert!(
            diags[0]
                .message
                .ends_with("unreachable: database \"patrol_no_such_db\" does not exist"),
            "{}",
            diags[0].message
        );
    }

    #[test]
    fn locations_name_host_and_port_only() {
        let pg = TargetSpec::from_url("postgres://app:pw@db.internal/orders").unwrap();
        assert_eq!(location_of(&pg), "db.internal:5432");
        let https = TargetSpec::from_url("https://user:pw@example.com/x").unwrap();
        assert_eq!(location_of(&https), "example.com:443");
        let lite = TargetSpec::from_url("sqlite:///var/lib/app.db?mode=ro").unwrap();
        assert_eq!(location_of(&lite), "/var/lib/app.db");
    }

    #[test]
    fn reason_is_the_deepest_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("error sending request for url (http://u:pw@h/)")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(reason(&e), "Connection refused");
    }
}
