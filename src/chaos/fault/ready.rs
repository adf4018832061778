//! Readiness of a (re)started service: `tcp://host:port` accepts a connection, or an
//! `http(s)://` URL answers 2xx.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// A readiness signal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ready {
    /// `host:port` accepts TCP connections.
    Tcp(String),
    /// The URL answers with a 2xx status.
    Http(String),
}

impl Ready {
    pub fn parse(text: &str) -> Result<Ready, String> {
        let text = text.trim();
        if let Some(addr) = text.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            return match addr.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                    Ok(Ready::Tcp(addr.to_string()))
                }
                _ => Err(format!(
                    "`{text}`: write tcp://HOST:PORT (e.g. tcp://127.0.0.1:8080)"
                )),
            };
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return reqwest::Url::parse(text)
                .map(|_| Ready::Http(text.to_string()))
                .map_err(|e| format!("`{text}` is not a valid URL: {e}"));
        }
        Err(format!(
            "`{text}`: write tcp://HOST:PORT or an http(s):// URL that answers 2xx when ready"
        ))
    }

    /// One attempt: Ok when the service answers as ready.
    pub async fn check(&self) -> Result<(), String> {
        match self {
            Ready::Tcp(addr) => {
                match tokio::time::timeout(ATTEMPT_TIMEOUT, tokio::net::TcpStream::connect(addr))
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("{addr}: {e}")),
                    Err(_) => Err(format!("{addr}: no answer within 2s")),
                }
            }
            Ready::Http(url) => {
                crate::install_crypto_provider();
                let client = reqwest::Client::builder()
                    .timeout(ATTEMPT_TIMEOUT)
                    .build()
                    .map_err(|e| format!("HTTP client: {e}"))?;
                let shown = crate::secrets::scrub_url_credentials(url);
                match client.get(url).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("{shown} answered {}", r.status())),
                    Err(e) => Err(format!("{shown}: {}", error_chain(&e))),
                }
            }
        }
    }

    /// Waits until ready, for at most `timeout`; `gave_up` is asked between attempts and ends
    /// the wait early with its reason (the started process exited with an error).
    pub async fn wait(
        &self,
        timeout: Duration,
        mut gave_up: impl FnMut() -> Option<String>,
    ) -> Result<Duration, String> {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        let mut pause = Duration::from_millis(25);
        loop {
            let last = match self.check().await {
                Ok(()) => return Ok(started.elapsed()),
                Err(e) => e,
            };
            if let Some(reason) = gave_up() {
                return Err(reason);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(format!(
                    "not ready within {} ({last})",
                    crate::config::duration::format(timeout)
                ));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

impl std::fmt::Display for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ready::Tcp(addr) => write!(f, "tcp://{addr}"),
            Ready::Http(url) => f.write_str(&crate::secrets::scrub_url_credentials(url)),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = if e.to_string().contains("error sending request") {
        "request failed".to_string()
    } else {
        e.to_string()
    };
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    crate::secrets::scrub_url_credentials(&msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_addresses_parse() {
        assert_eq!(
            Ready::parse("tcp://127.0.0.1:8080").unwrap(),
            Ready::Tcp("127.0.0.1:8080".into())
        );
        assert_eq!(
            Ready::parse("http://127.0.0.1:8080/health").unwrap(),
            Ready::Http("http://127.0.0.1:8080/health".into())
        );
        assert!(
            Ready::parse("tcp://127.0.0.1")
                .unwrap_err()
                .contains("tcp://HOST:PORT")
        );
        assert!(
            Ready::parse("127.0.0.1:80")
                .unwrap_err()
                .contains("http(s)://")
        );
        assert!(Ready::parse("tcp://:80").is_err());
    }

    #[tokio::test]
    async fn tcp_readiness_follows_a_real_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ready = Ready::Tcp(addr.to_string());
        ready.check().await.unwrap();
        drop(listener);
        let err = ready
            .wait(Duration::from_millis(200), || None)
            .await
            .unwrap_err();
        assert!(err.contains("not ready within"), "{err}");
        let err = ready
            .wait(Duration::from_secs(5), || Some("process exited".into()))
            .await
            .unwrap_err();
        assert_eq!(err, "process exited");
    }
}
