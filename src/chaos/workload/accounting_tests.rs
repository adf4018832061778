use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;

use super::*;

/// `n` publishes one ms apart starting at 1 ms, accepted unless listed in `failed`.
fn pubs(n: u64, failed: &[u64]) -> Publications {
    Publications::new(
        (1..=n)
            .map(|seq| PublishRecord {
                seq,
                started_ns: seq * 1_000_000,
                answered_ns: Some(seq * 1_000_000 + 1),
                accepted: !failed.contains(&seq),
            })
            .collect(),
    )
    .unwrap()
}

fn receive(seqs: &[u64]) -> Reception {
    let mut r = Reception::default();
    for &s in seqs {
        r.record(s, |_, _| true);
    }
    r
}

#[test]
fn everything_received_is_no_loss() {
    let p = pubs(10, &[]);
    let a = account(&p, Some(0), &receive(&(1..=10).collect::<Vec<_>>()), 5);
    assert_eq!((a.expected, a.lost, a.received), (10, 0, 10));
    assert!(a.lost_sample.is_empty());
}

#[test]
fn a_missing_accepted_seq_is_lost_and_sampled() {
    let p = pubs(10, &[]);
    let a = account(&p, Some(0), &receive(&[1, 2, 3, 6, 7, 8, 9, 10]), 5);
    assert_eq!(a.lost, 2);
    assert_eq!(a.lost_sample, vec![4, 5]);
    // The tail counts too: nothing after 7 arrived.
    let a = account(&p, Some(0), &receive(&[1, 2, 3, 4, 5, 6, 7]), 2);
    assert_eq!(a.lost, 3);
    assert_eq!(a.lost_sample, vec![8, 9], "the sample is capped");
}

#[test]
fn seqs_published_before_the_first_connect_are_not_owed_even_if_received() {
    let p = pubs(10, &[]);
    // Connected at 4.5 ms: seqs 1..=4 started before (1..4 ms), 5.. after.
    let a = account(&p, Some(4_500_000), &receive(&[2, 5, 6, 7, 8, 9, 10]), 5);
    assert_eq!((a.expected, a.lost, a.received), (6, 0, 7));
    // A publish starting exactly at the connect instant is not owed (strictly after only).
    let a = account(&p, Some(5_000_000), &receive(&[6, 7, 8, 9, 10]), 5);
    assert_eq!((a.expected, a.lost), (5, 0));
}

#[test]
fn failed_publishes_are_not_owed_even_if_delivered() {
    let p = pubs(10, &[3, 4, 9]);
    let a = account(&p, Some(0), &receive(&[1, 2, 4, 5, 6, 7, 8, 10]), 5);
    assert_eq!((a.expected, a.lost, a.received), (7, 0, 8));
    let a = account(&p, Some(0), &receive(&[1, 2]), 10);
    assert_eq!(a.lost_sample, vec![5, 6, 7, 8, 10]);
}

#[test]
fn a_subscriber_that_never_connected_is_owed_nothing() {
    let p = pubs(10, &[]);
    let a = account(&p, None, &Reception::default(), 5);
    assert_eq!((a.expected, a.lost), (0, 0));
}

#[test]
fn duplicates_and_out_of_order_are_counted_once_each() {
    let mut r = Reception::default();
    let arrivals: Vec<Arrival> = [1, 2, 2, 4, 3, 3, 5, 1]
        .iter()
        .map(|&s| r.record(s, |_, _| true))
        .collect();
    use Arrival::*;
    assert_eq!(
        arrivals,
        vec![
            New, New, Duplicate, New, OutOfOrder, Duplicate, New, Duplicate
        ]
    );
    assert_eq!((r.duplicates(), r.out_of_order(), r.highest()), (3, 1, 5));
}

#[test]
fn provisional_loss_ignores_seqs_above_the_highest_received() {
    let p = pubs(10, &[]);
    // Reconnecting after 5: 6..=10 may still come (replay), 3 can no longer be in order.
    let r = receive(&[1, 2, 4, 5]);
    assert_eq!(provisional_lost(&p, Some(0), &r), 1);
    assert_eq!(account(&p, Some(0), &r, 0).lost, 6);
}

