//! Message content: the default body of every receiver (Markdown for chat, plain text and HTML for
//! email) and user templates (`template:`, minijinja) rendered against the same fields.
//!
//! A template sees `receiver`, `status`, `title`, `group_key`, `group_labels`, `common_labels`,
//! `common_annotations`, `external_url`, `idempotency_key`, and `alerts` / `firing` / `resolved`:
//! lists of [`AlertView`] (each with `status`, `check`, `service`, `severity`, `series`, `summary`,
//! `description`, `value` (with its unit), `baseline` (the band), `score`, `revision`, `link`,
//! `starts_at`, `ends_at`, `fingerprint`, and the raw `labels` / `annotations`).
//!
//! Chat vendors cap message sizes in bytes; [`fit_blocks`] and [`fit_text`] keep a message within a
//! cap without splitting a UTF-8 character, ending with "… and N more" when something was left out.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, value::Serde};
use serde::Serialize;

use super::notification::{Alert, AlertStatus, Notification};
use super::truncate;

/// Annotation keys the alert lifecycle fills and the default messages show.
pub mod keys {
    pub const SUMMARY: &str = "summary";
    pub const DESCRIPTION: &str = "description";
    /// The measured value, without its unit.
    pub const VALUE: &str = "value";
    pub const UNIT: &str = "unit";
    /// A preformatted baseline band ("120 – 180"); wins over the two bounds below.
    pub const BASELINE: &str = "baseline";
    pub const BASELINE_LOW: &str = "baseline_low";
    pub const BASELINE_HIGH: &str = "baseline_high";
    /// The service's health score when the alert concerns a service.
    pub const SCORE: &str = "score";
    /// The rules revision that produced the alert.
    pub const REVISION: &str = "revision";
    /// A whole Markdown message patrol wrote itself (a suite report's summary): the default
    /// messages send it as it is instead of the usual one-alert layout.
    pub const BODY: &str = "body";
}

/// The message patrol wrote itself, when `n` carries one: the `body` annotation of its only alert.
pub fn own_body(n: &Notification) -> Option<&str> {
    match n.alerts.as_slice() {
        [only] => only.annotations.get(keys::BODY).map(String::as_str),
        _ => None,
    }
}

/// One alert as messages show it: the interesting labels and annotations pulled out and formatted.
/// Missing facts are left out, so templates see them as undefined (printing nothing) not `none`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertView {
    pub status: &'static str,
    /// The check's name (`check` label, else `alertname`).
    pub check: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Value and unit: "250 ms".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The baseline band: "120 – 180 ms".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Where to look: the alert's generator URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    pub starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl AlertView {
    pub fn new(a: &Alert) -> AlertView {
        let ann = |k: &str| {
            a.annotations
                .get(k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let label = |k: &str| a.labels.get(k).filter(|v| !v.is_empty()).cloned();
        let unit = ann(keys::UNIT);
        let with_unit = |v: String| match &unit {
            Some(u) => format!("{v} {u}"),
            None => v,
        };
        let baseline = ann(keys::BASELINE).or_else(|| {
            match (ann(keys::BASELINE_LOW), ann(keys::BASELINE_HIGH)) {
                (Some(lo), Some(hi)) => Some(format!("{lo} – {hi}")),
                (Some(lo), None) => Some(format!("≥ {lo}")),
                (None, Some(hi)) => Some(format!("≤ {hi}")),
                (None, None) => None,
            }
        });
        AlertView {
            status: a.status.as_str(),
            check: label("check")
                .or_else(|| label("alertname"))
                .unwrap_or_else(|| "alert".into()),
            service: label("service"),
            severity: label("severity"),
            series: label("series"),
            summary: ann(keys::SUMMARY),
            description: ann(keys::DESCRIPTION),
            value: ann(keys::VALUE).map(with_unit),
            baseline: baseline.map(with_unit),
            score: ann(keys::SCORE),
            revision: ann(keys::REVISION),
            link: Some(a.generator_url.clone()).filter(|l| !l.is_empty()),
            starts_at: a.starts_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ends_at: a
                .ends_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            fingerprint: a.fingerprint.clone(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
        }
    }

    pub fn is_firing(&self) -> bool {
        self.status == AlertStatus::Firing.as_str()
    }

    /// "FIRING" / "RESOLVED".
    pub fn status_word(&self) -> String {
        self.status.to_uppercase()
    }

    /// "check (service)" or just "check".
    pub fn heading(&self) -> String {
        match &self.service {
            Some(s) => format!("{} ({s})", self.check),
            None => self.check.clone(),
        }
    }

    /// The detail facts worth a line each, as (name, value), in display order.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let since = Some(self.starts_at.clone());
        [
            ("value", &self.value),
            ("baseline", &self.baseline),
            ("score", &self.score),
            ("severity", &self.severity),
            ("series", &self.series),
            ("revision", &self.revision),
            ("since", &since),
            ("resolved at", &self.ends_at),
        ]
        .into_iter()
        .filter_map(|(name, v)| Some((name, v.clone()?)))
        .collect()
    }
}

/// Every alert of `n` as messages show them, firing ones first.
pub fn views(n: &Notification) -> Vec<AlertView> {
    n.firing().chain(n.resolved()).map(AlertView::new).collect()
}

/// What templates see.
#[derive(Serialize)]
struct Context<'a> {
    receiver: &'a str,
    status: &'static str,
    title: String,
    group_key: &'a str,
    group_labels: &'a BTreeMap<String, String>,
    common_labels: &'a BTreeMap<String, String>,
    common_annotations: &'a BTreeMap<String, String>,
    external_url: &'a str,
    idempotency_key: &'a str,
    alerts: Vec<AlertView>,
    firing: Vec<AlertView>,
    resolved: Vec<AlertView>,
}

