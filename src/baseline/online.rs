//! One series judged sample by sample with refits on the data's own clock: what the daemon does
//! over days (judge each sample, refit the model every `refit` from the history before it),
//! replayed offline by `patrol detect`, the evaluation benchmark and the tests. Each verdict
//! depends only on the samples before it.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::detector::{Model, Verdict, observe};
use super::forecast::{self, FitOutcome};
use super::window::{EventWindow, open_at};
use super::{BaselineConfig, EwmaState};
use crate::alert::maintenance::MaintenanceWindow;

/// A fitted method's model as the series holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelState {
    None,
    Fitted(forecast::Forecast),
    Learning { have: Duration, need: Duration },
    Failed(String),
}

impl ModelState {
    pub fn as_model(&self) -> Model<'_> {
        match self {
            ModelState::None => Model::None,
            ModelState::Fitted(f) => Model::Ready(f),
            ModelState::Learning { have, need } => Model::Learning {
                have: *have,
                need: *need,
            },
            ModelState::Failed(e) => Model::Failed(e),
        }
    }

    pub fn from_fit(fit: Result<FitOutcome, String>) -> ModelState {
        match fit {
            Ok(FitOutcome::Fitted(f)) => ModelState::Fitted(f),
            Ok(FitOutcome::Learning { have, need }) => ModelState::Learning { have, need },
            Err(e) => ModelState::Failed(e),
        }
    }
}

/// Whether a judged sample belongs in the history models are fitted on: not when an open window
/// keeps its samples out (`learn: false`), nor when it was anomalous and anomalies are not
/// learned — the rule the EWMA state follows, so an outage never becomes the model's normal.
/// But an anomaly called by the EWMA fallback of a fitted method (`judged_by` starts with
/// `ewma`) is kept: while a seasonal model learns, EWMA flags every morning rise, and leaving
/// those out would teach the model only nights.
pub fn keeps_for_history(
    cfg: &BaselineConfig,
    anomalous: bool,
    judged_by: Option<&str>,
    window: Option<&EventWindow>,
) -> bool {
    let fallback = cfg.method.is_fitted() && judged_by.is_some_and(|m| m.starts_with("ewma"));
    window.is_none_or(|w| w.learn) && (!anomalous || cfg.learn_anomalies || fallback)
}

/// A series replayed online.
pub struct OnlineSeries {
    cfg: BaselineConfig,
    step: Duration,
    maintenance: Vec<MaintenanceWindow>,
    ewma: EwmaState,
    history: VecDeque<(DateTime<Utc>, f64)>,
    model: ModelState,
    last_refit: Option<DateTime<Utc>>,
    refits: usize,
}

impl OnlineSeries {
    /// `step` is the series' sample spacing (a check's `every`); `maintenance` the windows an
    /// event window may refer to.
    pub fn new(cfg: BaselineConfig, step: Duration, maintenance: Vec<MaintenanceWindow>) -> Self {
        OnlineSeries {
            cfg,
            step,
            maintenance,
            ewma: EwmaState::default(),
            history: VecDeque::new(),
            model: ModelState::None,
            last_refit: None,
            refits: 0,
        }
    }

    /// Judges `x` at `t` (refitting first when a refit is due), then remembers it.
    pub fn push(&mut self, t: DateTime<Utc>, x: f64) -> Verdict {
        if self.cfg.method.is_fitted() && self.refit_due(t) {
            self.refit(t);
        }
        let window = open_at(&self.cfg.windows, t, &self.maintenance);
        let verdict = observe(
            &self.cfg,
            &mut self.ewma,
            self.model.as_model(),
            window,
            x,
            t,
        );
        let judged_by = verdict.band.as_ref().map(|b| b.method.as_str());
        if keeps_for_history(&self.cfg, verdict.anomalous, judged_by, window) && x.is_finite() {
            self.history.push_back((t, x));
            self.trim(t);
        }
        verdict
    }

    /// How many refits ran so far.
    pub fn refits(&self) -> usize {
        self.refits
    }

    pub fn model(&self) -> &ModelState {
        &self.model
    }

    fn refit_due(&self, t: DateTime<Utc>) -> bool {
        let every = TimeDelta::from_std(self.cfg.refit).unwrap_or(TimeDelta::MAX);
        self.last_refit.is_none_or(|last| t - last >= every)
    }

    fn refit(&mut self, t: DateTime<Utc>) {
        let history: Vec<(DateTime<Utc>, f64)> = self.history.iter().copied().collect();
        let horizon = match history.last() {
            Some((last, _)) => forecast::horizon_at(&self.cfg, self.step, *last, t),
            None => forecast::horizon(&self.cfg, self.step),
        };
        self.model = ModelState::from_fit(forecast::fit(&self.cfg, &history, self.step, horizon));
        self.last_refit = Some(t);
        self.refits += 1;
    }

    /// Keeps the history a refit reads, and no more.
    fn trim(&mut self, now: DateTime<Utc>) {
        let keep = TimeDelta::from_std(self.cfg.history()).unwrap_or(TimeDelta::MAX);
        while self.history.front().is_some_and(|(t, _)| now - *t > keep) {
            self.history.pop_front();
        }
    }
}
