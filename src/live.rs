//! Live updates over WebSocket: one hub fans market snapshots and report announcements out
//! to every connected browser.
//!
//! Memory stays bounded per client whatever the client does:
//! - snapshots go through one `watch` channel: a client that falls behind skips straight to
//!   the newest snapshot, which is serialized once per update into shared buffers that every
//!   client's message points at (no per-client serialization, no per-client queue);
//! - a market update carries only what changed since the previous snapshot (see `patch`), a
//!   sliding array such as the sparkline as a splice for clients that asked for splices
//!   (`/ws?v=2`); a client that skipped snapshots gets the whole newest one instead, so what a
//!   browser merges always adds up to the current snapshot;
//! - other messages (`report_published`) go through one small `broadcast` ring shared by all
//!   clients; a client that lags past it loses the oldest announcements, never buffers them;
//! - a send that does not complete within the idle timeout drops the client, so a peer that
//!   stops reading holds a reference to one shared message and the kernel's socket buffers;
//! - the socket's own buffers are sized for a server that mostly writes, and the shared
//!   messages are written straight from their shared bytes, not copied into a buffer of each
//!   socket (see `socket`).

mod client;
mod patch;
mod socket;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

pub use self::client::ws;
use self::patch::{Arrays, merge_patch};
use self::socket::Utf8Bytes;
use crate::market::{Market, Snapshot};
use crate::tasks::Background;

/// Announcements a lagging client may still catch up on.
const EVENT_BACKLOG: usize = 16;
/// How long a client gets to answer our close frame at shutdown.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Limits and timers of the hub.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Most simultaneous WebSocket clients; further upgrades are answered with 503.
    pub max_clients: usize,
    /// How often the server pings each client.
    pub ping_interval: Duration,
    /// A client silent for this long (no pong, no frame) is dropped; a send blocked for this
    /// long drops the client too.
    pub idle_timeout: Duration,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            max_clients: 10_000,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

/// One serialized snapshot, shared by every client: cloning a message is a reference count.
#[derive(Debug)]
struct Frame {
    /// Position in the hub's sequence of snapshots, from 1.
    seq: u64,
    /// The `dashboard_data` message that greets a new client.
    data: Utf8Bytes,
    /// `dashboard_update` with the whole snapshot, for a client that skipped snapshots.
    update: Utf8Bytes,
    /// `dashboard_update` with what changed since snapshot `seq - 1`, arrays whole; `None`
    /// when the frame only exists whole.
    patch: Option<Utf8Bytes>,
    /// The same with changed arrays as splices where shorter (`None` when no array changed
    /// that way: `patch` serves both).
    spliced: Option<Utf8Bytes>,
}

impl Frame {
    /// The message for a client whose last snapshot was `seen`: the greeting for one that has
    /// none yet (it connected before the first snapshot), the patch for one that has the
    /// snapshot before (in the shape of `arrays` it merges), the whole update for one that
    /// skipped some.
    fn message_after(&self, seen: u64, arrays: Arrays) -> &Utf8Bytes {
        match (&self.patch, &self.spliced) {
            _ if seen == 0 => &self.data,
            (Some(_), Some(spliced)) if seen + 1 == self.seq && arrays == Arrays::Spliced => {
                spliced
            }
            (Some(patch), _) if seen + 1 == self.seq => patch,
            _ => &self.update,
        }
    }
}

/// The last published snapshot, which the next patch is computed against.
#[derive(Default)]
struct Chain {
    seq: u64,
    last: Option<Value>,
}

struct Inner {
    settings: HubSettings,
    clients: AtomicUsize,
    chain: Mutex<Chain>,
    started: AtomicBool,
    frames: watch::Sender<Option<Arc<Frame>>>,
    events: broadcast::Sender<Utf8Bytes>,
    /// The follower and every client run here; its cancellation closes them all.
    tasks: Background,
    drops: Drops,
}

/// What slow clients cost them, counted since start (for `/metrics`).
#[derive(Debug, Default)]
struct Drops {
    slow_clients: AtomicU64,
    skipped_snapshots: AtomicU64,
    missed_announcements: AtomicU64,
}

/// Messages and clients dropped because a client did not keep up.
#[derive(Debug, Clone, Copy, Default)]
pub struct DropCounts {
    /// Clients dropped because a send did not complete within the idle timeout.
    pub slow_clients: u64,
    /// Snapshots a client skipped because it was still busy with an older one.
    pub skipped_snapshots: u64,
    /// Announcements a client lagged past and never got.
    pub missed_announcements: u64,
}

