//! The Markdown summary: short enough for one chat message (at most [`MAX_BYTES`] bytes, below
//! every chat vendor's cap), sent to the suite's receivers when a run ends. Counts, scores, what
//! changed since the previous run and the worst items; lists that do not fit end with
//! "… and N more" (the HTML report has everything).

use std::fmt::Write as _;

use super::model::{Change, SuiteReport, series_label};
use crate::alert::truncate;
use crate::result::{CheckResult, Status, format_number};

/// Longest summary, in bytes.
pub const MAX_BYTES: usize = 3500;
/// Longest message quoted for one item, in characters.
const MESSAGE_CHARS: usize = 100;
/// Items listed per section before "… and N more", whatever the room.
const ITEMS_PER_SECTION: usize = 8;
/// Room kept for the "… and N more" line of a section.
const MORE_RESERVE: usize = 32;
/// Share of [`MAX_BYTES`] for the changes since the last run.
const CHANGES_BYTES: usize = 1500;

/// The Markdown summary of `report`.
pub fn render(report: &SuiteReport) -> String {
    let mut out = Budget::new(MAX_BYTES);
    for line in head(report) {
        out.line(&line);
    }
    if let Some(line) = scores_line(report) {
        out.line("");
        out.line(&line);
    }
    out.line("");
    // The changes get a share of their own, so the worst items always have room after them.
    let mut changed = Budget::new(CHANGES_BYTES);
    changes(report, &mut changed);
    out.block(&changed.finish());
    out.line("");
    worst(report, &mut out);
    out.finish()
}

fn status_icon(status: Status) -> &'static str {
    match status {
        Status::Ok => "✅",
        Status::Warn => "⚠️",
        Status::Crit => "❌",
        Status::Error => "💥",
        Status::Skipped => "⏭️",
    }
}

/// Quoted text on one line, cut to [`MESSAGE_CHARS`], with backticks that would break the
/// Markdown softened.
fn quote(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate::chars(&one_line.replace('`', "'"), MESSAGE_CHARS)
}

/// A name in code style, cut so one odd name cannot fill the message.
fn code(name: &str) -> String {
    format!("`{}`", truncate::chars(&name.replace('`', "'"), 80))
}

fn head(report: &SuiteReport) -> Vec<String> {
    let verdict = if report.failed() { "FAILED" } else { "passed" };
    let c = &report.run.counts;
    let counts = [
        (Status::Ok, c.ok),
        (Status::Warn, c.warn),
        (Status::Crit, c.crit),
        (Status::Error, c.error),
        (Status::Skipped, c.skipped),
    ]
    .iter()
    .filter(|(s, n)| *n > 0 || *s == Status::Ok)
    .map(|(s, n)| format!("{} {n} {s}", status_icon(*s)))
    .collect::<Vec<_>>()
    .join(" · ");
    vec![
        format!(
            "### patrol · {}: {verdict}",
            truncate::chars(&report.suite, 60)
        ),
        format!(
            "run {} · {} · {} · rules {}",
            code(short_id(&report.run.id)),
            report.run.started_at.format("%Y-%m-%d %H:%M UTC"),
            seconds(report.duration_ms),
            code(&report.run.revision)
        ),
        format!("{counts} ({} results)", c.total()),
    ]
}

fn short_id(id: &str) -> &str {
    // UUIDv7 ids differ in their tail within one millisecond; the first 13 characters (time) and
    // the last 4 keep them apart for a reader. Short ids are kept whole.
    if id.len() > 18 && id.is_char_boundary(8) {
        &id[..8]
    } else {
        id
    }
}

fn seconds(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{}ms", format_number(ms.round()))
    } else {
        format!("{}s", format_number((ms / 100.0).round() / 10.0))
    }
}

