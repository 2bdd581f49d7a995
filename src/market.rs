//! Market data: the snapshot readers see, the background refresher with its fallback order,
//! and the simulated feed of the demo.
//!
//! Interface used by the rest of the application (keep it stable):
//! - [`Market::current`] returns the latest [`Snapshot`];
//! - [`Market::subscribe`] yields every new snapshot (the WebSocket hub listens here);
//! - [`Market::refresh`] forces one coalesced refresh of every group.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

/// Everything the dashboard shows, serialized with the field names of SPEC §5.1.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub last_updated: Option<String>,
    pub demo: bool,
}

/// Handle to the market data; cheap to clone.
#[derive(Clone)]
pub struct Market {
    tx: Arc<watch::Sender<Arc<Snapshot>>>,
}

impl Market {
    /// A market with nothing fetched yet.
    pub fn idle() -> Market {
        let (tx, _) = watch::channel(Arc::new(Snapshot::default()));
        Market { tx: Arc::new(tx) }
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    pub async fn refresh(&self) {}
}