fn context(n: &Notification) -> Context<'_> {
    let alerts = views(n);
    let (firing, resolved) = alerts.iter().cloned().partition(AlertView::is_firing);
    Context {
        receiver: &n.receiver,
        status: n.status.as_str(),
        title: n.title(),
        group_key: &n.group_key,
        group_labels: &n.group_labels,
        common_labels: &n.common_labels,
        common_annotations: &n.common_annotations,
        external_url: &n.external_url,
        idempotency_key: &n.idempotency_key,
        alerts,
        firing,
        resolved,
    }
}

fn environment(escape: AutoEscape) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(move |_| escape.clone());
    env
}

fn render_with(source: &str, n: &Notification, escape: AutoEscape) -> Result<String, String> {
    environment(escape)
        .render_str(source, Serde(context(n)))
        .map_err(|e| describe(&e))
}

/// The error with its line, without minijinja's internal template name.
fn describe(e: &minijinja::Error) -> String {
    let mut msg = format!(
        "template error: {}",
        e.detail().unwrap_or(&e.kind().to_string())
    );
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (line {line})"));
    }
    msg
}

/// Renders a user template as it is (for Markdown, text or JSON bodies: no escaping).
pub fn render(source: &str, n: &Notification) -> Result<String, String> {
    render_with(source, n, AutoEscape::None)
}

/// Renders a user template for an HTML body: every value printed is HTML-escaped.
pub fn render_html(source: &str, n: &Notification) -> Result<String, String> {
    render_with(source, n, AutoEscape::Html)
}

/// Whether `source` compiles (for `validate()`), with the error's line when it does not.
pub fn compile_check(source: &str) -> Result<(), String> {
    environment(AutoEscape::None)
        .template_from_str(source)
        .map(|_| ())
        .map_err(|e| describe(&e))
}

/// "… and 3 more".
pub fn more_line(n: usize) -> String {
    format!("… and {n} more")
}

/// `head`, then as many whole `blocks` as fit in `max` bytes, then `foot`, each part separated by
/// a blank line; blocks left out become one "… and N more" line. Never exceeds `max` bytes.
pub fn fit_blocks(head: &str, blocks: &[String], foot: &str, max: usize) -> String {
    // lines_within joins with one newline: every block after the first brings the blank line's other.
    let spaced: Vec<String> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| if i == 0 { b.clone() } else { format!("\n{b}") })
        .collect();
    let frame: usize = [head, foot]
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.len() + 2)
        .sum();
    let body = truncate::lines_within(&spaced, max.saturating_sub(frame), |k| {
        format!("\n{}", more_line(k))
    });
    let parts = [head, body.trim_start_matches('\n'), foot];
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n\n");
    truncate::to_bytes(&joined, max).to_string()
}

/// `text` within `max` bytes: whole lines kept, the rest replaced by "… and N more" (lines).
pub fn fit_text(text: &str, max: usize) -> String {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    truncate::lines_within(&lines, max, more_line)
}

