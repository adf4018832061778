//! Where a gRPC server listens: `http://host:port` (plaintext HTTP/2) or `https://host:port`
//! (TLS). Shared by the `kind: grpc` target's validation and the probe.

/// Where a gRPC server listens, as its URL says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcAddress {
    /// `https://`: talk TLS.
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl GrpcAddress {
    /// `host:port` the way messages name the server.
    pub fn host_port(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }

    /// The URI a gRPC channel is opened to (`http://host:port`, `https://host:port`).
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host_port())
    }
}

/// The server a gRPC URL names. Messages never repeat the URL: it may carry credentials.
pub fn parse_grpc_url(url: &str) -> Result<GrpcAddress, String> {
    const FORM: &str = "write http://host:port (plaintext) or https://host:port (TLS)";
    let parsed =
        reqwest::Url::parse(url.trim()).map_err(|e| format!("invalid gRPC URL: {e}; {FORM}"))?;
    let tls = match parsed.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(format!(
                "a gRPC URL starts with http:// or https://, not {other}://; {FORM}"
            ));
        }
    };
    let host = match parsed.host_str().filter(|h| !h.is_empty()) {
        // IPv6 literals come in brackets.
        Some(h) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => return Err(format!("the gRPC URL names no host; {FORM}")),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a gRPC URL carries no credentials (the health check sends none)".into());
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "a gRPC URL names a server, not a path or query; {FORM}"
        ));
    }
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| format!("the gRPC URL names no port; {FORM}"))?;
    Ok(GrpcAddress { tls, host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(url: &str) -> GrpcAddress {
        parse_grpc_url(url).unwrap()
    }

    #[test]
    fn plaintext_and_tls_urls_name_the_server() {
        assert_eq!(
            address("http://orders:50051"),
            GrpcAddress {
                tls: false,
                host: "orders".into(),
                port: 50051
            }
        );
        let a = address("https://[::1]:8443/");
        assert_eq!((a.tls, a.host.as_str(), a.port), (true, "::1", 8443));
        assert_eq!(a.host_port(), "[::1]:8443");
        assert_eq!(a.uri(), "https://[::1]:8443");
        assert_eq!(address("https://api.example.com").port, 443);
    }

    #[test]
    fn other_urls_are_refused_without_echoing_them() {
        let err = parse_grpc_url("grpc://orders:50051").unwrap_err();
        assert!(
            err.starts_with("a gRPC URL starts with http:// or https://, not grpc://"),
            "{err}"
        );
        let err = parse_grpc_url("orders:50051").unwrap_err();
        assert!(err.contains("http://host:port"), "{err}");
        let err = parse_grpc_url("http://orders:50051/grpc.health.v1.Health").unwrap_err();
        assert!(err.contains("not a path"), "{err}");
        let err = parse_grpc_url("https://user:s3cret@orders:443").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(
            parse_grpc_url("not a url")
                .unwrap_err()
                .starts_with("invalid gRPC URL")
        );
    }
}
