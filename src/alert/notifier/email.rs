//! `kind: email`: one mail per notification over SMTP (lettre), `multipart/alternative` with a
//! plain-text and an HTML part, so every mail client shows something readable.
//!
//! Transport security follows the URL: `smtps://` is TLS from the first byte; `smtp://` upgrades
//! with STARTTLS as `starttls` says — `required` by default as soon as credentials are configured,
//! so a password never crosses the network in clear text unless the user writes `starttls: never`.
//!
//! The notification's idempotency key travels as `X-Patrol-Idempotency-Key` and shapes a stable
//! `Message-ID`, so a mail sent again after a retry or a restart is recognisably the same mail
//! (mail systems and clients collapse duplicates by `Message-ID`).
//!
//! SMTP replies are classified the SMTP way: 4xx (greylisting, mailbox busy, rate limits) and
//! connection problems are retried; 5xx (unknown mailbox, authentication failed, relaying denied)
//! are permanent, with the server's own text. Messages name the server's host and port, never the
//! password.

use std::path::PathBuf;
use std::time::SystemTime;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Notifier, SendContext, SendError};
use crate::alert::{Notification, template, truncate};
use crate::config::Issues;

/// The header carrying the notification's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "X-Patrol-Idempotency-Key";

/// Longest server reply kept in an error message.
const MAX_REPLY_CHARS: usize = 300;

/// Whether an `smtp://` connection upgrades to TLS with STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Upgrade, or fail when the server does not offer STARTTLS.
    Required,
    /// Upgrade when the server offers STARTTLS, else continue in clear text.
    Opportunistic,
    /// Never upgrade: everything, credentials included, in clear text.
    Never,
}

/// Mail over SMTP. Credentials by reference: `password: ${env:SMTP_PASSWORD}`.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Email {
    /// `smtp://host[:port]` (port 25 by default; submission servers usually listen on 587) or
    /// `smtps://host[:port]` (TLS from the first byte, port 465 by default).
    pub url: String,
    /// For `smtp://` only: `required` (the default when `username` is set), `opportunistic` (the
    /// default otherwise) or `never`.
    #[serde(default)]
    pub starttls: Option<StartTls>,
    /// Login for SMTP AUTH (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// Password for SMTP AUTH, by reference (`${env:…}` or `${file:…}`).
    #[serde(default)]
    pub password: Option<String>,
    /// PEM file with extra CA certificates to trust (a private CA), besides the public roots: an
    /// absolute path, or relative to patrol's working directory.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Sender: `patrol@example.com` or `Patrol <patrol@example.com>`.
    pub from: String,
    /// Recipients (at least one).
    pub to: Vec<String>,
    /// Copy recipients.
    #[serde(default)]
    pub cc: Vec<String>,
    /// minijinja template of the subject line (default: the notification's title,
    /// "[FIRING:2] check (service)").
    #[serde(default)]
    pub subject: Option<String>,
    /// minijinja template replacing the default plain-text part.
    #[serde(default)]
    pub text_template: Option<String>,
    /// minijinja template replacing the default HTML part; printed values are HTML-escaped.
    #[serde(default)]
    pub html_template: Option<String>,
}

/// Written by hand so the password never reaches a log line or a panic message.
impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("username", &self.username)
            .field(
                "password",
                &self.password.as_ref().map(|_| crate::secrets::MASK),
            )
            .field("ca_file", &self.ca_file)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("cc", &self.cc)
            .field("subject", &self.subject)
            .field("text_template", &self.text_template)
            .field("html_template", &self.html_template)
            .finish()
    }
}

impl Notifier for Email {
    fn validate(&self, issues: &mut Issues) {
        match Endpoint::parse(&self.url) {
            Ok(endpoint) => {
                if endpoint.implicit_tls && self.starttls.is_some() {
                    issues.at(
                        &["starttls"],
                        "starttls applies to smtp:// only (smtps:// is TLS from the first byte)",
                    );
                }
            }
            Err(e) => issues.at(&["url"], e),
        }
        match (&self.username, &self.password) {
            (Some(_), None) => issues.at(&["username"], "username needs a password"),
            (None, Some(_)) => issues.at(&["password"], "password needs a username"),
            _ => {}
        }
        if let Some(path) = &self.ca_file
            && let Err(e) = crate::tls::read_ca_file(path)
        {
            issues.at(&["ca_file"], e);
        }
        validate_mailboxes(issues, self);
        for (field, source) in [
            ("subject", &self.subject),
            ("text_template", &self.text_template),
            ("html_template", &self.html_template),
        ] {
            if let Some(source) = source
                && let Err(e) = template::compile_check(source)
            {
                issues.at(&[field], e);
            }
        }
    }

