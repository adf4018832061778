//! `mode:` of `delete_pod` — how many of the matching pods: `one`, `all`, `fixed:N` or
//! `percent:P` — and the seeded random choice of which ones.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How many of the matching pods an action hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodMode {
    /// One pod.
    #[default]
    One,
    /// Every matching pod.
    All,
    /// N pods (all of them when fewer match).
    Fixed(u32),
    /// P percent of the matching pods, rounded up (so at least one), 1 ≤ P ≤ 100.
    Percent(u8),
}

const EXPECTED: &str = "one, all, fixed:N (N ≥ 1) or percent:P (1 ≤ P ≤ 100)";

impl PodMode {
    pub fn parse(text: &str) -> Result<PodMode, String> {
        let text = text.trim();
        let bad = || format!("mode {text:?}: write {EXPECTED}");
        match text {
            "one" => return Ok(PodMode::One),
            "all" => return Ok(PodMode::All),
            _ => {}
        }
        if let Some(n) = text.strip_prefix("fixed:") {
            let n: u32 = n.trim().parse().map_err(|_| bad())?;
            return if n >= 1 {
                Ok(PodMode::Fixed(n))
            } else {
                Err(bad())
            };
        }
        if let Some(p) = text.strip_prefix("percent:") {
            let p: u8 = p.trim().trim_end_matches('%').parse().map_err(|_| bad())?;
            return if (1..=100).contains(&p) {
                Ok(PodMode::Percent(p))
            } else {
                Err(bad())
            };
        }
        Err(bad())
    }

    /// How many of `matching` pods are hit.
    pub fn count(self, matching: usize) -> usize {
        match self {
            PodMode::One => matching.min(1),
            PodMode::All => matching,
            PodMode::Fixed(n) => matching.min(n as usize),
            PodMode::Percent(p) => (matching * p as usize).div_ceil(100),
        }
    }

    /// "one pod", "all pods", "2 pods", "50% of the pods".
    pub fn describe(self) -> String {
        match self {
            PodMode::One => "one pod".into(),
            PodMode::All => "all pods".into(),
            PodMode::Fixed(1) => "1 pod".into(),
            PodMode::Fixed(n) => format!("{n} pods"),
            PodMode::Percent(p) => format!("{p}% of the pods (rounded up)"),
        }
    }
}

impl fmt::Display for PodMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PodMode::One => f.write_str("one"),
            PodMode::All => f.write_str("all"),
            PodMode::Fixed(n) => write!(f, "fixed:{n}"),
            PodMode::Percent(p) => write!(f, "percent:{p}"),
        }
    }
}

impl Serialize for PodMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PodMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PodMode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PodMode, E> {
                PodMode::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl schemars::JsonSchema for PodMode {
    fn schema_name() -> Cow<'static, str> {
        "PodMode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "How many of the matching pods: one, all, fixed:N or percent:P",
            "type": "string",
            "pattern": "^\\s*(one|all|fixed:\\s*[1-9][0-9]*|percent:\\s*([1-9][0-9]?|100)%?)\\s*$"
        })
    }
}

/// `count` of `names`, chosen at random with `seed`: the same seed and the same names choose the
/// same pods (names are sorted first, so the API server's order does not matter).
pub fn choose(names: &[String], count: usize, seed: u64) -> Vec<String> {
    let mut sorted = names.to_vec();
    sorted.sort();
    let mut rng = fastrand::Rng::with_seed(seed);
    rng.shuffle(&mut sorted);
    sorted.truncate(count);
    sorted.sort();
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_count() {
        assert_eq!(PodMode::parse("one"), Ok(PodMode::One));
        assert_eq!(PodMode::parse("fixed:3"), Ok(PodMode::Fixed(3)));
        assert_eq!(PodMode::parse(" percent:50% "), Ok(PodMode::Percent(50)));
        for bad in [
            "",
            "some",
            "fixed:0",
            "fixed:-1",
            "percent:0",
            "percent:101",
            "fixed",
        ] {
            let e = PodMode::parse(bad).unwrap_err();
            assert!(e.contains("fixed:N"), "{bad}: {e}");
        }
        assert_eq!(PodMode::One.count(0), 0);
        assert_eq!(PodMode::One.count(5), 1);
        assert_eq!(PodMode::Fixed(3).count(2), 2);
        assert_eq!(PodMode::Percent(50).count(3), 2);
        assert_eq!(PodMode::Percent(1).count(3), 1);
        assert_eq!(PodMode::Percent(100).count(4), 4);
        assert_eq!(PodMode::All.count(4), 4);
        for m in ["one", "all", "fixed:2", "percent:30"] {
            assert_eq!(PodMode::parse(m).unwrap().to_string(), m);
        }
    }

    #[test]
    fn a_seed_fixes_the_choice_whatever_the_order() {
        let names: Vec<String> = (0..10).map(|i| format!("web-{i}")).collect();
        let mut reversed = names.clone();
        reversed.reverse();
        let a = choose(&names, 3, 42);
        assert_eq!(a, choose(&reversed, 3, 42));
        assert_eq!(a.len(), 3);
        let others: Vec<Vec<String>> = (0..20).map(|s| choose(&names, 3, s)).collect();
        assert!(
            others.iter().any(|o| *o != a),
            "different seeds choose differently"
        );
        assert_eq!(choose(&names, 20, 1).len(), 10);
    }
}
