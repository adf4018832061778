//! The active toxics of a proxy and what they mean for one direction of one connection.
//!
//! A proxy publishes its toxic set through a `watch` channel; every pipe recomputes its
//! [`Effect`] whenever the set changes, so a toxic added or removed acts on open connections at
//! once. One file per toxic holds its own arithmetic and its loopback tests.

pub(crate) mod bandwidth;
pub(crate) mod blackhole;
pub(crate) mod cut_after;
pub(crate) mod down;
pub(crate) mod latency;
pub(crate) mod reset;
pub(crate) mod slicer;
pub(crate) mod stall;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::spec::ToxicSpec;
use cut_after::CutMarks;
use latency::Latency;
use reset::ResetSides;

/// A toxic as it lives in a proxy.
#[derive(Clone, Debug)]
pub(crate) struct ActiveToxic {
    pub id: String,
    /// Unique per `add_toxic`, so a toxic removed and added again starts its counters afresh.
    pub serial: u64,
    /// Hash of `id`: the probability roll is made once per (connection, toxic id).
    pub id_hash: u64,
    pub spec: ToxicSpec,
    pub added_at: Instant,
}

impl ActiveToxic {
    pub fn new(id: &str, serial: u64, spec: ToxicSpec) -> ActiveToxic {
        let mut h = DefaultHasher::new();
        id.hash(&mut h);
        ActiveToxic {
            id: id.to_string(),
            serial,
            id_hash: h.finish(),
            spec,
            added_at: Instant::now(),
        }
    }

    /// Whether this toxic hits the connection whose random seed is `conn_seed`.
    pub fn hits(&self, conn_seed: u64) -> bool {
        let p = self.spec.probability.unwrap_or(1.0);
        roll(conn_seed, self.id_hash) < p
    }

    /// Whether it hits bytes flowing in `flow` on that connection.
    fn hits_flow(&self, conn_seed: u64, flow: Flow) -> bool {
        let covered = match flow {
            Flow::Upstream => self.spec.direction.covers_upstream(),
            Flow::Downstream => self.spec.direction.covers_downstream(),
        };
        covered && self.hits(conn_seed)
    }
}

/// The toxics of a proxy, in the order they were added (cheap to clone, replaced on change).
pub(crate) type ToxicSet = Arc<Vec<ActiveToxic>>;

/// The direction one pipe copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Client → server.
    Upstream,
    /// Server → client.
    Downstream,
}

/// A uniform number in [0, 1) that is the same for a given connection seed and toxic id, so both
/// directions of a connection (and every recomputation) agree without sharing state.
pub(crate) fn roll(conn_seed: u64, id_hash: u64) -> f64 {
    let x = splitmix64(conn_seed ^ id_hash.rotate_left(29));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What the connection facts a pipe needs to evaluate toxics.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnFacts {
    pub seed: u64,
    pub opened_at: Instant,
}

/// What the active toxics do to one direction of one connection, right now. Several toxics of a
/// kind combine: latencies add up, the lowest bandwidth, the smallest slice and the earliest cut
/// win.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Effect {
    pub reset: Option<ResetSides>,
    pub blackhole: bool,
    pub stall: bool,
    pub latency: Option<Latency>,
    pub bandwidth: Option<u64>,
    /// (size, delay) of slices.
    pub slicer: Option<(usize, Duration)>,
    /// Close once this many bytes have been forwarded in this direction (absolute count).
    pub cut_at_bytes: Option<u64>,
    /// Close at this instant.
    pub cut_deadline: Option<Instant>,
}

impl Effect {
    /// The effect of `set` on the `flow` direction of a connection that has forwarded
    /// `forwarded` bytes that way; `marks` remembers when each byte-limited cut began.
    pub fn compute(
        set: &[ActiveToxic],
        conn: ConnFacts,
        flow: Flow,
        marks: &mut CutMarks,
        forwarded: u64,
    ) -> Effect {
        let mut e = Effect::default();
        if set.is_empty() {
            marks.clear();
            return e;
        }
        marks.retain_serials(set);
        for toxic in set {
            if toxic.spec.reset && toxic.hits(conn.seed) {
                e.reset = Some(ResetSides::of(toxic.spec.direction).union(e.reset));
            }
            if !toxic.hits_flow(conn.seed, flow) {
                continue;
            }
            e.add_toxic(toxic, conn, marks, forwarded);
        }
        e
    }

