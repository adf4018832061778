//! Zero-loss accounting, pure (no clock, no I/O), so it can be tested exhaustively.
//!
//! A subscriber is owed every seq whose publish was **accepted** and **started after its first
//! connect** (response headers received): the server had it registered before such a publish
//! began. It is not owed a seq published earlier even if it received it (a replay buffer may send
//! it), nor a seq whose publish failed (even if the server delivered it anyway). `lost` counts the
//! owed seqs it never received; `duplicates` the deliveries of a seq it already had;
//! `out_of_order` the first deliveries of a seq lower than one it already had, when the
//! publisher had ordered the two (the lower one was answered before the higher one started).

use serde::{Deserialize, Serialize};

/// Seqs as sorted, disjoint, non-touching half-open ranges: a subscriber that receives
/// everything holds one range whatever the run length, which keeps a 20,000-subscriber swarm
/// small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqSet {
    ranges: Vec<(u64, u64)>,
}

impl SeqSet {
    /// Adds `seq`; false when it was already there. `u64::MAX` cannot be stored (it is never a
    /// seq: the sequence reader rejects it).
    pub fn insert(&mut self, seq: u64) -> bool {
        if seq == u64::MAX {
            return false;
        }
        if let Some(last) = self.ranges.last_mut()
            && last.1 == seq
        {
            last.1 += 1; // the common case: the next seq in order
            return true;
        }
        let idx = self.ranges.partition_point(|r| r.1 < seq);
        let Some(&(start, end)) = self.ranges.get(idx) else {
            self.ranges.push((seq, seq + 1));
            return true;
        };
        if start <= seq && seq < end {
            return false;
        }
        if end == seq {
            self.ranges[idx].1 = seq + 1;
            if self.ranges.get(idx + 1).is_some_and(|n| n.0 == seq + 1) {
                self.ranges[idx].1 = self.ranges[idx + 1].1;
                self.ranges.remove(idx + 1);
            }
        } else if start == seq + 1 {
            self.ranges[idx].0 = seq;
        } else {
            self.ranges.insert(idx, (seq, seq + 1));
        }
        true
    }

    pub fn contains(&self, seq: u64) -> bool {
        let idx = self.ranges.partition_point(|r| r.1 <= seq);
        self.ranges.get(idx).is_some_and(|r| r.0 <= seq)
    }

    /// How many seqs are in the set.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|r| r.1 - r.0).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// The half-open ranges of `[lo, hi)` that are not in the set, in order.
    pub fn gaps(&self, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut at = lo;
        let first = self.ranges.partition_point(|r| r.1 <= lo);
        for &(start, end) in &self.ranges[first..] {
            if start >= hi {
                break;
            }
            if start > at {
                gaps.push((at, start));
            }
            at = at.max(end);
        }
        if at < hi {
            gaps.push((at, hi));
        }
        gaps
    }
}

/// One publish attempt: its seq, when it started and when its response came (ns on the
/// workload's clock; `None` while in flight), and whether the endpoint accepted it (2xx).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishRecord {
    pub seq: u64,
    pub started_ns: u64,
    pub answered_ns: Option<u64>,
    pub accepted: bool,
}

/// Every publish attempt of a run, seqs 1..=n, with their start times (non-decreasing in seq:
/// the publisher assigns seqs in the order it starts them).
#[derive(Clone, Debug, Default)]
pub struct Publications {
    started_ns: Vec<u64>,
    /// Bit `seq - 1`: accepted.
    accepted: Vec<u64>,
    /// Accepted seqs in the words before word `i` (one more entry than `accepted`).
    rank: Vec<u64>,
    /// Entry `i`: when seqs 1..=i+1 had all been answered (u64::MAX: one is in flight).
    settled_ns: Vec<u64>,
}

impl Publications {
    /// Checks that the seqs are exactly 1..=n (any order) and that start times do not decrease
    /// with the seq.
    pub fn new(mut records: Vec<PublishRecord>) -> Result<Publications, String> {
        records.sort_by_key(|r| r.seq);
        let mut started_ns = Vec::with_capacity(records.len());
        let mut settled_ns = Vec::with_capacity(records.len());
        let mut accepted = vec![0u64; records.len().div_ceil(64)];
        for (i, r) in records.iter().enumerate() {
            if r.seq != i as u64 + 1 {
                return Err(format!(
                    "publish seqs must be 1..={} without gaps or repeats; found {} at position {}",
                    records.len(),
                    r.seq,
                    i + 1
                ));
            }
            if started_ns.last().is_some_and(|&prev| prev > r.started_ns) {
                return Err(format!("seq {} started before seq {}", r.seq, r.seq - 1));
            }
            started_ns.push(r.started_ns);
            let answered = r.answered_ns.unwrap_or(u64::MAX);
            settled_ns.push(
                settled_ns
                    .last()
                    .map_or(answered, |&prev: &u64| prev.max(answered)),
            );
            if r.accepted {
                accepted[i / 64] |= 1 << (i % 64);
            }
        }
        let mut rank = Vec::with_capacity(accepted.len() + 1);
        let mut total = 0;
        rank.push(0);
        for w in &accepted {
            total += u64::from(w.count_ones());
            rank.push(total);
        }
        Ok(Publications {
            started_ns,
            accepted,
            rank,
            settled_ns,
        })
    }

    /// Publish attempts (the highest seq).
    pub fn attempts(&self) -> u64 {
        self.started_ns.len() as u64
    }

    pub fn accepted_count(&self) -> u64 {
        self.rank.last().copied().unwrap_or(0)
    }

