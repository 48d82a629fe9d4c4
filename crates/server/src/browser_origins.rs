//! The origins that browser keys are bound to, in any workspace, kept in memory for CORS
//! (`cors.rs`): a preflight carries no key, so it is answered for every origin some key allows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use leadscore_store::{Storage, StoreError};

use crate::key_cache::RECHECK_AFTER;

/// The origins browser keys are bound to, read again after [`RECHECK_AFTER`] (a key made or
/// revoked by the command line) or at once after a key is made or revoked here.
#[derive(Default)]
pub struct BrowserOrigins {
    read: Mutex<Option<(Instant, Arc<HashSet<String>>)>>,
}

impl BrowserOrigins {
    /// Forgets what was read, so that the next request reads the keys again.
    pub fn forget(&self) {
        if let Ok(mut read) = self.read.lock() {
            *read = None;
        }
    }

    fn fresh(&self, now: Instant) -> Option<Arc<HashSet<String>>> {
        let read = self.read.lock().ok()?;
        let (at, origins) = read.as_ref()?;
        (now.duration_since(*at) < RECHECK_AFTER).then(|| origins.clone())
    }

    /// Whether some browser key that is not revoked is bound to `origin`.
    pub async fn allow(&self, storage: &dyn Storage, origin: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let origins = match self.fresh(now) {
            Some(origins) => origins,
            None => {
                let origins: Arc<HashSet<String>> = Arc::new(storage.browser_origins().await?.into_iter().collect());
                if let Ok(mut read) = self.read.lock() {
                    *read = Some((now, origins.clone()));
                }
                origins
            }
        };
        Ok(origins.contains(origin))
    }
}
