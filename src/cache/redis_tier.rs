//! The second cache tier in Redis, shared by every instance: values with a TTL and a size cap,
//! tags as sets of keys (each expiring with the longest entry it names). Any failure is a miss
//! to the caller; the connection's breaker keeps a failing Redis from slowing pages.

use std::sync::Arc;
use std::time::Duration;

use super::l2::{Counters, Invalidation, L2, L2Error, L2Future, L2Stats};
use crate::redis_conn::{Redis, RedisFault};

/// Keys deleted per command when emptying the tier.
const DELETE_CHUNK: usize = 500;

pub struct RedisTier {
    redis: Arc<Redis>,
    counters: Counters,
}

impl RedisTier {
    pub fn new(redis: Arc<Redis>) -> RedisTier {
        RedisTier {
            redis,
            counters: Counters::default(),
        }
    }

    fn value_key(&self, key: &str) -> String {
        self.redis.key(&format!("l2:{key}"))
    }

    fn tag_key(&self, tag: &str) -> String {
        self.redis.key(&format!("l2tag:{tag}"))
    }

    fn fail(&self, e: RedisFault) -> L2Error {
        Counters::bump(&self.counters.errors);
        match e {
            RedisFault::Timeout(d) => L2Error::Timeout(d),
            RedisFault::Skipped => L2Error::Unavailable(e.to_string()),
            RedisFault::Failed(m) | RedisFault::Refused(m) => L2Error::Failed(m),
        }
    }

    async fn delete(&self, keys: Vec<String>) -> Result<u64, L2Error> {
        let mut gone = 0;
        for chunk in keys.chunks(DELETE_CHUNK) {
            let n: u64 = self
                .redis
                .cmd(redis::cmd("DEL").arg(chunk))
                .await
                .map_err(|e| self.fail(e))?;
            gone += n;
        }
        Ok(gone)
    }
}

impl L2 for RedisTier {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn get<'a>(&'a self, key: &'a str) -> L2Future<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let found: Option<Vec<u8>> = self
                .redis
                .cmd(redis::cmd("GET").arg(self.value_key(key)))
                .await
                .map_err(|e| self.fail(e))?;
            Ok(self.counters.looked_up(found))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &'a [String],
    ) -> L2Future<'a, ()> {
        Box::pin(async move {
            if !self.counters.admits(value.len()) {
                return Ok(());
            }
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let full = self.value_key(key);
            let mut pipe = redis::pipe();
            pipe.cmd("SET")
                .arg(&full)
                .arg(value)
                .arg("PX")
                .arg(ms)
                .ignore();
            for tag in tags {
                let set = self.tag_key(tag);
                pipe.cmd("SADD").arg(&set).arg(&full).ignore();
                // The set lives as long as its longest-lived entry (GT: never shortened).
                pipe.cmd("PEXPIRE").arg(&set).arg(ms).arg("GT").ignore();
                pipe.cmd("PEXPIRE").arg(&set).arg(ms).arg("NX").ignore();
            }
            self.redis
                .pipe::<()>(&pipe)
                .await
                .map_err(|e| self.fail(e))?;
            Counters::bump(&self.counters.puts);
            Ok(())
        })
    }

    fn invalidate<'a>(&'a self, what: &'a Invalidation) -> L2Future<'a, u64> {
        Box::pin(async move {
            match what {
                Invalidation::Tags(tags) => {
                    let mut keys = Vec::new();
                    for tag in tags {
                        let set = self.tag_key(tag);
                        let members: Vec<String> = self
                            .redis
                            .cmd(redis::cmd("SMEMBERS").arg(&set))
                            .await
                            .map_err(|e| self.fail(e))?;
                        keys.extend(members);
                        keys.push(set);
                    }
                    self.delete(keys).await
                }
                Invalidation::All => {
                    let pattern = self.redis.key("l2*");
                    let mut cursor = 0u64;
                    let mut gone = 0;
                    loop {
                        let (next, keys): (u64, Vec<String>) = self
                            .redis
                            .cmd(
                                redis::cmd("SCAN")
                                    .arg(cursor)
                                    .arg("MATCH")
                                    .arg(&pattern)
                                    .arg("COUNT")
                                    .arg(DELETE_CHUNK),
                            )
                            .await
                            .map_err(|e| self.fail(e))?;
                        gone += self.delete(keys).await?;
                        if next == 0 {
                            return Ok(gone);
                        }
                        cursor = next;
                    }
                }
            }
        })
    }

    fn stats(&self) -> L2Stats {
        let state = self.redis.state();
        let described = match state.last_error {
            Some(e) if state.state == "degraded" => format!("degraded: {e}"),
            _ => state.state.to_owned(),
        };
        self.counters.stats("redis", described)
    }
}
