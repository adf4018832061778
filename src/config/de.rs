//! serde over [`Node`]: deserializes a typed struct from one subtree, and every error carries the
//! location of the node where it arose (the key for an unknown field, the value for a wrong type,
//! the mapping for a missing field).

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::node::{Loc, Node, NodeValue};

#[derive(Clone, Debug, PartialEq)]
pub struct DeError {
    pub loc: Option<Loc>,
    /// The innermost field the error arose in.
    pub field: Option<String>,
    pub message: String,
}

impl DeError {
    fn at(mut self, loc: Loc) -> DeError {
        self.loc.get_or_insert(loc);
        self
    }

    fn in_field(mut self, key: &Node) -> DeError {
        if self.field.is_none() {
            self.field = key.scalar_text();
        }
        self
    }

    /// The message with the field it concerns: "`severity`: unknown variant `high`, …".
    pub fn describe(&self) -> String {
        match &self.field {
            Some(f) => format!("`{f}`: {}", self.message),
            None => self.message.clone(),
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            loc: None,
            field: None,
            message: msg.to_string(),
        }
    }
}

/// A field written as one string or as a list of them (`series: instance` or
/// `series: [job, instance]`); fields deserialize through it and word their own error.
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The strings of a field that takes one or many, or `message` as the field's error.
    pub fn strings<'de, D: serde::Deserializer<'de>>(
        d: D,
        message: &'static str,
    ) -> Result<Vec<String>, D::Error> {
        use serde::Deserialize;
        match OneOrMany::deserialize(d) {
            Ok(OneOrMany::One(s)) => Ok(vec![s]),
            Ok(OneOrMany::Many(v)) => Ok(v),
            Err(_) => Err(serde::de::Error::custom(message)),
        }
    }
}

/// Deserializes `T` from `node`. `only` restricts a mapping to the listed keys (the others are
/// invisible), which lets one mapping feed two structs: a check's shared fields and its kind's own.
pub fn from_node<T: DeserializeOwned>(node: &Node, only: Option<&[&str]>) -> Result<T, DeError> {
    T::deserialize(NodeDe { node, only }).map_err(|e: DeError| e.at(node.loc))
}

/// The field names serde would accept for struct `T` (what `deserialize_struct` is told).
pub fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe;
    #[derive(Debug)]
    struct Found(&'static [&'static str]);
    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("fields")
        }
    }
    impl std::error::Error for Found {}
    impl de::Error for Found {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Found(&[])
        }
    }
    impl<'de> de::Deserializer<'de> for Probe {
        type Error = Found;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(&[]))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    match T::deserialize(Probe) {
        Err(Found(fields)) => fields,
        Ok(_) => &[],
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    only: Option<&'a [&'a str]>,
}

impl<'a> NodeDe<'a> {
    fn plain(node: &'a Node) -> Self {
        NodeDe { node, only: None }
    }

    fn visit_map_node<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let NodeValue::Map(entries) = &self.node.value else {
            return Err(self.invalid_type(&visitor));
        };
        let only = self.only;
        let visible = entries.iter().filter(move |(k, _)| match only {
            None => true,
            Some(keys) => k.scalar_text().is_some_and(|t| keys.contains(&t.as_str())),
        });
        visitor.visit_map(MapDe {
            iter: Box::new(visible),
            value: None,
        })
    }

    fn invalid_type<'de, V: Visitor<'de>>(&self, visitor: &V) -> DeError {
        let unexp = match &self.node.value {
            NodeValue::Null => de::Unexpected::Unit,
            NodeValue::Bool(b) => de::Unexpected::Bool(*b),
            NodeValue::Int(i) => de::Unexpected::Signed(*i),
            NodeValue::Float(f) => de::Unexpected::Float(*f),
            NodeValue::Str(s) => de::Unexpected::Str(s),
            NodeValue::Seq(_) => de::Unexpected::Seq,
            NodeValue::Map(_) => de::Unexpected::Map,
        };
        <DeError as de::Error>::invalid_type(unexp, visitor).at(self.node.loc)
    }
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let loc = self.node.loc;
        let r = match &self.node.value {
            NodeValue::Null => visitor.visit_unit(),
            NodeValue::Bool(b) => visitor.visit_bool(*b),
            NodeValue::Int(i) => visitor.visit_i64(*i),
            NodeValue::Float(f) => visitor.visit_f64(*f),
            NodeValue::Str(s) => visitor.visit_str(s),
            NodeValue::Seq(items) => visitor.visit_seq(SeqDe { iter: items.iter() }),
            NodeValue::Map(_) => {
                return self.visit_map_node(visitor).map_err(|e: DeError| e.at(loc));
            }
        };
        r.map_err(|e: DeError| e.at(loc))
    }

    /// YAML people write `name: 200` or `tier: 1` and mean text: scalars are accepted as strings.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let loc = self.node.loc;
        match &self.node.value {
            NodeValue::Int(_) | NodeValue::Float(_) | NodeValue::Bool(_) => {
                let text = self.node.scalar_text().unwrap_or_default();
                visitor.visit_string(text).map_err(|e: DeError| e.at(loc))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            let loc = self.node.loc;
            visitor.visit_some(self).map_err(|e: DeError| e.at(loc))
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let loc = self.node.loc;
        visitor
            .visit_newtype_struct(self)
            .map_err(|e: DeError| e.at(loc))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let loc = self.node.loc;
        self.visit_map_node(visitor).map_err(|e: DeError| e.at(loc))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let loc = self.node.loc;
        if self.node.is_null() {
            // `headers:` with nothing under it is an empty mapping, not an error.
            return visitor
                .visit_map(MapDe {
                    iter: Box::new(std::iter::empty()),
                    value: None,
                })
                .map_err(|e: DeError| e.at(loc));
        }
        self.visit_map_node(visitor).map_err(|e: DeError| e.at(loc))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let loc = self.node.loc;
        match &self.node.value {
            NodeValue::Null => visitor.visit_seq(SeqDe { iter: [].iter() }),
            NodeValue::Seq(items) => visitor.visit_seq(SeqDe { iter: items.iter() }),
            _ => Err(self.invalid_type(&visitor)),
        }
        .map_err(|e: DeError| e.at(loc))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let loc = self.node.loc;
        match &self.node.value {
            NodeValue::Str(_) | NodeValue::Int(_) | NodeValue::Bool(_) => {
                let text = self.node.scalar_text().unwrap_or_default();
                visitor.visit_enum(text.into_deserializer())
            }
            NodeValue::Map(entries) if entries.len() == 1 => visitor.visit_enum(EnumDe {
                key: &entries[0].0,
                value: &entries[0].1,
            }),
            _ => Err(self.invalid_type(&visitor)),
        }
        .map_err(|e: DeError| e.at(loc))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    numbers_from_text! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.as_str() {
            Some(t @ ("true" | "false")) => visitor
                .visit_bool(t == "true")
                .map_err(|e: DeError| e.at(self.node.loc)),
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit unit_struct tuple tuple_struct identifier
    }
}

/// A whole-scalar `${env:PORT}` substitutes text; a numeric field still accepts it when it spells a
/// number (the text is kept as text everywhere else, so a password "007" stays "007").
macro_rules! numbers_from_text {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let loc = self.node.loc;
            if let Some(t) = self.node.as_str() {
                let t = t.trim();
                if let Ok(i) = t.parse::<i64>() {
                    return visitor.visit_i64(i).map_err(|e: DeError| e.at(loc));
                }
                if let Ok(f) = t.parse::<f64>() {
                    return visitor.visit_f64(f).map_err(|e: DeError| e.at(loc));
                }
            }
            self.deserialize_any(visitor)
        }
    )*};
}
use numbers_from_text;

