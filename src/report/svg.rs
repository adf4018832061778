//! Charts as SVG text: pure functions of their data, with colours as attributes (no stylesheet
//! needed), so the same output works inline in an HTML report, on the status page and as a
//! standalone `.svg` file. Shared by the suite report, the drill report and the status page.
//!
//! - [`band_chart`]: recent values of a series against its EWMA band (the band a filled area,
//!   its mean dashed, each point coloured by its status);
//! - [`sparkline`]: a small trend line;
//! - [`histogram`]: labelled vertical bars;
//! - [`timeline`]: lanes of spans (faults, steps) and marks over a time axis.
//!
//! Every text is escaped; non-finite numbers are skipped, never drawn at NaN coordinates.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::escape::xml;
use crate::result::{Status, format_number};

/// Colour of a status, the same in every chart and report.
pub fn status_color(status: Status) -> &'static str {
    match status {
        Status::Ok => "#2e7d32",
        Status::Warn => "#f9a825",
        Status::Crit => "#c62828",
        Status::Error => "#6a1b9a",
        Status::Skipped => "#9e9e9e",
    }
}

/// Fill of the EWMA band.
pub const BAND_FILL: &str = "#90caf9";
/// Lines that are not a status: values, trends, bars without a colour of their own.
pub const INK: &str = "#37474f";
/// Axes and labels.
pub const MUTED: &str = "#78909c";

/// One sample of a series, as drawn by [`band_chart`].
#[derive(Clone, Debug, PartialEq)]
pub struct BandPoint {
    pub at: DateTime<Utc>,
    /// The measured number (`None`: nothing numeric was measured; the point is left out).
    pub value: Option<f64>,
    pub status: Status,
    /// `(lower, upper)` of the band the value was judged against, when there was one.
    pub band: Option<(f64, f64)>,
    pub mean: Option<f64>,
}

/// A linear map from a data range onto a pixel range.
#[derive(Clone, Copy, Debug)]
struct Scale {
    from: (f64, f64),
    to: (f64, f64),
}

impl Scale {
    fn new(from: (f64, f64), to: (f64, f64)) -> Scale {
        Scale { from, to }
    }

    fn at(&self, x: f64) -> f64 {
        let span = self.from.1 - self.from.0;
        if span.abs() < f64::EPSILON {
            return (self.to.0 + self.to.1) / 2.0;
        }
        self.to.0 + (x - self.from.0) / span * (self.to.1 - self.to.0)
    }
}

/// The smallest and largest finite numbers of `values`, widened a little so nothing sits on the
/// edge, and to a non-empty range when they are equal.
fn value_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) =
        values
            .into_iter()
            .filter(|v| v.is_finite())
            .fold(None, |acc: Option<(f64, f64)>, v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })?;
    if (hi - lo).abs() < f64::EPSILON {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return Some((lo - pad, hi + pad));
    }
    let pad = (hi - lo) * 0.05;
    Some((lo - pad, hi + pad))
}

/// `v` rounded to what an axis of `span` needs: about three significant digits of the span
/// (`1049.566` on an axis 1000 wide reads `1050`, `14.4531` on one 5 wide `14.45`).
fn axis_label(v: f64, span: f64) -> String {
    if !(span > 0.0 && span.is_finite()) {
        return format_number(v);
    }
    let magnitude = span.log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 3);
    let rounded = if decimals == 0 {
        let step = 10f64.powi((magnitude - 2).max(0));
        (v / step).round() * step
    } else {
        let scale = 10f64.powi(decimals);
        (v * scale).round() / scale
    };
    format_number(rounded)
}

/// Pixel coordinates with one decimal: enough for a screen, short in the file.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

fn open_svg(class: &str, width: u32, height: u32, label: &str) -> String {
    format!(
        "<svg class=\"{class}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\" font-size=\"10\">",
        xml(label)
    )
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, content: &str) {
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"{MUTED}\">{}</text>",
        px(x),
        px(y),
        xml(content)
    );
}

fn polyline(points: &[(f64, f64)], stroke: &str, extra: &str) -> String {
    let coords: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{},{}", px(*x), px(*y)))
        .collect();
    format!(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"1.5\"{extra}/>",
        coords.join(" ")
    )
}

