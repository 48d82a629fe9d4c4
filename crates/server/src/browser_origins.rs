//! The origins that browser keys are bound to, in any workspace, kept in memory for CORS
//! (`cors.rs`): a preflight carries no key, so it is answered for every origin some key allows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use leadscore_store::{Storage, StoreError};

use crate::key_cache::RECHECK_AFTER;

/// The origins browser keys are bound to, read again at once after a key is made or revoked
/// here, within about a second after one is made or revoked elsewhere (another instance, the
/// command line: [`crate::cache_versions`]), and after [`RECHECK_AFTER`] in any case.
#[derive(Default)]
pub struct BrowserOrigins {
    read: Mutex<Read>,
}

#[derive(Default)]
struct Read {
    /// The origins, with when they were read.
    origins: Option<(Instant, Arc<HashSet<String>>)>,
    /// Counts the calls of [`BrowserOrigins::forget`]: origins read while one happened are not
    /// kept, as the read may predate the change that made it.
    forgets: u64,
}

impl BrowserOrigins {
    /// Forgets what was read, so that the next request reads the keys again.
    pub fn forget(&self) {
        if let Ok(mut read) = self.read.lock() {
            read.origins = None;
            read.forgets += 1;
        }
    }

    /// The origins read less than [`RECHECK_AFTER`] ago, or else the count of forgets to read
    /// them against.
    fn fresh(&self, now: Instant) -> Result<Arc<HashSet<String>>, u64> {
        let read = self.read.lock().map_err(|_| 0u64)?;
        match &read.origins {
            Some((at, origins)) if now.duration_since(*at) < RECHECK_AFTER => Ok(origins.clone()),
            _ => Err(read.forgets),
        }
    }

    /// Whether some browser key that is not revoked is bound to `origin`.
    pub async fn allow(&self, storage: &dyn Storage, origin: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let origins = match self.fresh(now) {
            Ok(origins) => origins,
            Err(forgets_before) => {
                let origins: Arc<HashSet<String>> = Arc::new(storage.browser_origins().await?.into_iter().collect());
                if let Ok(mut read) = self.read.lock()
                    && read.forgets == forgets_before
                {
                    read.origins = Some((now, origins.clone()));
                }
                origins
            }
        };
        Ok(origins.contains(origin))
    }
}