struct SeqDe<'a> {
    iter: std::slice::Iter<'a, Node>,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            Some(n) => seed
                .deserialize(NodeDe::plain(n))
                .map(Some)
                .map_err(|e: DeError| e.at(n.loc)),
            None => Ok(None),
        }
    }
}

struct MapDe<'a> {
    iter: Box<dyn Iterator<Item = &'a (Node, Node)> + 'a>,
    value: Option<(&'a Node, &'a Node)>,
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some((k, v));
                seed.deserialize(NodeDe::plain(k))
                    .map(Some)
                    .map_err(|e: DeError| e.at(k.loc))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (k, v) = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value without key"))?;
        seed.deserialize(NodeDe::plain(v))
            .map_err(|e: DeError| e.at(v.loc).in_field(k))
    }
}

struct EnumDe<'a> {
    key: &'a Node,
    value: &'a Node,
}

impl<'de, 'a> EnumAccess<'de> for EnumDe<'a> {
    type Error = DeError;
    type Variant = NodeDe<'a>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, NodeDe<'a>), DeError> {
        let v = seed
            .deserialize(NodeDe::plain(self.key))
            .map_err(|e: DeError| e.at(self.key.loc))?;
        Ok((v, NodeDe::plain(self.value)))
    }
}

impl<'de> VariantAccess<'de> for NodeDe<'_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let loc = self.node.loc;
        seed.deserialize(self).map_err(|e: DeError| e.at(loc))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.visit_map_node(visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node::parse_yaml;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        port: u16,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Inner,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Enforce,
        Shadow,
    }

    fn de(text: &str) -> Result<Outer, DeError> {
        from_node(&parse_yaml(text).unwrap(), None)
    }

    #[test]
    fn typed_values_come_through() {
        let o = de("name: 123\ninner: {port: 80, tags: [a, 1]}\nmode: shadow\n").unwrap();
        assert_eq!(o.name, "123");
        assert_eq!(o.inner.tags, vec!["a", "1"]);
        assert_eq!(o.mode, Some(Mode::Shadow));
    }

    #[test]
    fn errors_point_at_the_offending_node() {
        let e = de("name: x\ninner:\n  port: 80\n  colour: red\n").unwrap_err();
        assert_eq!(e.loc, Some(Loc { line: 4, col: 3 }), "{e}");
        assert!(e.message.contains("unknown field `colour`"), "{e}");

        let e = de("name: x\ninner:\n  port: seventy\n").unwrap_err();
        assert_eq!(e.loc, Some(Loc { line: 3, col: 9 }), "{e}");

        let e = de("name: x\ninner:\n  tags: []\n").unwrap_err();
        assert_eq!(e.loc, Some(Loc { line: 3, col: 3 }), "{e}");
        assert!(e.message.contains("missing field `port`"), "{e}");

        let e = de("name: x\ninner: {port: 1}\nmode: loud\n").unwrap_err();
        assert_eq!(e.loc, Some(Loc { line: 3, col: 7 }), "{e}");
        assert!(e.message.contains("unknown variant `loud`"), "{e}");

        let e = de("name: x\ninner: {port: 70000}\n").unwrap_err();
        assert_eq!(e.loc, Some(Loc { line: 2, col: 15 }), "{e}");
    }

    #[test]
    fn only_hides_other_keys() {
        let n = parse_yaml("port: 1\nextra: 2\n").unwrap();
        let i: Inner = from_node(&n, Some(&["port", "tags"])).unwrap();
        assert_eq!(i.port, 1);
    }

    #[test]
    fn struct_fields_are_introspected() {
        assert_eq!(struct_fields::<Inner>(), &["port", "tags"]);
    }
}
