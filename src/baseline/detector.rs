//! One sample judged against its series' baseline, whatever the method: the band (EWMA, or a
//! fitted model's forecast, or the EWMA fallback while a model learns), event windows, the
//! anomaly score, and whether the sample is learned. Live checks and `patrol detect` both call
//! [`observe`], so offline scores are exactly what the daemon would have said.

use chrono::{DateTime, Utc};

use super::forecast::Forecast;
use super::peer::PeerVerdict;
use super::score::{directed_z, from_z, z_of_level};
use super::{BaselineConfig, BaselineMethod, Direction, EventWindow, EwmaState};
use crate::result::{Band, format_number};

/// Where a fitted method's model stands for this series.
#[derive(Clone, Copy, Debug)]
pub enum Model<'a> {
    /// The method is not fitted (ewma), or nothing is known about the model.
    None,
    /// A forecast from the latest refit.
    Ready(&'a Forecast),
    /// Too little history: `have` of `need`.
    Learning {
        have: std::time::Duration,
        need: std::time::Duration,
    },
    /// The latest refit failed.
    Failed(&'a str),
}

/// What the baseline says about one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The band the sample was judged against, with the method and the anomaly score (None
    /// before anything was learned).
    pub band: Option<Band>,
    /// Whether the band was enforced and the sample fell outside it.
    pub anomalous: bool,
    /// Human explanation when anomalous.
    pub message: Option<String>,
    /// Whether the sample was learned into the EWMA state.
    pub learned: bool,
}

/// The band's centre, spread and width before a window changes it.
struct Basis {
    center: f64,
    sigma: f64,
    /// Half-width in `sigma`s.
    mult: f64,
    samples: u64,
    enforced: bool,
    method: String,
    /// What the message calls the band ("baseline", "seasonal band").
    noun: &'static str,
}

/// Judges `x` at `at`, then learns it into `ewma` unless it was anomalous (and anomalies are
/// kept out) or an open window says `learn: false`. `window` is the event window open at `at`.
pub fn observe(
    cfg: &BaselineConfig,
    ewma: &mut EwmaState,
    model: Model<'_>,
    window: Option<&EventWindow>,
    x: f64,
    at: DateTime<Utc>,
) -> Verdict {
    let basis = basis(cfg, ewma, model, at);
    let (band, anomalous, message) = match &basis {
        None => (None, false, None),
        Some(b) => judge(cfg, b, window, x),
    };
    let learned = (!anomalous || cfg.learn_anomalies) && window.is_none_or(|w| w.learn);
    if learned {
        ewma.update(x, cfg.alpha, at);
    }
    Verdict {
        band,
        anomalous,
        message,
        learned,
    }
}

/// The forecast's step when the model is ready and covers `at`, else the EWMA state (with the
/// reason the fitted method is not used, when it is one).
fn basis(
    cfg: &BaselineConfig,
    ewma: &EwmaState,
    model: Model<'_>,
    at: DateTime<Utc>,
) -> Option<Basis> {
    if cfg.method.is_fitted()
        && let Model::Ready(f) = model
        && let Some((center, sigma)) = f.at(at)
    {
        return Some(Basis {
            center,
            sigma,
            mult: z_of_level(cfg.level),
            samples: f.history_points as u64,
            enforced: true,
            method: cfg.method.as_str().to_string(),
            noun: "predicted band",
        });
    }
    if ewma.samples == 0 {
        return None;
    }
    Some(Basis {
        center: ewma.mean,
        sigma: ewma.stddev(),
        mult: cfg.k,
        samples: ewma.samples,
        enforced: ewma.samples >= cfg.warmup.max(1),
        method: fallback_name(cfg.method, model, at),
        noun: "baseline",
    })
}

