//! The drill's workload as one thing to start, watch and finish: the SSE swarm and the HTTP load,
//! either or both.

use std::time::Duration;

use super::progress::Status;
use super::report::WorkloadRecord;
use super::spec::Workload;
use crate::chaos::workload::{HttpLoad, SseSwarm};

pub struct LoadDriver {
    sse: Option<SseSwarm>,
    http: Option<HttpLoad>,
}

impl LoadDriver {
    pub fn start(workload: &Workload) -> Result<LoadDriver, String> {
        // No overall timeout: an SSE stream lasts the whole drill. Each workload bounds its own
        // requests.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("workload HTTP client: {e}"))?;
        let sse = match &workload.sse {
            Some(spec) => Some(
                SseSwarm::start(spec, client.clone()).map_err(|e| format!("sse workload: {e}"))?,
            ),
            None => None,
        };
        let http = match &workload.http {
            Some(spec) => {
                Some(HttpLoad::start(spec, client).map_err(|e| format!("http workload: {e}"))?)
            }
            None => None,
        };
        Ok(LoadDriver { sse, http })
    }

    /// Events lost so far (None without an SSE workload).
    pub fn lost_so_far(&self) -> Option<u64> {
        self.sse.as_ref().map(|s| s.progress().lost_so_far)
    }

    /// Fills the workload part of the live line.
    pub fn describe(&self, status: &mut Status) {
        if let Some(sse) = &self.sse {
            let p = sse.progress();
            status.subscribers = Some((p.connected as u64, p.subscribers as u64));
            status.lost = Some(p.lost_so_far);
        }
        if let Some(http) = &self.http {
            let p = http.progress();
            status.http = Some((p.ok, p.requests));
        }
    }

    /// Stops publishing and requests, lets subscribers catch up for at most `drain`, and returns
    /// the accounting.
    pub async fn finish(self, drain: Duration) -> WorkloadRecord {
        if let Some(sse) = &self.sse {
            sse.stop_publishing();
        }
        let sse = async {
            match self.sse {
                Some(s) => Some(s.finish(drain).await),
                None => None,
            }
        };
        let http = async {
            match self.http {
                Some(h) => Some(h.finish().await),
                None => None,
            }
        };
        let (sse, http) = tokio::join!(sse, http);
        WorkloadRecord { sse, http }
    }
}
