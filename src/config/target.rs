//! Targets: named connections that checks point at. One struct per connection shape; the `targets!`
//! list below ties each `kind:` to its struct (adding a target kind is one line there).

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::de::{DeError, from_node, struct_fields};
use super::node::Node;

mod consul;
mod grpc;
mod kubernetes;
mod prometheus;
pub use consul::ConsulTarget;
pub use grpc::GrpcTarget;
pub use kubernetes::{KubernetesTarget, check_namespace_name};
pub use prometheus::PrometheusTarget;

/// TLS settings for HTTPS targets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsOptions {
    /// Accept any certificate (self-signed test systems). The certificate is still read for
    /// `cert_days_left`.
    pub insecure_skip_verify: bool,
    /// PEM file with extra CA certificates to trust (relative to the rule file).
    pub ca_file: Option<PathBuf>,
}

/// An HTTP(S) service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpTarget {
    /// Base URL; a check's `request.path` is joined to it.
    pub url: String,
    /// Headers sent with every request (values may reference secrets).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub tls: TlsOptions,
}

/// A database, by URL: `postgres://…`, `mysql://…`, `sqlite://path` (credentials by reference).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlTarget {
    pub url: String,
    /// Playbook steps may write through this target (when the step also says `write: true`).
    #[serde(default)]
    pub allow_write: bool,
}

/// A Redis server: `redis://[:password@]host:port[/db]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisTarget {
    pub url: String,
    /// Playbook steps may write through this target (when the step also says `write: true`).
    #[serde(default)]
    pub allow_write: bool,
}

/// A TCP endpoint `host:port`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpTarget {
    pub address: String,
}

macro_rules! targets {
    ($($kind:literal => $variant:ident($ty:ty),)*) => {
        /// A target's connection settings, chosen by its `kind:`.
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(tag = "kind", rename_all = "lowercase")]
        pub enum TargetSpec {
            $($variant($ty),)*
        }

        impl TargetSpec {
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            pub fn kind(&self) -> &'static str {
                match self {
                    $(TargetSpec::$variant(_) => $kind,)*
                }
            }

            /// Field names a target of `kind` accepts (besides `kind`).
            pub fn fields(kind: &str) -> Option<&'static [&'static str]> {
                match kind {
                    $($kind => Some(struct_fields::<$ty>()),)*
                    _ => None,
                }
            }

            /// Deserializes the fields of a `kind` target from its mapping (without `kind`).
            pub fn from_node(kind: &str, node: &Node) -> Option<Result<TargetSpec, DeError>> {
                let fields = Self::fields(kind)?;
                Some(match kind {
                    $($kind => from_node::<$ty>(node, Some(fields)).map(TargetSpec::$variant),)*
                    _ => unreachable!("fields() knows every kind"),
                })
            }

            /// JSON Schema of each kind's own fields.
            pub fn schemas(generator: &mut schemars::SchemaGenerator) -> Vec<(&'static str, schemars::Schema)> {
                vec![$(($kind, generator.subschema_for::<$ty>()),)*]
            }
        }
    };
}

targets! {
    "http" => Http(HttpTarget),
    "postgres" => Postgres(SqlTarget),
    "mysql" => Mysql(SqlTarget),
    "sqlite" => Sqlite(SqlTarget),
    "redis" => Redis(RedisTarget),
    "tcp" => Tcp(TcpTarget),
    "kubernetes" => Kubernetes(KubernetesTarget),
    "prometheus" => Prometheus(PrometheusTarget),
    "consul" => Consul(ConsulTarget),
    "grpc" => Grpc(GrpcTarget),
}

impl TargetSpec {
    /// Problems beyond types (fields that exclude each other, malformed names), by field.
    pub fn validate(&self, issues: &mut super::Issues) {
        match self {
            TargetSpec::Kubernetes(t) => t.validate(issues),
            TargetSpec::Prometheus(t) => t.validate(issues),
            TargetSpec::Consul(t) => t.validate(issues),
            TargetSpec::Grpc(t) => t.validate(issues),
            _ => {}
        }
    }

    /// The URL of a target that has one (http, sql, redis).
    pub fn url(&self) -> Option<&str> {
        match self {
            TargetSpec::Http(t) => Some(&t.url),
            TargetSpec::Redis(t) => Some(&t.url),
            TargetSpec::Prometheus(t) => Some(&t.url),
            TargetSpec::Consul(t) => Some(&t.url),
            TargetSpec::Grpc(t) => Some(&t.url),
            TargetSpec::Tcp(_) | TargetSpec::Kubernetes(_) => None,
            sql => sql.sql_url(),
        }
    }

    /// Registers a password written into the URL as a secret, even when it was not substituted:
    /// it must not be printed either.
    pub fn register_url_password(&self) {
        if let Some(url) = self.url() {
            crate::secrets::register_url_password(url);
        }
    }

    /// The database URL of an SQL target.
    pub fn sql_url(&self) -> Option<&str> {
        match self {
            TargetSpec::Postgres(t) | TargetSpec::Mysql(t) | TargetSpec::Sqlite(t) => Some(&t.url),
            _ => None,
        }
    }

    /// A target for an inline `url:` of a check, by the URL's scheme.
    pub fn from_url(url: &str) -> Option<TargetSpec> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase())?;
        // An inline URL never allows writes: that takes a named target saying so.
        let sql = || SqlTarget {
            url: url.to_string(),
            allow_write: false,
        };
        Some(match scheme.as_str() {
            "http" | "https" => TargetSpec::Http(HttpTarget {
                url: url.to_string(),
                headers: BTreeMap::new(),
                tls: TlsOptions::default(),
            }),
            "postgres" | "postgresql" => TargetSpec::Postgres(sql()),
            "mysql" | "mariadb" => TargetSpec::Mysql(sql()),
            "sqlite" => TargetSpec::Sqlite(sql()),
            "redis" | "rediss" => TargetSpec::Redis(RedisTarget {
                url: url.to_string(),
                allow_write: false,
            }),
            _ => return None,
        })
    }
}

/// A named target as loaded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    pub name: String,
    #[serde(flatten)]
    pub spec: TargetSpec,
    /// Directory of the file that defined it (for relative `ca_file`).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Where it was defined (the check's place for an inline `url`/`address`), so problems found
    /// later (`validate --online`) point at the right line.
    #[serde(skip)]
    pub origin: Option<super::model::Origin>,
}

impl Target {
    pub fn kind(&self) -> &'static str {
        self.spec.kind()
    }
}
