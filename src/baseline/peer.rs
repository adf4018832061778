//! `peer`: a check with several series (one per pod, node, shard, SSE node) compares them with
//! each other over a recent window; augurs-outlier (MAD or DBSCAN) names the series that behaves
//! unlike its peers. This finds the one bad replica that a per-series band learns to accept.
//!
//! Two things are done around augurs, both because its detectors flag pure noise:
//! - At each timestamp the median of the *other* series is subtracted before detection, so
//!   augurs compares how far each series is from its peers, not raw values: MAD otherwise takes
//!   one median over the whole window and flags every series at the peak of a shape they all
//!   share (a traffic rise), and DBSCAN derives its cluster radius from the whole window's span.
//! - augurs calls a series outlying when a single point of the window is (`outlying_series`).
//!   Both detectors are scale-free, so among similar noisy series some point often is: MAD at
//!   sensitivity 0.9 flags any point beyond 1.2 robust standard deviations (one in four normal
//!   points; 2.9 at the default 0.5), DBSCAN any value more than (1 − sensitivity) × 1.1 of the
//!   data's span away from its neighbours. A series is therefore an outlier only when augurs
//!   flags it at the latest timestamp and at more than half of the window's timestamps
//!   ([`MIN_OUTLYING_SHARE`]): it behaves unlike its peers over the window and still does now.
//!   A single odd sample is the per-series band's business, not the peers'.
//!
//! Sensitivity differs by algorithm (measured on five similar series of 30 near-normal points):
//! MAD leaves them alone from 0.5 to 0.9; DBSCAN flags more than half of them at 0.9, about one
//! in a thousand at 0.8 and none at 0.7, while at 0.5 its radius (half the span, the odd series
//! included) calls a steady drift only once it is far away.

use std::collections::BTreeMap;

use augurs::outlier::{DbscanDetector, MADDetector, OutlierDetector, OutlierOutput};

use super::forecast::{median, sigma_floor};
use super::{BaselineConfig, PeerAlgorithm};

/// Share of the window's timestamps at which augurs must flag a series for it to be an outlier.
pub const MIN_OUTLYING_SHARE: f64 = 0.5;

/// What the comparison says about one series.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerVerdict {
    /// The series behaves unlike its peers over the window.
    pub outlier: bool,
    /// The peers' centre at the latest point (median of the series' latest values).
    pub center: f64,
    /// The peers' spread at the latest point (MAD × 1.4826, a robust standard deviation).
    pub sigma: f64,
    /// How many series took part.
    pub peers: usize,
}

/// Compares the series of `recent` (series → its values over the window, oldest first, the
/// current sample last). Series with fewer values than the others are compared over the common
/// tail. Err when there are fewer than `cfg.peer.min_series` series or augurs refuses the data.
///
/// Non-finite values are replaced by the peers' median at that timestamp (a missing point says
/// nothing about the series); a series without any finite value in the common tail is refused.
pub fn judge_peers(
    cfg: &BaselineConfig,
    recent: &BTreeMap<String, Vec<f64>>,
) -> Result<BTreeMap<String, PeerVerdict>, String> {
    let peers = recent.len();
    let need = cfg.peer.min_series.max(2);
    if peers < need {
        return Err(format!(
            "peer: {peers} series, the comparison needs at least {need}"
        ));
    }
    let tail = recent.values().map(Vec::len).min().unwrap_or(0);
    if tail == 0 {
        return Err("peer: a series has no values in the window".to_string());
    }
    let rows: Vec<&[f64]> = recent.values().map(|v| &v[v.len() - tail..]).collect();
    if let Some(name) = recent
        .iter()
        .zip(&rows)
        .find(|(_, row)| !row.iter().any(|x| x.is_finite()))
        .map(|((name, _), _)| name)
    {
        return Err(format!(
            "peer: series {name} has no finite value in the window"
        ));
    }
    let deviations = deviations_from_peers(&rows);
    let flagged = outlying_shares(cfg, &deviations)?;

    let mut latest: Vec<f64> = rows
        .iter()
        .map(|r| r[tail - 1])
        .filter(|x| x.is_finite())
        .collect();
    let center = median(&mut latest);
    let mut spread: Vec<f64> = latest.iter().map(|x| (x - center).abs()).collect();
    let sigma = (1.4826 * median(&mut spread)).max(sigma_floor(center));

    Ok(recent
        .keys()
        .zip(flagged)
        .map(|(name, (share, now))| {
            let verdict = PeerVerdict {
                outlier: now && share > MIN_OUTLYING_SHARE,
                center,
                sigma,
                peers,
            };
            (name.clone(), verdict)
        })
        .collect())
}

