//! `kind: prometheus` targets: where a Prometheus HTTP API answers (or anything speaking it: Thanos
//! Query, Mimir, VictoriaMetrics) and how patrol authenticates to it.
//!
//! Credentials are written by reference (`${env:PROM_TOKEN}`, `${file:…}`), which registers them
//! as secrets when the rules load; a credential written literally is registered here as well, so
//! neither ever shows up in a message, a result or a log.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Issues, TlsOptions};

/// A Prometheus server: its base URL, headers and one way to authenticate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusTarget {
    /// Base URL of the HTTP API (`http://prometheus:9090`, with the route prefix if Prometheus
    /// is served under one: `https://ops.example.com/prometheus`). `/api/v1/…` is appended.
    pub url: String,
    /// Headers sent with every query, e.g. `X-Scope-OrgID` for a Mimir or Cortex tenant (values
    /// may reference secrets).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Token sent as `Authorization: Bearer …` (by reference: `${env:PROM_TOKEN}`).
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// HTTP basic authentication (Prometheus' own `--web.config.file` users, or a proxy's).
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub tls: TlsOptions,
}

/// A user name and its password (by reference: `${env:PROM_PASSWORD}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl PrometheusTarget {
    /// Problems beyond types, by field. Also registers the credentials as secrets: this runs
    /// for every target as the rules load, before anything could print them.
    pub fn validate(&self, issues: &mut Issues) {
        self.register_secrets();
        self.validate_url(issues);
        self.validate_auth(issues);
        for (name, value) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).is_err() {
                issues.at_key(&["headers", name], format!("invalid header name {name:?}"));
            } else if reqwest::header::HeaderValue::from_str(value).is_err() {
                // The value may be a credential: name the header only.
                issues.at(
                    &["headers", name],
                    format!("invalid value for header {name}: control characters or line breaks"),
                );
            }
        }
    }

    /// The way this target authenticates, by name, for messages (never the credential itself).
    pub fn auth_description(&self) -> &'static str {
        match (&self.bearer_token, &self.basic_auth) {
            (Some(_), _) => "bearer_token",
            (None, Some(_)) => "basic_auth",
            (None, None) => "no credentials",
        }
    }

    fn register_secrets(&self) {
        if let Some(token) = &self.bearer_token {
            crate::secrets::register(token);
        }
        if let Some(auth) = &self.basic_auth {
            crate::secrets::register(&auth.password);
        }
    }

    fn validate_url(&self, issues: &mut Issues) {
        // The URL may carry a password: describe the problem, never echo the URL.
        match reqwest::Url::parse(self.url.trim()) {
            Err(e) => issues.at(&["url"], format!("invalid URL: {e}")),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => issues.at(
                &["url"],
                format!(
                    "unsupported URL scheme {:?}: the Prometheus API speaks http or https",
                    u.scheme()
                ),
            ),
            Ok(u)
                if self.has_credentials()
                    && (!u.username().is_empty() || u.password().is_some()) =>
            {
                issues.at(
                    &["url"],
                    "the URL carries a user name or password and the target sets bearer_token or \
                     basic_auth; keep credentials in one place",
                );
            }
            Ok(_) => {}
        }
    }

    fn validate_auth(&self, issues: &mut Issues) {
        if self.bearer_token.is_some() && self.basic_auth.is_some() {
            issues.at_key(
                &["basic_auth"],
                "set either `bearer_token` or `basic_auth`, not both: a request carries one \
                 Authorization header",
            );
        }
        if self
            .bearer_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            issues.at(&["bearer_token"], "bearer_token is empty");
        }
        if let Some(auth) = &self.basic_auth
            && auth.username.trim().is_empty()
        {
            issues.at(&["basic_auth", "username"], "basic_auth.username is empty");
        }
        if self.has_credentials()
            && let Some(name) = self
                .headers
                .keys()
                .find(|n| n.trim().eq_ignore_ascii_case("authorization"))
        {
            issues.at_key(
                &["headers", name],
                format!(
                    "headers.{name} conflicts with `{}`: a request carries one Authorization header",
                    self.auth_description()
                ),
            );
        }
    }

    fn has_credentials(&self) -> bool {
        self.bearer_token.is_some() || self.basic_auth.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> PrometheusTarget {
        PrometheusTarget {
            url: url.into(),
            headers: BTreeMap::new(),
            bearer_token: None,
            basic_auth: None,
            tls: TlsOptions::default(),
        }
    }

    fn problems(t: &PrometheusTarget) -> Vec<String> {
        let mut issues = Issues::default();
        t.validate(&mut issues);
        issues.items.into_iter().map(|(_, m)| m).collect()
    }

    #[test]
    fn a_plain_url_is_fine() {
        assert!(problems(&target("http://prometheus:9090")).is_empty());
        assert!(problems(&target("https://ops.example.com/prometheus")).is_empty());
    }

    #[test]
    fn bad_urls_are_named_without_echoing_them() {
        let p = problems(&target("no scheme, s3cret-in-url"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("invalid URL"), "{p:?}");
        assert!(!p[0].contains("s3cret"), "{p:?}");
        let p = problems(&target("ftp://prometheus"));
        assert!(p[0].contains("unsupported URL scheme \"ftp\""), "{p:?}");
    }

    #[test]
    fn bearer_token_and_basic_auth_exclude_each_other() {
        let mut t = target("http://p:9090");
        t.bearer_token = Some("tok-123456".into());
        t.basic_auth = Some(BasicAuth {
            username: "patrol".into(),
            password: "pw-123456".into(),
        });
        let p = problems(&t);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("either `bearer_token` or `basic_auth`"),
            "{p:?}"
        );
    }

    #[test]
    fn empty_credentials_and_a_second_authorization_are_refused() {
        let mut t = target("http://p:9090");
        t.bearer_token = Some("  ".into());
        t.headers.insert("authorization".into(), "Basic x".into());
        let p = problems(&t);
        assert!(p.iter().any(|m| m == "bearer_token is empty"), "{p:?}");
        assert!(
            p.iter()
                .any(|m| m.contains("headers.authorization conflicts with `bearer_token`")),
            "{p:?}"
        );
        let mut t = target("http://user:pw@p:9090");
        t.basic_auth = Some(BasicAuth {
            username: " ".into(),
            password: "x".into(),
        });
        let p = problems(&t);
        assert!(
            p.iter().any(|m| m == "basic_auth.username is empty"),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.contains("keep credentials in one place")),
            "{p:?}"
        );
    }

    #[test]
    fn bad_headers_name_the_header_not_the_value() {
        let mut t = target("http://p:9090");
        t.headers.insert("X Bad".into(), "v".into());
        t.headers
            .insert("X-Token".into(), "secret-value\nwith a break".into());
        let p = problems(&t);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("invalid header name \"X Bad\""), "{p:?}");
        assert!(
            p[1].starts_with("invalid value for header X-Token"),
            "{p:?}"
        );
        assert!(!p[1].contains("secret-value"), "{p:?}");
    }

    #[test]
    fn credentials_written_literally_are_masked_everywhere() {
        let mut t = target("http://p:9090");
        t.basic_auth = Some(BasicAuth {
            username: "patrol".into(),
            password: "literal-pw-8c1e".into(),
        });
        assert!(problems(&t).is_empty());
        let shown = crate::secrets::redact("login with literal-pw-8c1e failed");
        assert!(!shown.contains("literal-pw-8c1e"), "{shown}");
        assert_eq!(t.auth_description(), "basic_auth");
    }
}
