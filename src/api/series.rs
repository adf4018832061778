//! `GET /api/v1/series?limit=&check=`: the recent points of every series of every check (or of
//! one check) in one answer, oldest first — what the status page draws its sparklines from
//! without one request per check. A point is the value, the status and the baseline band the
//! value was judged against.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::checks::latest_results;
use super::{Api, ApiError};
use crate::result::{CheckResult, Status, Value};
use crate::store::Store;

/// Points per series when the request names no limit.
pub const DEFAULT_POINTS: u32 = 30;
/// The most points per series one request may ask for.
pub const MAX_POINTS: u32 = 500;
/// Checks whose series are read at once.
const CONCURRENT_LOOKUPS: usize = 8;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeriesQuery {
    check: Option<String>,
    limit: Option<u32>,
}

/// One series of one check and its recent points, oldest first.
#[derive(Debug, Serialize)]
pub(super) struct SeriesView {
    check: String,
    series: String,
    unit: String,
    points: Vec<Point>,
}

#[derive(Debug, Serialize)]
struct Point {
    at: DateTime<Utc>,
    /// The numeric reading (absent for errors and text values).
    value: Option<f64>,
    status: Status,
    lower: Option<f64>,
    upper: Option<f64>,
    mean: Option<f64>,
}

impl From<&CheckResult> for Point {
    fn from(r: &CheckResult) -> Point {
        let band = r.baseline.as_ref();
        Point {
            at: r.started_at,
            value: r
                .value
                .as_ref()
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite()),
            status: r.status,
            lower: band.map(|b| b.lower).filter(|v| v.is_finite()),
            upper: band.map(|b| b.upper).filter(|v| v.is_finite()),
            mean: band.map(|b| b.mean).filter(|v| v.is_finite()),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct SeriesList {
    series: Vec<SeriesView>,
}

pub(super) async fn list(
    State(api): State<Api>,
    query: Result<Query<SeriesQuery>, QueryRejection>,
) -> Result<Json<SeriesList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = checked_points(q.limit)?;
    let rules = api.state.rules.load_full();
    let names: Vec<String> = match &q.check {
        Some(name) => {
            let check = rules
                .check(name)
                .ok_or_else(|| ApiError::not_found(format!("no check named {name:?}")))?;
            vec![check.name().to_string()]
        }
        None => rules.checks.iter().map(|c| c.name().to_string()).collect(),
    };
    let store = &api.state.store;
    let per_check: Vec<Vec<SeriesView>> = futures::stream::iter(names)
        .map(|name| async move { series_of(store, &name, limit).await })
        .buffered(CONCURRENT_LOOKUPS)
        .try_collect()
        .await?;
    Ok(Json(SeriesList {
        series: per_check.into_iter().flatten().collect(),
    }))
}

fn checked_points(limit: Option<u32>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_POINTS) {
        0 => Err(ApiError::bad_request("limit must be at least 1")),
        n if n > MAX_POINTS => Err(ApiError::bad_request(format!(
            "limit must be at most {MAX_POINTS}"
        ))),
        n => Ok(n as usize),
    }
}

/// The series of the check's latest run, each with its last `limit` points.
async fn series_of(store: &Store, check: &str, limit: usize) -> Result<Vec<SeriesView>, ApiError> {
    let mut views = Vec::new();
    for latest in latest_results(store, check).await? {
        let mut recent = store.recent_results(check, &latest.series, limit).await?;
        recent.reverse();
        views.push(SeriesView {
            check: check.to_string(),
            series: latest.series.clone(),
            unit: latest.unit.clone(),
            points: recent.iter().map(Point::from).collect(),
        });
    }
    Ok(views)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::Band;

    #[test]
    fn points_keep_finite_numbers_and_the_band() {
        let mut r = CheckResult::new("c", "", Status::Warn, Some(Value::Text("12.5".into())));
        r.baseline = Some(Band {
            mean: 10.0,
            stddev: 1.0,
            lower: 8.0,
            upper: f64::INFINITY,
            samples: 20,
            ..Band::default()
        });
        let p = Point::from(&r);
        assert_eq!(p.value, Some(12.5));
        assert_eq!((p.lower, p.upper, p.mean), (Some(8.0), None, Some(10.0)));
        let nan = CheckResult::new("c", "", Status::Error, Some(Value::Num(f64::NAN)));
        assert_eq!(Point::from(&nan).value, None);
    }

    #[test]
    fn point_limits_are_bounded() {
        assert_eq!(checked_points(None).unwrap(), DEFAULT_POINTS as usize);
        assert!(checked_points(Some(0)).is_err());
        assert!(checked_points(Some(MAX_POINTS + 1)).is_err());
    }
}