/// Recent values of one series against its band, `width`×`height` pixels. Time runs left to
/// right (by timestamp; by position when every point has the same time). The band is drawn as a
/// filled area over each stretch of consecutive points that had one, its mean as a dashed line;
/// every point is a dot in its status colour with a tooltip. The y axis shows the range, the x
/// axis the first and last time.
pub fn band_chart(points: &[BandPoint], width: u32, height: u32) -> String {
    let mut out = open_svg(
        "band-chart",
        width,
        height,
        "recent values against the baseline band",
    );
    let numbers = points.iter().flat_map(|p| {
        let band = p.band.map_or([None, None], |(l, u)| [Some(l), Some(u)]);
        [p.value, p.mean].into_iter().chain(band).flatten()
    });
    let Some(range) = value_range(numbers) else {
        text(
            &mut out,
            f64::from(width) / 2.0,
            f64::from(height) / 2.0,
            "middle",
            "no numeric values",
        );
        out.push_str("</svg>");
        return out;
    };
    let (left, right, top, bottom) = (46.0, f64::from(width) - 8.0, 8.0, f64::from(height) - 16.0);
    let y = Scale::new(range, (bottom, top));
    let times: Vec<f64> = points
        .iter()
        .map(|p| p.at.timestamp_millis() as f64)
        .collect();
    let same_time = times.windows(2).all(|w| w[0] == w[1]);
    let x_of = |i: usize| -> f64 {
        if same_time {
            Scale::new((0.0, points.len().saturating_sub(1) as f64), (left, right)).at(i as f64)
        } else {
            let first = times.first().copied().unwrap_or(0.0);
            let last = times.last().copied().unwrap_or(0.0);
            Scale::new((first, last), (left, right)).at(times[i])
        }
    };
    // Axes.
    let _ = write!(
        out,
        "<path d=\"M{l},{t} L{l},{b} L{r},{b}\" fill=\"none\" stroke=\"{MUTED}\" stroke-width=\"0.5\"/>",
        l = px(left),
        t = px(top),
        b = px(bottom),
        r = px(right)
    );
    let span = range.1 - range.0;
    text(
        &mut out,
        left - 4.0,
        top + 8.0,
        "end",
        &axis_label(range.1, span),
    );
    text(
        &mut out,
        left - 4.0,
        bottom,
        "end",
        &axis_label(range.0, span),
    );
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let h = f64::from(height) - 3.0;
        text(
            &mut out,
            left,
            h,
            "start",
            &first.at.format("%m-%d %H:%M").to_string(),
        );
        text(
            &mut out,
            right,
            h,
            "end",
            &last.at.format("%m-%d %H:%M").to_string(),
        );
    }
    // The band: one closed area per stretch of consecutive points with a finite band.
    let mut stretch: Vec<(f64, f64, f64)> = Vec::new();
    let mut areas = String::new();
    let flush = |stretch: &mut Vec<(f64, f64, f64)>, areas: &mut String| {
        if stretch.is_empty() {
            return;
        }
        let mut d = String::new();
        for (i, (x, _, upper)) in stretch.iter().enumerate() {
            let _ = write!(
                d,
                "{}{},{} ",
                if i == 0 { "M" } else { "L" },
                px(*x),
                px(*upper)
            );
        }
        for (x, lower, _) in stretch.iter().rev() {
            let _ = write!(d, "L{},{} ", px(*x), px(*lower));
        }
        // A lone point gets a short bar so its band is visible.
        if stretch.len() == 1 {
            let (x, lower, upper) = stretch[0];
            d = format!(
                "M{},{} L{},{} L{},{} L{},{} ",
                px(x - 2.0),
                px(upper),
                px(x + 2.0),
                px(upper),
                px(x + 2.0),
                px(lower),
                px(x - 2.0),
                px(lower)
            );
        }
        let _ = write!(
            areas,
            "<path class=\"band\" d=\"{}Z\" fill=\"{BAND_FILL}\" fill-opacity=\"0.45\" stroke=\"none\"/>",
            d
        );
        stretch.clear();
    };
    for (i, p) in points.iter().enumerate() {
        match p.band.filter(|(l, u)| l.is_finite() && u.is_finite()) {
            Some((lower, upper)) => stretch.push((x_of(i), y.at(lower), y.at(upper))),
            None => flush(&mut stretch, &mut areas),
        }
    }
    flush(&mut stretch, &mut areas);
    out.push_str(&areas);
    let means: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.mean.filter(|m| m.is_finite()).map(|m| (x_of(i), y.at(m))))
        .collect();
    if means.len() > 1 {
        out.push_str(&polyline(
            &means,
            BAND_FILL,
            " stroke-dasharray=\"4 3\" class=\"mean\"",
        ));
    }
    let values: Vec<(usize, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.value.filter(|v| v.is_finite()).map(|v| (i, v)))
        .collect();
    if values.len() > 1 {
        let line: Vec<(f64, f64)> = values.iter().map(|(i, v)| (x_of(*i), y.at(*v))).collect();
        out.push_str(&polyline(&line, INK, " stroke-opacity=\"0.6\""));
    }
    for (i, v) in &values {
        let p = &points[*i];
        let _ = write!(
            out,
            "<circle class=\"point {status}\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{color}\"><title>{}</title></circle>",
            px(x_of(*i)),
            px(y.at(*v)),
            xml(&format!(
                "{} · {} · {}",
                p.at.format("%Y-%m-%d %H:%M:%S UTC"),
                format_number(*v),
                p.status
            )),
            status = p.status,
            color = status_color(p.status),
        );
    }
    out.push_str("</svg>");
    out
}

