//! What a drill file says about proxies (`proxies:`) and toxics (a `proxy:` fault).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::Issues;
use crate::config::duration::DurationSchema;

/// A fault proxy declared under `proxies:`: clients connect to `listen`, the proxy forwards to
/// the `upstream` addresses in turn.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// Name that `proxy:` faults refer to.
    pub name: String,
    /// `host:port` to listen on, e.g. `127.0.0.1:28080` (port 0 picks a free port).
    pub listen: String,
    /// One `host:port` or a list; new connections go round-robin, skipping upstreams that
    /// refuse the connection.
    #[serde(deserialize_with = "one_or_many")]
    #[schemars(with = "UpstreamSchema")]
    pub upstream: Vec<String>,
}

/// Which way a toxic acts: `upstream` is client→server, `downstream` server→client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Upstream,
    Downstream,
    #[default]
    Both,
}

impl Direction {
    /// Client→server bytes are affected.
    pub fn covers_upstream(self) -> bool {
        matches!(self, Direction::Upstream | Direction::Both)
    }

    /// Server→client bytes are affected.
    pub fn covers_downstream(self) -> bool {
        matches!(self, Direction::Downstream | Direction::Both)
    }
}

/// Forward in chunks of at most `size` bytes, `delay` apart.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlicerSpec {
    /// Largest chunk written at once, in bytes.
    pub size: usize,
    /// Pause between two chunks (default 0s).
    #[serde(default, with = "crate::config::duration")]
    #[schemars(with = "DurationSchema")]
    pub delay: Duration,
}

/// Close the stream after `bytes` or after `after`, whichever comes first — even while it is
/// busy. Both count from the later of "the toxic was added" and "the connection opened", so an
/// open stream is cut `after` the injection and a new one `after` it opened; bytes are counted
/// per direction.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CutAfterSpec {
    /// Bytes forwarded (in one affected direction) before the stream is closed.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Time before the stream is closed.
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<DurationSchema>")]
    pub after: Option<Duration>,
}

/// One `proxy:` fault: the toxics to add to a proxy. Several may be combined (latencies add up,
/// the lowest bandwidth wins). Toxics also hit connections that are already open.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToxicSpec {
    /// Name of a proxy declared under `proxies:`.
    #[serde(alias = "name")]
    pub proxy: String,
    /// Delay added to every chunk.
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<DurationSchema>")]
    pub latency: Option<Duration>,
    /// Random ± variation of `latency` (needs `latency`).
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<DurationSchema>")]
    pub jitter: Option<Duration>,
    /// Throughput limit in bytes per second.
    #[serde(default)]
    pub bandwidth: Option<u64>,
    /// Reset (TCP RST) open connections and every new one.
    #[serde(default)]
    pub reset: bool,
    /// Accept and read, never forward.
    #[serde(default)]
    pub blackhole: bool,
    /// Refuse new connections (they are reset at once); open ones are untouched.
    #[serde(default)]
    pub down: bool,
    /// Forward in small chunks with a delay between them.
    #[serde(default)]
    pub slicer: Option<SlicerSpec>,
    /// Close streams after N bytes or T seconds, even busy ones.
    #[serde(default)]
    pub cut_after: Option<CutAfterSpec>,
    /// Keep connections open but stop forwarding; nothing is lost when the toxic is removed.
    #[serde(default)]
    pub stall: bool,
    /// upstream (client→server), downstream (server→client) or both (default).
    #[serde(default)]
    pub direction: Direction,
    /// Chance, rolled once per connection, that the toxic applies to it (default 1).
    #[serde(default)]
    pub probability: Option<f64>,
}

impl ToxicSpec {
    /// Reports every problem, each at the field it concerns.
    pub fn validate(&self, issues: &mut Issues) {
        if self.proxy.trim().is_empty() {
            issues.at(
                &["proxy"],
                "proxy: the name of a proxy declared under `proxies:` is required",
            );
        }
        if self.toxic_names().is_empty() {
            issues.at(
                &[],
                "no toxic set: set at least one of latency, bandwidth, reset, blackhole, down, \
                 slicer, cut_after, stall",
            );
        }
        if self.jitter.is_some() && self.latency.is_none() {
            issues.at(&["jitter"], "jitter needs latency");
        }
        if self.bandwidth == Some(0) {
            issues.at(
                &["bandwidth"],
                "bandwidth must be at least 1 byte/s (use stall or blackhole to stop traffic)",
            );
        }
        if let Some(p) = self.probability
            && !(p.is_finite() && (0.0..=1.0).contains(&p))
        {
            issues.at(
                &["probability"],
                format!("probability must be between 0 and 1, got {p}"),
            );
        }
        if let Some(slicer) = &self.slicer
            && slicer.size == 0
        {
            issues.at(&["slicer", "size"], "slicer.size must be at least 1 byte");
        }
        if let Some(cut) = &self.cut_after {
            validate_cut_after(cut, issues);
        }
    }

