//! Report files: `<dir>/<suite>-<YYYYMMDDTHHMMSSZ>.{html,md,json,xml}`, named after the run's
//! start. Each file is written to a temporary name and renamed, so a reader (a CI step, a web
//! server on the directory) never sees half a report; registered secrets are masked in every
//! file. When another run of the suite started in the same second already owns the name, the
//! run id's tail is appended (`nightly-20261102T020000Z-3fa9c2d1`).

use std::io;
use std::path::{Path, PathBuf};

use super::model::SuiteReport;
use super::{html, json, junit, markdown};

/// One kind of report file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Html,
    Markdown,
    Json,
    Junit,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Html, Format::Markdown, Format::Json, Format::Junit];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Markdown => "md",
            Format::Json => "json",
            Format::Junit => "xml",
        }
    }

    /// The report in this format, secrets masked.
    pub fn render(self, report: &SuiteReport) -> String {
        let text = match self {
            Format::Html => html::render(report),
            Format::Markdown => markdown::render(report),
            Format::Json => json::render(report),
            Format::Junit => junit::render(report),
        };
        crate::secrets::redact_owned(text)
    }
}

/// A file name part made of `[A-Za-z0-9._-]` only (a suite name could hold anything).
fn file_safe(s: &str) -> String {
    let safe: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() {
        "report".into()
    } else {
        safe.to_string()
    }
}

/// `<suite>-<YYYYMMDDTHHMMSSZ>` of the run's start.
pub fn file_stem(report: &SuiteReport) -> String {
    format!(
        "{}-{}",
        file_safe(&report.suite),
        report.run.started_at.format("%Y%m%dT%H%M%SZ")
    )
}

/// The stem to use in `dir`: [`file_stem`], unless another run's report holds it.
fn stem_in(dir: &Path, report: &SuiteReport) -> String {
    let stem = file_stem(report);
    let json = dir.join(format!("{stem}.json"));
    let taken_by_another = match std::fs::read_to_string(&json) {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["run"]["id"].as_str().map(str::to_string))
            .is_none_or(|id| id != report.run.id),
        Err(_) => Format::ALL
            .iter()
            .any(|f| dir.join(format!("{stem}.{}", f.extension())).exists()),
    };
    if !taken_by_another {
        return stem;
    }
    let id = &report.run.id;
    let tail: String = id
        .chars()
        .rev()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{stem}-{}", file_safe(&tail))
}

/// Writes the four report files into `dir` (created when missing); returns their paths in the
/// order html, md, json, xml.
pub fn write_all(dir: &Path, report: &SuiteReport) -> io::Result<Vec<PathBuf>> {
    write_formats(dir, report, &Format::ALL)
}

/// Writes the report in `formats` into `dir` (created when missing); returns the paths.
pub fn write_formats(
    dir: &Path,
    report: &SuiteReport,
    formats: &[Format],
) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let stem = stem_in(dir, report);
    let mut paths = Vec::new();
    for format in formats {
        let path = dir.join(format!("{stem}.{}", format.extension()));
        write_atomically(&path, &format.render(report))?;
        paths.push(path);
    }
    Ok(paths)
}

fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::sample_report;

    #[test]
    fn four_files_named_after_the_suite_and_the_run_start() {
        let dir = tempfile::tempdir().unwrap();
        let report = sample_report();
        let paths = write_all(dir.path(), &report).unwrap();
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "nightly-20261102T020000Z.html",
                "nightly-20261102T020000Z.md",
                "nightly-20261102T020000Z.json",
                "nightly-20261102T020000Z.xml"
            ]
        );
        // The same run again (a regeneration) replaces its files.
        assert_eq!(write_all(dir.path(), &report).unwrap(), paths);
        // Another run starting in the same second gets its own names.
        let mut other = report.clone();
        other.run.id = "0193a1b2-0000-7000-8000-00003fa9c2d1".into();
        let again = write_all(dir.path(), &other).unwrap();
        assert!(
            again[0].ends_with("nightly-20261102T020000Z-3fa9c2d1.html"),
            "{again:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 8);
    }

    #[test]
    fn odd_suite_names_make_safe_file_names() {
        assert_eq!(file_safe("nightly/../x y"), "nightly_.._x_y");
        assert_eq!(file_safe("..hidden"), "hidden");
        assert_eq!(file_safe(""), "report");
    }
}