/// A trend line of `values` (oldest first), `width`×`height` pixels, with the last value as a dot.
/// `domain` fixes the y range (`Some((0.0, 100.0))` for scores); by default it is the values'
/// own range.
pub fn sparkline(values: &[f64], domain: Option<(f64, f64)>, width: u32, height: u32) -> String {
    let mut out = open_svg("sparkline", width, height, "trend");
    let finite: Vec<(usize, f64)> = values
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let Some(range) = domain.or_else(|| value_range(finite.iter().map(|(_, v)| *v))) else {
        out.push_str("</svg>");
        return out;
    };
    let (w, h) = (f64::from(width), f64::from(height));
    let x = Scale::new((0.0, values.len().saturating_sub(1) as f64), (2.0, w - 2.0));
    let y = Scale::new(range, (h - 2.0, 2.0));
    let line: Vec<(f64, f64)> = finite
        .iter()
        .map(|(i, v)| (x.at(*i as f64), y.at(v.clamp(range.0, range.1))))
        .collect();
    if line.len() > 1 {
        out.push_str(&polyline(&line, INK, ""));
    }
    if let Some((lx, ly)) = line.last() {
        let _ = write!(
            out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"2\" fill=\"{INK}\"/>",
            px(*lx),
            px(*ly)
        );
    }
    out.push_str("</svg>");
    out
}

/// One bar of a [`histogram`].
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// Fill colour (default [`INK`]).
    pub color: Option<&'static str>,
}

/// Vertical bars from zero, `width`×`height` pixels, each with its value above and its label below.
pub fn histogram(bars: &[Bar], width: u32, height: u32) -> String {
    let mut out = open_svg("histogram", width, height, "distribution");
    let max = bars
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    if bars.is_empty() {
        text(
            &mut out,
            f64::from(width) / 2.0,
            f64::from(height) / 2.0,
            "middle",
            "no data",
        );
        out.push_str("</svg>");
        return out;
    }
    let (w, h) = (f64::from(width), f64::from(height));
    let (top, bottom) = (14.0, h - 16.0);
    let slot = (w - 4.0) / bars.len() as f64;
    let y = Scale::new((0.0, if max > 0.0 { max } else { 1.0 }), (bottom, top));
    for (i, b) in bars.iter().enumerate() {
        let value = if b.value.is_finite() {
            b.value.max(0.0)
        } else {
            0.0
        };
        let x = 2.0 + slot * i as f64 + slot * 0.15;
        let bar_w = slot * 0.7;
        let bar_top = y.at(value);
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
            px(x),
            px(bar_top),
            px(bar_w),
            px((bottom - bar_top).max(0.0)),
            b.color.unwrap_or(INK),
            xml(&format!("{}: {}", b.label, format_number(value)))
        );
        text(
            &mut out,
            x + bar_w / 2.0,
            bar_top - 3.0,
            "middle",
            &format_number(value),
        );
        text(&mut out, x + bar_w / 2.0, h - 4.0, "middle", &b.label);
    }
    out.push_str("</svg>");
    out
}

/// A stretch of time on a [`timeline`] lane, in milliseconds from the timeline's start.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub from_ms: f64,
    pub to_ms: f64,
    pub color: &'static str,
    /// Tooltip.
    pub label: String,
}

/// An instant on a [`timeline`] lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub at_ms: f64,
    pub color: &'static str,
    pub label: String,
}

/// One row of a [`timeline`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lane {
    pub label: String,
    pub spans: Vec<Span>,
    pub marks: Vec<Mark>,
}

const LANE_HEIGHT: f64 = 22.0;
const LANE_LABELS: f64 = 130.0;