    async fn send(&self, n: &Notification, ctx: &SendContext<'_>) -> Result<(), SendError> {
        let endpoint = Endpoint::parse(&self.url).map_err(|e| self.permanent(&e))?;
        let message = self.message(n, ctx.now.into())?;
        let transport = self.transport(&endpoint, ctx)?;
        let sent = tokio::time::timeout(ctx.timeout, transport.send(message)).await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e, &endpoint, self.password.as_deref())),
            Err(_) => Err(SendError::Retryable(format!(
                "email: SMTP server {endpoint} timed out (not done within {:?})",
                ctx.timeout
            ))),
        }
    }
}

impl Email {
    /// A configuration problem found while sending: retrying cannot fix it.
    fn permanent(&self, reason: &str) -> SendError {
        SendError::Permanent(scrub(&format!("email: {reason}"), self.password.as_deref()))
    }

    /// The STARTTLS mode in effect for an `smtp://` URL.
    fn starttls_mode(&self) -> StartTls {
        self.starttls.unwrap_or(if self.username.is_some() {
            StartTls::Required
        } else {
            StartTls::Opportunistic
        })
    }

    /// The mail for `n`: headers, subject, and both bodies.
    fn message(&self, n: &Notification, date: SystemTime) -> Result<Message, SendError> {
        let from: Mailbox = parse_mailbox(&self.from).map_err(|e| self.permanent(&e))?;
        let mut builder = Message::builder()
            .from(from.clone())
            .subject(self.subject_line(n)?)
            .date(date);
        for to in &self.to {
            builder = builder.to(parse_mailbox(to).map_err(|e| self.permanent(&e))?);
        }
        for cc in &self.cc {
            builder = builder.cc(parse_mailbox(cc).map_err(|e| self.permanent(&e))?);
        }
        if !n.idempotency_key.is_empty() {
            builder = builder
                .message_id(Some(message_id(&n.idempotency_key, from.email.domain())))
                .header(IdempotencyKey(n.idempotency_key.clone()));
        }
        let (text, html) = self.bodies(n)?;
        builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| self.permanent(&format!("cannot build the message: {e}")))
    }

    /// The subject on one line: mail headers cannot hold the newlines a template may produce.
    fn subject_line(&self, n: &Notification) -> Result<String, SendError> {
        let subject = match &self.subject {
            Some(source) => {
                template::render(source, n).map_err(|e| self.permanent(&format!("subject: {e}")))?
            }
            None => n.title(),
        };
        Ok(subject.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// The plain-text and HTML bodies, from the user's templates or the defaults.
    fn bodies(&self, n: &Notification) -> Result<(String, String), SendError> {
        let text = match &self.text_template {
            Some(source) => template::render(source, n)
                .map_err(|e| self.permanent(&format!("text_template: {e}")))?,
            None => template::default_text(n),
        };
        let html = match &self.html_template {
            Some(source) => template::render_html(source, n)
                .map_err(|e| self.permanent(&format!("html_template: {e}")))?,
            None => template::default_html(n),
        };
        Ok((text, html))
    }

    /// A transport for one delivery (no pool: notifications are rare, and a fresh connection
    /// reports the server's current state).
    fn transport(
        &self,
        endpoint: &Endpoint,
        ctx: &SendContext<'_>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let tls = match (endpoint.implicit_tls, self.starttls_mode()) {
            (true, _) => Tls::Wrapper(self.tls_parameters(endpoint)?),
            (false, StartTls::Required) => Tls::Required(self.tls_parameters(endpoint)?),
            (false, StartTls::Opportunistic) => Tls::Opportunistic(self.tls_parameters(endpoint)?),
            (false, StartTls::Never) => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&endpoint.host)
            .port(endpoint.port)
            .tls(tls)
            .timeout(Some(ctx.timeout));
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }

    /// Public roots plus the certificates of `ca_file`; the server's name is checked against the
    /// URL's host.
    fn tls_parameters(&self, endpoint: &Endpoint) -> Result<TlsParameters, SendError> {
        let mut builder = TlsParameters::builder(endpoint.host.clone());
        if let Some(path) = &self.ca_file {
            for der in crate::tls::read_ca_file(path).map_err(|e| self.permanent(&e))? {
                let cert = Certificate::from_der(der.to_vec())
                    .map_err(|e| self.permanent(&format!("ca_file {}: {e}", path.display())))?;
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build_rustls()
            .map_err(|e| self.permanent(&format!("TLS settings: {e}")))
    }
}

/// Where the SMTP server listens, from the receiver's `url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (without IPv6 brackets): what TLS checks the certificate against.
    pub host: String,
    pub port: u16,
    /// `smtps://`: TLS from the first byte.
    pub implicit_tls: bool,
}

impl Endpoint {
    /// Parses `smtp://host[:port]` or `smtps://host[:port]`. Errors never repeat the URL.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let u = reqwest::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
        let (implicit_tls, default_port) = match u.scheme() {
            "smtp" => (false, 25),
            "smtps" => (true, 465),
            other => {
                return Err(format!(
                    "must be an smtp:// or smtps:// URL (scheme is {other:?})"
                ));
            }
        };
        if !u.username().is_empty() || u.password().is_some() {
            return Err("put credentials in username and password, not in the URL".into());
        }
        if !matches!(u.path(), "" | "/") || u.query().is_some() || u.fragment().is_some() {
            return Err("must be just scheme://host[:port], without a path or query".into());
        }
        let host = match u.host_str() {
            Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']'),
            _ => return Err("needs a host: smtp://host[:port]".into()),
        };
        Ok(Endpoint {
            host: host.to_string(),
            port: u.port().unwrap_or(default_port),
            implicit_tls,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// SMTP's own classification: 4xx replies and transport trouble (connection, timeout, TLS, a
/// garbled reply) may pass; 5xx replies and client-side refusals (no usable AUTH mechanism, no
/// STARTTLS where it is required) will not.
pub fn classify(
    e: &lettre::transport::smtp::Error,
    endpoint: &Endpoint,
    password: Option<&str>,
) -> SendError {
    let msg = |detail: String| {
        scrub(
            &format!("email: SMTP server {endpoint}: {detail}"),
            password,
        )
    };
    if let Some(code) = e.status() {
        let reply = std::error::Error::source(e)
            .map(|s| truncate::chars(s.to_string().trim(), MAX_REPLY_CHARS))
            .unwrap_or_default();
        let text = msg(format!("{code} {reply}"));
        return if e.is_permanent() {
            SendError::Permanent(text)
        } else {
            SendError::Retryable(text)
        };
    }
    let detail = describe(e);
    if e.is_client() {
        return SendError::Permanent(msg(detail));
    }
    if e.is_timeout() {
        return SendError::Retryable(msg(format!("timed out: {detail}")));
    }
    SendError::Retryable(msg(detail))
}

/// lettre's message without its repetitions ("Connection error: Connection error: …") and its
/// internal wording, plus a hint where the fix is in the receiver's settings.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let full = e.to_string();
    let full = full
        .strip_prefix("internal client error: ")
        .unwrap_or(&full);
    let mut segments: Vec<&str> = Vec::new();
    for segment in full.split(": ") {
        if segments
            .last()
            .is_none_or(|last| !last.eq_ignore_ascii_case(segment))
        {
            segments.push(segment);
        }
    }
    let mut out = segments.join(": ");
    if out.contains("UnknownIssuer") {
        out.push_str(
            " (the certificate does not lead to a trusted CA: set ca_file for a private CA)",
        );
    }
    out
}

/// `s` with registered secrets masked and the password (even if unregistered) removed.
fn scrub(s: &str, password: Option<&str>) -> String {
    let mut out = crate::secrets::redact_owned(s.to_string());
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        out = out.replace(p, crate::secrets::MASK);
    }
    out
}

fn parse_mailbox(s: &str) -> Result<Mailbox, String> {
    s.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("{s:?} is not a mail address: {e}"))
}

