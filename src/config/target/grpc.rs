//! `kind: grpc` targets: a gRPC server, `http://host:port` for plaintext HTTP/2 (h2c) or
//! `https://host:port` for TLS, with the same `tls:` trust settings as HTTP targets.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TlsOptions;
use crate::config::Issues;
use crate::probe::grpc::address::{GrpcAddress, parse_grpc_url};

/// A gRPC server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcTarget {
    /// `http://host:port` (plaintext HTTP/2) or `https://host:port` (TLS).
    pub url: String,
    /// Trust settings for `https://` (a private CA's `ca_file`, or `insecure_skip_verify`).
    #[serde(default)]
    pub tls: TlsOptions,
}

/// Problems of `tls:` for a server at `address` (field paths relative to the target).
fn check_tls(address: &GrpcAddress, tls: &TlsOptions, issues: &mut Issues) {
    let set = tls.insecure_skip_verify || tls.ca_file.is_some();
    if set && !address.tls {
        issues.at_key(
            &["tls"],
            "`tls` applies to https:// URLs; this one is plaintext http://",
        );
    }
    if tls
        .ca_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        issues.at(&["tls", "ca_file"], "ca_file is empty");
    }
}

impl GrpcTarget {
    /// Problems beyond types, by field.
    pub fn validate(&self, issues: &mut Issues) {
        match parse_grpc_url(&self.url) {
            Ok(address) => check_tls(&address, &self.tls, issues),
            Err(e) => issues.at(&["url"], e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_need_an_https_url() {
        let t = GrpcTarget {
            url: "http://orders:50051".into(),
            tls: TlsOptions {
                insecure_skip_verify: true,
                ca_file: Some("".into()),
            },
        };
        let mut issues = Issues::default();
        t.validate(&mut issues);
        let messages: Vec<&str> = issues.items.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "`tls` applies to https:// URLs; this one is plaintext http://",
                "ca_file is empty"
            ]
        );
        let mut issues = Issues::default();
        GrpcTarget {
            url: "https://orders:443".into(),
            tls: TlsOptions::default(),
        }
        .validate(&mut issues);
        assert!(issues.is_empty());
    }
}
