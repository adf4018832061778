//! The HTML report: ONE self-contained file (inline CSS and SVG, no script, no external asset),
//! readable when mailed, archived by CI or opened from disk. Sections: the summary, the services
//! with their score and trend, what changed since the last run, one band chart per failing or
//! anomalous series, and every result.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape::xml;
use super::model::{Change, SeriesHistory, SuiteReport, series_label};
use super::svg::{self, BandPoint};
use crate::result::{CheckResult, Status, StatusCounts, format_number};
use crate::score::OVERALL;

/// Size of a band chart.
const CHART: (u32, u32) = (640, 170);
/// Size of a trend sparkline.
const SPARK: (u32, u32) = (160, 28);

/// The shared look of patrol's HTML reports (suite and drill), inlined in each file.
pub const STYLE: &str = r#"
:root { --ok:#2e7d32; --warn:#f9a825; --crit:#c62828; --error:#6a1b9a; --skipped:#9e9e9e;
        --ink:#263238; --muted:#607d8b; --line:#e0e6ea; --bg:#fafbfc; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--ink); background: var(--bg); margin: 0; padding: 24px; }
main { max-width: 1100px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 0 0 6px; }
code { font: 12px/1.3 ui-monospace, SFMono-Regular, Menlo, monospace; background: #eef2f5;
       padding: 1px 4px; border-radius: 3px; }
.meta, .note { color: var(--muted); }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
        font-size: 12px; font-weight: 600; margin-right: 4px; }
.pill.ok { background: var(--ok); } .pill.warn { background: var(--warn); color: #222; }
.pill.crit { background: var(--crit); } .pill.error { background: var(--error); }
.pill.skipped { background: var(--skipped); } .pill.passed { background: var(--ok); }
.pill.failed { background: var(--crit); } .pill.aborted { background: var(--warn); color: #222; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.up { color: var(--ok); } .down { color: var(--crit); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 12px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px; }
.card svg { max-width: 100%; height: auto; }
.changes ul { margin: 4px 0 12px; padding-left: 20px; }
details summary { cursor: pointer; color: var(--muted); margin-bottom: 6px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
"#;

/// The HTML report of `report`.
pub fn render(report: &SuiteReport) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let title = format!(
        "patrol · {} · {}",
        report.suite,
        report.run.started_at.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        xml(&title)
    );
    summary(&mut out, report);
    services(&mut out, report);
    changes(&mut out, report);
    anomalies(&mut out, report);
    all_results(&mut out, &report.results);
    attachments(&mut out, &report.results);
    let _ = write!(
        out,
        "<footer>Generated {} by patrol · report schema {}</footer>\n</main>\n</body>\n</html>\n",
        report.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        report.schema_version
    );
    out
}

pub fn pill(status: Status) -> String {
    format!("<span class=\"pill {status}\">{status}</span>")
}

fn counts_pills(c: &StatusCounts) -> String {
    [
        (Status::Ok, c.ok),
        (Status::Warn, c.warn),
        (Status::Crit, c.crit),
        (Status::Error, c.error),
        (Status::Skipped, c.skipped),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(s, n)| format!("<span class=\"pill {s}\">{n} {s}</span>"))
    .collect::<Vec<_>>()
    .join("")
}

fn summary(out: &mut String, report: &SuiteReport) {
    let (class, word) = if report.failed() {
        ("failed", "FAILED")
    } else {
        ("passed", "PASSED")
    };
    let _ = write!(
        out,
        "<header>\n<h1>patrol · {} <span class=\"pill {class}\">{word}</span></h1>\n\
         <p class=\"meta\">run <code>{}</code> · {} → {} ({}) · trigger <code>{}</code> · rules revision <code>{}</code></p>\n\
         <p>{} <span class=\"meta\">{} results</span></p>\n</header>\n",
        xml(&report.suite),
        xml(&report.run.id),
        report.run.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        report.run.finished_at.format("%H:%M:%S UTC"),
        duration(report.duration_ms),
        xml(&report.run.trigger),
        xml(&report.run.revision),
        counts_pills(&report.run.counts),
        report.run.counts.total()
    );
}

fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{} ms", format_number(ms.round()))
    } else {
        format!("{} s", format_number((ms / 10.0).round() / 100.0))
    }
}

