//! Conditions on a measured value: `gt(x) ge(x) lt(x) le(x) eq(x) ne(x) between(a,b) outside(a,b)
//! in(a,b,…) matches("re")`, on numbers or quoted strings. A bare YAML number or string means `eq`.
//!
//! A condition is parsed when the rule file is read; a malformed one is kept (with its error) so the
//! validator can report it together with every other problem, at the line and column it came from.

use std::fmt;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::result::{Value, format_number};

/// One literal inside a condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Num(f64),
    Str(String),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Num(n) => f.write_str(&format_number(*n)),
            Operand::Str(s) => write!(f, "{s:?}"),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Expr {
    Gt(f64),
    Ge(f64),
    Lt(f64),
    Le(f64),
    Eq(Operand),
    Ne(Operand),
    Between(f64, f64),
    Outside(f64, f64),
    In(Vec<Operand>),
    Matches(Regex),
}

/// A condition as written, with its parse result.
#[derive(Clone, Debug)]
pub struct Condition {
    source: String,
    parsed: Result<Expr, String>,
}

impl Condition {
    pub fn parse(source: &str) -> Condition {
        Condition {
            source: source.trim().to_string(),
            parsed: parse_expr(source.trim()),
        }
    }

    /// `eq(n)` for a bare number in YAML (`status: 200`).
    pub fn equals_number(n: f64) -> Condition {
        Condition {
            source: format!("eq({})", format_number(n)),
            parsed: Ok(Expr::Eq(Operand::Num(n))),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parse error, if the condition is malformed.
    pub fn error(&self) -> Option<&str> {
        self.parsed.as_ref().err().map(String::as_str)
    }

    /// Whether `value` satisfies the condition. A malformed condition (which validation rejects
    /// before anything runs) never matches.
    pub fn matches(&self, value: &Value) -> bool {
        match &self.parsed {
            Ok(e) => eval(e, value),
            Err(_) => false,
        }
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Bool(bool),
            Text(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Num(n) => Condition::equals_number(n),
            Raw::Bool(b) => Condition::parse(&format!("eq(\"{b}\")")),
            Raw::Text(t) if looks_like_call(&t) => Condition::parse(&t),
            Raw::Text(t) => Condition {
                source: format!("eq({t:?})"),
                parsed: Ok(Expr::Eq(Operand::Str(t))),
            },
        })
    }
}

impl JsonSchema for Condition {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Condition".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "gt(x) ge(x) lt(x) le(x) eq(x) ne(x) between(a,b) outside(a,b) in(a,b,…) matches(\"re\"); a bare number or string means eq",
            "anyOf": [
                {"type": "string", "pattern": "^\\s*(gt|ge|lt|le|eq|ne|between|outside|in|matches)\\s*\\(.*\\)\\s*$"},
                {"type": "number"},
                {"type": "string"}
            ]
        })
    }
}

const OPERATORS: [&str; 10] = [
    "gt", "ge", "lt", "le", "eq", "ne", "between", "outside", "in", "matches",
];

/// `name(…` with an identifier right before the parenthesis: treated as a condition call (and
/// reported when malformed, so a typo such as `gt(5` is never silently compared as text);
/// anything else (`UP (degraded)`) is a literal to compare with.
fn looks_like_call(s: &str) -> bool {
    let s = s.trim();
    match s.find('(') {
        Some(i) => {
            let name = &s[..i];
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

/// One-line reason for a regex error (the regex crate draws a multi-line caret diagram).
pub fn regex_error(re: &str, e: &regex::Error) -> String {
    let text = e.to_string();
    let reason = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error:"))
        .map(str::trim)
        .unwrap_or(text.trim());
    format!("invalid regular expression {re:?}: {reason}")
}

fn parse_expr(s: &str) -> Result<Expr, String> {
    let open = s.find('(').ok_or_else(|| {
        format!(
            "condition {s:?} is not of the form op(args); operators: {}",
            OPERATORS.join(", ")
        )
    })?;
    if !s.ends_with(')') {
        return Err(format!("condition {s:?} lacks its closing parenthesis"));
    }
    let op = s[..open].trim();
    let args =
        parse_args(&s[open + 1..s.len() - 1]).map_err(|e| format!("condition {s:?}: {e}"))?;
    let arity = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "{op}() takes {n} argument{}, got {}",
                if n == 1 { "" } else { "s" },
                args.len()
            ))
        }
    };
    let num = |i: usize| -> Result<f64, String> {
        match &args[i] {
            Operand::Num(n) => Ok(*n),
            Operand::Str(t) => Err(format!("{op}() compares numbers, got the string {t:?}")),
        }
    };
    Ok(match op {
        "gt" | "ge" | "lt" | "le" => {
            arity(1)?;
            let x = num(0)?;
            match op {
                "gt" => Expr::Gt(x),
                "ge" => Expr::Ge(x),
                "lt" => Expr::Lt(x),
                _ => Expr::Le(x),
            }
        }
        "eq" | "ne" => {
            arity(1)?;
            let x = args[0].clone();
            if op == "eq" { Expr::Eq(x) } else { Expr::Ne(x) }
        }
        "between" | "outside" => {
            arity(2)?;
            let (a, b) = (num(0)?, num(1)?);
            if a > b {
                return Err(format!(
                    "{op}({}, {}): the lower bound is above the upper bound",
                    format_number(a),
                    format_number(b)
                ));
            }
            if op == "between" {
                Expr::Between(a, b)
            } else {
                Expr::Outside(a, b)
            }
        }
        "in" => {
            if args.is_empty() {
                return Err("in() needs at least one value".into());
            }
            Expr::In(args)
        }
        "matches" => {
            arity(1)?;
            let Operand::Str(re) = &args[0] else {
                return Err("matches() takes a quoted regular expression".into());
            };
            Expr::Matches(Regex::new(re).map_err(|e| regex_error(re, &e))?)
        }
        other => {
            return Err(format!(
                "unknown condition operator {other:?}; expected one of {}",
                OPERATORS.join(", ")
            ));
        }
    })
}