/// Lanes over `[0, end_ms]`, `width` pixels wide (the height follows from the number of lanes):
/// labels on the left, spans as bars, marks as diamonds, and a time axis in seconds below.
pub fn timeline(lanes: &[Lane], end_ms: f64, width: u32) -> String {
    let height = (lanes.len() as f64 * LANE_HEIGHT + 22.0).ceil() as u32;
    let mut out = open_svg("timeline", width, height, "timeline");
    let end = if end_ms.is_finite() && end_ms > 0.0 {
        end_ms
    } else {
        1.0
    };
    let (left, right) = (LANE_LABELS, f64::from(width) - 8.0);
    let x = Scale::new((0.0, end), (left, right));
    let clamp = |ms: f64| {
        if ms.is_finite() {
            ms.clamp(0.0, end)
        } else {
            0.0
        }
    };
    for (i, lane) in lanes.iter().enumerate() {
        let top = i as f64 * LANE_HEIGHT + 2.0;
        let mid = top + LANE_HEIGHT / 2.0;
        let label: String = lane.label.chars().take(22).collect();
        text(&mut out, left - 6.0, mid + 3.0, "end", &label);
        let _ = write!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{MUTED}\" stroke-width=\"0.3\"/>",
            px(left),
            px(mid),
            px(right),
            px(mid)
        );
        for s in &lane.spans {
            let (a, b) = (x.at(clamp(s.from_ms)), x.at(clamp(s.to_ms)));
            let _ = write!(
                out,
                "<rect class=\"span\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\" fill=\"{}\"><title>{}</title></rect>",
                px(a.min(b)),
                px(top + 4.0),
                px((b - a).abs().max(2.0)),
                px(LANE_HEIGHT - 8.0),
                s.color,
                xml(&s.label)
            );
        }
        for m in &lane.marks {
            let cx = x.at(clamp(m.at_ms));
            let _ = write!(
                out,
                "<path class=\"mark\" d=\"M{},{} L{},{} L{},{} L{},{} Z\" fill=\"{}\"><title>{}</title></path>",
                px(cx),
                px(mid - 6.0),
                px(cx + 5.0),
                px(mid),
                px(cx),
                px(mid + 6.0),
                px(cx - 5.0),
                px(mid),
                m.color,
                xml(&m.label)
            );
        }
    }
    let axis = lanes.len() as f64 * LANE_HEIGHT + 4.0;
    let _ = write!(
        out,
        "<line x1=\"{}\" y1=\"{a}\" x2=\"{}\" y2=\"{a}\" stroke=\"{MUTED}\" stroke-width=\"0.5\"/>",
        px(left),
        px(right),
        a = px(axis)
    );
    for q in 0..=4 {
        let ms = end * f64::from(q) / 4.0;
        let anchor = match q {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        text(
            &mut out,
            x.at(ms),
            axis + 13.0,
            anchor,
            &format!("{}s", format_number((ms / 100.0).round() / 10.0)),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn point(minute: i64, value: f64, status: Status, band: Option<(f64, f64)>) -> BandPoint {
        BandPoint {
            at: at(minute),
            value: Some(value),
            status,
            band,
            mean: band.map(|(l, u)| (l + u) / 2.0),
        }
    }

    /// The numbers of attribute `name` on every element `tag` of `svg`.
    fn attrs(svg: &str, tag: &str, name: &str) -> Vec<f64> {
        svg.split(&format!("<{tag} "))
            .skip(1)
            .filter_map(|el| {
                let start = el.find(&format!(" {name}=\""))? + name.len() + 3;
                el[start..].split('"').next()?.parse().ok()
            })
            .collect()
    }

    #[test]
    fn the_band_is_a_filled_area_and_points_take_their_status_colour() {
        let svg = band_chart(
            &[
                point(0, 10.0, Status::Ok, Some((8.0, 12.0))),
                point(1, 11.0, Status::Ok, Some((8.0, 12.0))),
                point(2, 30.0, Status::Warn, Some((8.0, 12.0))),
            ],
            300,
            120,
        );
        assert!(svg.starts_with("<svg class=\"band-chart\""), "{svg}");
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<path class=\"band\"").count(), 1, "{svg}");
        assert!(svg.contains(&format!("fill=\"{BAND_FILL}\"")));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches(status_color(Status::Ok)).count(), 2);
        assert_eq!(svg.matches(status_color(Status::Warn)).count(), 1);
        assert!(svg.contains("class=\"mean\""));
        // The anomalous value is the highest point (smallest y); time runs left to right.
        let ys = attrs(&svg, "circle", "cy");
        assert!(ys[2] < ys[0] && ys[2] < ys[1], "{ys:?}");
        let xs = attrs(&svg, "circle", "cx");
        assert!(xs[0] < xs[1] && xs[1] < xs[2], "{xs:?}");
        assert!(xs.iter().chain(&ys).all(|v| *v >= 0.0 && *v <= 300.0));
    }

    #[test]
    fn a_gap_in_the_band_splits_it_into_two_areas() {
        let svg = band_chart(
            &[
                point(0, 10.0, Status::Ok, Some((8.0, 12.0))),
                point(1, 10.0, Status::Ok, None),
                point(2, 10.0, Status::Ok, Some((9.0, 11.0))),
            ],
            200,
            100,
        );
        assert_eq!(svg.matches("<path class=\"band\"").count(), 2, "{svg}");
    }

    #[test]
    fn missing_and_non_finite_values_are_left_out() {
        let mut points = vec![
            point(0, f64::NAN, Status::Error, None),
            point(1, 5.0, Status::Ok, None),
        ];
        points.push(BandPoint {
            value: None,
            ..point(2, 0.0, Status::Error, None)
        });
        let svg = band_chart(&points, 200, 100);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let empty = band_chart(&[], 200, 100);
        assert!(empty.contains("no numeric values") && empty.ends_with("</svg>"));
    }

    #[test]
    fn points_at_one_instant_are_spread_by_position() {
        let p = |v| BandPoint {
            at: at(0),
            ..point(0, v, Status::Ok, None)
        };
        let svg = band_chart(&[p(1.0), p(2.0), p(3.0)], 200, 100);
        let xs = attrs(&svg, "circle", "cx");
        assert!(xs[0] < xs[1] && xs[1] < xs[2], "{xs:?}");
    }

    #[test]
    fn axis_labels_keep_the_digits_the_span_needs() {
        assert_eq!(axis_label(1049.566, 1090.0), "1050");
        assert_eq!(axis_label(-40.927, 1090.0), "-40");
        assert_eq!(axis_label(14.4531, 5.0), "14.45");
        assert_eq!(axis_label(0.12345, 0.01), "0.123");
        assert_eq!(axis_label(123456.0, 100000.0), "123000");
    }

    #[test]
    fn a_sparkline_maps_its_domain_onto_the_height() {
        let svg = sparkline(&[0.0, 50.0, 100.0], Some((0.0, 100.0)), 100, 20);
        assert!(
            svg.contains("points=\"2.0,18.0 50.0,10.0 98.0,2.0\""),
            "{svg}"
        );
        assert!(svg.contains("<circle cx=\"98.0\" cy=\"2.0\""));
        let flat = sparkline(&[7.0, 7.0], None, 100, 20);
        assert!(flat.contains("points=\"2.0,10.0 98.0,10.0\""), "{flat}");
        assert!(!sparkline(&[], None, 100, 20).contains("<polyline"));
    }

    #[test]
    fn histogram_bars_are_proportional_and_labels_escaped() {
        let bars = [
            Bar {
                label: "p50".into(),
                value: 10.0,
                color: None,
            },
            Bar {
                label: "p99 <max>".into(),
                value: 20.0,
                color: Some("#c62828"),
            },
        ];
        let svg = histogram(&bars, 200, 100);
        let heights = attrs(&svg, "rect", "height");
        assert_eq!(heights.len(), 2);
        assert!((heights[1] - 2.0 * heights[0]).abs() < 0.2, "{heights:?}");
        assert!(svg.contains("p99 &lt;max&gt;") && !svg.contains("<max>"));
        assert!(svg.contains("fill=\"#c62828\""));
        assert!(histogram(&[], 200, 100).contains("no data"));
    }

    #[test]
    fn timeline_spans_and_marks_sit_on_their_lanes_within_the_axis() {
        let lanes = [
            Lane {
                label: "kill node-2".into(),
                spans: vec![Span {
                    from_ms: 1000.0,
                    to_ms: 3000.0,
                    color: "#c62828",
                    label: "injected".into(),
                }],
                marks: vec![],
            },
            Lane {
                label: "steady state".into(),
                spans: vec![],
                marks: vec![Mark {
                    at_ms: 99_999.0,
                    color: "#2e7d32",
                    label: "holds".into(),
                }],
            },
        ];
        let svg = timeline(&lanes, 4000.0, 530);
        assert!(svg.contains("height=\"66\""), "{svg}");
        let xs = attrs(&svg, "rect", "x");
        let widths = attrs(&svg, "rect", "width");
        // 130 px of labels, 392 px for 4 s: 1 s → 228, 2 s wide → 196.
        assert_eq!((xs[0], widths[0]), (228.0, 196.0));
        assert_eq!(svg.matches("class=\"mark\"").count(), 1);
        // A mark past the end is clamped onto the axis' end, not drawn outside.
        assert!(svg.contains("M522.0,"), "{svg}");
        assert!(svg.contains(">0s<") && svg.contains(">4s<"));
    }
}
