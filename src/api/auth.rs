//! Bearer-token check of the mutating endpoints (starting runs, reloading rules).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{Api, error_response};

/// Lets the request through when no token is configured or when it carries
/// `Authorization: Bearer <token>`; answers 401 otherwise.
pub(super) async fn require_token(
    State(api): State<Api>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = api.state.api_token.as_deref() else {
        return next.run(request).await;
    };
    match bearer(request.headers()) {
        Some(given) if same_secret(given, expected) => next.run(request).await,
        Some(_) => unauthorized("wrong API token"),
        None => unauthorized("this endpoint needs `Authorization: Bearer <token>`"),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares in constant time: both sides are hashed first, so neither the length nor the
/// position of the first difference shows in the timing.
fn same_secret(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn unauthorized(message: &str) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_secret_matches() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cret", "s3cre"));
        assert!(!same_secret("", "s3cret"));
        assert!(!same_secret("S3CRET", "s3cret"));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_required() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  tok "),
        );
        assert_eq!(bearer(&h), Some("tok"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dG9r"),
        );
        assert_eq!(bearer(&h), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
