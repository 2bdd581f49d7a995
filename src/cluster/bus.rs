//! The live-update bus between instances: one Redis pub/sub channel carrying postcard
//! messages. Publishing is fire-and-forget with the connection's short timeouts; listening is
//! one connection of its own, remade after any failure, whose messages from this instance are
//! ignored. A message that does not decode (another version, garbage) is counted and dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::market::wire::SnapshotWire;
use crate::redis_conn::{Redis, RedisFault};

/// How often the listening connection is checked, and how long its ping may take.
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// What one instance tells the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// An admin cleared the sender's caches: the one change the receiver does not make itself
    /// (each instance's own sync publishes the reports, and fetches history for its own
    /// store). Replayed through the receiver's publisher as [`Change::Cleared`], marked
    /// remote.
    ///
    /// [`Change::Cleared`]: crate::reports::publish::Change::Cleared
    Cleared,
    /// The market snapshot of the lease holder, with its fencing number.
    Market {
        fence: u64,
        snapshot: Box<SnapshotWire>,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    from: u64,
    message: Message,
}

/// The bus's counters, for `/health`.
#[derive(Debug, Default)]
pub struct BusStats {
    pub connected: AtomicBool,
    pub received: AtomicU64,
    pub published: AtomicU64,
    pub undecodable: AtomicU64,
    /// Market snapshots refused: out of bounds, or naming a lease nobody holds.
    pub refused: AtomicU64,
    pub reconnects: AtomicU64,
}

impl BusStats {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "connected": self.connected.load(Ordering::Relaxed),
            "received": self.received.load(Ordering::Relaxed),
            "published": self.published.load(Ordering::Relaxed),
            "undecodable": self.undecodable.load(Ordering::Relaxed),
            "refused": self.refused.load(Ordering::Relaxed),
            "reconnects": self.reconnects.load(Ordering::Relaxed),
        })
    }
}

pub async fn publish(
    redis: &Redis,
    channel: &str,
    from: u64,
    message: Message,
    stats: &BusStats,
) -> Result<(), RedisFault> {
    let bytes = postcard::to_allocvec(&Envelope { from, message })
        .map_err(|e| RedisFault::Failed(e.to_string()))?;
    let _: i64 = redis
        .cmd(redis::cmd("PUBLISH").arg(channel).arg(bytes))
        .await?;
    stats.published.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Delivers every message of the other instances to `on` until `stop`.
pub async fn listen(
    redis: &Redis,
    channel: &str,
    me: u64,
    stats: &BusStats,
    stop: CancellationToken,
    mut on: impl FnMut(Message),
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let subscribed = async {
            let mut pubsub = redis.client().get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let outcome = tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(2), subscribed) => r,
            () = stop.cancelled() => return,
        };
        match outcome {
            Ok(Ok(pubsub)) => {
                stats.connected.store(true, Ordering::Relaxed);
                backoff = Duration::from_millis(250);
                let (mut sink, mut messages) = pubsub.split();
                // A connection cut without a word (a crashed host, a partition) would stay
                // open for hours: a ping that goes unanswered ends it.
                let mut ping = tokio::time::interval(PING_EVERY);
                ping.tick().await;
                loop {
                    let next = tokio::select! {
                        m = messages.next() => m,
                        _ = ping.tick() => {
                            let answered = tokio::time::timeout(
                                PING_TIMEOUT,
                                sink.ping::<redis::Value>(),
                            )
                            .await;
                            if matches!(answered, Ok(Ok(_))) {
                                continue;
                            }
                            tracing::warn!(redis = %redis.at(), "the live-update bus stopped answering");
                            break;
                        }
                        () = stop.cancelled() => return,
                    };
                    let Some(msg) = next else {
                        tracing::warn!(redis = %redis.at(), "the live-update bus was cut; reconnecting");
                        break;
                    };
                    match postcard::from_bytes::<Envelope>(msg.get_payload_bytes()) {
                        Ok(envelope) if envelope.from == me => {}
                        Ok(envelope) => {
                            stats.received.fetch_add(1, Ordering::Relaxed);
                            on(envelope.message);
                        }
                        Err(_) => {
                            stats.undecodable.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %crate::redis_conn::one_line(&e), "cannot subscribe to the bus");
            }
            Err(_) => tracing::debug!("subscribing to the bus timed out"),
        }
        stats.connected.store(false, Ordering::Relaxed);
        stats.reconnects.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
