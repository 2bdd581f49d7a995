//! The market lease: at most one instance polls the providers. A script takes it when nobody
//! holds it, drawing a fencing number from a counter in the same step (instances that find it
//! held draw nothing: the counter moves once per take, not once per instance per tick), a
//! script renews it only while this instance still holds it. The fencing number is there so
//! that what a former holder sends after it lost the lease (it hung, the lease expired,
//! another took it) is recognised as older and ignored.

use std::time::Duration;

use redis::Script;

use crate::redis_conn::{Redis, RedisFault};

/// How long the lease lasts without renewal: a holder that dies or hangs is replaced within
/// this (plus one tick of the others).
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often the holder renews and the others try to take it.
pub const LEASE_TICK: Duration = Duration::from_secs(1);

const ACQUIRE: &str = "if redis.call('exists', KEYS[1]) == 1 then return false end local fence = redis.call('incr', KEYS[2]) redis.call('set', KEYS[1], ARGV[1] .. '#' .. fence, 'PX', ARGV[2]) return fence";
const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// A lease held: its value in Redis and its fencing number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub value: String,
    pub fence: u64,
}

pub struct Lease {
    key: String,
    fence_key: String,
    acquire: Script,
    renew: Script,
    release: Script,
}

impl Lease {
    pub fn new(redis: &Redis, name: &str) -> Lease {
        Lease {
            key: redis.key(&format!("lease:{name}")),
            fence_key: redis.key(&format!("lease:{name}:fence")),
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        }
    }

    /// The lease's Redis key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Takes the lease for `holder` if nobody holds it.
    pub async fn acquire(&self, redis: &Redis, holder: &str) -> Result<Option<Held>, RedisFault> {
        let ms = LEASE_TTL.as_millis().to_string();
        let fence: Option<u64> = redis
            .script(&self.acquire, &[&self.key, &self.fence_key], &[holder, &ms])
            .await?;
        Ok(fence.map(|fence| Held {
            value: format!("{holder}#{fence}"),
            fence,
        }))
    }

    /// Extends the lease; false when it is no longer ours.
    pub async fn renew(&self, redis: &Redis, held: &Held) -> Result<bool, RedisFault> {
        let ms = LEASE_TTL.as_millis().to_string();
        let n: i64 = redis
            .script(&self.renew, &[&self.key], &[&held.value, &ms])
            .await?;
        Ok(n == 1)
    }

    /// The fencing number of whoever holds the lease now; `None` when nobody does.
    pub async fn holder_fence(&self, redis: &Redis) -> Result<Option<u64>, RedisFault> {
        let value: Option<String> = redis.cmd(redis::cmd("GET").arg(&self.key)).await?;
        Ok(value.and_then(|v| v.rsplit_once('#')?.1.parse().ok()))
    }

    /// Gives the lease up (at shutdown), if it is still ours.
    pub async fn release(&self, redis: &Redis, held: &Held) -> Result<(), RedisFault> {
        let _: i64 = redis
            .script(&self.release, &[&self.key], &[&held.value])
            .await?;
        Ok(())
    }
}
