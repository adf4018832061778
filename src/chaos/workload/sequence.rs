//! Reading the publisher's sequence number back from an event's `data:`.
//!
//! `json:$.seq` (a JSONPath into the data parsed as JSON) or `regex:<re>` with exactly one capture
//! group. The value must be a whole number ≥ 1 (a JSON number, or digits in a string or a capture).

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json_path::JsonPath;

/// A parsed `sequence:` setting.
#[derive(Clone, Debug)]
pub enum SequenceReader {
    Json(JsonPath),
    /// `$.name` (or `$['name']`): one top-level field, read without building the document
    /// (every subscriber reads every event: this is the swarm's hottest path).
    JsonField(String),
    Regex(regex::Regex),
}

impl SequenceReader {
    pub fn parse(spec: &str) -> Result<SequenceReader, String> {
        if let Some(text) = spec.strip_prefix("json:") {
            let path = JsonPath::parse(text.trim())
                .map_err(|e| format!("invalid JSONPath {text:?} in `json:`: {e}"))?;
            return Ok(match top_level_field(text.trim()) {
                Some(name) => SequenceReader::JsonField(name),
                None => SequenceReader::Json(path),
            });
        }
        if let Some(re) = spec.strip_prefix("regex:") {
            let compiled =
                regex::Regex::new(re).map_err(|e| crate::condition::regex_error(re, &e))?;
            // captures_len counts the whole match as group 0.
            if compiled.captures_len() != 2 {
                return Err(format!(
                    "the regex {re:?} must have exactly one capture group (it has {})",
                    compiled.captures_len() - 1
                ));
            }
            return Ok(SequenceReader::Regex(compiled));
        }
        Err(format!(
            "{spec:?} is not a sequence reader: write `json:$.seq` or `regex:seq=(\\d+)`"
        ))
    }

    /// The seq in `data`, or `None` when it has none (not JSON, no match, not a whole number ≥ 1).
    pub fn read(&self, data: &str) -> Option<u64> {
        match self {
            SequenceReader::Json(path) => {
                let value: serde_json::Value = serde_json::from_str(data).ok()?;
                let found = path.query(&value).exactly_one().ok()?;
                match found {
                    serde_json::Value::Number(n) => n.as_u64().and_then(valid),
                    serde_json::Value::String(s) => digits(s),
                    _ => None,
                }
            }
            SequenceReader::JsonField(name) => {
                let mut de = serde_json::Deserializer::from_str(data);
                let seq = FieldSeed(name).deserialize(&mut de).ok()?;
                de.end().ok()?;
                seq
            }
            SequenceReader::Regex(re) => digits(re.captures(data)?.get(1)?.as_str()),
        }
    }
}