/// The WebSocket hub; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("settings", &self.inner.settings)
            .field("clients", &self.clients())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub whose follower and clients run in `tasks` and close when it is cancelled.
    pub fn new(settings: HubSettings, tasks: &Background) -> Hub {
        let (frames, _) = watch::channel(None);
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        Hub {
            inner: Arc::new(Inner {
                settings,
                clients: AtomicUsize::new(0),
                chain: Mutex::default(),
                started: AtomicBool::new(false),
                frames,
                events,
                tasks: tasks.clone(),
                drops: Drops::default(),
            }),
        }
    }

    pub fn settings(&self) -> &HubSettings {
        &self.inner.settings
    }

    /// Connected WebSocket clients.
    pub fn clients(&self) -> usize {
        self.inner.clients.load(Ordering::Relaxed)
    }

    pub fn drops(&self) -> DropCounts {
        let d = &self.inner.drops;
        DropCounts {
            slow_clients: d.slow_clients.load(Ordering::Relaxed),
            skipped_snapshots: d.skipped_snapshots.load(Ordering::Relaxed),
            missed_announcements: d.missed_announcements.load(Ordering::Relaxed),
        }
    }

    /// Follows `market` from now on: every new snapshot is serialized once and pushed to all
    /// clients. Idempotent; the first call must run inside the Tokio runtime.
    pub fn start(&self, market: &Market) {
        if !self.inner.started.load(Ordering::Acquire) {
            self.follow(market.subscribe());
        }
    }

    /// [`Hub::start`] on any snapshot channel (tests feed their own).
    pub fn follow(&self, mut snapshots: watch::Receiver<Arc<Snapshot>>) {
        if self.inner.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let first = snapshots.borrow_and_update().clone();
        self.push(&*first, source_of(first.demo), true, made_at(&first));
        let hub = self.clone();
        self.inner.tasks.spawn("live hub", |stop| async move {
            loop {
                tokio::select! {
                    changed = snapshots.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let snapshot = snapshots.borrow_and_update().clone();
                        hub.push(&*snapshot, source_of(snapshot.demo), true, made_at(&snapshot));
                    }
                    () = stop.cancelled() => break,
                }
            }
        });
    }

    /// Pushes `data` to every client as a whole `dashboard_update`, serialized once; a client
    /// still busy with an older snapshot gets only this one.
    pub fn publish<T: Serialize + ?Sized>(&self, data: &T, source: &'static str) {
        self.push(data, source, false, now());
    }

    /// Publishes `data` as the next snapshot; with `diff`, clients that have the previous one
    /// get only the changes, and an unchanged snapshot is not published at all.
    fn push<T: Serialize + ?Sized>(
        &self,
        data: &T,
        source: &'static str,
        diff: bool,
        stamp: String,
    ) {
        // The value to diff against the next snapshot, and the text in its own field order.
        let serialized =
            serde_json::to_value(data).and_then(|v| Ok((serde_json::to_string(data)?, v)));
        let (whole, value) = match serialized {
            Ok(both) => both,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize the market snapshot");
                return;
            }
        };
        // Held until the frame is out, so frames leave in sequence and each patch is against
        // the frame before it.
        let mut chain = self
            .inner
            .chain
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (patch, spliced) = match (&chain.last, diff) {
            (Some(last), true) => match merge_patch(last, &value, Arrays::Whole) {
                Some(patch) => {
                    let spliced = merge_patch(last, &value, Arrays::Spliced)
                        .filter(|s| *s != patch)
                        .map(|s| s.to_string());
                    (Some(patch.to_string()), spliced)
                }
                None => return,
            },
            _ => (None, None),
        };
        chain.seq += 1;
        chain.last = Some(value);
        let seq = chain.seq;
        let frame = Frame {
            seq,
            data: envelope("dashboard_data", Some(&whole), seq, source, &stamp).into(),
            update: envelope("dashboard_update", Some(&whole), seq, source, &stamp).into(),
            patch: patch
                .map(|p| envelope("dashboard_update", Some(&p), seq, source, &stamp).into()),
            spliced: spliced
                .map(|p| envelope("dashboard_update", Some(&p), seq, source, &stamp).into()),
        };
        self.inner.frames.send_replace(Some(Arc::new(frame)));
    }

    /// Announces a newly imported report to every client (`report_published`).
    pub fn report_published(&self, id: u64, created_at: DateTime<Utc>) {
        let data = serde_json::json!({
            "id": id,
            "created_at": created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        });
        let message = serde_json::json!({
            "type": "report_published",
            "data": data,
            "timestamp": now(),
        });
        // No receiver simply means nobody is connected.
        let _ = self.inner.events.send(message.to_string().into());
    }

    fn is_shutting_down(&self) -> bool {
        self.inner.tasks.is_cancelled()
    }

    /// Takes one client slot, unless the hub is full or closing.
    fn admit(&self) -> Option<Slot> {
        if self.is_shutting_down() {
            return None;
        }
        let max = self.inner.settings.max_clients;
        self.inner
            .clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.inner.clone()))
    }
}

