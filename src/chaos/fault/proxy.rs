//! `proxy`: toxics on one of the drill's built-in fault proxies (`proxies:`). The fault's fields
//! are the proxy's [`ToxicSpec`]; inject adds it under a fresh toxic id, revert removes it.
//!
//! The proxy lives inside the patrol process that runs the drill: if that process dies, the
//! proxy and its toxics die with it, so a recovery in a new process has nothing to undo.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Fault, FaultContext};
use crate::chaos::proxy::ToxicSpec;
use crate::config::Issues;

/// A `proxy:` fault: the toxics to add to a proxy.
pub type ProxyFault = ToxicSpec;

/// What a proxy fault's revert needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyState {
    pub proxy: String,
    pub toxic: String,
}

impl Fault for ToxicSpec {
    type State = ProxyState;

    fn validate(&self, issues: &mut Issues) {
        ToxicSpec::validate(self, issues);
    }

    fn describe(&self) -> String {
        format!(
            "{} (blast radius: connections through proxy {} only)",
            ToxicSpec::describe(self),
            self.proxy
        )
    }

    async fn preflight(&self, ctx: &FaultContext) -> Result<(), String> {
        if ctx.proxies.contains_key(&self.proxy) {
            Ok(())
        } else {
            Err(format!(
                "no proxy `{}` is declared under `proxies:`",
                self.proxy
            ))
        }
    }

    async fn inject(&self, ctx: &FaultContext, _window: Duration) -> Result<ProxyState, String> {
        let proxy = ctx
            .proxies
            .get(&self.proxy)
            .ok_or_else(|| format!("no proxy `{}` is running", self.proxy))?;
        let toxic = format!("fault-{}", uuid::Uuid::now_v7().simple());
        proxy.add_toxic(&toxic, self)?;
        Ok(ProxyState {
            proxy: self.proxy.clone(),
            toxic,
        })
    }

    async fn revert(ctx: &FaultContext, state: &ProxyState) -> Result<String, String> {
        Ok(match ctx.proxies.get(&state.proxy) {
            Some(proxy) if proxy.remove_toxic(&state.toxic) => {
                format!("removed toxic {} from proxy {}", state.toxic, state.proxy)
            }
            Some(_) => format!(
                "toxic {} is no longer on proxy {}; nothing to remove",
                state.toxic, state.proxy
            ),
            None => not_running(&state.proxy),
        })
    }

    async fn revert_unconfirmed(&self, ctx: &FaultContext) -> Result<String, String> {
        // `add_toxic` either added the toxic and returned its id, or added nothing.
        Ok(match ctx.proxies.get(&self.proxy) {
            Some(_) => format!("no toxic was added to proxy {}", self.proxy),
            None => not_running(&self.proxy),
        })
    }
}

fn not_running(proxy: &str) -> String {
    format!(
        "proxy {proxy} is not running in this process: it and its toxics ended with the patrol \
         process that ran the drill; nothing to revert"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::fault::FaultSpec;
    use crate::chaos::fault::test_support::{issues_of, spec_of};

    #[test]
    fn a_proxy_fault_is_a_toxic_spec() {
        let spec = spec_of("proxy", "{ proxy: lb, latency: 300ms, jitter: 50ms }");
        let FaultSpec::Proxy(t) = &spec else {
            panic!("{spec:?}")
        };
        assert_eq!(t.latency, Some(Duration::from_millis(300)));
        assert!(issues_of(&spec).is_empty());
        let text = spec.describe();
        assert!(text.starts_with("proxy lb: latency 300ms ±50ms"), "{text}");
        assert!(
            text.ends_with("connections through proxy lb only)"),
            "{text}"
        );
        let found = issues_of(&spec_of("proxy", "{ proxy: lb }"));
        assert!(
            found.iter().any(|i| i.contains("no toxic set")),
            "{found:?}"
        );
    }
}