#[test]
fn provisional_loss_ignores_seqs_still_in_flight_when_a_later_one_started() {
    let rec = |seq: u64, answered_ns| PublishRecord {
        seq,
        started_ns: seq * 10,
        answered_ns,
        accepted: true,
    };
    // 2 was answered at 35, after 3 started (30): 3 may legitimately arrive before 2.
    let p = Publications::new(vec![rec(1, Some(11)), rec(2, Some(35)), rec(3, Some(31))]).unwrap();
    let r = receive(&[1, 3]);
    assert_eq!(provisional_lost(&p, Some(0), &r), 0);
    assert_eq!(
        account(&p, Some(0), &r, 0).lost,
        1,
        "the final account still counts it"
    );
    // Had 2 been answered before 3 started, its absence is a loss already.
    let p = Publications::new(vec![rec(1, Some(11)), rec(2, Some(25)), rec(3, Some(31))]).unwrap();
    assert_eq!(provisional_lost(&p, Some(0), &r), 1);
}

#[test]
fn publications_reject_gaps_repeats_and_time_going_backwards() {
    let rec = |seq, started_ns| PublishRecord {
        seq,
        started_ns,
        answered_ns: None,
        accepted: true,
    };
    assert!(Publications::new(vec![rec(1, 1), rec(3, 2)]).is_err());
    assert!(Publications::new(vec![rec(1, 1), rec(1, 2)]).is_err());
    assert!(Publications::new(vec![rec(1, 5), rec(2, 4)]).is_err());
    let p = Publications::new(vec![rec(2, 7), rec(1, 7)]).unwrap();
    assert_eq!((p.attempts(), p.accepted_count()), (2, 2));
    assert_eq!(p.started_ns(2), Some(7));
    assert_eq!(p.started_ns(3), None);
    assert_eq!(p.started_ns(0), None);
}

#[test]
fn seq_set_merges_neighbours_and_finds_gaps() {
    let mut s = SeqSet::default();
    for seq in [5, 1, 3, 2, 7, 4] {
        assert!(s.insert(seq));
    }
    assert!(!s.insert(3));
    assert_eq!(s.ranges(), &[(1, 6), (7, 8)]);
    assert_eq!(s.gaps(0, 10), vec![(0, 1), (6, 7), (8, 10)]);
    assert_eq!(s.gaps(2, 5), vec![]);
    assert!(s.insert(6));
    assert_eq!(s.ranges(), &[(1, 8)]);
    assert_eq!(s.len(), 7);
    assert!(!s.insert(u64::MAX));
}

#[test]
fn a_long_run_received_in_order_stays_one_range() {
    let mut r = Reception::default();
    for seq in 1..=100_000 {
        r.record(seq, |_, _| true);
    }
    assert_eq!(r.received().ranges().len(), 1);
}

#[test]
fn seqs_published_concurrently_are_not_out_of_order_either_way_round() {
    let mut r = Reception::default();
    // 3 and 4 were in flight together: 4 before 3 is no fault of the system.
    assert_eq!(r.record(4, |_, _| true), Arrival::New);
    assert_eq!(r.record(3, |a, b| !(a == 3 && b == 4)), Arrival::New);
    assert_eq!(r.out_of_order(), 0);
    // 2 was answered before 4 started: delivering it after 4 is out of order.
    assert_eq!(r.record(2, |_, _| true), Arrival::OutOfOrder);
    assert_eq!((r.out_of_order(), r.highest()), (1, 4));
}

/// The obvious, slow model of the same rules.
struct Model {
    lost: BTreeSet<u64>,
    expected: u64,
    received: u64,
    duplicates: u64,
    out_of_order: u64,
}

fn model(
    starts: &[u64],
    answered: &[Option<u64>],
    accepted: &[bool],
    connect: Option<u64>,
    arrivals: &[u64],
) -> Model {
    let owed: BTreeSet<u64> = match connect {
        None => BTreeSet::new(),
        Some(c) => (0..starts.len())
            .filter(|&i| accepted[i] && starts[i] > c)
            .map(|i| i as u64 + 1)
            .collect(),
    };
    let mut seen = HashSet::new();
    let (mut duplicates, mut out_of_order, mut highest) = (0, 0, 0);
    for &s in arrivals {
        if !seen.insert(s) {
            duplicates += 1;
        } else if s < highest {
            // Out of order only if some higher seq already received started after s was
            // answered (checked against every earlier arrival, not just the highest).
            let done = answered.get(s as usize - 1).copied().flatten();
            let blamed = arrivals_before(arrivals, s).iter().any(|&b| {
                b > s && done.is_some_and(|d| starts.get(b as usize - 1).is_some_and(|&sb| d <= sb))
            });
            if blamed {
                out_of_order += 1;
            }
        } else {
            highest = s;
        }
    }
    Model {
        lost: owed.iter().filter(|s| !seen.contains(s)).copied().collect(),
        expected: owed.len() as u64,
        received: seen.len() as u64,
        duplicates,
        out_of_order,
    }
}