    fn add_toxic(&mut self, t: &ActiveToxic, conn: ConnFacts, marks: &mut CutMarks, fwd: u64) {
        let s = &t.spec;
        self.blackhole |= s.blackhole;
        self.stall |= s.stall;
        if let Some(base) = s.latency {
            let more = Latency::new(base, s.jitter.unwrap_or_default());
            self.latency = Some(more.plus(self.latency));
        }
        if let Some(bw) = s.bandwidth {
            self.bandwidth = Some(self.bandwidth.map_or(bw, |cur| cur.min(bw)));
        }
        if let Some(sl) = &s.slicer {
            self.slicer = Some(slicer::combine(self.slicer, sl));
        }
        if let Some(cut) = &s.cut_after {
            let start = t.added_at.max(conn.opened_at);
            if let Some(after) = cut.after {
                let at = start + after;
                self.cut_deadline = Some(self.cut_deadline.map_or(at, |cur| cur.min(at)));
            }
            if let Some(bytes) = cut.bytes {
                let at = marks.mark(t.serial, fwd) + bytes;
                self.cut_at_bytes = Some(self.cut_at_bytes.map_or(at, |cur| cur.min(at)));
            }
        }
    }

    /// No toxic touches this direction: bytes are copied straight through.
    pub fn is_plain(&self) -> bool {
        *self == Effect::default()
    }

    /// Bytes must not be written now (they are kept, not lost).
    pub fn holds_writes(&self) -> bool {
        self.stall || self.blackhole
    }

    /// Writes are paced (by bandwidth or slicer).
    pub fn paced(&self) -> bool {
        self.bandwidth.is_some() || self.slicer.is_some()
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::proxy::spec::Direction;

    fn toxic(id: &str, spec: ToxicSpec) -> ActiveToxic {
        ActiveToxic::new(id, 1, spec)
    }

    #[test]
    fn probability_roll_is_stable_and_uniform() {
        let id = toxic("t", ToxicSpec::default()).id_hash;
        assert_eq!(roll(42, id), roll(42, id));
        let n = 10_000;
        let hits = (0..n).filter(|seed| roll(*seed, id) < 0.3).count();
        assert!((2_700..3_300).contains(&hits), "{hits} of {n} below 0.3");
        assert!((0..n).all(|seed| (0.0..1.0).contains(&roll(seed, id))));
    }

    #[test]
    fn probability_zero_never_hits_and_one_always_does() {
        let never = toxic(
            "a",
            ToxicSpec {
                stall: true,
                probability: Some(0.0),
                ..Default::default()
            },
        );
        let always = toxic(
            "b",
            ToxicSpec {
                stall: true,
                probability: Some(1.0),
                ..Default::default()
            },
        );
        assert!((0..10_000).all(|seed| !never.hits(seed)));
        assert!((0..10_000).all(|seed| always.hits(seed)));
    }

    #[test]
    fn effects_follow_direction_and_combine() {
        let set = vec![
            toxic(
                "l1",
                ToxicSpec {
                    latency: Some(Duration::from_millis(100)),
                    ..Default::default()
                },
            ),
            toxic(
                "l2",
                ToxicSpec {
                    latency: Some(Duration::from_millis(50)),
                    direction: Direction::Downstream,
                    ..Default::default()
                },
            ),
            toxic(
                "b1",
                ToxicSpec {
                    bandwidth: Some(500),
                    ..Default::default()
                },
            ),
            toxic(
                "b2",
                ToxicSpec {
                    bandwidth: Some(200),
                    direction: Direction::Upstream,
                    ..Default::default()
                },
            ),
        ];
        let conn = ConnFacts {
            seed: 7,
            opened_at: Instant::now(),
        };
        let mut marks = CutMarks::default();
        let down = Effect::compute(&set, conn, Flow::Downstream, &mut marks, 0);
        assert_eq!(down.latency.unwrap().base, Duration::from_millis(150));
        assert_eq!(down.bandwidth, Some(500));
        let up = Effect::compute(&set, conn, Flow::Upstream, &mut marks, 0);
        assert_eq!(up.latency.unwrap().base, Duration::from_millis(100));
        assert_eq!(up.bandwidth, Some(200));
        assert!(Effect::compute(&[], conn, Flow::Upstream, &mut marks, 0).is_plain());
    }
}
