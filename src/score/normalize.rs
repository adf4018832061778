//! Normalisers of the weighted health score (DESIGN §3): each maps a measured value to [0, 1].
//! `linear(lo, hi)`, `inverse(limit)` = 1 − x/limit, `exp_decay(k)` = e^(−k·x),
//! `sigmoid(center, scale)` = 1 / (1 + e^(−(x − center)/scale)) (a negative scale makes it fall).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Linear { lo: f64, hi: f64 },
    Inverse { limit: f64 },
    ExpDecay { k: f64 },
    Sigmoid { center: f64, scale: f64 },
}

/// A normaliser as written, with its parse result (reported by validation with its position).
#[derive(Clone, Debug, PartialEq)]
pub struct Normalizer {
    source: String,
    parsed: Result<Shape, String>,
}

impl Normalizer {
    pub fn parse(source: &str) -> Normalizer {
        Normalizer {
            source: source.trim().to_string(),
            parsed: parse_shape(source.trim()),
        }
    }

    pub fn error(&self) -> Option<&str> {
        self.parsed.as_ref().err().map(String::as_str)
    }

    /// `x` mapped to [0, 1]; a malformed normaliser (rejected by validation) gives 0.
    pub fn apply(&self, x: f64) -> f64 {
        let Ok(shape) = &self.parsed else { return 0.0 };
        let y = match *shape {
            Shape::Linear { lo, hi } => (x - lo) / (hi - lo),
            Shape::Inverse { limit } => 1.0 - x / limit,
            Shape::ExpDecay { k } => (-k * x).exp(),
            Shape::Sigmoid { center, scale } => 1.0 / (1.0 + (-(x - center) / scale).exp()),
        };
        if y.is_nan() { 0.0 } else { y.clamp(0.0, 1.0) }
    }
}

impl fmt::Display for Normalizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Normalizer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Normalizer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Normalizer::parse(&String::deserialize(d)?))
    }
}

impl JsonSchema for Normalizer {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Normalizer".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "linear(lo, hi) | inverse(limit) | exp_decay(k) | sigmoid(center, scale)",
            "type": "string",
            "pattern": "^\\s*(linear|inverse|exp_decay|sigmoid)\\s*\\(.*\\)\\s*$"
        })
    }
}

fn parse_shape(s: &str) -> Result<Shape, String> {
    let usage = "write linear(lo, hi), inverse(limit), exp_decay(k) or sigmoid(center, scale)";
    let (name, rest) = s
        .split_once('(')
        .ok_or_else(|| format!("normalizer {s:?}: {usage}"))?;
    let args = rest
        .strip_suffix(')')
        .ok_or_else(|| format!("normalizer {s:?} lacks its closing parenthesis"))?;
    let nums: Vec<f64> = args
        .split(',')
        .map(|a| {
            a.trim()
                .parse::<f64>()
                .map_err(|_| format!("normalizer {s:?}: {:?} is not a number", a.trim()))
        })
        .collect::<Result<_, _>>()?;
    let want = |n: usize| {
        if nums.len() == n {
            Ok(())
        } else {
            Err(format!(
                "{}() takes {n} number{}, got {}",
                name.trim(),
                if n == 1 { "" } else { "s" },
                nums.len()
            ))
        }
    };
    let shape = match name.trim() {
        "linear" => {
            want(2)?;
            if nums[0] == nums[1] {
                return Err(format!(
                    "linear({}, {}): lo and hi must differ",
                    nums[0], nums[1]
                ));
            }
            Shape::Linear {
                lo: nums[0],
                hi: nums[1],
            }
        }
        "inverse" => {
            want(1)?;
            if nums[0] == 0.0 {
                return Err("inverse(0): the limit must not be zero".into());
            }
            Shape::Inverse { limit: nums[0] }
        }
        "exp_decay" => {
            want(1)?;
            Shape::ExpDecay { k: nums[0] }
        }
        "sigmoid" => {
            want(2)?;
            if nums[1] == 0.0 {
                return Err("sigmoid(center, 0): the scale must not be zero".into());
            }
            Shape::Sigmoid {
                center: nums[0],
                scale: nums[1],
            }
        }
        other => return Err(format!("unknown normalizer {other:?}; {usage}")),
    };
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Normalizer {
        let n = Normalizer::parse(s);
        assert_eq!(n.error(), None, "{s}");
        n
    }

    #[test]
    fn shapes_follow_the_design_formulas() {
        assert_eq!(n("linear(0, 1)").apply(0.97), 0.97);
        assert_eq!(n("linear(100, 0)").apply(25.0), 0.75);
        assert_eq!(n("linear(0, 10)").apply(20.0), 1.0);
        // Connection health: FIN/RST rate term 1 − min(1, f/5).
        assert_eq!(n("inverse(5)").apply(2.0), 0.6);
        assert_eq!(n("inverse(5)").apply(9.0), 0.0);
        // SSE pool: 1 − rtt_ms/500.
        assert_eq!(n("inverse(500)").apply(100.0), 0.8);
        // SYN retransmit rate: e^(−10·r).
        assert!((n("exp_decay(10)").apply(0.1) - (-1.0f64).exp()).abs() < 1e-12);
        assert_eq!(n("sigmoid(50, 10)").apply(50.0), 0.5);
        assert!(n("sigmoid(50, -10)").apply(80.0) < 0.05);
    }

    #[test]
    fn malformed_normalizers_say_why() {
        for (s, want) in [
            ("linear(1)", "takes 2 numbers"),
            ("linear(1, 1)", "must differ"),
            ("inverse(0)", "must not be zero"),
            ("cube(2)", "unknown normalizer"),
            ("exp_decay(k)", "is not a number"),
            ("sigmoid(1, 2", "closing parenthesis"),
            ("linear", "write linear"),
        ] {
            let e = Normalizer::parse(s)
                .error()
                .map(str::to_string)
                .unwrap_or_default();
            assert!(e.contains(want), "{s}: {e}");
        }
    }
}