/// The arrivals before the first arrival of `s`.
fn arrivals_before(arrivals: &[u64], s: u64) -> &[u64] {
    let first = arrivals
        .iter()
        .position(|&a| a == s)
        .unwrap_or(arrivals.len());
    &arrivals[..first]
}

type Scenario = (Vec<u64>, Vec<Option<u64>>, Vec<bool>, Option<u64>, Vec<u64>);

/// Publishes (start steps, possibly zero, answer delays or still in flight, acceptance), a
/// connect time, and arrivals drawn from the published seqs and a few beyond them, with repeats
/// and reordering.
fn scenario() -> impl Strategy<Value = Scenario> {
    let step = (
        0u64..3,
        prop::option::weighted(0.9, 0u64..6),
        prop::bool::weighted(0.8),
    );
    prop::collection::vec(step, 0..300).prop_flat_map(|steps| {
        let mut t = 0;
        let starts: Vec<u64> = steps
            .iter()
            .map(|(d, _, _)| {
                t += d;
                t
            })
            .collect();
        let answered: Vec<Option<u64>> = steps
            .iter()
            .zip(&starts)
            .map(|((_, delay, _), s)| delay.map(|d| s + d))
            .collect();
        let accepted: Vec<bool> = steps.iter().map(|(_, _, a)| *a).collect();
        let n = starts.len() as u64;
        let end = t + 2;
        (
            Just(starts),
            Just(answered),
            Just(accepted),
            prop::option::of(0..=end),
            // Only seqs of this run: the swarm sets aside seqs its publisher never started.
            prop::collection::vec(1..=n.max(1), 0..400),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn accounting_matches_the_model((starts, answered, accepted, connect, arrivals) in scenario(), sample in 0usize..8) {
        let records = starts
            .iter()
            .zip(&accepted)
            .enumerate()
            .map(|(i, (&started_ns, &accepted))| PublishRecord {
                seq: i as u64 + 1,
                started_ns,
                answered_ns: answered[i],
                accepted,
            })
            .collect();
        let pubs = Publications::new(records).unwrap();
        let mut reception = Reception::default();
        let ordered = |a: u64, b: u64| {
            let done = answered.get(a as usize - 1).copied().flatten();
            done.is_some_and(|d| pubs.started_ns(b).is_some_and(|sb| d <= sb))
        };
        for &s in &arrivals {
            reception.record(s, ordered);
        }
        let got = account(&pubs, connect, &reception, sample);
        let want = model(&starts, &answered, &accepted, connect, &arrivals);
        prop_assert_eq!(got.lost, want.lost.len() as u64);
        prop_assert_eq!(got.expected, want.expected);
        prop_assert_eq!(got.received, want.received);
        prop_assert_eq!(got.duplicates, want.duplicates);
        prop_assert_eq!(got.out_of_order, want.out_of_order);
        let sample_want: Vec<u64> = want.lost.iter().take(sample).copied().collect();
        prop_assert_eq!(got.lost_sample, sample_want);
        // Provisional loss: the lost seqs below `highest` that, with every seq before them,
        // were answered before `highest` started.
        let provisional = provisional_lost(&pubs, connect, &reception);
        let h = reception.highest();
        let settled = |s: u64| {
            (1..=s).all(|k| answered[k as usize - 1].is_some_and(|a| a <= starts[h as usize - 1]))
        };
        let below = want.lost.iter().filter(|&&s| s < h && settled(s)).count() as u64;
        prop_assert_eq!(provisional, below);
    }

    #[test]
    fn seq_set_matches_a_set(seqs in prop::collection::vec(0u64..200, 0..300), probe in 0u64..210, lo in 0u64..210, len in 0u64..50) {
        let mut set = SeqSet::default();
        let mut model = BTreeSet::new();
        for s in seqs {
            prop_assert_eq!(set.insert(s), model.insert(s));
        }
        prop_assert_eq!(set.contains(probe), model.contains(&probe));
        prop_assert_eq!(set.len(), model.len() as u64);
        // Ranges stay sorted, disjoint and never touching.
        for w in set.ranges().windows(2) {
            prop_assert!(w[0].1 < w[1].0);
        }
        let hi = lo + len;
        let missing: Vec<u64> = set.gaps(lo, hi).into_iter().flat_map(|(a, b)| a..b).collect();
        let want: Vec<u64> = (lo..hi).filter(|s| !model.contains(s)).collect();
        prop_assert_eq!(missing, want);
    }
}
