//! Probes: how each check kind measures. One file per kind, each a struct of the kind's own fields
//! implementing [`Probe`]; the `probes!` list ties `kind:` names to them and generates the closed
//! [`ProbeSpec`] enum, its dispatch, field lists and schema. Adding a kind = one file + one line.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::config::{Check, CheckCommon, DeError, Issues, Node, Target, from_node, struct_fields};
use crate::result::Value;

pub mod consul;
pub mod dns;
pub mod exec;
pub mod grpc;
pub mod http;
pub mod kubernetes;
pub mod memory;
pub mod pprof;
pub mod prometheus;
pub mod redis;
pub mod sql;
pub mod sse;
pub mod tcp;
pub mod tls;

/// One measured value of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Series key ("" for a single value; a row key, a pod name, …).
    pub series: String,
    pub value: Value,
}

impl Sample {
    pub fn single(value: Value) -> Sample {
        Sample {
            series: String::new(),
            value,
        }
    }
}

/// What a probe measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measurement {
    pub samples: Vec<Sample>,
    /// Unit of the values (`ms`, `days`, `bytes`, or "").
    pub unit: String,
    /// Expectations that were not met; each makes the result `crit` and is named in its message.
    pub failures: Vec<String>,
    /// A verdict the measured system gave about itself (a Nagios plugin's exit status): every
    /// result of the run is at least this grave, and its message leads with these words.
    pub reported: Option<Reported>,
    /// Evidence kept with the results when they are not ok (a goroutine profile), for the report.
    pub attachment: Option<Attachment>,
}

/// A status reported by the measured system itself, with its own words.
#[derive(Clone, Debug, PartialEq)]
pub struct Reported {
    pub status: crate::result::Status,
    pub message: String,
}

pub use crate::result::Attachment;

/// The probe could not measure (connection refused, timeout, authentication, bad query).
/// This is a *result* (`status: error`), not a failure of patrol.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeError(pub String);

impl ProbeError {
    pub fn new(msg: impl Into<String>) -> ProbeError {
        ProbeError(msg.into())
    }
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for ProbeError {
    fn from(e: E) -> Self {
        // The whole chain: "error sending request" alone says nothing.
        let mut msg = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            let m = s.to_string();
            if !msg.contains(&m) {
                msg.push_str(": ");
                msg.push_str(&m);
            }
            src = s.source();
        }
        ProbeError(msg)
    }
}

/// Everything a probe needs for one run.
pub struct ProbeContext<'a> {
    pub check: &'a Check,
    pub timeout: Duration,
    /// What the check's previous run left, and where this run leaves its own (probes whose
    /// [`Probe::remembers`] is false get an empty one).
    pub memory: &'a memory::Memory,
}

impl ProbeContext<'_> {
    pub fn target(&self) -> Option<&Target> {
        self.check.target.as_deref()
    }
}

/// A check kind's own fields and its way of measuring.
pub trait Probe:
    DeserializeOwned + schemars::JsonSchema + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// Target kinds this probe can use; empty when it needs none.
    const TARGET_KINDS: &'static [&'static str];

    /// Problems beyond types (conditions, regexes, JSONPath, write commands), by path relative
    /// to the check's mapping.
    fn validate(&self, _check: &CheckCommon, _issues: &mut Issues) {}

    /// Whether this check keeps a [`memory::Memory`] between runs (the engine then reads and
    /// stores it; other checks pay nothing for the feature).
    fn remembers(&self) -> bool {
        false
    }

    /// Measures once. The runner enforces the check's timeout around this as well.
    fn measure(
        &self,
        ctx: &ProbeContext<'_>,
    ) -> impl Future<Output = Result<Measurement, ProbeError>> + Send;
}

macro_rules! probes {
    ($($kind:literal => $variant:ident($ty:ty),)*) => {
        /// A check's kind-specific part, chosen by `kind:`.
        // Sizes differ by kind (http carries its whole request); checks are few and long-lived,
        // so boxing would only add indirection.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Debug)]
        pub enum ProbeSpec {
            $($variant($ty),)*
        }

        impl ProbeSpec {
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            pub fn kind(&self) -> &'static str {
                match self {
                    $(ProbeSpec::$variant(_) => $kind,)*
                }
            }

            /// Field names of `kind`'s own part.
            pub fn fields(kind: &str) -> Option<&'static [&'static str]> {
                match kind {
                    $($kind => Some(struct_fields::<$ty>()),)*
                    _ => None,
                }
            }

            /// Target kinds a check of `kind` can use.
            pub fn target_kinds(kind: &str) -> &'static [&'static str] {
                match kind {
                    $($kind => <$ty as Probe>::TARGET_KINDS,)*
                    _ => &[],
                }
            }

            pub fn from_node(kind: &str, node: &Node) -> Option<Result<ProbeSpec, DeError>> {
                let fields = Self::fields(kind)?;
                Some(match kind {
                    $($kind => from_node::<$ty>(node, Some(fields)).map(ProbeSpec::$variant),)*
                    _ => unreachable!("fields() knows every kind"),
                })
            }

            pub fn validate(&self, check: &CheckCommon, issues: &mut Issues) {
                match self {
                    $(ProbeSpec::$variant(p) => p.validate(check, issues),)*
                }
            }

            /// Whether the check keeps a memory between runs (see [`Probe::remembers`]).
            pub fn remembers(&self) -> bool {
                match self {
                    $(ProbeSpec::$variant(p) => p.remembers(),)*
                }
            }

            pub async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
                match self {
                    $(ProbeSpec::$variant(p) => p.measure(ctx).await,)*
                }
            }

            /// JSON Schema of each kind's own fields.
            pub fn schemas(generator: &mut schemars::SchemaGenerator) -> Vec<(&'static str, schemars::Schema)> {
                vec![$(($kind, generator.subschema_for::<$ty>()),)*]
            }
        }
    };
}

probes! {
    "http" => Http(http::HttpProbe),
    "sql" => Sql(sql::SqlProbe),
    "redis" => Redis(redis::RedisProbe),
    "tcp" => Tcp(tcp::TcpProbe),
    "tls" => Tls(tls::TlsProbe),
    "dns" => Dns(dns::DnsProbe),
    "kubernetes" => Kubernetes(kubernetes::KubernetesProbe),
    "sse" => Sse(sse::SseProbe),
    "prometheus" => Prometheus(prometheus::PrometheusProbe),
    "exec" => Exec(exec::ExecProbe),
    "consul" => Consul(consul::ConsulProbe),
    "pprof" => Pprof(pprof::PprofProbe),
    "grpc" => Grpc(grpc::GrpcProbe),
}

pub mod ping;
