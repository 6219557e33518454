//! The SSRF guard at delivery time: the HTTP client resolves names through
//! [`VettingResolver`], so it only ever connects to addresses the deployment's
//! [`TargetPolicy`] allows (the policy and the checks live in `statusmesh_egress`).

use std::sync::Arc;

use statusmesh_egress::{resolve, TargetPolicy};

/// The HTTP client's resolver: only vetted addresses come out of it.
#[derive(Debug, Clone)]
pub struct VettingResolver {
    pub policy: TargetPolicy,
}

impl reqwest::dns::Resolve for VettingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let addrs = resolve(name.as_str(), 0, &policy)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            let it: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

impl VettingResolver {
    pub fn shared(policy: TargetPolicy) -> Arc<Self> {
        Arc::new(VettingResolver { policy })
    }
}