/// One alert in chat Markdown (DingTalk, WeCom, Feishu `lark_md`).
pub fn markdown_block(a: &AlertView) -> String {
    let mut out = format!("**{}** · **{}**", a.status_word(), one_line(&a.heading()));
    if let Some(s) = a.summary.as_ref().or(a.description.as_ref()) {
        out.push_str(&format!("\n> {}", one_line(s)));
    }
    for (name, v) in a.facts() {
        out.push_str(&format!("\n- {name}: {}", one_line(&v)));
    }
    if let Some(link) = &a.link {
        out.push_str(&format!("\n- [details]({link})"));
    }
    out
}

/// The default chat Markdown heading: "### [FIRING:2] check (service)", then a link to patrol
/// when `external_url` is set (at the top, so the message ends with its last alert or "… and N more").
pub fn markdown_head(n: &Notification) -> String {
    let title = format!("### {}", one_line(&n.title()));
    if n.external_url.is_empty() {
        title
    } else {
        format!("{title}\n[patrol]({})", n.external_url)
    }
}

/// The default chat Markdown message, whole.
pub fn default_markdown(n: &Notification) -> String {
    markdown_within(n, usize::MAX)
}

/// The default chat Markdown message within `max` bytes.
pub fn markdown_within(n: &Notification, max: usize) -> String {
    if let Some(body) = own_body(n) {
        return fit_text(body, max);
    }
    let blocks: Vec<String> = views(n).iter().map(markdown_block).collect();
    fit_blocks(&markdown_head(n), &blocks, "", max)
}

/// One alert in plain text.
pub fn text_block(a: &AlertView) -> String {
    let mut out = format!("{} {}", a.status_word(), a.heading());
    if let Some(s) = a.summary.as_ref().or(a.description.as_ref()) {
        out.push_str(&format!(" — {s}"));
    }
    for (name, v) in a.facts() {
        out.push_str(&format!("\n  {name}: {v}"));
    }
    if let Some(link) = &a.link {
        out.push_str(&format!("\n  link: {link}"));
    }
    out
}

/// The default plain-text message (email text part, text-only chats), whole.
pub fn default_text(n: &Notification) -> String {
    text_within(n, usize::MAX)
}

/// The default plain-text message within `max` bytes.
pub fn text_within(n: &Notification, max: usize) -> String {
    if let Some(body) = own_body(n) {
        return fit_text(body, max);
    }
    let blocks: Vec<String> = views(n).iter().map(text_block).collect();
    let head = if n.external_url.is_empty() {
        n.title()
    } else {
        format!("{}\npatrol: {}", n.title(), n.external_url)
    };
    fit_blocks(&head, &blocks, "", max)
}

/// The default HTML message (email HTML part); every value is escaped.
pub fn default_html(n: &Notification) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n");
    out.push_str(&format!("<h2>{}</h2>\n", html_escape(&n.title())));
    let own = own_body(n).map(|body| {
        format!(
            "<pre style=\"white-space:pre-wrap;font-family:inherit\">{}</pre>\n",
            html_escape(body)
        )
    });
    let alerts = if own.is_some() { Vec::new() } else { views(n) };
    out.push_str(own.as_deref().unwrap_or_default());
    for a in alerts {
        let color = if a.is_firing() { "#c0392b" } else { "#27ae60" };
        out.push_str(&format!(
            "<h3><span style=\"color:{color}\">{}</span> {}</h3>\n",
            a.status_word(),
            html_escape(&a.heading())
        ));
        if let Some(s) = a.summary.as_ref().or(a.description.as_ref()) {
            out.push_str(&format!("<p>{}</p>\n", html_escape(s)));
        }
        out.push_str("<table>\n");
        for (name, v) in a.facts() {
            out.push_str(&format!(
                "<tr><th align=\"left\">{name}</th><td>{}</td></tr>\n",
                html_escape(&v)
            ));
        }
        out.push_str("</table>\n");
        if let Some(link) = &a.link {
            out.push_str(&format!(
                "<p><a href=\"{}\">details</a></p>\n",
                html_escape(link)
            ));
        }
    }
    if !n.external_url.is_empty() {
        out.push_str(&format!(
            "<p><a href=\"{0}\">{0}</a></p>\n",
            html_escape(&n.external_url)
        ));
    }
    out.push_str("</body></html>\n");
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value on one line: chat Markdown reads a newline inside a list item or heading as structure.
pub fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