fn scores_line(report: &SuiteReport) -> Option<String> {
    if report.scores.is_empty() {
        return None;
    }
    let items: Vec<String> = report
        .scores
        .iter()
        .take(12)
        .map(|s| {
            let name = if s.service == crate::score::OVERALL {
                "overall"
            } else {
                &s.service
            };
            let delta = match s.previous {
                Some(p) if (s.score - p).abs() >= 0.05 => format!(
                    " ({}{})",
                    if s.score > p { "▲" } else { "▼" },
                    format_number(((s.score - p).abs() * 10.0).round() / 10.0)
                ),
                _ => String::new(),
            };
            format!(
                "{} **{}**{delta}",
                truncate::chars(name, 40),
                format_number((s.score * 10.0).round() / 10.0)
            )
        })
        .collect();
    let more = report.scores.len().saturating_sub(12);
    let tail = if more > 0 {
        format!(" · … and {more} more")
    } else {
        String::new()
    };
    Some(format!("**Scores:** {}{tail}", items.join(" · ")))
}

fn changes(report: &SuiteReport, out: &mut Budget) {
    let ch = &report.changes;
    let Some(prev) = &report.previous_run else {
        out.line("**First run of this suite**: nothing to compare with.");
        section(out, &ch.new_failures, |c| {
            format!(
                "- {} {} {}{}",
                status_icon(c.status),
                label(c),
                c.status,
                message(c)
            )
        });
        return;
    };
    if ch.is_empty() {
        out.line(&format!(
            "**Since the last run** ({}): no change.",
            prev.started_at.format("%Y-%m-%d %H:%M UTC")
        ));
        return;
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    out.line(&format!(
        "**Since the last run** ({}): {} · {} recovered · {} still failing · {}",
        prev.started_at.format("%Y-%m-%d %H:%M UTC"),
        plural(ch.new_failures.len(), "new failure", "new failures"),
        ch.recovered.len(),
        ch.still_failing.len(),
        plural(ch.new_checks.len(), "new check", "new checks"),
    ));
    section(out, &ch.new_failures, |c| {
        format!(
            "- 🆕 {} {} {}{}",
            status_icon(c.status),
            label(c),
            c.status,
            message(c)
        )
    });
    section(out, &ch.recovered, |c| {
        let was = c.previous.map_or(String::new(), |p| format!(" (was {p})"));
        format!("- ✅ {} recovered{was}", label(c))
    });
    section(out, &ch.still_failing, |c| {
        format!("- 🔁 {} still {}{}", label(c), c.status, message(c))
    });
    section(out, &ch.new_checks, |c| {
        format!("- ➕ {} new: {}", label(c), c.status)
    });
}

fn label(c: &Change) -> String {
    code(&series_label(&c.check, &c.series))
}

fn message(c: &Change) -> String {
    if c.message.is_empty() {
        String::new()
    } else {
        format!(" — {}", quote(&c.message))
    }
}

/// Up to [`ITEMS_PER_SECTION`] lines of `items` that fit, then "… and N more".
fn section<T>(out: &mut Budget, items: &[T], line: impl Fn(&T) -> String) {
    for (i, item) in items.iter().enumerate() {
        if i >= ITEMS_PER_SECTION || !out.fits(&line(item), MORE_RESERVE) {
            out.line(&format!("- … and {} more", items.len() - i));
            return;
        }
        out.line(&line(item));
    }
}

fn worst(report: &SuiteReport, out: &mut Budget) {
    let mut bad: Vec<&CheckResult> = report
        .results
        .iter()
        .filter(|r| r.status >= Status::Warn && !r.shadow)
        .collect();
    if bad.is_empty() {
        out.line("**Worst:** nothing: every check is ok.");
        return;
    }
    bad.sort_by(|a, b| {
        b.status
            .cmp(&a.status)
            .then_with(|| (&a.check, &a.series).cmp(&(&b.check, &b.series)))
    });
    out.line("**Worst:**");
    section(out, &bad, |r| {
        let value = r.value.as_ref().map_or(String::new(), |v| {
            let unit = if r.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", r.unit)
            };
            format!(": {v}{unit}")
        });
        let band = r.baseline.as_ref().map_or(String::new(), |b| {
            format!(
                " (band {} – {})",
                format_number(b.lower),
                format_number(b.upper)
            )
        });
        let msg = if r.message.is_empty() {
            String::new()
        } else {
            format!(" — {}", quote(&r.message))
        };
        format!(
            "- {} {} {}{value}{band}{msg}",
            status_icon(r.status),
            code(&series_label(&r.check, &r.series)),
            r.status
        )
    });
}