    pub fn is_accepted(&self, seq: u64) -> bool {
        let Some(i) = seq.checked_sub(1) else {
            return false;
        };
        i < self.attempts() && self.accepted[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    pub fn started_ns(&self, seq: u64) -> Option<u64> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.started_ns.get(i).copied()
    }

    /// The lowest seq whose publish started strictly after `connected_ns` (attempts + 1 when
    /// none did).
    pub fn first_started_after(&self, connected_ns: u64) -> u64 {
        self.started_ns.partition_point(|&s| s <= connected_ns) as u64 + 1
    }

    /// How many leading seqs (1..=k) had all been answered by `t`.
    pub fn settled_by(&self, t: u64) -> u64 {
        self.settled_ns.partition_point(|&s| s <= t) as u64
    }

    /// Accepted seqs in `[lo, hi)`.
    pub fn accepted_between(&self, lo: u64, hi: u64) -> u64 {
        self.accepted_below(hi)
            .saturating_sub(self.accepted_below(lo))
    }

    /// Accepted seqs lower than `seq`.
    fn accepted_below(&self, seq: u64) -> u64 {
        let bits = seq.saturating_sub(1).min(self.attempts()); // bits 0..bits are seqs < seq
        let (word, bit) = ((bits / 64) as usize, bits % 64);
        let partial = self
            .accepted
            .get(word)
            .map_or(0, |w| u64::from((w & ((1u64 << bit) - 1)).count_ones()));
        self.rank[word] + partial
    }
}

/// How a delivered seq counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    New,
    /// New, but lower than a seq already received.
    OutOfOrder,
    Duplicate,
}

/// What one subscriber received, recorded as it arrives (order matters for out-of-order).
#[derive(Clone, Debug, Default)]
pub struct Reception {
    received: SeqSet,
    duplicates: u64,
    out_of_order: u64,
    highest: u64,
}

impl Reception {
    /// Records a delivery of a seq the publisher started (publish starts must not decrease with
    /// the seq, which the swarm guarantees by setting foreign seqs aside). `ordered(seq, highest)` tells whether the publisher had put `seq`
    /// before `highest` (its publish was answered before `highest`'s started): only then is a
    /// later delivery of `seq` out of order. Publishes in flight together have no order, and
    /// since publish starts grow with the seq, `highest` is the one to compare with.
    pub fn record(&mut self, seq: u64, ordered: impl FnOnce(u64, u64) -> bool) -> Arrival {
        if !self.received.insert(seq) {
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        if seq < self.highest {
            if ordered(seq, self.highest) {
                self.out_of_order += 1;
                return Arrival::OutOfOrder;
            }
            return Arrival::New;
        }
        self.highest = seq;
        Arrival::New
    }

    pub fn received(&self) -> &SeqSet {
        &self.received
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// The highest seq received (0: none).
    pub fn highest(&self) -> u64 {
        self.highest
    }
}

/// One subscriber's accounting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Seqs it was owed.
    pub expected: u64,
    pub lost: u64,
    /// The lowest lost seqs, up to the sample size asked for.
    pub lost_sample: Vec<u64>,
    /// Distinct seqs received (owed or not).
    pub received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
}

/// Final accounting of a subscriber that first connected at `first_connect_ns` (`None`: it
/// never connected, so it was owed nothing).
pub fn account(
    pubs: &Publications,
    first_connect_ns: Option<u64>,
    reception: &Reception,
    sample: usize,
) -> Account {
    account_below(pubs, first_connect_ns, reception, u64::MAX, sample)
}

/// Loss so far, while the run goes on. An owed seq counts only when it is below the highest
/// seq the subscriber received AND it (with every seq before it) had been answered before that
/// highest one's publish started: the system had it first, yet delivered a later one. So a
/// subscriber still catching up after a reconnect, or a seq still in flight, is not called
/// lost. The final [`account`] is the verdict.
pub fn provisional_lost(
    pubs: &Publications,
    first_connect_ns: Option<u64>,
    reception: &Reception,
) -> u64 {
    let highest = reception.highest();
    let Some(highest_started) = pubs.started_ns(highest) else {
        return 0;
    };
    let limit = highest.min(pubs.settled_by(highest_started) + 1);
    account_below(pubs, first_connect_ns, reception, limit, 0).lost
}

/// Accounts owed seqs lower than `limit` only.
fn account_below(
    pubs: &Publications,
    first_connect_ns: Option<u64>,
    reception: &Reception,
    limit: u64,
    sample: usize,
) -> Account {
    let mut account = Account {
        // Only the final account reports it (it walks every range).
        received: if sample > 0 || limit == u64::MAX {
            reception.received.len()
        } else {
            0
        },
        duplicates: reception.duplicates,
        out_of_order: reception.out_of_order,
        ..Account::default()
    };
    let Some(connected) = first_connect_ns else {
        return account;
    };
    let lo = pubs.first_started_after(connected);
    let hi = limit.min(pubs.attempts() + 1);
    if lo >= hi {
        return account;
    }
    account.expected = pubs.accepted_between(lo, hi);
    for (start, end) in reception.received.gaps(lo, hi) {
        let owed = pubs.accepted_between(start, end);
        account.lost += owed;
        if owed > 0 && account.lost_sample.len() < sample {
            let room = sample - account.lost_sample.len();
            let missing = (start..end).filter(|&s| pubs.is_accepted(s)).take(room);
            account.lost_sample.extend(missing);
        }
    }
    account
}

#[cfg(test)]
#[path = "accounting_tests.rs"]
mod tests;
