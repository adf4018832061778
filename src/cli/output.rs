//! Printing results: a table for people (coloured on a terminal) and a one-line summary.

use std::time::Duration;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};

use crate::engine::RunOutcome;
use crate::result::{CheckResult, Status, format_number};

pub fn table(results: &[CheckResult], color: bool) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "STATUS", "CHECK", "SERIES", "VALUE", "BASELINE", "TIME", "MESSAGE",
        ]);
    if !color {
        t.force_no_tty();
    }
    for r in results {
        let mut status = Cell::new(status_label(r));
        if color {
            status = status.fg(status_color(r.status));
        }
        t.add_row(vec![
            status,
            Cell::new(&r.check),
            Cell::new(&r.series),
            Cell::new(value_text(r)),
            Cell::new(band_text(r)),
            Cell::new(format!("{} ms", format_number(r.duration_ms))),
            Cell::new(&r.message),
        ]);
    }
    format!("{t}\n")
}

fn status_label(r: &CheckResult) -> String {
    if r.shadow {
        format!("{} (shadow)", r.status)
    } else {
        r.status.to_string()
    }
}

fn status_color(s: Status) -> Color {
    match s {
        Status::Ok => Color::Green,
        Status::Warn => Color::Yellow,
        Status::Crit | Status::Error => Color::Red,
        Status::Skipped => Color::Grey,
    }
}

fn value_text(r: &CheckResult) -> String {
    match &r.value {
        Some(v) if r.unit.is_empty() => v.to_string(),
        Some(v) => format!("{v} {}", r.unit),
        None => "-".into(),
    }
}

fn band_text(r: &CheckResult) -> String {
    match &r.baseline {
        Some(b) => format!(
            "[{}, {}] n={}",
            format_number(b.lower),
            format_number(b.upper),
            b.samples
        ),
        None => String::new(),
    }
}

pub fn summary(o: &RunOutcome, elapsed: Duration) -> String {
    let c = &o.run.counts;
    format!(
        "{} results: {} ok, {} warn, {} crit, {} error · revision {} · run {} · {:.1}s",
        c.total(),
        c.ok,
        c.warn,
        c.crit,
        c.error,
        o.run.revision,
        o.run.id,
        elapsed.as_secs_f64()
    )
}
