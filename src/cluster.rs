//! Several instances behind one load balancer, sharing one Redis: a shared second cache tier
//! (`cache::redis_tier`), a bus that carries the changes no other instance makes itself (an
//! admin's clear) and the market snapshot to every instance (`bus`), and a lease so that
//! exactly one instance polls the market providers while the others show its snapshots
//! (`lease`).
//!
//! Each instance keeps its own store, synced from PostgreSQL by itself: its own sync publishes
//! (and announces) a report once this store holds it, so published reports are not sent over
//! the bus, and shared cache entries are keyed by the store's content, so a page is never
//! served where its reports are missing.
//! When Redis is away, every instance keeps serving from its memory and its store, and each
//! polls the providers itself until Redis is back and one of them takes the lease again.

pub mod bus;
pub mod lease;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::json;

use self::bus::{BusStats, Message};
use self::lease::{Held, LEASE_TICK, LEASE_TTL, Lease};
use crate::cache::l2::L2;
use crate::cache::redis_tier::RedisTier;
use crate::lock::lock;
use crate::market::wire::SnapshotWire;
use crate::redis_conn::Redis;
use crate::reports::Publisher;
use crate::reports::publish::{Change, Origin, Subscriber};
use crate::secret::Secret;
use crate::tasks::Background;

/// The Redis key (under the deployment's prefix) of the latest market snapshot, read by an
/// instance that starts following. Not a cache entry: clearing the page cache leaves it.
const SNAPSHOT_KEY: &str = "market:snapshot";
/// How long the latest snapshot is kept after its holder stops sending.
const SNAPSHOT_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// This instance's part in polling the market.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// Another instance holds the lease; this one shows its snapshots.
    Following,
    /// This instance holds the lease and polls.
    Leading(Held),
    /// Redis is away: this instance polls for itself until it is back.
    Alone,
}

struct Inner {
    redis: Arc<Redis>,
    /// The shared second cache tier: one, so that its counters are the tier's.
    l2: Arc<RedisTier>,
    /// Random per process: tells this instance's bus messages from the others'.
    id: u64,
    /// `host:pid`, for people reading `/health`.
    name: String,
    channel: String,
    lease: Lease,
    role: Mutex<Role>,
    /// Highest fencing number seen on the bus: snapshots below it come from a former holder.
    fence_seen: Mutex<u64>,
    bus: BusStats,
    started: DateTime<Utc>,
}

/// What the cluster acts on in this instance: the publisher whose subscribers hear the
/// changes other instances send (marked remote), and the market it leads or follows. Narrow
/// on purpose: the cluster is part of the app, not a holder of it.
#[derive(Clone)]
pub struct ActsOn {
    pub publisher: Publisher,
    pub market: crate::market::Market,
}

/// Handle to the instance's place among the others; cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