/// A client's place in the hub, returned when the connection ends however it ends.
struct Slot(Arc<Inner>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// New reports stored here are announced to every client (a report another instance
/// published is announced here once this instance's own sync stores it).
impl crate::reports::publish::Subscriber for Hub {
    fn changed(
        &self,
        change: &crate::reports::publish::Change,
        origin: crate::reports::publish::Origin,
    ) {
        if let (
            crate::reports::publish::Change::Published(p),
            crate::reports::publish::Origin::Local,
        ) = (change, origin)
        {
            for report in &p.new {
                self.report_published(report.id, report.created_at);
            }
        }
    }
}

fn source_of(demo: bool) -> &'static str {
    if demo { "demo" } else { "live" }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// When a snapshot was made (on the instance that polled it): its updates' `timestamp`.
fn made_at(snapshot: &Snapshot) -> String {
    match DateTime::from_timestamp_millis(snapshot.produced_at_ms) {
        Some(at) if snapshot.produced_at_ms > 0 => at.to_rfc3339_opts(SecondsFormat::Micros, true),
        _ => now(),
    }
}

/// `{type, data?, timestamp, seq?, source?}` around an already serialized `data`.
fn envelope(kind: &str, data: Option<&str>, seq: u64, source: &str, stamp: &str) -> String {
    let mut out = String::with_capacity(data.map_or(0, str::len) + 128);
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push('"');
    if let Some(data) = data {
        out.push_str(",\"data\":");
        out.push_str(data);
    }
    out.push_str(",\"timestamp\":\"");
    out.push_str(stamp);
    out.push('"');
    if seq > 0 {
        out.push_str(",\"seq\":");
        out.push_str(&seq.to_string());
    }
    if !source.is_empty() {
        out.push_str(",\"source\":\"");
        out.push_str(source);
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_what_it_lacks() {
        let frame = Frame {
            seq: 5,
            data: Utf8Bytes::from_static("data"),
            update: Utf8Bytes::from_static("whole"),
            patch: Some(Utf8Bytes::from_static("patch")),
            spliced: Some(Utf8Bytes::from_static("spliced")),
        };
        let (whole, spliced) = (Arrays::Whole, Arrays::Spliced);
        assert_eq!(frame.message_after(4, whole).as_str(), "patch");
        assert_eq!(frame.message_after(4, spliced).as_str(), "spliced");
        // Skipped snapshot 4.
        assert_eq!(frame.message_after(3, spliced).as_str(), "whole");
        // Connected before there was any snapshot.
        assert_eq!(frame.message_after(0, spliced).as_str(), "data");
        let no_splice = Frame {
            spliced: None,
            ..frame
        };
        assert_eq!(no_splice.message_after(4, spliced).as_str(), "patch");
        let whole_only = Frame {
            patch: None,
            ..no_splice
        };
        assert_eq!(whole_only.message_after(4, spliced).as_str(), "whole");
    }

    #[test]
    fn only_market_snapshots_that_changed_are_published_as_patches() {
        let hub = Hub::new(HubSettings::default(), &Background::new());
        let mut frames = hub.inner.frames.subscribe();
        hub.push(
            &serde_json::json!({ "a": 1, "b": [1] }),
            "demo",
            true,
            now(),
        );
        let first = frames.borrow_and_update().clone().expect("frame");
        assert_eq!((first.seq, first.patch.is_none()), (1, true));

        hub.push(
            &serde_json::json!({ "a": 1, "b": [1] }),
            "demo",
            true,
            now(),
        );
        assert!(
            !frames.has_changed().expect("open"),
            "unchanged, yet published"
        );

        hub.push(
            &serde_json::json!({ "a": 2, "b": [1] }),
            "demo",
            true,
            now(),
        );
        let second = frames.borrow_and_update().clone().expect("frame");
        let patch: Value =
            serde_json::from_str(second.message_after(1, Arrays::Spliced).as_str()).expect("json");
        assert_eq!(patch["type"], "dashboard_update");
        assert_eq!(patch["data"], serde_json::json!({ "a": 2 }));
        assert_eq!(patch["seq"], 2);

        // `publish` sends the whole value, and the next patch is against it.
        hub.publish(&serde_json::json!({ "a": 3, "b": [1] }), "test");
        let third = frames.borrow_and_update().clone().expect("frame");
        assert!(third.patch.is_none());
        hub.push(
            &serde_json::json!({ "a": 3, "b": [2] }),
            "demo",
            true,
            now(),
        );
        let fourth = frames.borrow_and_update().clone().expect("frame");
        let patch: Value =
            serde_json::from_str(fourth.message_after(3, Arrays::Whole).as_str()).expect("json");
        assert_eq!(patch["data"], serde_json::json!({ "b": [2] }));
    }
}
