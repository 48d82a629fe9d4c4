//! What every request handler shares.

use std::sync::Arc;

use leadscore_store::Store;

use crate::auth::KeyCache;
use crate::scoring::Models;

/// The service's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub models: Arc<Models>,
    pub keys: Arc<KeyCache>,
}

impl AppState {
    pub fn new(store: Store) -> AppState {
        AppState { store, models: Arc::new(Models::default()), keys: Arc::new(KeyCache::default()) }
    }
}
