//! `kind: grpc` — the standard health check of a gRPC server, `grpc.health.v1.Health/Check`, over
//! plaintext HTTP/2 or TLS. The value is the latency in ms (connecting included: every run opens
//! its own connection, as a new client would); a status other than `SERVING`, or a service the
//! server does not know, is a failure (`crit`) naming it; a server that cannot be reached or does
//! not speak the health protocol is an `error`.
//!
//! ```yaml
//! targets:
//!   orders-grpc: { kind: grpc, url: "https://orders:50051", tls: { ca_file: ca.pem } }
//! checks:
//!   - name: orders-health
//!     kind: grpc
//!     target: orders-grpc
//!     grpc_service: orders.v1.Orders   # default "": the server as a whole
//!     warn: gt(200)
//! ```
//!
//! An inline `url:` (`http://host:port`, `https://host:port`) or `address:` (`host:port`,
//! plaintext) works too, and so does a `kind: http` target, whose `headers:` are sent as request
//! metadata (for a proxy in front that wants credentials).
//!
//! The service name field is `grpc_service` because `service:` of every check already names the
//! service whose health score the check feeds.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{Measurement, Probe, ProbeContext, ProbeError, Sample};
use crate::config::{CheckCommon, Issues, duration};
use crate::result::Value;

pub mod address;
mod connect;

/// Characters of a server's own error message quoted in results.
const QUOTE_LIMIT: usize = 200;

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcProbe {
    /// The service asked about (`HealthCheckRequest.service`, e.g. `orders.v1.Orders`); empty
    /// (default) asks about the server as a whole.
    #[serde(default)]
    pub grpc_service: String,
}

impl Probe for GrpcProbe {
    const TARGET_KINDS: &'static [&'static str] = &["grpc", "http", "tcp"];

    fn validate(&self, check: &CheckCommon, issues: &mut Issues) {
        // A named target is validated with the targets; an inline url is the check's own.
        if let Some(url) = &check.url
            && let Err(e) = address::parse_grpc_url(url)
        {
            issues.at(&["url"], e);
        }
        if self.grpc_service.trim() != self.grpc_service {
            issues.at(
                &["grpc_service"],
                "grpc_service has leading or trailing spaces; the server would not know it",
            );
        }
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let started = Instant::now();
        let server = connect::Server::of(ctx)?;
        let channel = server.connect(ctx.timeout).await?;
        let remaining = ctx.timeout.saturating_sub(started.elapsed());
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: self.grpc_service.clone(),
        });
        // Sent as grpc-timeout, so the server gives up too.
        request.set_timeout(remaining);
        server.add_metadata(&mut request)?;
        let asked =
            tokio::time::timeout(remaining, HealthClient::new(channel).check(request)).await;
        let where_ = server.address.host_port();
        let answer = match asked {
            Ok(answer) => answer,
            Err(_) => {
                return Err(ProbeError::new(format!(
                    "health check of {where_} timed out after {}",
                    duration::format(ctx.timeout)
                )));
            }
        };
        let mut m = Measurement {
            samples: vec![Sample::single(Value::Num(
                started.elapsed().as_secs_f64() * 1000.0,
            ))],
            unit: "ms".into(),
            ..Default::default()
        };
        match answer {
            Ok(response) => {
                let status = response.into_inner().status;
                if let Some(failure) = self.not_serving(status) {
                    m.failures.push(failure);
                }
            }
            Err(status) => m
                .failures
                .push(self.refusal(&status, &where_, ctx.timeout)?),
        }
        Ok(m)
    }
}

impl GrpcProbe {
    /// How results name what was asked about.
    fn subject(&self) -> String {
        match self.grpc_service.is_empty() {
            true => "the server".into(),
            false => format!("service {:?}", self.grpc_service),
        }
    }

    /// The failure of a status other than SERVING.
    fn not_serving(&self, status: i32) -> Option<String> {
        let name = match ServingStatus::try_from(status) {
            Ok(ServingStatus::Serving) => return None,
            Ok(s) => s.as_str_name().to_string(),
            Err(_) => format!("status {status}"),
        };
        Some(format!("health of {}: {name}, not SERVING", self.subject()))
    }

