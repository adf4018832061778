//! The status page at `GET /`: a small page built into the binary (`index.html`, `app.js`,
//! `style.css`, no framework, no external assets) that reads the JSON endpoints once and then
//! follows `/api/v1/events` to update in place. It only reads, so it sits outside the
//! token-protected routes, like the other `GET` endpoints.
//!
//! Assets carry a strong `ETag` (a hash of their text) with `Cache-Control: no-cache`: browsers
//! revalidate on every load and get `304` until the binary changes, so an upgrade never serves a
//! stale script. A `Content-Security-Policy` allowing only this origin backs the "no external
//! assets" promise and limits what injected text could do.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Path of the script, as `index.html` names it.
pub const SCRIPT_PATH: &str = "/ui/app.js";
/// Path of the stylesheet, as `index.html` names it.
pub const STYLE_PATH: &str = "/ui/style.css";

/// Everything the page may load or connect to comes from the daemon itself.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// One file of the page: its text, its media type and its entity tag.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Asset {
        let digest = Sha256::digest(body.as_bytes());
        Asset {
            body,
            content_type,
            etag: format!("\"{}\"", hex::encode(&digest[..12])),
        }
    }

    /// `200` with the text, or `304` when the browser already holds this version.
    fn serve(&self, request: &HeaderMap) -> Response {
        let headers = [
            (header::CONTENT_TYPE, self.content_type),
            (header::ETAG, self.etag.as_str()),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        ];
        if matches_etag(request.get(header::IF_NONE_MATCH), &self.etag) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, self.body).into_response()
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak tags compare by their opaque part.
fn matches_etag(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(Ok(text)) = if_none_match.map(HeaderValue::to_str) else {
        return false;
    };
    text.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

static INDEX: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("index.html"), "text/html; charset=utf-8"));
static SCRIPT: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("app.js"), "text/javascript; charset=utf-8"));
static STYLE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("style.css"), "text/css; charset=utf-8"));

pub(super) async fn index(request: HeaderMap) -> Response {
    INDEX.serve(&request)
}

pub(super) async fn script(request: HeaderMap) -> Response {
    SCRIPT.serve(&request)
}

pub(super) async fn style(request: HeaderMap) -> Response {
    STYLE.serve(&request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_own_assets_and_nothing_external() {
        let html = INDEX.body;
        assert!(html.contains(&format!("src=\"{SCRIPT_PATH}\"")), "{html}");
        assert!(html.contains(&format!("href=\"{STYLE_PATH}\"")), "{html}");
        // The SVG namespace is a name, not a location the browser loads.
        let script = SCRIPT.body.replace("'http://www.w3.org/2000/svg'", "");
        for text in [INDEX.body, &script, STYLE.body] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }

    #[test]
    fn if_none_match_compares_tags() {
        let etag = "\"abc\"";
        let value = |s: &'static str| HeaderValue::from_static(s);
        assert!(matches_etag(Some(&value("\"abc\"")), etag));
        assert!(matches_etag(Some(&value("W/\"x\", W/\"abc\"")), etag));
        assert!(matches_etag(Some(&value("*")), etag));
        assert!(!matches_etag(Some(&value("\"abd\"")), etag));
        assert!(!matches_etag(None, etag));
    }

    #[test]
    fn each_version_of_an_asset_has_its_own_tag() {
        assert_ne!(INDEX.etag, SCRIPT.etag);
        assert_eq!(
            Asset::new("x", "text/plain").etag,
            Asset::new("x", "text/css").etag
        );
        assert!(INDEX.etag.starts_with('"') && INDEX.etag.len() == 26);
    }
}
