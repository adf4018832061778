//! What the Prometheus HTTP API answers, and how an answer becomes samples: the JSON envelope
//! (`status`, `data.resultType`, `data.result`, or `errorType`/`error`), sample values written
//! as strings (`"1.5"`, `"NaN"`, `"+Inf"`), series keys built from label sets, and the reduction
//! of a range query's points to one value per series.
//!
//! See <https://prometheus.io/docs/prometheus/latest/querying/api/#expression-query-result-formats>.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::probe::Sample;
use crate::result::Value;

/// The envelope of every API answer.
#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    pub status: String,
    #[serde(default)]
    pub data: Option<Data>,
    #[serde(default, rename = "errorType")]
    pub error_type: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// `data` of a successful query, by its `resultType`.
#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub(super) enum Data {
    Scalar(Point),
    String(Point),
    Vector(Vec<InstantSeries>),
    Matrix(Vec<RangeSeries>),
}

/// `[<unix seconds>, "<value>"]`.
#[derive(Debug, Deserialize)]
pub(super) struct Point(IgnoredAny, String);

type Labels = BTreeMap<String, String>;

/// One series of an instant vector: a float sample, or a native histogram.
#[derive(Debug, Deserialize)]
pub(super) struct InstantSeries {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    value: Option<Point>,
}

/// One series of a range vector: its float points (native histogram points are not numbers and
/// are left out).
#[derive(Debug, Deserialize)]
pub(super) struct RangeSeries {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    values: Vec<Point>,
}

/// How a range query's points become one value per series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// Mean of the points.
    Avg,
    Max,
    Min,
    /// The latest point.
    Last,
}

impl Aggregate {
    /// Reduces `points` (oldest first). NaN points (a 0/0 ratio at one step) are skipped so they
    /// do not poison the window; a series of NaN only stays NaN. `None` without points.
    pub fn reduce(self, points: &[f64]) -> Option<f64> {
        let numbers: Vec<f64> = points.iter().copied().filter(|v| !v.is_nan()).collect();
        if numbers.is_empty() {
            return (!points.is_empty()).then_some(f64::NAN);
        }
        Some(match self {
            Aggregate::Avg => numbers.iter().sum::<f64>() / numbers.len() as f64,
            Aggregate::Max => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Aggregate::Min => numbers.iter().copied().fold(f64::INFINITY, f64::min),
            Aggregate::Last => numbers[numbers.len() - 1],
        })
    }
}

/// A sample value as Prometheus writes it. Finite numbers become numbers; NaN and the infinities
/// stay text in Prometheus' spelling (`NaN`, `+Inf`, `-Inf`), which stores and prints safely
/// (JSON has no NaN) while conditions still read them as numbers (`+Inf` is `gt(100)`).
pub(super) fn sample_value(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| format!("Prometheus sent a sample value that is not a number: {text:?}"))
}

/// The [`Value`] of a number (see [`sample_value`] for the non-finite ones).
pub(super) fn value_of(n: f64) -> Value {
    if n.is_finite() {
        Value::Num(n)
    } else if n.is_nan() {
        Value::Text("NaN".into())
    } else if n > 0.0 {
        Value::Text("+Inf".into())
    } else {
        Value::Text("-Inf".into())
    }
}

/// A label set the way PromQL writes it: `up{instance="a:9100",job="node"}`, `{job="node"}`
/// without a metric name, `up` without labels, "" for an empty set.
pub(super) fn render_labels(labels: &Labels) -> String {
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    if pairs.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", pairs.join(","))
    }
}

