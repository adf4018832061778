//! One GET against a Consul HTTP API: the target's URL with `/v1/…` appended, `?dc=` for the
//! target's datacenter, the ACL token as `X-Consul-Token`, and Consul's refusals turned into
//! messages that say what to fix — never containing the token.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::Url;
use reqwest::header::HeaderValue;

use crate::config::{ConsulTarget, Target, TargetSpec, duration};
use crate::probe::{ProbeContext, ProbeError};

/// Larger answers are refused: a KV value is at most 512 KiB, and a health list this big is not
/// something a check should parse every minute.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Characters of Consul's own error text quoted in a message.
const QUOTE_LIMIT: usize = 200;

/// A Consul target, ready to ask.
pub(super) struct Api<'a> {
    target: &'a Target,
    spec: &'a ConsulTarget,
    base: Url,
    timeout: Duration,
}

impl<'a> Api<'a> {
    /// The check's Consul target (an error when the check has another kind of target).
    pub fn of(ctx: &ProbeContext<'a>) -> Result<Api<'a>, ProbeError> {
        let (target, spec) = match ctx.check.target.as_deref() {
            Some(
                t @ Target {
                    spec: TargetSpec::Consul(c),
                    ..
                },
            ) => (t, c),
            _ => return Err(ProbeError::new("a consul check needs a consul target")),
        };
        let base = Url::parse(spec.url.trim())
            .map_err(|e| ProbeError::new(format!("invalid url of target {}: {e}", target.name)))?;
        Ok(Api {
            target,
            spec,
            base,
            timeout: ctx.timeout,
        })
    }

    /// `host:port` of the API, as messages name it.
    pub fn place(&self) -> String {
        let host = self.base.host_str().unwrap_or("?");
        match self.base.port_or_known_default() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    }

    /// The URL of `/v1/<segments…>` with the given query flags and the datacenter.
    pub fn url(&self, segments: &[&str], flags: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Each segment is percent-encoded on its own (a KV key may hold `?`, `#` or spaces).
            path.pop_if_empty().push("v1").extend(segments);
        }
        if !flags.is_empty() || self.spec.datacenter.is_some() {
            let mut query = url.query_pairs_mut();
            for flag in flags {
                query.append_key_only(flag);
            }
            if let Some(dc) = &self.spec.datacenter {
                query.append_pair("dc", dc);
            }
        }
        url
    }

