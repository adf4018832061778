//! Metric text formats. prometheus-client writes OpenMetrics text; the Prometheus text format
//! 0.0.4 (what `promtool check metrics`, older scrapers and curl users get) differs for our
//! metrics in three ways: counters are described under their sample name (`x_total`, not `x`),
//! there are no `# UNIT` lines, and there is no `# EOF` marker. [`openmetrics_to_prometheus`]
//! converts; [`parse_samples`] reads either format back (tests and tools that check the output).

use std::collections::{BTreeMap, HashSet};

/// `Content-Type` of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of the Prometheus text format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a scraper's `Accept` header asks for OpenMetrics (Prometheus sends it first).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .map(|part| part.split(';').next().unwrap_or("").trim())
            .any(|media| media.eq_ignore_ascii_case("application/openmetrics-text"))
    })
}

/// Rewrites OpenMetrics text (as prometheus-client writes it) into the Prometheus text format.
pub fn openmetrics_to_prometheus(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, kind)| kind.trim() == "counter")
        .map(|(name, _)| name)
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        out.push_str(&describe_counter_by_sample_name(line, &counters));
        out.push('\n');
    }
    out
}

/// `# HELP x …` / `# TYPE x counter` of a counter family `x` become `# HELP x_total …`.
fn describe_counter_by_sample_name(line: &str, counters: &HashSet<&str>) -> String {
    for keyword in ["# HELP ", "# TYPE "] {
        if let Some(rest) = line.strip_prefix(keyword)
            && let Some((name, tail)) = rest.split_once(' ')
            && counters.contains(name)
        {
            return format!("{keyword}{name}_total {tail}");
        }
    }
    line.to_string()
}

/// One sample line: `name{label="value",…} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// Whether every `(key, value)` in `wanted` is among the sample's labels.
    pub fn has_labels(&self, wanted: &[(&str, &str)]) -> bool {
        wanted
            .iter()
            .all(|(k, v)| self.labels.get(*k).map(String::as_str) == Some(*v))
    }
}

/// Parses every sample line of a text exposition, strictly: a malformed line is an error naming
/// its line number. Comment lines are skipped.
pub fn parse_samples(text: &str) -> Result<Vec<Sample>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| parse_sample(l).map_err(|e| format!("line {}: {e}: {l}", i + 1)))
        .collect()
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "no value".to_string())?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end + 1..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let value_text = rest
        .strip_prefix(' ')
        .ok_or_else(|| "no space before the value".to_string())?;
    let value_text = value_text.split(' ').next().unwrap_or("");
    let value = parse_value(value_text)?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Reads `k="v",…}` and returns the labels and what follows the closing brace.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (key, rest) = s.split_once("=\"").ok_or("label without =\"")?;
        let (value, rest) = unescape_until_quote(rest)?;
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        s = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn unescape_until_quote(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                other => return Err(format!("bad escape {other:?}")),
            },
            c => out.push(c),
        }
    }
    Err("unterminated label value".to_string())
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENMETRICS: &str = "# HELP patrol_runs Results.\n\
        # TYPE patrol_runs counter\n\
        patrol_runs_total{check=\"a\",status=\"ok\"} 3\n\
        # HELP patrol_lag_seconds Lag.\n\
        # TYPE patrol_lag_seconds gauge\n\
        # UNIT patrol_lag_seconds seconds\n\
        patrol_lag_seconds 0.5\n\
        # EOF\n";

    #[test]
    fn counters_are_described_by_their_sample_name() {
        let text = openmetrics_to_prometheus(OPENMETRICS);
        assert_eq!(
            text,
            "# HELP patrol_runs_total Results.\n\
             # TYPE patrol_runs_total counter\n\
             patrol_runs_total{check=\"a\",status=\"ok\"} 3\n\
             # HELP patrol_lag_seconds Lag.\n\
             # TYPE patrol_lag_seconds gauge\n\
             patrol_lag_seconds 0.5\n"
        );
    }

    #[test]
    fn samples_parse_with_escaped_labels() {
        let samples =
            parse_samples("# c\nm{a=\"x\\\"y\\\\z\\n\",b=\"\"} 1.5\nn 2\no{} +Inf\n").unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].labels["a"], "x\"y\\z\n");
        assert_eq!(samples[0].labels["b"], "");
        assert_eq!(samples[0].value, 1.5);
        assert_eq!(samples[1].name, "n");
        assert!(samples[2].value.is_infinite());
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse_samples("m{a=\"x} 1\n").is_err());
        assert!(parse_samples("m{a=\"x\"} one\n").is_err());
        assert!(parse_samples("bad-name 1\n").is_err());
        assert!(parse_samples("m\n").is_err());
    }

    #[test]
    fn prometheus_asks_for_openmetrics_curl_does_not() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prometheus)));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }
}
