//! Deliveries among several instances: only the holder of the market lease delivers, and it
//! claims each delivery in Redis with the lease's fencing number before sending and marks it
//! done there after the 2xx. Every instance imports the same reports into its own store (so
//! each has the same outbox records, with the same delivery ids); a new holder skips what a
//! former one marked done, and a former holder, once the lease is gone, claims nothing more.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use crate::cluster::lease::Held;
use crate::redis_conn::{Redis, RedisFault};

/// How long a done mark is kept: longer than any give-up age.
const DONE_TTL: Duration = Duration::from_secs(31 * 86_400);
/// How long a claim holds without a done mark (a holder that died mid-send): the next holder
/// may claim it with its higher fence at once anyway; this only bounds the key's life.
const CLAIM_TTL: Duration = Duration::from_secs(3600);

/// KEYS: lease, done, claim; ARGV: lease value, fence, claim ttl (ms). 1: go, 2: done
/// already, 0: the lease is not ours (or a newer holder claimed it).
const CLAIM: &str = "if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end \
if redis.call('exists', KEYS[2]) == 1 then return 2 end \
local c = tonumber(redis.call('get', KEYS[3]) or '0') \
if c > tonumber(ARGV[2]) then return 0 end \
redis.call('set', KEYS[3], ARGV[2], 'PX', ARGV[3]) return 1";

/// Whether this instance holds the lease now, and with which value and fence.
pub trait LeaseView: Send + Sync {
    fn held(&self) -> Option<Held>;
    /// The Redis key of the lease.
    fn lease_key(&self) -> String;
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours to send, under this fence (the one the claim was recorded with: the done mark
    /// carries the same, whatever the lease says by then).
    Go(u64),
    /// Another holder delivered it: drop the local record.
    Done,
    /// This instance does not hold the lease (any more): send nothing.
    NotOurs,
}

#[derive(Clone)]
pub struct Claims {
    redis: Arc<Redis>,
    lease: Arc<dyn LeaseView>,
    claim: Arc<Script>,
}

impl Claims {
    pub fn new(redis: Arc<Redis>, lease: Arc<dyn LeaseView>) -> Claims {
        Claims {
            redis,
            lease,
            claim: Arc::new(Script::new(CLAIM)),
        }
    }

    pub fn leading(&self) -> bool {
        self.lease.held().is_some()
    }

    /// Claims delivery `id` under the lease held now.
    pub async fn claim(&self, id: &str) -> Result<Claim, RedisFault> {
        let Some(held) = self.lease.held() else {
            return Ok(Claim::NotOurs);
        };
        let keys = [
            self.lease.lease_key(),
            self.redis.key(&format!("announce:done:{id}")),
            self.redis.key(&format!("announce:claim:{id}")),
        ];
        let fence = held.fence.to_string();
        let ttl = CLAIM_TTL.as_millis().to_string();
        let n: i64 = self
            .redis
            .script(
                &self.claim,
                &[&keys[0], &keys[1], &keys[2]],
                &[&held.value, &fence, &ttl],
            )
            .await?;
        Ok(match n {
            1 => Claim::Go(held.fence),
            2 => Claim::Done,
            _ => Claim::NotOurs,
        })
    }

    /// Records delivery `id` as done (after the target's 2xx), whoever holds the lease now:
    /// it was delivered.
    pub async fn done(&self, id: &str, fence: u64) -> Result<(), RedisFault> {
        let set = redis::cmd("SET")
            .arg(self.redis.key(&format!("announce:done:{id}")))
            .arg(fence)
            .arg("EX")
            .arg(DONE_TTL.as_secs())
            .clone();
        self.redis.cmd::<()>(&set).await
    }
}

/// The lease of the cluster this instance is part of.
impl LeaseView for crate::cluster::Cluster {
    fn held(&self) -> Option<Held> {
        self.lease_held()
    }

    fn lease_key(&self) -> String {
        crate::cluster::Cluster::lease_key(self)
    }
}