fn services(out: &mut String, report: &SuiteReport) {
    out.push_str("<section id=\"services\">\n<h2>Services</h2>\n");
    if report.scores.is_empty() {
        out.push_str(
            "<p class=\"note\">No health score was recorded for this run.</p>\n</section>\n",
        );
        return;
    }
    let mut per_service: BTreeMap<&str, StatusCounts> = BTreeMap::new();
    for r in &report.results {
        if let Some(s) = &r.service {
            per_service.entry(s.as_str()).or_default().add(r.status);
        }
    }
    out.push_str(
        "<table>\n<thead><tr><th>service</th><th>score</th><th>since last run</th>\
         <th>trend (7 days)</th><th>checks in this run</th></tr></thead>\n<tbody>\n",
    );
    for s in &report.scores {
        let name = if s.service == OVERALL {
            "overall".to_string()
        } else {
            s.service.clone()
        };
        let delta = match s.previous {
            Some(p) if (s.score - p).abs() >= 0.05 => {
                let (class, arrow) = if s.score > p {
                    ("up", "▲")
                } else {
                    ("down", "▼")
                };
                format!(
                    "<span class=\"{class}\">{arrow} {}</span>",
                    format_number(((s.score - p).abs() * 10.0).round() / 10.0)
                )
            }
            Some(_) => "=".into(),
            None => "<span class=\"note\">–</span>".into(),
        };
        let trend: Vec<f64> = s.trend.iter().map(|p| p.score).collect();
        let counts = per_service
            .get(s.service.as_str())
            .map(counts_pills)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\"><b>{}</b></td><td>{delta}</td><td>{}</td><td>{counts}</td></tr>",
            xml(&name),
            format_number((s.score * 10.0).round() / 10.0),
            svg::sparkline(&trend, Some((0.0, 100.0)), SPARK.0, SPARK.1),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// Adds one status to a tally.
trait Add {
    fn add(&mut self, status: Status);
}

impl Add for StatusCounts {
    fn add(&mut self, status: Status) {
        match status {
            Status::Ok => self.ok += 1,
            Status::Warn => self.warn += 1,
            Status::Crit => self.crit += 1,
            Status::Error => self.error += 1,
            Status::Skipped => self.skipped += 1,
        }
    }
}

fn changes(out: &mut String, report: &SuiteReport) {
    out.push_str(
        "<section id=\"changes\" class=\"changes\">\n<h2>Changed since the last run</h2>\n",
    );
    let ch = &report.changes;
    match &report.previous_run {
        None => out.push_str(
            "<p class=\"note\">This is the first run of this suite in the store: nothing to compare with.</p>\n",
        ),
        Some(p) => {
            let _ = writeln!(
                out,
                "<p class=\"meta\">Compared with run <code>{}</code> of {} ({}).</p>",
                xml(&p.id),
                p.started_at.format("%Y-%m-%d %H:%M UTC"),
                counts_pills(&p.counts)
            );
            if ch.is_empty() {
                out.push_str("<p>No change.</p>\n");
            }
        }
    }
    change_list(out, "New failures", &ch.new_failures);
    change_list(out, "Recovered", &ch.recovered);
    change_list(out, "Still failing", &ch.still_failing);
    change_list(out, "New checks", &ch.new_checks);
    out.push_str("</section>\n");
}

fn change_list(out: &mut String, title: &str, items: &[Change]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h3>{title} ({})</h3>\n<ul>", items.len());
    for c in items {
        let was = c.previous.map_or(String::new(), |p| {
            format!(" <span class=\"note\">was {p}</span>")
        });
        let msg = if c.message.is_empty() {
            String::new()
        } else {
            format!(" — {}", xml(&c.message))
        };
        let _ = writeln!(
            out,
            "<li>{} <code>{}</code>{was}{msg}</li>",
            pill(c.status),
            xml(&series_label(&c.check, &c.series))
        );
    }
    out.push_str("</ul>\n");
}

fn anomalies(out: &mut String, report: &SuiteReport) {
    out.push_str("<section id=\"anomalies\">\n<h2>Failing and anomalous checks</h2>\n");
    if report.series.is_empty() {
        out.push_str(
            "<p class=\"note\">None: every check is ok and within its band.</p>\n</section>\n",
        );
        return;
    }
    out.push_str("<div class=\"cards\">\n");
    for s in &report.series {
        series_card(out, s);
    }
    out.push_str("</div>\n");
    if report.series_omitted > 0 {
        let _ = writeln!(
            out,
            "<p class=\"note\">{} more failing or anomalous series are listed under All results without a chart.</p>",
            report.series_omitted
        );
    }
    out.push_str("</section>\n");
}

fn series_card(out: &mut String, s: &SeriesHistory) {
    let unit = if s.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", s.unit)
    };
    let value = s.value.map_or("no value".to_string(), |v| {
        format!("{}{unit}", format_number(v))
    });
    let band = s
        .points
        .last()
        .and_then(|p| Some((p.lower?, p.upper?)))
        .map_or(String::new(), |(l, u)| {
            format!(" · band {} – {}{unit}", format_number(l), format_number(u))
        });
    let outside = if s.outside_band {
        " · <b>outside the band</b>"
    } else {
        ""
    };
    let points: Vec<BandPoint> = s
        .points
        .iter()
        .map(|p| BandPoint {
            at: p.at,
            value: p.value,
            status: p.status,
            band: p.lower.zip(p.upper),
            mean: p.mean,
        })
        .collect();
    let _ = write!(
        out,
        "<article class=\"card\">\n<h3>{} <code>{}</code></h3>\n<p>{}{band}{outside}{}</p>\n{}\n</article>\n",
        pill(s.status),
        xml(&series_label(&s.check, &s.series)),
        xml(&value),
        if s.message.is_empty() {
            String::new()
        } else {
            format!("<br><span class=\"note\">{}</span>", xml(&s.message))
        },
        svg::band_chart(&points, CHART.0, CHART.1)
    );
}

fn all_results(out: &mut String, results: &[CheckResult]) {
    let _ = write!(
        out,
        "<section id=\"results\">\n<h2>All results</h2>\n<details open>\n<summary>{} results</summary>\n\
         <table>\n<thead><tr><th>status</th><th>check</th><th>service</th><th>value</th>\
         <th>band</th><th>message</th><th>ms</th></tr></thead>\n<tbody>\n",
        results.len()
    );
    for r in results {
        let value = r.value.as_ref().map_or(String::new(), |v| {
            if r.unit.is_empty() {
                v.to_string()
            } else {
                format!("{v} {}", r.unit)
            }
        });
        let band = r.baseline.as_ref().map_or(String::new(), |b| {
            format!("{} – {}", format_number(b.lower), format_number(b.upper))
        });
        let shadow = if r.shadow {
            " <span class=\"note\">(shadow)</span>"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><code>{}</code>{shadow}</td><td>{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            pill(r.status),
            xml(&series_label(&r.check, &r.series)),
            xml(r.service.as_deref().unwrap_or("")),
            xml(&value),
            xml(&band),
            xml(&r.message),
            format_number((r.duration_ms * 10.0).round() / 10.0)
        );
    }
    out.push_str("</tbody>\n</table>\n</details>\n</section>\n");
}

/// The evidence probes kept with failing results (a goroutine profile), folded, one per result.
fn attachments(out: &mut String, results: &[CheckResult]) {
    let with: Vec<&CheckResult> = results.iter().filter(|r| r.attachment.is_some()).collect();
    if with.is_empty() {
        return;
    }
    out.push_str("<section id=\"attachments\">\n<h2>Attachments</h2>\n");
    for r in with {
        let Some(a) = &r.attachment else { continue };
        let _ = writeln!(
            out,
            "<details>\n<summary>{} <code>{}</code> — {}</summary>\n<pre>{}</pre>\n</details>",
            pill(r.status),
            xml(&series_label(&r.check, &r.series)),
            xml(&a.name),
            xml(&a.text)
        );
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::sample_report;

    #[test]
    fn one_band_chart_per_failing_or_anomalous_series_and_nothing_external() {
        let report = sample_report();
        let html = render(&report);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.ends_with("</html>\n"));
        assert_eq!(
            report.series.len(),
            4,
            "warn, crit, error and the shadow crit"
        );
        assert_eq!(html.matches("<svg class=\"band-chart\"").count(), 4);
        assert_eq!(html.matches("<svg class=\"sparkline\"").count(), 2);
        for external in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "<script",
            "@import",
            "url(",
        ] {
            assert!(!html.contains(external), "{external}");
        }
    }

    #[test]
    fn the_sections_say_what_changed_and_escape_every_text() {
        let html = render(&sample_report());
        assert!(html.contains("<span class=\"pill failed\">FAILED</span>"));
        assert!(html.contains("<h3>New failures (1)</h3>"));
        assert!(html.contains("<h3>Recovered (1)</h3>"));
        assert!(html.contains("<h3>Still failing (1)</h3>"));
        assert!(html.contains("<h3>New checks (4)</h3>"));
        assert!(html.contains("lag &lt;42s&gt; &amp; rising"));
        assert!(!html.contains("<42s>"));
        assert!(html.contains("<span class=\"down\">▼ 17.5</span>"));
        assert!(html.contains("<b>outside the band</b>"));
    }

    #[test]
    fn attachments_are_shown_folded_and_escaped() {
        let mut report = sample_report();
        report.results[0].attachment = Some(crate::result::Attachment {
            name: "goroutine profile".into(),
            content_type: "text/plain".into(),
            text: "goroutine profile: total 2\n1 @ 0x1\n#\t0x1\tmain.<lambda>+0x1".into(),
        });
        let html = render(&report);
        assert!(html.contains("<section id=\"attachments\">"), "{html}");
        assert!(html.contains("— goroutine profile</summary>"));
        assert!(html.contains("main.&lt;lambda&gt;+0x1"));
        assert!(!render(&sample_report()).contains("id=\"attachments\""));
    }
}