/// `ewma`, or the EWMA fallback of another method with the reason.
fn fallback_name(method: BaselineMethod, model: Model<'_>, at: DateTime<Utc>) -> String {
    if method == BaselineMethod::Peer {
        return match model {
            Model::Failed(e) => format!("ewma (peer: {e})"),
            _ => "ewma (peer: no comparison)".to_string(),
        };
    }
    if !method.is_fitted() {
        return "ewma".to_string();
    }
    let m = method.as_str();
    let fmt = |d: std::time::Duration| {
        crate::config::duration::format(std::time::Duration::from_secs(d.as_secs()))
    };
    match model {
        Model::None => format!("ewma ({m}: no model yet)"),
        Model::Learning { have, need } => {
            format!(
                "ewma ({m} learning: {} of {} history)",
                fmt(have),
                fmt(need)
            )
        }
        Model::Failed(e) => format!("ewma ({m} failed: {e})"),
        Model::Ready(f) if at < f.start => format!("ewma ({m}: model newer than the sample)"),
        Model::Ready(_) => format!("ewma ({m}: model out of date)"),
    }
}

/// Judges `x` of one series against its peers' comparison (`peer` method): anomalous when
/// augurs named the series an outlier over the window (and no window disables the band); the
/// band shown is the peers' median ± k robust standard deviations. The EWMA state keeps
/// learning, as the fallback for runs with too few series.
pub fn observe_peer(
    cfg: &BaselineConfig,
    ewma: &mut EwmaState,
    peer: &PeerVerdict,
    series: &str,
    window: Option<&EventWindow>,
    x: f64,
    at: DateTime<Utc>,
) -> Verdict {
    let mult = window.and_then(|w| w.k).unwrap_or(cfg.k);
    let half = mult * peer.sigma;
    let z = directed_z(x, peer.center, peer.sigma, cfg.direction);
    let band = Band {
        mean: peer.center,
        stddev: peer.sigma,
        lower: peer.center - half,
        upper: peer.center + half,
        samples: peer.peers as u64,
        method: match window {
            Some(w) => format!("peer in {}", w.label()),
            None => "peer".to_string(),
        },
        anomaly_score: from_z(z),
    };
    let anomalous = peer.outlier && !window.is_some_and(|w| w.disable);
    let message = anomalous.then(|| {
        let name = if series.is_empty() { "the series" } else { series };
        format!(
            "{name} behaves unlike its {} peers over {} ({}): value {}, peers' median {}, score {:.2}",
            peer.peers.saturating_sub(1),
            crate::config::duration::format(cfg.peer.window),
            match cfg.peer.algorithm {
                super::PeerAlgorithm::Mad => "MAD",
                super::PeerAlgorithm::Dbscan => "DBSCAN",
            },
            format_number(x),
            format_number(peer.center),
            band.anomaly_score
        )
    });
    let learned = (!anomalous || cfg.learn_anomalies) && window.is_none_or(|w| w.learn);
    if learned {
        ewma.update(x, cfg.alpha, at);
    }
    Verdict {
        band: Some(band),
        anomalous,
        message,
        learned,
    }
}

