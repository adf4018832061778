//! Label matchers in Alertmanager's syntax: `severity="critical"`, `service=~"orders|pay.*"`,
//! `env!="dev"`, `team!~"qa|test"`. Routes, silences, maintenance windows and inhibition rules all
//! select alerts with them, so they share one parser and one meaning:
//!
//! - a label the alert does not carry counts as the empty string (so `env!="dev"` matches an
//!   alert without `env`, and `env=""` matches only such alerts), as in Alertmanager;
//! - regular expressions are anchored at both ends (`=~"pay.*"` does not match `prepay`).
//!
//! In rule files a matcher is a string, or a mapping `{name, op, value}`; both are checked while
//! loading, and a parse error names the column inside the string where it went wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use regex::Regex;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An alert's labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// How a matcher compares the label's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum MatchOp {
    #[default]
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "=~")]
    Re,
    #[serde(rename = "!~")]
    NotRe,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }

    fn is_regex(self) -> bool {
        matches!(self, MatchOp::Re | MatchOp::NotRe)
    }
}

/// One condition on one label.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored pattern, compiled once (only for `=~` and `!~`).
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

/// Why a matcher did not parse; `column` is 1-based, in characters of the matcher text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatcherError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for MatcherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for MatcherError {}

impl Matcher {
    /// A matcher from its parts; fails only on an invalid regular expression or label name.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        if !is_label_name(name) {
            return Err(format!(
                "invalid label name {name:?}: use letters, digits and _ (not starting with a digit)"
            ));
        }
        let regex = if op.is_regex() {
            let anchored = format!("^(?:{value})$");
            let re = Regex::new(&anchored).map_err(|e| crate::condition::regex_error(value, &e))?;
            Some(re)
        } else {
            None
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Whether `labels` satisfy this matcher (a missing label is the empty string).
    pub fn matches(&self, labels: &Labels) -> bool {
        let actual = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => actual == self.value,
            (MatchOp::Ne, _) => actual != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(actual),
            (MatchOp::NotRe, Some(re)) => !re.is_match(actual),
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }

    /// Whether the matcher also matches an alert lacking the label: a silence made only of such
    /// matchers would silence everything, which the silence API refuses.
    pub fn matches_empty(&self) -> bool {
        self.matches(&Labels::new())
    }
}

/// All matchers hold (an empty list matches everything).
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// Whether `name` is a valid label name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl FromStr for Matcher {
    type Err = MatcherError;

    /// One matcher: `name op value`, the value double-quoted (with `\"`, `\\`, `\n` escapes) or
    /// bare (the rest of the text, trimmed).
    fn from_str(text: &str) -> Result<Matcher, MatcherError> {
        let chars: Vec<char> = text.chars().collect();
        let mut scan = Scanner {
            chars: &chars,
            pos: 0,
        };
        let matcher = scan.matcher(&[])?;
        scan.skip_spaces();
        if scan.pos < chars.len() {
            return Err(scan.error("unexpected text after the matcher's value"));
        }
        Ok(matcher)
    }
}

/// Several matchers separated by commas, optionally in braces: `{a="1", b=~"x|y"}` (the form the
/// CLI and Alertmanager's tools take).
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, MatcherError> {
    let chars: Vec<char> = text.chars().collect();
    let mut scan = Scanner {
        chars: &chars,
        pos: 0,
    };
    scan.skip_spaces();
    let braced = scan.eat('{');
    let mut out = Vec::new();
    loop {
        scan.skip_spaces();
        if scan.at_end() || (braced && scan.peek() == Some('}')) {
            break;
        }
        out.push(scan.matcher(&[',', '}'])?);
        scan.skip_spaces();
        if !scan.eat(',') {
            break;
        }
    }
    scan.skip_spaces();
    if braced && !scan.eat('}') {
        return Err(scan.error("expected `,` or the closing `}`"));
    }
    scan.skip_spaces();
    if !scan.at_end() {
        return Err(scan.error("expected `,` between matchers"));
    }
    Ok(out)
}

struct Scanner<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, message: impl Into<String>) -> MatcherError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> MatcherError {
        MatcherError {
            column: pos + 1,
            message: message.into(),
        }
    }

    /// `name op value`; a bare value ends at any of `stops`.
    fn matcher(&mut self, stops: &[char]) -> Result<Matcher, MatcherError> {
        self.skip_spaces();
        let name = self.label_name()?;
        self.skip_spaces();
        let op = self.op()?;
        self.skip_spaces();
        let value_at = self.pos;
        let value = match self.peek() {
            Some('"') => self.quoted()?,
            _ => self.bare(stops),
        };
        Matcher::new(&name, op, &value).map_err(|e| self.error_at(value_at, e))
    }

    fn label_name(&mut self) -> Result<String, MatcherError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if name.is_empty() {
            return Err(self.error("expected a label name"));
        }
        if !is_label_name(&name) {
            return Err(self.error_at(start, "a label name must not start with a digit"));
        }
        Ok(name)
    }

    fn op(&mut self) -> Result<MatchOp, MatcherError> {
        let at = self.pos;
        let op = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
            (Some('='), Some('~')) => Some((MatchOp::Re, 2)),
            (Some('!'), Some('~')) => Some((MatchOp::NotRe, 2)),
            (Some('!'), Some('=')) => Some((MatchOp::Ne, 2)),
            (Some('='), _) => Some((MatchOp::Eq, 1)),
            _ => None,
        };
        let (op, len) =
            op.ok_or_else(|| self.error_at(at, "expected an operator: =, !=, =~ or !~"))?;
        self.pos += len;
        Ok(op)
    }

    fn quoted(&mut self) -> Result<String, MatcherError> {
        let open = self.pos;
        self.pos += 1;
        let mut value = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '"' => return Ok(value),
                '\\' => {
                    let escaped = self
                        .peek()
                        .ok_or_else(|| self.error_at(open, "unterminated quoted value"))?;
                    self.pos += 1;
                    value.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
                other => value.push(other),
            }
        }
        Err(self.error_at(open, "unterminated quoted value (missing closing `\"`)"))
    }

    fn bare(&mut self, stops: &[char]) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| !stops.contains(&c)) {
            self.pos += 1;
        }
        let value: String = self.chars[start..self.pos].iter().collect();
        value.trim().to_string()
    }
}

impl fmt::Display for Matcher {
    /// The canonical text, which parses back to the same matcher.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let escaped = self
            .value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        write!(f, "{}{}\"{escaped}\"", self.name, self.op.as_str())
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The mapping form of a matcher: `{name: severity, op: "=~", value: "crit.*"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherParts {
    name: String,
    #[serde(default)]
    op: MatchOp,
    value: String,
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Matcher, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Matcher;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a matcher such as severity="critical" or {name, op, value}"#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Matcher, E> {
                v.parse::<Matcher>()
                    .map_err(|e| E::custom(format!("invalid matcher {v:?}: {e}")))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Matcher, A::Error> {
                let parts = MatcherParts::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Matcher::new(&parts.name, parts.op, &parts.value).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Matcher {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Matcher".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A label matcher: name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\" (regexes anchored), or {name, op, value}",
            "anyOf": [
                {"type": "string", "pattern": "^\\s*[A-Za-z_][A-Za-z0-9_]*\\s*(=~|!~|!=|=)"},
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "value"],
                    "properties": {
                        "name": {"type": "string"},
                        "op": {"enum": ["=", "!=", "=~", "!~"]},
                        "value": {"type": "string"}
                    }
                }
            ]
        })
    }
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
