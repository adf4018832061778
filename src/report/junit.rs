//! The JUnit XML report, for CI dashboards (Jenkins, GitLab, GitHub test reporters): one
//! `<testsuite>` for the run, one `<testcase>` per result — a check with several series gives one
//! testcase per series, named `check[series]`.
//!
//! - `crit` and `error` are `<failure type="crit|error" message="…">` (the run failed on them);
//! - `warn` passes with `<properties><property name="warn" value="…"/></properties>`;
//! - `skipped` is `<skipped message="…"/>`;
//! - a shadow check never fails: its status is a `shadow` property.
//!
//! Every text goes through [`escape::xml`], which also drops characters XML forbids.

use std::fmt::Write as _;

use super::escape::xml;
use super::model::{SuiteReport, series_label};
use crate::result::{CheckResult, Status, format_number};

/// The JUnit XML report.
pub fn render(report: &SuiteReport) -> String {
    let tests = report.results.len();
    let failures = report.results.iter().filter(|r| r.fails_run()).count();
    let skipped = report
        .results
        .iter()
        .filter(|r| r.status == Status::Skipped)
        .count();
    let time = format!("{:.3}", report.duration_ms / 1000.0);
    let timestamp = report.run.started_at.format("%Y-%m-%dT%H:%M:%SZ");
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time}\""
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"patrol\" {counts}>");
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" {counts} timestamp=\"{timestamp}\">",
        xml(&report.suite)
    );
    out.push_str("    <properties>\n");
    for (name, value) in [
        ("run_id", report.run.id.as_str()),
        ("trigger", report.run.trigger.as_str()),
        ("revision", report.run.revision.as_str()),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            xml(value)
        );
    }
    out.push_str("    </properties>\n");
    for r in &report.results {
        testcase(&mut out, &report.suite, r);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn testcase(out: &mut String, suite: &str, r: &CheckResult) {
    let classname = match &r.service {
        Some(service) => format!("{suite}.{service}"),
        None => suite.to_string(),
    };
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
        xml(&series_label(&r.check, &r.series)),
        xml(&classname),
        r.duration_ms.max(0.0) / 1000.0
    );
    let mut properties: Vec<(&str, String)> = Vec::new();
    if r.shadow && r.status != Status::Ok {
        properties.push(("shadow", format!("{}: {}", r.status, r.message)));
    } else if r.status == Status::Warn {
        properties.push(("warn", r.message.clone()));
    }
    let failure = r.fails_run().then_some(r.status);
    let skipped = r.status == Status::Skipped && !r.shadow;
    if properties.is_empty() && failure.is_none() && !skipped {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    if !properties.is_empty() {
        out.push_str("      <properties>\n");
        for (name, value) in &properties {
            let _ = writeln!(
                out,
                "        <property name=\"{name}\" value=\"{}\"/>",
                xml(value)
            );
        }
        out.push_str("      </properties>\n");
    }
    if let Some(status) = failure {
        let _ = writeln!(
            out,
            "      <failure type=\"{status}\" message=\"{}\">{}</failure>",
            xml(&r.message),
            xml(&failure_text(r))
        );
    }
    if skipped {
        let _ = writeln!(out, "      <skipped message=\"{}\"/>", xml(&r.message));
    }
    out.push_str("    </testcase>\n");
}

/// The body of a `<failure>`: what was measured where, then the message.
fn failure_text(r: &CheckResult) -> String {
    let mut lines = vec![format!("{} {} on {}", r.status, r.kind, r.target)];
    if let Some(v) = &r.value {
        let unit = if r.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", r.unit)
        };
        lines.push(format!("value: {v}{unit}"));
    }
    if let Some(b) = &r.baseline {
        lines.push(format!(
            "baseline: {} – {} (mean {}, {} samples)",
            format_number(b.lower),
            format_number(b.upper),
            format_number(b.mean),
            b.samples
        ));
    }
    if !r.message.is_empty() {
        lines.push(r.message.clone());
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::sample_report;

    #[test]
    fn one_testcase_per_series_with_failures_properties_and_skips() {
        let xml_text = render(&sample_report());
        assert!(xml_text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
        assert_eq!(xml_text.matches("<testcase ").count(), 7);
        assert!(
            xml_text
                .contains("tests=\"7\" failures=\"2\" errors=\"0\" skipped=\"1\" time=\"1.500\"")
        );
        assert_eq!(xml_text.matches("<failure ").count(), 2);
        assert!(
            xml_text.contains("<testcase name=\"db-lag[replica-1]\" classname=\"nightly.orders\"")
        );
        assert!(xml_text.contains("<testcase name=\"db-lag[replica-2]\""));
        assert!(xml_text.contains("<failure type=\"error\" message=\"connection refused\">"));
        assert!(
            xml_text.contains(
                "<property name=\"warn\" value=\"value 250 outside baseline [70, 130]\"/>"
            )
        );
        assert!(xml_text.contains("<skipped message=\"skipped: depends on cert\"/>"));
        assert!(
            xml_text.contains("<property name=\"shadow\" value=\"crit: shadow: would be crit\"/>")
        );
        assert!(xml_text.contains("<property name=\"run_id\" value=\"run-2\"/>"));
    }

    #[test]
    fn messages_are_escaped_in_attributes_and_text() {
        let xml_text = render(&sample_report());
        assert!(
            xml_text.contains("message=\"lag &lt;42s&gt; &amp; rising\""),
            "{xml_text}"
        );
        assert!(!xml_text.contains("<42s>"));
    }
}