/// Comma-separated numbers or quoted strings ('…' or "…", with \" and \\ escapes).
fn parse_args(s: &str) -> Result<Vec<Operand>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '"' || c == '\'' {
            chars.next();
            let mut lit = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated string".into()),
                    Some('\\') => match chars.next() {
                        Some(e) => lit.push(e),
                        None => return Err("unterminated string".into()),
                    },
                    Some(q) if q == c => break,
                    Some(o) => lit.push(o),
                }
            }
            out.push(Operand::Str(lit));
        } else {
            let mut tok = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                tok.push(c);
                chars.next();
            }
            let tok = tok.trim();
            let n: f64 = tok
                .parse()
                .map_err(|_| format!("{tok:?} is neither a number nor a quoted string"))?;
            out.push(Operand::Num(n));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => {
                if chars.clone().all(char::is_whitespace) {
                    return Err("trailing comma".into());
                }
            }
            Some(o) => return Err(format!("unexpected {o:?} after an argument")),
        }
    }
    Ok(out)
}

fn eval(e: &Expr, v: &Value) -> bool {
    let num = v.as_f64();
    let cmp = |f: &dyn Fn(f64) -> bool| num.is_some_and(f);
    match e {
        Expr::Gt(x) => cmp(&|n| n > *x),
        Expr::Ge(x) => cmp(&|n| n >= *x),
        Expr::Lt(x) => cmp(&|n| n < *x),
        Expr::Le(x) => cmp(&|n| n <= *x),
        Expr::Eq(o) => operand_eq(o, v),
        Expr::Ne(o) => !operand_eq(o, v),
        Expr::Between(a, b) => cmp(&|n| n >= *a && n <= *b),
        Expr::Outside(a, b) => cmp(&|n| n < *a || n > *b),
        Expr::In(os) => os.iter().any(|o| operand_eq(o, v)),
        Expr::Matches(re) => re.is_match(&v.as_text()),
    }
}

fn operand_eq(o: &Operand, v: &Value) -> bool {
    match o {
        Operand::Num(x) => v.as_f64().is_some_and(|n| n == *x),
        Operand::Str(s) => v.as_text() == *s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(n: f64) -> Value {
        Value::Num(n)
    }
    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn table_of_operators() {
        let cases: &[(&str, Value, bool)] = &[
            ("gt(60)", num(61.0), true),
            ("gt(60)", num(60.0), false),
            ("ge(1)", num(1.0), true),
            ("lt(0.2)", num(0.1), true),
            ("le(5)", num(5.0), true),
            ("le(5)", num(5.1), false),
            ("eq(200)", num(200.0), true),
            ("eq(200)", text("200"), true),
            ("ne(0)", num(0.0), false),
            ("eq(\"UP\")", text("UP"), true),
            ("eq('UP')", text("DOWN"), false),
            ("between(10, 20)", num(10.0), true),
            ("between(10, 20)", num(21.0), false),
            ("outside(10, 20)", num(21.0), true),
            ("outside(10,20)", num(15.0), false),
            ("in(200, 204, 301)", num(204.0), true),
            ("in(\"up\", \"degraded\")", text("up"), true),
            ("in(\"up\")", text("down"), false),
            ("matches(\"^ok\")", text("ok: fine"), true),
            ("matches('^[0-9]+$')", num(42.0), true),
            ("gt(5)", text("not a number"), false),
            ("  gt( -3.5 )  ", num(-3.0), true),
        ];
        for (src, v, want) in cases {
            let c = Condition::parse(src);
            assert_eq!(c.error(), None, "{src}");
            assert_eq!(c.matches(v), *want, "{src} on {v:?}");
        }
    }

    #[test]
    fn malformed_conditions_say_why() {
        let cases = [
            ("gt", "not of the form"),
            ("gt(", "closing parenthesis"),
            ("gt(abc)", "neither a number nor a quoted string"),
            ("gt(1, 2)", "takes 1 argument"),
            ("between(5)", "takes 2 arguments"),
            ("between(20, 10)", "lower bound is above"),
            ("foo(1)", "unknown condition operator"),
            ("matches(\"[\")", "invalid regular expression"),
            ("matches(3)", "quoted regular expression"),
            ("eq(\"open)", "unterminated string"),
            ("in()", "at least one"),
            ("gt(\"x\")", "compares numbers"),
            ("in(1,)", "trailing comma"),
            ("ge(1", "closing parenthesis"),
        ];
        for (src, want) in cases {
            let c = Condition::parse(src);
            let e = c.error().unwrap_or_else(|| panic!("{src} should fail"));
            assert!(e.contains(want), "{src}: {e}");
        }
    }

    #[test]
    fn bare_yaml_values_mean_eq() {
        let c: Condition = serde_json::from_str("200").unwrap();
        assert!(c.matches(&num(200.0)));
        assert_eq!(c.source(), "eq(200)");
        let c: Condition = serde_json::from_str("\"UP\"").unwrap();
        assert!(c.matches(&text("UP")));
        let c: Condition = serde_json::from_str("\"lt(300)\"").unwrap();
        assert!(c.matches(&num(299.0)));
        let c: Condition = serde_json::from_str("\"UP (degraded)\"").unwrap();
        assert!(c.matches(&text("UP (degraded)")));
        let c: Condition = serde_json::from_str("\"gt(5\"").unwrap();
        assert!(c.error().is_some());
    }
}