fn validate_mailboxes(issues: &mut Issues, r: &Email) {
    if let Err(e) = parse_mailbox(&r.from) {
        issues.at(&["from"], e);
    }
    if r.to.is_empty() {
        issues.at(&["to"], "needs at least one recipient");
    }
    for (field, list) in [("to", &r.to), ("cc", &r.cc)] {
        for addr in list {
            if let Err(e) = parse_mailbox(addr) {
                issues.at(&[field], e);
            }
        }
    }
}

/// A `Message-ID` that is the same for every send of one notification: the key itself when it is
/// valid inside a message id, else a hash of it (the exact key is in [`IDEMPOTENCY_HEADER`]).
pub fn message_id(idempotency_key: &str, domain: &str) -> String {
    let readable = !idempotency_key.is_empty()
        && idempotency_key.len() <= 128
        && idempotency_key
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_id_byte));
    let local = if readable {
        idempotency_key.to_string()
    } else {
        let hash = hex::encode(Sha256::digest(idempotency_key.as_bytes()));
        format!("patrol-{}", &hash[..32])
    };
    let domain = if !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
    {
        domain
    } else {
        "patrol.invalid"
    };
    format!("<{local}@{domain}>")
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_+=".contains(&b)
}

/// `X-Patrol-Idempotency-Key`: the notification's idempotency key, exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IdempotencyKey(String);

impl Header for IdempotencyKey {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(IDEMPOTENCY_HEADER)
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(IdempotencyKey(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[cfg(test)]
#[path = "email_tests.rs"]
mod tests;
