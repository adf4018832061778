//! A YAML document as a tree of [`Node`]s that remember where they were written.
//!
//! serde-saphyr parses the text (anchors, aliases and merge keys resolved, duplicate keys rejected);
//! its `Spanned` wrapper gives every node its line and column. Keeping the tree lets patrol merge
//! `defaults`, substitute `${…}` references and deserialize each check on its own, so one bad check
//! does not hide the problems of the others, and every problem points at its line and column.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// 1-based line and column (in characters) within a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub loc: Loc,
}

impl Node {
    pub fn new(value: NodeValue, loc: Loc) -> Node {
        Node { value, loc }
    }

    pub fn null(loc: Loc) -> Node {
        Node::new(NodeValue::Null, loc)
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, NodeValue::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            NodeValue::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The (key, value) pair under `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.scalar_text().as_deref() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// Text of a scalar (numbers and booleans spelled as YAML reads them).
    pub fn scalar_text(&self) -> Option<String> {
        Some(match &self.value {
            NodeValue::Str(s) => s.clone(),
            NodeValue::Int(i) => i.to_string(),
            NodeValue::Float(f) => f.to_string(),
            NodeValue::Bool(b) => b.to_string(),
            NodeValue::Null | NodeValue::Seq(_) | NodeValue::Map(_) => return None,
        })
    }

    /// The node as JSON, without positions (for hashing and for `serde_json` consumers).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            NodeValue::Null => J::Null,
            NodeValue::Bool(b) => J::Bool(*b),
            NodeValue::Int(i) => J::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            NodeValue::Str(s) => J::String(s.clone()),
            NodeValue::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// SHA-256 (first 16 hex digits) of the mapping's entries whose keys are in `keys` (all when
    /// None), independent of their order in the file.
    pub fn fingerprint(&self, keys: Option<&[&str]>) -> String {
        use sha2::{Digest, Sha256};
        let mut json = self.to_json();
        if let (Some(keys), serde_json::Value::Object(map)) = (keys, &mut json) {
            map.retain(|k, _| keys.contains(&k.as_str()));
        }
        // serde_json's map is ordered by key, so the text is canonical.
        let text = serde_json::to_string(&json).unwrap_or_default();
        hex::encode(Sha256::digest(text.as_bytes()))[..16].to_string()
    }

    /// What a person would call this node's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) | NodeValue::Float(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    /// Location of the node at `path` below this one (mapping keys and list indexes as text),
    /// or of the deepest ancestor that exists. A path ending in a key that is present points at
    /// the value; `Field::Key` segments point at the key itself (for "unknown field").
    pub fn locate(&self, path: &[PathSeg]) -> Loc {
        let mut node = self;
        for seg in path {
            let next = match seg {
                PathSeg::Key(k) => node.get(k),
                PathSeg::KeyName(k) => match node.entry(k) {
                    Some((key, _)) => return key.loc,
                    None => None,
                },
                PathSeg::Index(i) => node.as_seq().and_then(|s| s.get(*i)),
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.loc
    }
}

/// One step of a path inside a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg {
    /// The value under a mapping key.
    Key(String),
    /// The key itself (where an unknown or duplicate key is reported).
    KeyName(String),
    Index(usize),
}

impl PathSeg {
    pub fn key(k: impl Into<String>) -> PathSeg {
        PathSeg::Key(k.into())
    }
}

/// A path written as `a.b[2].c` for messages.
pub fn path_text(path: &[PathSeg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) | PathSeg::KeyName(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathSeg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// A YAML syntax error with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    pub loc: Loc,
    pub message: String,
}

/// Parses one YAML document. An empty document is `Null`.
pub fn parse_yaml(text: &str) -> Result<Node, SyntaxError> {
    if text.trim().is_empty() {
        return Ok(Node::null(Loc { line: 1, col: 1 }));
    }
    // YAML 1.2 booleans only: a key `y:` or a value `no` (Norway) stays text.
    let options = serde_saphyr::options! { strict_booleans: true, with_snippet: false };
    match serde_saphyr::from_str_with_options::<Spanned<Raw>>(text, options) {
        Ok(root) => Ok(convert(root)),
        Err(e) => {
            let loc = e
                .location()
                .map(|l| Loc {
                    line: l.line() as u32,
                    col: l.column() as u32,
                })
                .unwrap_or(Loc { line: 1, col: 1 });
            Err(SyntaxError {
                loc,
                message: first_line_of(&e.to_string()),
            })
        }
    }
}

/// serde-saphyr renders a snippet under the message; patrol prints `file:line:col: message` itself,
/// so only the message is kept, without the "line L column C:" prefix.
fn first_line_of(rendered: &str) -> String {
    let line = rendered.lines().next().unwrap_or(rendered).trim();
    let line = line.strip_prefix("error:").unwrap_or(line).trim();
    let line = match line.strip_prefix("line ") {
        Some(rest) => match rest.find(": ") {
            Some(i) if rest[..i].contains("column") => &rest[i + 2..],
            _ => line,
        },
        None => line,
    };
    let line = match line.rfind(" at line ") {
        Some(i) if line[i..].contains("column") => &line[..i],
        _ => line,
    };
    // serde-saphyr's advice is about its API, not about the user's file.
    let line = line
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(line);
    format!("YAML syntax: {line}")
}

/// Mirror of the document as serde-saphyr delivers it, every child spanned.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

fn convert(s: Spanned<Raw>) -> Node {
    let loc = Loc {
        line: s.referenced.line() as u32,
        col: s.referenced.column() as u32,
    };
    let value = match s.value {
        Raw::Null => NodeValue::Null,
        Raw::Bool(b) => NodeValue::Bool(b),
        Raw::Int(i) => NodeValue::Int(i),
        Raw::Float(f) => NodeValue::Float(f),
        Raw::Str(s) => NodeValue::Str(s),
        Raw::Seq(items) => NodeValue::Seq(items.into_iter().map(convert).collect()),
        Raw::Map(entries) => NodeValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (convert(k), convert(v)))
                .collect(),
        ),
    };
    Node { value, loc }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
                Raw::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
                Ok(i64::try_from(v)
                    .map(Raw::Int)
                    .unwrap_or(Raw::Float(v as f64)))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
                Ok(i64::try_from(v)
                    .map(Raw::Int)
                    .unwrap_or(Raw::Float(v as f64)))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
                Ok(i64::try_from(v)
                    .map(Raw::Int)
                    .unwrap_or(Raw::Float(v as f64)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw, E> {
                Ok(Raw::Str(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Raw, E> {
                Ok(Raw::Str(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Raw::Seq(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_entry()? {
                    v.push(x);
                }
                Ok(Raw::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_their_positions() {
        let doc = parse_yaml("a: 1\nchecks:\n  - name: x\n    crit: gt(5)\n").unwrap();
        assert_eq!(doc.get("a").unwrap().value, NodeValue::Int(1));
        let path = [
            PathSeg::key("checks"),
            PathSeg::Index(0),
            PathSeg::key("crit"),
        ];
        assert_eq!(doc.locate(&path), Loc { line: 4, col: 11 });
        let key = [
            PathSeg::key("checks"),
            PathSeg::Index(0),
            PathSeg::KeyName("crit".into()),
        ];
        assert_eq!(doc.locate(&key), Loc { line: 4, col: 5 });
    }

    #[test]
    fn aliases_and_merges_resolve() {
        let doc = parse_yaml("base: &b {x: 1}\nuse:\n  <<: *b\n  y: 2\n").unwrap();
        let u = doc.get("use").unwrap();
        assert_eq!(u.get("x").unwrap().value, NodeValue::Int(1));
        assert_eq!(u.get("y").unwrap().value, NodeValue::Int(2));
    }

    #[test]
    fn yaml_11_booleans_stay_text() {
        let doc = parse_yaml("y: no\non: yes\nt: true\n").unwrap();
        assert_eq!(doc.get("y").unwrap().value, NodeValue::Str("no".into()));
        assert_eq!(doc.get("on").unwrap().value, NodeValue::Str("yes".into()));
        assert_eq!(doc.get("t").unwrap().value, NodeValue::Bool(true));
    }

    #[test]
    fn syntax_errors_have_position_and_short_message() {
        let e = parse_yaml("a: [1,\nb: 2\n").unwrap_err();
        assert_eq!(e.loc, Loc { line: 1, col: 4 });
        assert!(e.message.starts_with("YAML syntax: "), "{}", e.message);
        assert!(!e.message.contains('\n'));
        let e = parse_yaml("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.loc, Loc { line: 2, col: 1 });
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }
}