/// The band, whether `x` is outside it, and why.
fn judge(
    cfg: &BaselineConfig,
    b: &Basis,
    window: Option<&EventWindow>,
    x: f64,
) -> (Option<Band>, bool, Option<String>) {
    let mult = window.and_then(|w| w.k).unwrap_or(b.mult);
    let half = mult * b.sigma;
    let z = directed_z(x, b.center, b.sigma, cfg.direction);
    let method = match window {
        Some(w) => format!("{} in {}", b.method, w.label()),
        None => b.method.clone(),
    };
    let band = Band {
        mean: b.center,
        stddev: b.sigma,
        lower: b.center - half,
        upper: b.center + half,
        samples: b.samples,
        method,
        anomaly_score: if b.samples >= 2 { from_z(z) } else { 0.0 },
    };
    let outside = match cfg.direction {
        Direction::Both => x < band.lower || x > band.upper,
        Direction::Up => x > band.upper,
        Direction::Down => x < band.lower,
    };
    let disabled = window.is_some_and(|w| w.disable);
    let anomalous = b.enforced && outside && !disabled;
    let message = anomalous.then(|| {
        let mut m = format!(
            "value {} outside {} [{}, {}] ({} {}, σ {}, {} samples)",
            format_number(x),
            b.noun,
            format_number(band.lower),
            format_number(band.upper),
            if b.noun == "baseline" {
                "mean"
            } else {
                "predicted"
            },
            format_number(band.mean),
            format_number(band.stddev),
            band.samples,
        );
        if b.noun == "baseline" && cfg.method.is_fitted() {
            m.push_str(&format!("; {}", band.method));
        }
        if let Some(w) = window {
            m.push_str(&format!("; in {} (k {})", w.label(), format_number(mult)));
        }
        m
    });
    (Some(band), anomalous, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BaselineConfig {
        BaselineConfig {
            warmup: 5,
            ..BaselineConfig::default()
        }
    }

    fn learned(values: &[f64]) -> EwmaState {
        let mut s = EwmaState::default();
        for &x in values {
            s.update(x, 0.1, Utc::now());
        }
        s
    }

    #[test]
    fn ewma_verdicts_match_the_ewma_state_and_carry_a_score() {
        let c = cfg();
        let mut s = learned(&[100.0, 102.0, 98.0, 101.0, 99.0, 100.0]);
        let before = s.clone();
        let v = observe(&c, &mut s, Model::None, None, 100.5, Utc::now());
        assert!(!v.anomalous && v.learned);
        let band = v.band.unwrap();
        assert_eq!(band.method, "ewma");
        assert!(band.anomaly_score < 0.2, "{band:?}");
        assert_eq!(before.judge(100.5, &c).band.unwrap().lower, band.lower);

        let v = observe(&c, &mut s, Model::None, None, 200.0, Utc::now());
        assert!(v.anomalous && !v.learned);
        assert!(v.band.unwrap().anomaly_score > 0.9);
        assert!(
            v.message
                .unwrap()
                .starts_with("value 200 outside baseline [")
        );
    }

    #[test]
    fn a_window_widens_disables_and_keeps_out_of_learning() {
        let c = cfg();
        let base = learned(&[100.0, 102.0, 98.0, 101.0, 99.0, 100.0]);
        let wide = EventWindow {
            name: Some("sale".into()),
            schedule: None,
            timezone: None,
            duration: None,
            from: None,
            to: None,
            maintenance: None,
            k: Some(50.0),
            disable: false,
            learn: false,
        };
        let mut s = base.clone();
        let v = observe(&c, &mut s, Model::None, Some(&wide), 130.0, Utc::now());
        assert!(!v.anomalous, "inside the widened band");
        assert!(!v.learned, "learn: false");
        assert_eq!(s, base);
        assert_eq!(v.band.as_ref().unwrap().method, "ewma in sale");
        assert!(
            v.band.unwrap().anomaly_score > 0.5,
            "the score still ranks it"
        );

        let off = EventWindow {
            k: None,
            disable: true,
            learn: true,
            ..wide
        };
        let v = observe(&c, &mut s, Model::None, Some(&off), 1e6, Utc::now());
        assert!(!v.anomalous && v.learned);
    }

    #[test]
    fn a_fitted_method_without_a_model_falls_back_to_ewma_and_says_why() {
        let c = BaselineConfig {
            method: BaselineMethod::Seasonal,
            periods: vec![std::time::Duration::from_secs(86_400)],
            ..cfg()
        };
        let mut s = learned(&[10.0; 6]);
        let model = Model::Learning {
            have: std::time::Duration::from_secs(6 * 3600),
            need: std::time::Duration::from_secs(2 * 86_400),
        };
        let v = observe(&c, &mut s, model, None, 10.0, Utc::now());
        assert_eq!(
            v.band.unwrap().method,
            "ewma (seasonal learning: 6h of 2days history)"
        );
    }

    #[test]
    fn nothing_learned_means_no_band() {
        let mut s = EwmaState::default();
        let v = observe(&cfg(), &mut s, Model::None, None, 5.0, Utc::now());
        assert_eq!((v.band, v.anomalous, v.learned), (None, false, true));
        assert_eq!(s.samples, 1);
    }
}