    /// A gRPC error answer: the service is unknown (a failure), or the check could not be made
    /// (an error).
    fn refusal(
        &self,
        status: &tonic::Status,
        where_: &str,
        timeout: Duration,
    ) -> Result<String, ProbeError> {
        let said = quoted(status);
        match status.code() {
            Code::NotFound if self.grpc_service.is_empty() => Ok(format!(
                "the health server of {where_} has no status for the server as a whole \
                 (service \"\"; NOT_FOUND{said})"
            )),
            Code::NotFound => Ok(format!(
                "{} unknown to the health server of {where_} (NOT_FOUND{said})",
                self.subject()
            )),
            Code::Unimplemented => Err(ProbeError::new(format!(
                "{where_} does not implement grpc.health.v1.Health (UNIMPLEMENTED{said})"
            ))),
            Code::DeadlineExceeded | Code::Cancelled => Err(ProbeError::new(format!(
                "health check of {where_} timed out after {} ({}{said})",
                duration::format(timeout),
                code_name(status.code())
            ))),
            code => Err(ProbeError::new(format!(
                "health check of {where_} failed: {}{said}",
                code_name(code)
            ))),
        }
    }
}

/// `: what the server said` (cut), or nothing when it said nothing.
fn quoted(status: &tonic::Status) -> String {
    let message = status.message().trim();
    if message.is_empty() {
        return String::new();
    }
    let mut cut: String = message.chars().take(QUOTE_LIMIT).collect();
    if cut.len() < message.len() {
        cut.push('…');
    }
    format!(": {cut}")
}

/// The canonical name of a gRPC status code (`NOT_FOUND`), as gRPC's documentation and other
/// tools write it.
fn code_name(code: Code) -> String {
    let camel = format!("{code:?}");
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(service: &str) -> GrpcProbe {
        GrpcProbe {
            grpc_service: service.into(),
        }
    }

    #[test]
    fn only_serving_is_healthy() {
        assert_eq!(probe("").not_serving(ServingStatus::Serving as i32), None);
        assert_eq!(
            probe("")
                .not_serving(ServingStatus::NotServing as i32)
                .unwrap(),
            "health of the server: NOT_SERVING, not SERVING"
        );
        assert_eq!(
            probe("orders.v1.Orders")
                .not_serving(ServingStatus::Unknown as i32)
                .unwrap(),
            "health of service \"orders.v1.Orders\": UNKNOWN, not SERVING"
        );
        assert_eq!(
            probe("a")
                .not_serving(ServingStatus::ServiceUnknown as i32)
                .unwrap(),
            "health of service \"a\": SERVICE_UNKNOWN, not SERVING"
        );
        assert_eq!(
            probe("a").not_serving(9).unwrap(),
            "health of service \"a\": status 9, not SERVING"
        );
    }

    #[test]
    fn an_unknown_service_is_a_failure_and_other_errors_are_errors() {
        let p = probe("billing.v1.Billing");
        let t = Duration::from_secs(2);
        let failure = p
            .refusal(
                &tonic::Status::not_found("service not registered"),
                "h:1",
                t,
            )
            .unwrap();
        assert_eq!(
            failure,
            "service \"billing.v1.Billing\" unknown to the health server of h:1 \
             (NOT_FOUND: service not registered)"
        );
        let err = p
            .refusal(&tonic::Status::unimplemented(""), "h:1", t)
            .unwrap_err();
        assert_eq!(
            err.0,
            "h:1 does not implement grpc.health.v1.Health (UNIMPLEMENTED)"
        );
        let err = p
            .refusal(&tonic::Status::permission_denied("no"), "h:1", t)
            .unwrap_err();
        assert_eq!(err.0, "health check of h:1 failed: PERMISSION_DENIED: no");
        let err = p
            .refusal(&tonic::Status::deadline_exceeded("late"), "h:1", t)
            .unwrap_err();
        assert_eq!(
            err.0,
            "health check of h:1 timed out after 2s (DEADLINE_EXCEEDED: late)"
        );
    }

    #[test]
    fn long_server_messages_are_cut() {
        let status = tonic::Status::unavailable("x".repeat(500));
        let q = quoted(&status);
        assert_eq!(q.chars().count(), 2 + QUOTE_LIMIT + 1);
        assert!(q.ends_with('…'));
    }

    #[test]
    fn codes_have_their_canonical_names() {
        assert_eq!(code_name(Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(Code::Unavailable), "UNAVAILABLE");
        assert_eq!(code_name(Code::ResourceExhausted), "RESOURCE_EXHAUSTED");
    }
}