/// Backslash, double quote and line feed escaped, as in PromQL and the exposition format.
fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The series key of a label set: with `series` naming one label, its value; naming several,
/// `label=value` pairs joined by `,` in the order written (`job=node,instance=a:9100`); without
/// `series`, the whole label set (see [`render_labels`]). A missing label counts as empty, as
/// in PromQL.
pub(super) fn series_key(labels: &Labels, series: &[String]) -> String {
    let value_of = |name: &String| labels.get(name).map(String::as_str).unwrap_or("");
    match series {
        [] => render_labels(labels),
        [one] => value_of(one).to_string(),
        several => several
            .iter()
            .map(|name| format!("{name}={}", value_of(name)))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Samples of an instant query's answer, one per series.
pub(super) fn instant_samples(data: Data, series: &[String]) -> Result<Vec<Sample>, String> {
    match data {
        Data::Scalar(Point(_, v)) => Ok(vec![Sample::single(value_of(sample_value(&v)?))]),
        Data::String(Point(_, s)) => Ok(vec![Sample::single(Value::Text(s))]),
        Data::Vector(items) => {
            let mut keyed = Keyed::new(series);
            for item in items {
                let Some(Point(_, v)) = &item.value else {
                    return Err(format!(
                        "series {} holds a native histogram, not a number; query a number \
                         from it, e.g. histogram_quantile(0.99, …) or histogram_count(…)",
                        render_labels(&item.metric)
                    ));
                };
                let value = value_of(sample_value(v)?);
                keyed.push(&item.metric, value)?;
            }
            Ok(keyed.samples)
        }
        Data::Matrix(_) => Err(
            "the query returns a range vector (it ends in a [duration] selector), which has many \
             values per series; an instant query needs one: wrap it in a function such as \
             rate(…), avg_over_time(…) or max_over_time(…), or measure over time with `range:`"
                .into(),
        ),
    }
}

/// Samples of a range query's answer: each series' points reduced by `aggregate`. A series
/// without float points (native histograms only) gives no sample.
pub(super) fn range_samples(
    data: Data,
    series: &[String],
    aggregate: Aggregate,
) -> Result<Vec<Sample>, String> {
    let Data::Matrix(items) = data else {
        return Err("Prometheus answered a range query with something else than a matrix".into());
    };
    let mut keyed = Keyed::new(series);
    for item in items {
        let points = item
            .values
            .iter()
            .map(|Point(_, v)| sample_value(v))
            .collect::<Result<Vec<f64>, String>>()?;
        if let Some(n) = aggregate.reduce(&points) {
            keyed.push(&item.metric, value_of(n))?;
        }
    }
    Ok(keyed.samples)
}

/// Samples by series key, refusing a key that two label sets share: one baseline would then
/// learn two things.
struct Keyed<'a> {
    series: &'a [String],
    samples: Vec<Sample>,
    /// Label set of each key so far, to name both in the error.
    seen: BTreeMap<String, String>,
}

impl<'a> Keyed<'a> {
    fn new(series: &'a [String]) -> Keyed<'a> {
        Keyed {
            series,
            samples: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    fn push(&mut self, labels: &Labels, value: Value) -> Result<(), String> {
        let key = series_key(labels, self.series);
        let rendered = render_labels(labels);
        if let Some(first) = self.seen.get(&key) {
            return Err(format!(
                "series: {first} and {rendered} both have the key {key:?}; add the label that \
                 tells them apart to `series` (or aggregate them in the query, e.g. sum by (…))"
            ));
        }
        self.seen.insert(key.clone(), rendered);
        self.samples.push(Sample { series: key, value });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> Data {
        let envelope: Envelope = serde_json::from_str(json).unwrap();
        assert_eq!(envelope.status, "success");
        envelope.data.unwrap()
    }

    fn keys_and_values(samples: &[Sample]) -> Vec<(String, Value)> {
        samples
            .iter()
            .map(|s| (s.series.clone(), s.value.clone()))
            .collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","instance":"10.0.0.1:9100","job":"node"},"value":[1700000000.5,"1"]},
        {"metric":{"__name__":"up","instance":"10.0.0.2:9100","job":"node"},"value":[1700000000.5,"0"]}]}}"#;

    #[test]
    fn a_vector_gives_one_sample_per_label_set() {
        let s = instant_samples(data(VECTOR), &[]).unwrap();
        assert_eq!(
            keys_and_values(&s),
            vec![
                (
                    r#"up{instance="10.0.0.1:9100",job="node"}"#.into(),
                    Value::Num(1.0)
                ),
                (
                    r#"up{instance="10.0.0.2:9100",job="node"}"#.into(),
                    Value::Num(0.0)
                ),
            ]
        );
        let s = instant_samples(data(VECTOR), &names(&["instance"])).unwrap();
        assert_eq!(s[0].series, "10.0.0.1:9100");
        assert_eq!(s[1].series, "10.0.0.2:9100");
        let s = instant_samples(data(VECTOR), &names(&["job", "instance"])).unwrap();
        assert_eq!(s[1].series, "job=node,instance=10.0.0.2:9100");
    }

    #[test]
    fn a_key_shared_by_two_label_sets_is_refused() {
        let err = instant_samples(data(VECTOR), &names(&["job"])).unwrap_err();
        assert!(err.starts_with("series: up{instance=\"10.0.0.1:9100\",job=\"node\"} and up{instance=\"10.0.0.2:9100\",job=\"node\"} both have the key \"node\""), "{err}");
    }

    #[test]
    fn label_sets_render_like_promql() {
        assert_eq!(render_labels(&labels(&[])), "");
        assert_eq!(render_labels(&labels(&[("__name__", "up")])), "up");
        assert_eq!(
            render_labels(&labels(&[("job", "api"), ("code", "500")])),
            r#"{code="500",job="api"}"#
        );
        assert_eq!(
            render_labels(&labels(&[("path", "a\"b\\c\nd")])),
            r#"{path="a\"b\\c\nd"}"#
        );
        assert_eq!(
            series_key(&labels(&[("job", "api")]), &names(&["instance"])),
            ""
        );
        assert_eq!(
            series_key(&labels(&[("job", "api")]), &names(&["job", "instance"])),
            "job=api,instance="
        );
    }

    #[test]
    fn one_unlabelled_result_has_the_empty_key() {
        let json = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"12"]}]}}"#;
        let s = instant_samples(data(json), &[]).unwrap();
        assert_eq!(keys_and_values(&s), vec![(String::new(), Value::Num(12.0))]);
        let s = instant_samples(data(json), &names(&["instance"])).unwrap();
        assert_eq!(s[0].series, "");
    }

    #[test]
    fn scalars_strings_and_empty_vectors() {
        let s = instant_samples(
            data(r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.2,"0.25"]}}"#),
            &[],
        )
        .unwrap();
        assert_eq!(keys_and_values(&s), vec![(String::new(), Value::Num(0.25))]);
        let s = instant_samples(
            data(r#"{"status":"success","data":{"resultType":"string","result":[1700000000.2,"v2.42"]}}"#),
            &[],
        )
        .unwrap();
        assert_eq!(s[0].value, Value::Text("v2.42".into()));
        let s = instant_samples(
            data(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            &[],
        )
        .unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn nan_and_infinities_keep_prometheus_spelling() {
        for (text, value) in [
            ("NaN", Value::Text("NaN".into())),
            ("+Inf", Value::Text("+Inf".into())),
            ("-Inf", Value::Text("-Inf".into())),
            ("1e+06", Value::Num(1e6)),
            ("-0.5", Value::Num(-0.5)),
        ] {
            assert_eq!(value_of(sample_value(text).unwrap()), value, "{text}");
        }
        // Conditions still read them as numbers.
        let inf = value_of(sample_value("+Inf").unwrap());
        assert!(crate::condition::Condition::parse("gt(100)").matches(&inf));
        let nan = value_of(sample_value("NaN").unwrap());
        assert!(!crate::condition::Condition::parse("gt(100)").matches(&nan));
        assert!(!crate::condition::Condition::parse("lt(100)").matches(&nan));
        let err = sample_value("lots").unwrap_err();
        assert!(err.contains("not a number: \"lots\""), "{err}");
    }

    #[test]
    fn a_matrix_from_an_instant_query_says_what_to_do() {
        let json = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[1700000000,"1"],[1700000015,"2"]]}]}}"#;
        let err = instant_samples(data(json), &[]).unwrap_err();
        assert!(err.contains("returns a range vector"), "{err}");
        assert!(err.contains("`range:`"), "{err}");
    }

    #[test]
    fn native_histograms_are_named_not_misread() {
        let json = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"rpc_seconds"},"histogram":[1700000000,{"count":"3","sum":"1.5","buckets":[]}]}]}}"#;
        let err = instant_samples(data(json), &[]).unwrap_err();
        assert!(
            err.starts_with("series rpc_seconds holds a native histogram"),
            "{err}"
        );
    }

    #[test]
    fn errors_keep_their_type_and_text() {
        let e: Envelope = serde_json::from_str(
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}"#,
        )
        .unwrap();
        assert_eq!(e.status, "error");
        assert_eq!(e.error_type.as_deref(), Some("bad_data"));
        assert!(e.data.is_none());
    }

    #[test]
    fn range_points_reduce_per_series() {
        let json = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"host":"a"},"values":[[1,"10"],[2,"20"],[3,"NaN"],[4,"60"]]},
            {"metric":{"host":"b"},"values":[[1,"NaN"]]},
            {"metric":{"host":"c"},"values":[]}]}}"#;
        let series = names(&["host"]);
        let reduced = |agg| keys_and_values(&range_samples(data(json), &series, agg).unwrap());
        assert_eq!(
            reduced(Aggregate::Avg),
            vec![
                ("a".into(), Value::Num(30.0)),
                ("b".into(), Value::Text("NaN".into()))
            ]
        );
        assert_eq!(reduced(Aggregate::Max)[0].1, Value::Num(60.0));
        assert_eq!(reduced(Aggregate::Min)[0].1, Value::Num(10.0));
        assert_eq!(reduced(Aggregate::Last)[0].1, Value::Num(60.0));
    }

    #[test]
    fn aggregates_of_infinities() {
        assert_eq!(
            Aggregate::Max.reduce(&[1.0, f64::INFINITY]),
            Some(f64::INFINITY)
        );
        assert_eq!(
            Aggregate::Min.reduce(&[1.0, f64::NEG_INFINITY]),
            Some(f64::NEG_INFINITY)
        );
        assert!(
            Aggregate::Avg
                .reduce(&[f64::INFINITY, f64::NEG_INFINITY])
                .unwrap()
                .is_nan()
        );
        assert_eq!(Aggregate::Avg.reduce(&[]), None);
    }
}