impl Cluster {
    /// Joins the deployment `prefix` on the Redis at `url`. Connects lazily: a Redis that is
    /// down now only means starting degraded. Must be called inside a Tokio runtime.
    pub fn new(url: &Secret, prefix: &str) -> Result<Cluster, String> {
        let redis = Arc::new(Redis::new(url, prefix)?);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "host".into());
        Ok(Cluster(Arc::new(Inner {
            channel: redis.key("bus"),
            lease: Lease::new(&redis, "market"),
            l2: Arc::new(RedisTier::new(Arc::clone(&redis))),
            redis,
            id: rand::random(),
            name: format!("{host}:{}", std::process::id()),
            role: Mutex::new(Role::Following),
            fence_seen: Mutex::new(0),
            bus: BusStats::default(),
            started: Utc::now(),
        })))
    }

    /// The Redis the instances share.
    pub fn redis(&self) -> Arc<Redis> {
        Arc::clone(&self.0.redis)
    }

    /// The market lease as this instance holds it now (value and fence), if it does.
    pub fn lease_held(&self) -> Option<Held> {
        match &*lock(&self.0.role) {
            Role::Leading(held) => Some(held.clone()),
            Role::Following | Role::Alone => None,
        }
    }

    /// The Redis key of the market lease.
    pub fn lease_key(&self) -> String {
        self.0.lease.key().to_owned()
    }

    /// The shared second cache tier.
    pub fn l2(&self) -> Arc<dyn L2> {
        Arc::clone(&self.0.l2) as Arc<dyn L2>
    }

    /// Starts the bus listener, the lease and the snapshot relay in `tasks`. `acts_on.market`
    /// must be an elected market.
    pub fn start(&self, acts_on: &ActsOn, tasks: &Background) {
        let listener = self.clone();
        let st = acts_on.clone();
        tasks.spawn("cluster bus", |stop| async move {
            let inner = Arc::clone(&listener.0);
            bus::listen(
                &inner.redis,
                &inner.channel,
                inner.id,
                &inner.bus,
                stop,
                |m| {
                    listener.received(&st, m);
                },
            )
            .await;
        });
        let leaser = self.clone();
        let st = acts_on.clone();
        tasks.spawn("market lease", |stop| async move {
            leaser.lease_loop(&st, stop).await
        });
        let relayer = self.clone();
        let st = acts_on.clone();
        tasks.spawn("market relay", |stop| async move {
            relayer.relay_loop(&st, stop).await
        });
    }

    /// Tells the other instances (fire and forget: the bus is best effort).
    pub fn broadcast(&self, message: Message) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::clone(&self.0);
        runtime.spawn(async move {
            if let Err(e) =
                bus::publish(&inner.redis, &inner.channel, inner.id, message, &inner.bus).await
            {
                tracing::debug!(error = %e, "bus message not sent");
            }
        });
    }

    fn received(&self, state: &ActsOn, message: Message) {
        match message {
            Message::Cleared => state.publisher.notify(&Change::Cleared, Origin::Remote),
            Message::Market { fence, snapshot } => {
                let Some(snapshot) = self.believable(*snapshot) else {
                    return;
                };
                let seen = *lock(&self.0.fence_seen);
                if fence < seen {
                    return; // from a former holder
                }
                if fence == seen {
                    self.take_snapshot(state, fence, &snapshot);
                    return;
                }
                // A fence not seen yet is believed only when the lease in Redis carries it:
                // a forged one must not silence the real holder until a restart.
                let this = self.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    match this.0.lease.holder_fence(&this.0.redis).await {
                        Ok(Some(held)) if held == fence => {
                            this.take_snapshot(&state, fence, &snapshot);
                        }
                        Ok(held) => {
                            this.0
                                .bus
                                .refused
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::warn!(
                                fence,
                                ?held,
                                "a market snapshot names a lease nobody holds; ignored"
                            );
                        }
                        Err(_) => {}
                    }
                });
            }
        }
    }

    /// `wire` as a snapshot, if it has this build's shape and values a provider could give.
    fn believable(&self, wire: SnapshotWire) -> Option<crate::market::Snapshot> {
        let snapshot = wire.into_snapshot()?;
        match crate::market::trust::check(&snapshot, Utc::now().timestamp_millis()) {
            Ok(()) => Some(snapshot),
            Err(e) => {
                self.0
                    .bus
                    .refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(error = %e, "a market snapshot from another instance is out of bounds; ignored");
                None
            }
        }
    }

    /// Shows the snapshot of the holder of `fence` (and stops polling if this instance
    /// thought it held the lease: someone took it after ours lapsed).
    fn take_snapshot(&self, state: &ActsOn, fence: u64, snapshot: &crate::market::Snapshot) {
        {
            let mut seen = lock(&self.0.fence_seen);
            if fence < *seen {
                return;
            }
            *seen = fence;
        }
        let mut role = lock(&self.0.role);
        if let Role::Leading(held) = &*role
            && fence > held.fence
        {
            tracing::warn!(
                fence,
                ours = held.fence,
                "another instance holds the market lease; following it"
            );
            *role = Role::Following;
            state.market.stop_polling();
        }
        drop(role);
        state.market.relay(snapshot);
    }

    async fn lease_loop(&self, state: &ActsOn, stop: tokio_util::sync::CancellationToken) {
        let inner = &self.0;
        let me = format!("{}:{:x}", inner.name, inner.id);
        // A new follower shows the last shared snapshot at once.
        let key = inner.redis.key(SNAPSHOT_KEY);
        if let Ok(Some(bytes)) = inner
            .redis
            .cmd::<Option<Vec<u8>>>(redis::cmd("GET").arg(&key))
            .await
            && let Ok(wire) = postcard::from_bytes::<SnapshotWire>(&bytes)
            && let Some(snapshot) = self.believable(wire)
        {
            state.market.relay(&snapshot);
        }
        loop {
            let role = lock(&inner.role).clone();
            let next = match &role {
                Role::Leading(held) => match inner.lease.renew(&inner.redis, held).await {
                    Ok(true) => role.clone(),
                    Ok(false) => {
                        tracing::warn!("the market lease went to another instance; following it");
                        Role::Following
                    }
                    Err(_) if inner.redis.failing_for(LEASE_TTL) => Role::Alone,
                    Err(_) => role.clone(),
                },
                Role::Following | Role::Alone => {
                    match inner.lease.acquire(&inner.redis, &me).await {
                        Ok(Some(held)) => {
                            tracing::info!(
                                fence = held.fence,
                                "this instance holds the market lease and polls the providers"
                            );
                            Role::Leading(held)
                        }
                        Ok(None) => Role::Following,
                        Err(_) if inner.redis.failing_for(LEASE_TTL) => {
                            if role != Role::Alone {
                                tracing::warn!(
                                    "Redis is away; polling the market providers here until it is back"
                                );
                            }
                            Role::Alone
                        }
                        Err(_) => role.clone(),
                    }
                }
            };
            match &next {
                Role::Leading(held) => {
                    let mut seen = lock(&inner.fence_seen);
                    *seen = (*seen).max(held.fence);
                    drop(seen);
                    state.market.start_polling();
                }
                Role::Alone => {
                    state.market.start_polling();
                }
                Role::Following => {
                    state.market.stop_polling();
                }
            }
            *lock(&inner.role) = next;
            tokio::select! {
                () = tokio::time::sleep(LEASE_TICK) => {}
                () = stop.cancelled() => break,
            }
        }
        // Hand the lease over at once rather than after it expires.
        let last = lock(&inner.role).clone();
        if let Role::Leading(held) = last {
            let _ = inner.lease.release(&inner.redis, &held).await;
        }
    }

    /// While this instance leads, sends every new snapshot to the others (and to L2, for
    /// instances that start later).
    async fn relay_loop(&self, state: &ActsOn, stop: tokio_util::sync::CancellationToken) {
        let mut snapshots = state.market.subscribe();
        let key = self.0.redis.key(SNAPSHOT_KEY);
        loop {
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() { break },
                () = stop.cancelled() => break,
            }
            let role = lock(&self.0.role).clone();
            let fence = match role {
                Role::Leading(held) => held.fence,
                Role::Following | Role::Alone => continue,
            };
            let snapshot = snapshots.borrow_and_update().clone();
            let wire = SnapshotWire::from(&*snapshot);
            if let Ok(bytes) = postcard::to_allocvec(&wire) {
                let set = redis::cmd("SET")
                    .arg(&key)
                    .arg(bytes)
                    .arg("PX")
                    .arg(SNAPSHOT_TTL.as_millis() as u64)
                    .clone();
                let _ = self.0.redis.cmd::<()>(&set).await;
            }
            self.broadcast(Message::Market {
                fence,
                snapshot: Box::new(wire),
            });
        }
    }

    pub fn health(&self) -> serde_json::Value {
        let inner = &self.0;
        let (role, fence) = match &*lock(&inner.role) {
            Role::Following => ("following", None),
            Role::Leading(h) => ("leading", Some(h.fence)),
            Role::Alone => ("alone (Redis away)", None),
        };
        json!({
            "instance": format!("{}:{:x}", inner.name, inner.id),
            "since": inner.started,
            "redis": inner.redis.state(),
            "market_role": role,
            "lease_fence": fence,
            "bus": inner.bus.json(),
        })
    }
}

/// A change made here that the other instances do not make themselves reaches them over the
/// bus. Reports published here are not sent: every instance's own sync publishes them, and
/// history values are fetched by every instance for its own store.
impl Subscriber for Cluster {
    fn changed(&self, change: &Change, origin: Origin) {
        if origin == Origin::Remote {
            return;
        }
        match change {
            Change::Cleared => self.broadcast(Message::Cleared),
            Change::Published(_) | Change::Refreshed { .. } => {}
        }
    }
}