/// The field name of `$.name` or `$['name']` (plain names only), else `None`.
fn top_level_field(path: &str) -> Option<String> {
    if let Some(name) = path.strip_prefix("$.") {
        let mut chars = name.chars();
        let first = chars.next()?;
        let plain = (first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        return plain.then(|| name.to_string());
    }
    let name = path.strip_prefix("$['")?.strip_suffix("']")?;
    (!name.contains(['\\', '\''])).then(|| name.to_string())
}

/// Reads one field of a JSON object as a seq, skipping the others without allocating.
struct FieldSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Option<u64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<u64>, A::Error> {
        // Like a JSON value's map, the last of repeated keys wins.
        let mut seq = None;
        while let Some(is_ours) = map.next_key_seed(KeyIs(self.0))? {
            if is_ours {
                seq = map.next_value::<SeqValue>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(seq)
    }
}

/// Whether a key (escaped or not) is the one looked for.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// A field value as a seq: a whole number ≥ 1, or digits in a string; anything else is none.
struct SeqValue(Option<u64>);

impl<'de> Deserialize<'de> for SeqValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SeqValue, D::Error> {
        d.deserialize_any(SeqValueVisitor)
    }
}

struct SeqValueVisitor;

impl<'de> Visitor<'de> for SeqValueVisitor {
    type Value = SeqValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a seq")
    }

    fn visit_u64<E>(self, v: u64) -> Result<SeqValue, E> {
        Ok(SeqValue(valid(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<SeqValue, E> {
        Ok(SeqValue(u64::try_from(v).ok().and_then(valid)))
    }

    fn visit_f64<E>(self, _: f64) -> Result<SeqValue, E> {
        Ok(SeqValue(None))
    }

    fn visit_str<E>(self, v: &str) -> Result<SeqValue, E> {
        Ok(SeqValue(digits(v)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<SeqValue, E> {
        Ok(SeqValue(None))
    }

    fn visit_unit<E>(self) -> Result<SeqValue, E> {
        Ok(SeqValue(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SeqValue, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(SeqValue(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SeqValue, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(SeqValue(None))
    }
}

fn digits(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().and_then(valid)
}

/// Seqs start at 1; `u64::MAX` is reserved (the received set cannot hold it).
fn valid(seq: u64) -> Option<u64> {
    (1..u64::MAX).contains(&seq).then_some(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_read_numbers_and_digit_strings() {
        let r = SequenceReader::parse("json:$.seq").unwrap();
        assert_eq!(r.read(r#"{"seq": 41, "ts": 1795258090}"#), Some(41));
        assert_eq!(r.read(r#"{"seq": "42"}"#), Some(42));
        assert_eq!(r.read(r#"{"seq": 4.5}"#), None);
        assert_eq!(r.read(r#"{"seq": -1}"#), None);
        assert_eq!(r.read(r#"{"seq": 0}"#), None);
        assert_eq!(r.read(r#"{"other": 1}"#), None);
        assert_eq!(r.read("not json"), None);
        let nested = SequenceReader::parse("json:$.meta.n").unwrap();
        assert_eq!(nested.read(r#"{"meta": {"n": 7}}"#), Some(7));
    }

    #[test]
    fn the_top_level_fast_path_reads_exactly_what_the_json_path_reads() {
        let fast = SequenceReader::parse("json:$.seq").unwrap();
        assert!(matches!(fast, SequenceReader::JsonField(ref n) if n == "seq"));
        let quoted = SequenceReader::parse("json:$['seq']").unwrap();
        assert!(matches!(quoted, SequenceReader::JsonField(_)));
        let general = SequenceReader::Json(JsonPath::parse("$.seq").unwrap());
        let samples = [
            r#"{"seq": 41, "ts": 1795258090}"#,
            r#"{"ts": {"seq": 3}, "seq": "42", "x": [1, {"seq": 9}]}"#,
            r#"{"se\u0071": 7}"#,
            r#"{"seq": 1, "seq": 2}"#,
            r#"{"seq": 4.5}"#,
            r#"{"seq": -3}"#,
            r#"{"seq": 0}"#,
            r#"{"seq": null}"#,
            r#"{"seq": true}"#,
            r#"{"seq": [1]}"#,
            r#"{"seq": 18446744073709551615}"#,
            r#"{"seq": 99999999999999999999999}"#,
            r#"{"other": 1}"#,
            r#"[1, 2]"#,
            r#"{"seq": 1} trailing"#,
            r#"{"seq": 5"#,
            "",
            "7",
        ];
        for data in samples {
            assert_eq!(fast.read(data), general.read(data), "{data}");
            assert_eq!(quoted.read(data), general.read(data), "{data}");
        }
        assert_eq!(
            fast.read(r#"{"se\u0071": 7}"#),
            Some(7),
            "escaped keys match"
        );
        // Anything but a plain top-level name takes the general path.
        for path in ["$.a.b", "$..seq", "$[0]", "$.seq[0]", "$['a\\'b']"] {
            let r = SequenceReader::parse(&format!("json:{path}"));
            assert!(!matches!(r, Ok(SequenceReader::JsonField(_))), "{path}");
        }
    }

    #[test]
    fn regexes_read_their_one_group() {
        let r = SequenceReader::parse(r"regex:seq=(\d+)").unwrap();
        assert_eq!(r.read("order seq=17 ok"), Some(17));
        assert_eq!(r.read("order seq= ok"), None);
        assert_eq!(r.read("nothing"), None);
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let e = SequenceReader::parse(r"regex:(\d+)-(\d+)").unwrap_err();
        assert!(e.contains("exactly one capture group"), "{e}");
        assert!(SequenceReader::parse("regex:(").is_err());
        assert!(SequenceReader::parse("json:$[").is_err());
        let e = SequenceReader::parse("seq").unwrap_err();
        assert!(e.contains("json:$.seq"), "{e}");
    }
}
