//! `kind: consul` targets: a Consul HTTP API endpoint (an agent or a server), the ACL token to
//! send, the datacenter to ask and the TLS trust for `https`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TlsOptions;
use crate::config::Issues;

/// A Consul HTTP API (`http://consul.internal:8500`).
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsulTarget {
    /// Base URL of the HTTP API, e.g. `http://127.0.0.1:8500` (a path prefix is kept, for a
    /// Consul behind a proxy); the API paths `/v1/…` are appended.
    pub url: String,
    /// ACL token, by reference (`${env:CONSUL_HTTP_TOKEN}`, `${file:/run/secrets/consul}`);
    /// sent as the `X-Consul-Token` header and never printed.
    #[serde(default)]
    pub token: Option<String>,
    /// Datacenter to ask (sent as `?dc=`); default: the agent's own.
    #[serde(default)]
    pub datacenter: Option<String>,
    #[serde(default)]
    pub tls: TlsOptions,
}

impl ConsulTarget {
    /// Problems beyond types, by field.
    pub fn validate(&self, issues: &mut Issues) {
        if let Err(e) = check_url(&self.url) {
            issues.at(&["url"], e);
        }
        if let Some(token) = &self.token {
            // Registered even when written literally, so no message can ever show it.
            crate::secrets::register(token);
            if token.trim().is_empty() {
                issues.at(
                    &["token"],
                    "token is empty (an unset variable?); remove `token:` to send none",
                );
            } else if token.chars().any(char::is_control) {
                issues.at(&["token"], "token contains control characters");
            }
        }
        if let Some(dc) = &self.datacenter
            && let Err(e) = check_datacenter(dc)
        {
            issues.at(&["datacenter"], e);
        }
        if self.tls != TlsOptions::default() && self.url.trim_start().starts_with("http://") {
            issues.at_key(
                &["tls"],
                "tls applies to https URLs only; this url is plain http",
            );
        }
    }
}

// Written by hand so that no debug print (a panic, a log line) can show the token.
impl std::fmt::Debug for ConsulTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulTarget")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| crate::secrets::MASK))
            .field("datacenter", &self.datacenter)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The URL must be an absolute http(s) URL without query or fragment (the probe adds its own).
fn check_url(url: &str) -> Result<(), String> {
    // The URL may carry credentials: describe the problem, never echo the URL.
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("invalid url: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "url must be http:// or https:// (Consul's HTTP API, usually port 8500), not {}://",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("url has no host".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(
            "url must not have a query or fragment; use `datacenter:` for ?dc= and `token:` for \
             the ACL token"
                .into(),
        );
    }
    Ok(())
}

/// Consul datacenter names are letters, digits, `-` and `_`.
fn check_datacenter(dc: &str) -> Result<(), String> {
    if dc.is_empty() {
        return Err("datacenter is empty; remove it to ask the agent's own".into());
    }
    if !dc
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "datacenter {dc:?} is not a Consul datacenter name (letters, digits, - and _)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> ConsulTarget {
        ConsulTarget {
            url: url.into(),
            token: None,
            datacenter: None,
            tls: TlsOptions::default(),
        }
    }

    fn problems(t: &ConsulTarget) -> Vec<String> {
        let mut issues = Issues::default();
        t.validate(&mut issues);
        issues.items.into_iter().map(|(_, m)| m).collect()
    }

    #[test]
    fn a_plain_url_with_a_datacenter_is_fine() {
        let mut t = target("http://127.0.0.1:8500");
        t.datacenter = Some("eu-west_2".into());
        t.token = Some("0f3c-token".into());
        assert_eq!(problems(&t), Vec::<String>::new());
        assert!(problems(&target("https://gw.example/consul/")).is_empty());
    }

    #[test]
    fn urls_that_cannot_reach_the_api_are_named() {
        assert!(problems(&target("consul:8500"))[0].contains("http:// or https://"));
        assert!(problems(&target("not a url"))[0].starts_with("invalid url"));
        assert!(problems(&target("http://c:8500/?dc=x"))[0].contains("datacenter:"));
    }

    #[test]
    fn empty_token_and_odd_datacenter_are_reported() {
        let mut t = target("http://c:8500");
        t.token = Some(" ".into());
        t.datacenter = Some("eu west".into());
        let p = problems(&t);
        assert!(p[0].starts_with("token is empty"), "{p:?}");
        assert!(p[1].contains("not a Consul datacenter name"), "{p:?}");
    }

    #[test]
    fn tls_on_a_plain_http_url_is_a_mistake() {
        let mut t = target("http://c:8500");
        t.tls.insecure_skip_verify = true;
        assert!(problems(&t)[0].contains("https URLs only"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let mut t = target("http://c:8500");
        t.token = Some("very-secret-token".into());
        let shown = format!("{t:?}");
        assert!(!shown.contains("very-secret-token"), "{shown}");
        assert!(shown.contains(crate::secrets::MASK), "{shown}");
    }
}