/// Lines added while they fit in `max` bytes.
struct Budget {
    text: String,
    max: usize,
}

impl Budget {
    fn new(max: usize) -> Budget {
        Budget {
            text: String::new(),
            max,
        }
    }

    /// Whether `line` fits with `reserve` bytes left over.
    fn fits(&self, line: &str, reserve: usize) -> bool {
        self.text.len() + line.len() + 1 + reserve <= self.max
    }

    /// Adds `line` if it fits; a line that does not is dropped (every list keeps room for its
    /// "… and N more", and the head is short).
    fn line(&mut self, line: &str) {
        if self.fits(line, 0) {
            let _ = writeln!(self.text, "{line}");
        }
    }

    /// Adds lines written to another budget, if they fit.
    fn block(&mut self, text: &str) {
        if self.text.len() + text.len() <= self.max {
            self.text.push_str(text);
        }
    }

    fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::{results, sample_report};

    #[test]
    fn the_summary_has_counts_scores_changes_and_the_worst_items() {
        let md = render(&sample_report());
        assert!(md.starts_with("### patrol · nightly: FAILED\n"), "{md}");
        assert!(
            md.contains("✅ 2 ok · ⚠️ 1 warn · ❌ 2 crit · 💥 1 error · ⏭️ 1 skipped (7 results)"),
            "{md}"
        );
        assert!(
            md.contains("**Scores:** orders **62.5** (▼17.5) · overall **62.5**"),
            "{md}"
        );
        assert!(
            md.contains("1 new failure · 1 recovered · 1 still failing · 4 new checks"),
            "{md}"
        );
        assert!(
            md.contains("- 🆕 ❌ `db-lag[replica-1]` crit — lag <42s> & rising"),
            "{md}"
        );
        assert!(
            md.contains("- ✅ `api-health` recovered (was crit)"),
            "{md}"
        );
        assert!(
            md.contains("- 🔁 `cert` still error — connection refused"),
            "{md}"
        );
        assert!(
            md.contains("**Worst:**\n- 💥 `cert` error: 0 ms — connection refused"),
            "{md}"
        );
        assert!(
            md.contains("- ⚠️ `api-latency` warn: 250 ms (band 70 – 130)"),
            "{md}"
        );
        assert!(
            !md.split("**Worst:**").nth(1).unwrap().contains("trial"),
            "a shadow check is never among the worst"
        );
    }

    #[test]
    fn a_huge_run_stays_within_the_bound_and_says_what_it_left_out() {
        let mut report = sample_report();
        let template = results()[2].clone();
        report.results = (0..2000)
            .map(|i| CheckResult {
                check: format!("check-with-a-long-name-{i:04}"),
                message: "x".repeat(500),
                ..template.clone()
            })
            .collect();
        report.changes = crate::report::model::compare(&report.results, Some(&[]));
        let md = render(&report);
        assert!(md.len() <= MAX_BYTES, "{} bytes", md.len());
        assert!(md.contains("more\n"), "{md}");
        assert!(md.contains("**Worst:**"), "{md}");
    }

    #[test]
    fn a_first_run_says_so() {
        let mut report = sample_report();
        report.previous_run = None;
        report.changes = crate::report::model::compare(&report.results, None);
        let md = render(&report);
        assert!(md.contains("**First run of this suite**"), "{md}");
    }
}