/// Each series' distance from the median of the other series at every timestamp (rows:
/// series). Leaving the series out keeps the middle series from sitting exactly on the median
/// (a run of exact zeros would shrink MAD's spread and flag everyone else).
fn deviations_from_peers(rows: &[&[f64]]) -> Vec<Vec<f64>> {
    let tail = rows.first().map_or(0, |r| r.len());
    let mut others = Vec::with_capacity(rows.len());
    rows.iter()
        .enumerate()
        .map(|(s, r)| {
            (0..tail)
                .map(|i| {
                    others.clear();
                    others.extend(
                        rows.iter()
                            .enumerate()
                            .filter(|(o, _)| *o != s)
                            .map(|(_, r)| r[i])
                            .filter(|x| x.is_finite()),
                    );
                    let x = r[i];
                    if x.is_finite() && !others.is_empty() {
                        x - median(&mut others)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

/// Per series: the share of timestamps augurs flags it at, and whether it flags the latest.
fn outlying_shares(cfg: &BaselineConfig, rows: &[Vec<f64>]) -> Result<Vec<(f64, bool)>, String> {
    let Some(output) = detect(cfg, rows)? else {
        return Ok(vec![(0.0, false); rows.len()]);
    };
    Ok(output
        .series_results
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if !output.outlying_series.contains(&i) {
                return (0.0, false);
            }
            let spans = &s.outlier_intervals.intervals;
            let tail = s.scores.len();
            let flagged: usize = spans
                .iter()
                .map(|iv| iv.end.unwrap_or(tail) - iv.start)
                .sum();
            let now = spans.last().is_some_and(|iv| iv.end.is_none());
            (flagged as f64 / tail.max(1) as f64, now)
        })
        .collect())
}

/// Runs the configured detector. None when the series do not differ at all: MAD divides by the
/// deviations' median and refuses identical data, DBSCAN would derive a zero radius; identical
/// peers have no odd one out.
fn detect(cfg: &BaselineConfig, rows: &[Vec<f64>]) -> Result<Option<OutlierOutput>, String> {
    if rows.iter().flatten().all(|d| *d == 0.0) {
        return Ok(None);
    }
    let slices: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
    let sensitivity = cfg.peer.sensitivity();
    let output = match cfg.peer.algorithm {
        PeerAlgorithm::Mad => {
            let detector = MADDetector::with_sensitivity(sensitivity)
                .map_err(|e| format!("peer (mad): {e}"))?;
            // MAD refuses data whose deviations mostly coincide (e.g. integer counts where
            // most peers report the same value): it has no spread to divide by.
            let data = detector.preprocess(&slices).map_err(|e| {
                format!("peer (mad): {e} (most series agree exactly; dbscan copes with that)")
            })?;
            detector
                .detect(&data)
                .map_err(|e| format!("peer (mad): {e}"))?
        }
        PeerAlgorithm::Dbscan => {
            let detector = DbscanDetector::with_sensitivity(sensitivity)
                .map_err(|e| format!("peer (dbscan): {e}"))?;
            let data = detector
                .preprocess(&slices)
                .map_err(|e| format!("peer (dbscan): {e}"))?;
            detector
                .detect(&data)
                .map_err(|e| format!("peer (dbscan): {e}"))?
        }
    };
    Ok(Some(output))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::PeerConfig;

    /// Deterministic noise in [-1, 1].
    fn noise(i: usize) -> f64 {
        let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        2.0 * ((z >> 11) as f64 / (1u64 << 53) as f64) - 1.0
    }

    fn cfg(algorithm: PeerAlgorithm) -> BaselineConfig {
        with_sensitivity(
            algorithm,
            PeerConfig {
                algorithm,
                ..PeerConfig::default()
            }
            .sensitivity(),
        )
    }

    fn with_sensitivity(algorithm: PeerAlgorithm, sensitivity: f64) -> BaselineConfig {
        BaselineConfig {
            method: crate::baseline::BaselineMethod::Peer,
            peer: PeerConfig {
                algorithm,
                sensitivity: Some(sensitivity),
                ..PeerConfig::default()
            },
            ..BaselineConfig::default()
        }
    }

    /// Each algorithm at the default sensitivity and at the highest one that still leaves
    /// similar noisy series alone (DBSCAN's radius shrinks much faster with sensitivity).
    fn settings() -> Vec<BaselineConfig> {
        vec![
            cfg(PeerAlgorithm::Mad),
            with_sensitivity(PeerAlgorithm::Mad, 0.9),
            cfg(PeerAlgorithm::Dbscan),
            with_sensitivity(PeerAlgorithm::Dbscan, 0.7),
        ]
    }

    /// Five nodes over 30 points sharing a rising load; `odd` (if any) runs `shift` above.
    fn nodes(odd: Option<usize>, shift: f64) -> BTreeMap<String, Vec<f64>> {
        (0..5)
            .map(|s| {
                let values = (0..30)
                    .map(|i| {
                        let shared = 100.0 + 2.0 * i as f64;
                        let own = if Some(s) == odd { shift } else { 0.0 };
                        shared + own + 3.0 * noise(s * 1000 + i)
                    })
                    .collect();
                (format!("node-{s}"), values)
            })
            .collect()
    }

    fn outliers(verdicts: &BTreeMap<String, PeerVerdict>) -> Vec<&str> {
        verdicts
            .iter()
            .filter(|(_, v)| v.outlier)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    #[test]
    fn the_shifted_series_is_the_only_outlier_for_mad_and_dbscan() {
        for cfg in settings() {
            let verdicts = judge_peers(&cfg, &nodes(Some(3), 40.0)).unwrap();
            assert_eq!(outliers(&verdicts), vec!["node-3"], "{:?}", cfg.peer);
            let v = &verdicts["node-0"];
            assert_eq!(v.peers, 5);
            assert!((v.center - 158.0).abs() < 4.0, "{v:?}");
            assert!(v.sigma > 0.0 && v.sigma < 6.0, "{v:?}");
        }
    }

    #[test]
    fn similar_series_have_no_outlier() {
        for cfg in settings() {
            for seed in 0..50 {
                let mut recent = nodes(None, 0.0);
                for (s, values) in recent.values_mut().enumerate() {
                    for (i, x) in values.iter_mut().enumerate() {
                        *x += 3.0 * noise(seed * 100_000 + s * 1000 + i + 7);
                    }
                }
                let verdicts = judge_peers(&cfg, &recent).unwrap();
                assert!(
                    outliers(&verdicts).is_empty(),
                    "{:?} seed {seed}: {verdicts:?}",
                    cfg.peer
                );
            }
        }
    }

    #[test]
    fn too_few_series_or_values_are_refused() {
        let mut recent = nodes(None, 0.0);
        recent.retain(|n, _| n == "node-0" || n == "node-1");
        let err = judge_peers(&cfg(PeerAlgorithm::Mad), &recent).unwrap_err();
        assert_eq!(err, "peer: 2 series, the comparison needs at least 3");

        let mut recent = nodes(None, 0.0);
        recent.get_mut("node-2").unwrap().clear();
        assert!(judge_peers(&cfg(PeerAlgorithm::Mad), &recent).is_err());
    }

    #[test]
    fn series_are_compared_over_the_common_tail_and_identical_ones_agree() {
        let mut recent = nodes(Some(1), 40.0);
        recent.get_mut("node-4").unwrap().drain(..10);
        let verdicts = judge_peers(&cfg(PeerAlgorithm::Dbscan), &recent).unwrap();
        assert_eq!(outliers(&verdicts), vec!["node-1"]);

        let same: BTreeMap<String, Vec<f64>> =
            (0..4).map(|s| (format!("s{s}"), vec![5.0; 10])).collect();
        let verdicts = judge_peers(&cfg(PeerAlgorithm::Mad), &same).unwrap();
        assert!(outliers(&verdicts).is_empty());
        assert_eq!(verdicts["s0"].center, 5.0);
        assert_eq!(verdicts["s0"].sigma, sigma_floor(5.0));
    }

    #[test]
    fn a_blip_or_a_past_episode_is_not_an_outlier_now() {
        for cfg in settings() {
            let mut blip = nodes(None, 0.0);
            blip.get_mut("node-1").unwrap()[29] += 80.0;
            let verdicts = judge_peers(&cfg, &blip).unwrap();
            assert!(
                outliers(&verdicts).is_empty(),
                "{:?}: one odd sample",
                cfg.peer
            );

            let mut recovered = nodes(None, 0.0);
            for x in &mut recovered.get_mut("node-4").unwrap()[..25] {
                *x += 80.0;
            }
            let verdicts = judge_peers(&cfg, &recovered).unwrap();
            assert!(outliers(&verdicts).is_empty(), "{:?}: recovered", cfg.peer);

            let mut persistent = nodes(None, 0.0);
            for x in &mut persistent.get_mut("node-4").unwrap()[10..] {
                *x += 80.0;
            }
            let verdicts = judge_peers(&cfg, &persistent).unwrap();
            assert_eq!(outliers(&verdicts), vec!["node-4"], "{:?}", cfg.peer);
        }
    }
}