    /// GETs `/v1/<segments…>`: the body, or `None` when Consul answers 404 (a missing key).
    pub async fn get(
        &self,
        segments: &[&str],
        flags: &[&str],
    ) -> Result<Option<Vec<u8>>, ProbeError> {
        let url = self.url(segments, flags);
        let exchange = async {
            let mut request = crate::probe::http::client::client_for_tls_without_redirects(
                &self.spec.tls,
                &self.target.base_dir,
            )?
            .get(url)
            .timeout(self.timeout);
            if let Some(token) = self.token_header()? {
                request = request.header("X-Consul-Token", token);
            }
            let response = request.send().await.map_err(|e| self.failed(e))?;
            let status = response.status();
            let body = read_body(response).await.map_err(|e| self.failed(e))?;
            self.judge_status(status, body)
        };
        // reqwest's timeout covers the whole exchange; this one is a backstop.
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(self.timed_out()))
    }

    fn token_header(&self) -> Result<Option<HeaderValue>, ProbeError> {
        let Some(token) = &self.spec.token else {
            return Ok(None);
        };
        let mut value = HeaderValue::from_str(token.trim()).map_err(|_| {
            ProbeError::new(format!(
                "the token of target {} holds characters an HTTP header cannot carry",
                self.target.name
            ))
        })?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    /// The body of a 2xx answer, `None` for 404, and a message for every other answer.
    fn judge_status(
        &self,
        status: StatusCode,
        body: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, ProbeError> {
        if status.is_success() {
            return Ok(Some(body));
        }
        let said = self.quote(&body);
        let place = self.place();
        let name = &self.target.name;
        Err(ProbeError::new(match (status.as_u16(), &self.spec.token) {
            (404, _) => return Ok(None),
            (403, Some(_)) => format!(
                "Consul at {place} refused the token of target {name} (403 {said}): check that \
                 the token exists and its ACL policy allows this read"
            ),
            (403, None) => format!(
                "Consul at {place} requires an ACL token (403 {said}): set `token:` on target {name}"
            ),
            (500, _) if said.contains("No path to datacenter") => format!(
                "Consul at {place} knows no datacenter {:?} (500 {said})",
                self.spec.datacenter.as_deref().unwrap_or_default()
            ),
            (code, _) => format!("Consul at {place} answered {code}: {said}"),
        }))
    }

    /// For a 404 where Consul never answers one (health, status): the URL is not Consul's API.
    pub fn not_the_api(&self) -> ProbeError {
        ProbeError::new(format!(
            "{} answered 404 Not Found: is url of target {} the Consul HTTP API (usually port 8500)?",
            self.place(),
            self.target.name
        ))
    }

    /// Consul's own words, short, without anything secret.
    fn quote(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let mut text: String = text.trim().chars().take(QUOTE_LIMIT).collect();
        if let Some(token) = self
            .spec
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            text = text.replace(token, crate::secrets::MASK);
        }
        let text = crate::secrets::redact_owned(text);
        if text.is_empty() {
            "with an empty body".into()
        } else {
            text
        }
    }

    fn failed(&self, e: reqwest::Error) -> ProbeError {
        if e.is_timeout() {
            return self.timed_out();
        }
        let cause = ProbeError::from(e.without_url());
        ProbeError::new(format!(
            "request to Consul at {} failed: {cause}",
            self.place()
        ))
    }

    fn timed_out(&self) -> ProbeError {
        ProbeError::new(format!(
            "Consul at {} did not answer within {}",
            self.place(),
            duration::format(self.timeout)
        ))
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = BODY_LIMIT.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsOptions;

    fn target(url: &str, token: Option<&str>, dc: Option<&str>) -> Target {
        Target {
            name: "consul".into(),
            spec: TargetSpec::Consul(ConsulTarget {
                url: url.into(),
                token: token.map(str::to_string),
                datacenter: dc.map(str::to_string),
                tls: TlsOptions::default(),
            }),
            base_dir: ".".into(),
            origin: None,
        }
    }

    fn api(target: &Target) -> Api<'_> {
        let TargetSpec::Consul(spec) = &target.spec else {
            unreachable!()
        };
        Api {
            target,
            spec,
            base: Url::parse(&spec.url).unwrap(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn urls_keep_a_path_prefix_encode_keys_and_carry_the_datacenter() {
        let t = target("http://gw:8080/consul/", None, Some("eu-west"));
        let url = api(&t).url(&["kv", "app", "a b?c"], &["recurse"]);
        assert_eq!(
            url.as_str(),
            "http://gw:8080/consul/v1/kv/app/a%20b%3Fc?recurse&dc=eu-west"
        );
        let plain = target("http://127.0.0.1:8500", None, None);
        assert_eq!(
            api(&plain).url(&["status", "leader"], &[]).as_str(),
            "http://127.0.0.1:8500/v1/status/leader"
        );
    }

    #[test]
    fn refusals_say_what_to_fix_without_the_token() {
        let with = target("http://c:8500", Some("tok-3f9a-secret"), None);
        let err = api(&with)
            .judge_status(
                StatusCode::FORBIDDEN,
                b"ACL not found tok-3f9a-secret".to_vec(),
            )
            .unwrap_err();
        assert!(
            err.0.starts_with(
                "Consul at c:8500 refused the token of target consul (403 ACL not found"
            ),
            "{err}"
        );
        assert!(!err.0.contains("tok-3f9a-secret"), "{err}");
        let without = target("http://c:8500", None, None);
        let err = api(&without)
            .judge_status(StatusCode::FORBIDDEN, b"Permission denied".to_vec())
            .unwrap_err();
        assert!(err.0.contains("set `token:` on target consul"), "{err}");
    }

    #[test]
    fn not_found_is_an_answer_and_other_statuses_are_errors() {
        let t = target("http://c:8500", None, Some("dc9"));
        let a = api(&t);
        assert_eq!(a.judge_status(StatusCode::NOT_FOUND, vec![]).unwrap(), None);
        assert_eq!(
            a.judge_status(StatusCode::OK, b"[]".to_vec()).unwrap(),
            Some(b"[]".to_vec())
        );
        let err = a
            .judge_status(
                StatusCode::INTERNAL_SERVER_ERROR,
                b"No path to datacenter".to_vec(),
            )
            .unwrap_err();
        assert_eq!(
            err.0,
            "Consul at c:8500 knows no datacenter \"dc9\" (500 No path to datacenter)"
        );
        let err = a.judge_status(StatusCode::BAD_GATEWAY, vec![]).unwrap_err();
        assert_eq!(err.0, "Consul at c:8500 answered 502: with an empty body");
    }
}
