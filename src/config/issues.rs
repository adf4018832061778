//! Problems found in a rule file, collected (never returned one at a time) so `patrol validate`
//! can report all of them at once, each as `file:line:col: error: message`.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::node::{Loc, PathSeg};
use crate::condition::Condition;

/// One problem, located.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, loc: Loc, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            line: loc.line,
            column: loc.col,
            message: crate::secrets::redact_owned(message.into()),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Problems inside one check (or target), by path relative to its mapping; `load.rs` turns the
/// paths into lines and columns.
#[derive(Debug, Default)]
pub struct Issues {
    pub items: Vec<(Vec<PathSeg>, String)>,
}

impl Issues {
    /// A problem with the value at `path` (`["expect", "json", "$.status"]`).
    pub fn at(&mut self, path: &[&str], message: impl Into<String>) {
        let path = path.iter().map(|s| PathSeg::key(*s)).collect();
        self.items.push((path, message.into()));
    }

    /// A problem with the key at the end of `path` (unknown or misplaced field).
    pub fn at_key(&mut self, path: &[&str], message: impl Into<String>) {
        let mut segs: Vec<PathSeg> = path.iter().map(|s| PathSeg::key(*s)).collect();
        if let Some(PathSeg::Key(last)) = segs.pop() {
            segs.push(PathSeg::KeyName(last));
        }
        self.items.push((segs, message.into()));
    }

    /// Reports a malformed condition.
    pub fn condition(&mut self, path: &[&str], cond: Option<&Condition>) {
        if let Some(e) = cond.and_then(Condition::error) {
            self.at(path, e.to_string());
        }
    }

    /// Reports a malformed regular expression.
    pub fn regex(&mut self, path: &[&str], re: Option<&str>) {
        if let Some(re) = re
            && let Err(e) = regex::Regex::new(re)
        {
            self.at(path, crate::condition::regex_error(re, &e));
        }
    }

    /// Reports a malformed JSONPath (RFC 9535).
    pub fn json_path(&mut self, path: &[&str], expr: &str) {
        if let Err(e) = serde_json_path::JsonPath::parse(expr) {
            self.at(path, format!("invalid JSONPath {expr:?}: {e}"));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