    /// The toxics this spec sets, in a fixed order (`["latency", "stall"]`).
    pub fn toxic_names(&self) -> Vec<&'static str> {
        let set = [
            ("latency", self.latency.is_some()),
            ("bandwidth", self.bandwidth.is_some()),
            ("reset", self.reset),
            ("blackhole", self.blackhole),
            ("down", self.down),
            ("slicer", self.slicer.is_some()),
            ("cut_after", self.cut_after.is_some()),
            ("stall", self.stall),
        ];
        set.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect()
    }

    /// One line for plans and reports: `proxy lb: latency 300ms ±50ms (downstream, p=0.5)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.latency {
            let jitter = self.jitter.map(|j| format!(" ±{}", fmt_dur(j)));
            parts.push(format!(
                "latency {}{}",
                fmt_dur(l),
                jitter.unwrap_or_default()
            ));
        }
        if let Some(bw) = self.bandwidth {
            parts.push(format!("bandwidth {bw} B/s"));
        }
        for (name, on) in [
            ("reset", self.reset),
            ("blackhole", self.blackhole),
            ("down", self.down),
            ("stall", self.stall),
        ] {
            if on {
                parts.push(name.to_string());
            }
        }
        if let Some(s) = &self.slicer {
            parts.push(format!("slicer {} B every {}", s.size, fmt_dur(s.delay)));
        }
        if let Some(c) = &self.cut_after {
            parts.push(describe_cut(c));
        }
        let p = self.probability.unwrap_or(1.0);
        let odds = if p < 1.0 {
            format!(", p={p}")
        } else {
            String::new()
        };
        format!(
            "proxy {}: {} ({}{odds})",
            self.proxy,
            parts.join(", "),
            direction_name(self.direction)
        )
    }
}

impl ProxySpec {
    /// Reports every problem, each at the field it concerns.
    pub fn validate(&self, issues: &mut Issues) {
        if self.name.trim().is_empty() {
            issues.at(&["name"], "name: required, `proxy:` faults refer to it");
        }
        if let Err(e) = check_host_port(&self.listen) {
            issues.at(&["listen"], format!("listen: {e}"));
        }
        if self.upstream.is_empty() {
            issues.at(
                &["upstream"],
                "upstream: at least one host:port is required",
            );
        }
        for (i, addr) in self.upstream.iter().enumerate() {
            if let Err(e) = check_host_port(addr) {
                let index = i.to_string();
                issues.at(&["upstream", &index], format!("upstream: {e}"));
            }
        }
    }
}

fn validate_cut_after(cut: &CutAfterSpec, issues: &mut Issues) {
    if cut.bytes.is_none() && cut.after.is_none() {
        issues.at(&["cut_after"], "cut_after needs bytes, after or both");
    }
    if cut.bytes == Some(0) {
        issues.at(
            &["cut_after", "bytes"],
            "cut_after.bytes must be at least 1 (use reset to close at once)",
        );
    }
    if cut.after == Some(Duration::ZERO) {
        issues.at(
            &["cut_after", "after"],
            "cut_after.after must be longer than 0s (use reset to close at once)",
        );
    }
}

fn describe_cut(c: &CutAfterSpec) -> String {
    let mut limits = Vec::new();
    if let Some(b) = c.bytes {
        limits.push(format!("{b} B"));
    }
    if let Some(a) = c.after {
        limits.push(fmt_dur(a));
    }
    format!("cut_after {}", limits.join(" or "))
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Upstream => "upstream",
        Direction::Downstream => "downstream",
        Direction::Both => "both directions",
    }
}

fn fmt_dur(d: Duration) -> String {
    crate::config::duration::format(d)
}

/// `host:port` with a numeric port; the host is resolved when the proxy starts or connects.
fn check_host_port(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} is not host:port"))?;
    if host.trim_matches(['[', ']']).is_empty() {
        return Err(format!("{addr:?} has no host"));
    }
    port.parse::<u16>()
        .map(|_| ())
        .map_err(|_| format!("{addr:?}: port {port:?} is not a number from 0 to 65535"))
}

/// `upstream: "127.0.0.1:8080"` or `upstream: ["a:1", "b:2"]`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    crate::config::OneOrMany::strings(d, "upstream must be one \"host:port\" or a list of them")
}

/// JSON Schema of `upstream`: a string or a list of strings.
struct UpstreamSchema;

impl JsonSchema for UpstreamSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Upstream".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "One host:port or a list of them",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1}
            ]
        })
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
