//! Scores as a table for people: one row per service, with the terms that cost points.

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

use super::{OVERALL, ServiceScore};
use crate::result::format_number;

/// `SERVICE SCORE MODEL WHY` rows; WHY names the failing checks (penalty) or the components
/// without a value (weighted), so a low score explains itself.
pub fn table(scores: &[ServiceScore]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .force_no_tty()
        .set_header(["SERVICE", "SCORE", "MODEL", "WHY"]);
    for s in scores {
        let name = if s.service == OVERALL {
            "overall"
        } else {
            &s.service
        };
        t.add_row(vec![
            name.to_string(),
            format!("{:.1}", s.score),
            s.model_name().to_string(),
            why(s),
        ]);
    }
    format!("{t}\n")
}

fn why(s: &ServiceScore) -> String {
    if !s.has_data() {
        return "no data yet".into();
    }
    let terms = s.details["terms"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let reasons: Vec<String> = terms.iter().filter_map(term_reason).collect();
    reasons.join(", ")
}

/// A failing penalty term (`db-lag crit 12m −3.7`) or a weighted term without a value.
fn term_reason(term: &Value) -> Option<String> {
    let check = term["check"].as_str()?;
    if term["missing"] == Value::Bool(true) {
        return Some(match term["status"].as_str() {
            Some(status) => format!("{check} {status}: no value"),
            None => format!("{check}: no value yet"),
        });
    }
    let minutes = term["failing_minutes"].as_f64()?;
    let status = term["status"].as_str().unwrap_or("failing");
    let penalty = term["penalty"].as_f64().unwrap_or(0.0);
    Some(format!(
        "{check} {status} {}m −{penalty:.1}",
        format_number((minutes * 10.0).round() / 10.0),
    ))
}
