//! Live updates over WebSocket: one hub fans market snapshots and report announcements out
//! to every connected browser.

use chrono::{DateTime, Utc};

/// The WebSocket hub; cheap to clone.
#[derive(Clone, Default)]
pub struct Hub {}

impl Hub {
    /// Announces a newly imported report to every client (`report_published`).
    pub fn report_published(&self, _id: u64, _created_at: DateTime<Utc>) {}
}
