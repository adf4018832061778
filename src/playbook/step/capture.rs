//! `capture: {url, name, headers, timeout, max_bytes}` — fetches a URL (a heap profile at
//! `/debug/pprof/heap`, a goroutine dump, a slow-query page) and attaches the body to the step's
//! record, so the run report keeps what the system looked like when the playbook ran. The body is
//! kept as text when it is UTF-8, else base64. A status other than 2xx, or a body above
//! `max_bytes` (default 16 MiB), fails the step. Output: `steps.<name>.status|bytes|content_type|
//! attachment`. A GET changes nothing, so `--dry-run` runs it too.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{Request, snippet};
use super::{StepEnv, StepKind};
use crate::config::{Issues, RuleSet};
use crate::playbook::run::Attachment;

const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_bytes() -> usize {
    DEFAULT_MAX_BYTES
}

/// A body to keep with the run.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureStep {
    pub url: String,
    /// The attachment's name (default: the last segment of the URL's path, e.g. `heap`).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
    /// Largest body kept; a larger one fails the step rather than keeping a useless piece.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
}

impl CaptureStep {
    /// The attachment's name: `name`, else the URL path's last segment, else `capture`.
    pub fn attachment_name(&self) -> String {
        if let Some(name) = self.name.as_deref().filter(|n| !n.trim().is_empty()) {
            return name.trim().to_string();
        }
        reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| {
                u.path_segments()
                    .and_then(|mut s| s.rfind(|seg| !seg.is_empty()).map(str::to_string))
            })
            .unwrap_or_else(|| "capture".to_string())
    }

    /// The body, read chunk by chunk so a huge one is refused before it fills memory.
    async fn fetch(&self) -> Result<(u16, String, Vec<u8>), String> {
        let mut response = Request::get(&self.url, &self.headers, self.timeout)
            .send()
            .await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {}: reading the body: {e}", self.url))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(format!(
                    "GET {}: the body is larger than max_bytes ({} bytes)",
                    self.url, self.max_bytes
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, content_type, body))
    }
}

/// The body as an attachment: text when it is UTF-8, else base64.
fn attachment(name: String, content_type: String, body: Vec<u8>) -> Attachment {
    let bytes = body.len();
    let (encoding, body) = match String::from_utf8(body) {
        Ok(text) => ("text", text),
        Err(e) => (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
        ),
    };
    Attachment {
        name,
        content_type,
        bytes,
        encoding: encoding.to_string(),
        body,
    }
}

impl StepKind for CaptureStep {
    fn validate(&self, _rules: &RuleSet, _exec_allow: &[String], issues: &mut Issues) {
        if let Err(e) = reqwest::Url::parse(&self.url) {
            issues.at(&["url"], format!("{:?} is not a URL: {e}", self.url));
        }
        if self.timeout.is_zero() {
            issues.at(&["timeout"], "timeout must be above 0s");
        }
        if self.max_bytes == 0 {
            issues.at(&["max_bytes"], "max_bytes must be above 0");
        }
    }

    fn dry_run_safe(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("capture GET {} as {}", self.url, self.attachment_name())
    }

    async fn run(&self, env: &StepEnv<'_>) -> Result<Value, String> {
        let (status, content_type, body) = self.fetch().await?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "GET {} answered {status}, expected 2xx: {}",
                self.url,
                snippet(&String::from_utf8_lossy(&body))
            ));
        }
        let name = self.attachment_name();
        let kept = attachment(name.clone(), content_type.clone(), body);
        let out = json!({
            "status": status,
            "bytes": kept.bytes,
            "content_type": content_type,
            "encoding": kept.encoding,
            "attachment": name,
        });
        env.attach(kept);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(url: &str, name: Option<&str>) -> CaptureStep {
        CaptureStep {
            url: url.into(),
            name: name.map(String::from),
            headers: BTreeMap::new(),
            timeout: default_timeout(),
            max_bytes: default_max_bytes(),
        }
    }

    #[test]
    fn the_attachment_is_named_after_the_url_unless_named() {
        assert_eq!(
            step("http://h:1/debug/pprof/heap?gc=1", None).attachment_name(),
            "heap"
        );
        assert_eq!(step("http://h:1/a/b/", None).attachment_name(), "b");
        assert_eq!(step("http://h:1", None).attachment_name(), "capture");
        assert_eq!(
            step("http://h:1/x", Some("goroutines")).attachment_name(),
            "goroutines"
        );
    }

    #[test]
    fn text_stays_text_and_binary_is_base64() {
        let a = attachment("t".into(), "text/plain".into(), b"heap profile".to_vec());
        assert_eq!(
            (a.encoding.as_str(), a.body.as_str(), a.bytes),
            ("text", "heap profile", 12)
        );
        let b = attachment(
            "b".into(),
            "application/octet-stream".into(),
            vec![0x1f, 0x8b, 0xff],
        );
        assert_eq!(
            (b.encoding.as_str(), b.body.as_str(), b.bytes),
            ("base64", "H4v/", 3)
        );
    }

    #[test]
    fn defaults_and_validation() {
        let s: CaptureStep = serde_json::from_value(json!({"url": "http://h:1/heap"})).unwrap();
        assert_eq!(s.max_bytes, 16 * 1024 * 1024);
        assert!(s.dry_run_safe());
        let mut issues = Issues::default();
        let rules = crate::config::load(&[]).unwrap();
        step("not a url", None).validate(&rules, &[], &mut issues);
        assert!(
            issues.items[0].1.contains("is not a URL"),
            "{:?}",
            issues.items
        );
    }
}
