//! The delivery task: one worker per target sends the target's oldest pending delivery,
//! waits as the target's rate limit and the backoff say, and removes the outbox record only
//! after a 2xx answer, so a crash between the send and the record sends again (the delivery
//! id lets a receiver drop the repeat) rather than losing the announcement.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::claims::{Claim, Claims};
use super::send::{self, Announcement, Sent};
use super::target::{Kind, Target};
use super::{Clock, Settings, Status, TargetStatus};
use crate::lock::lock;
use crate::reports::outbox::Announcing;
use crate::store::{Delivery, Store};

/// Sends what the outbox holds. Cheap to clone.
#[derive(Clone)]
pub struct Announcer(Arc<Inner>);

struct Inner {
    store: Arc<Store>,
    settings: Settings,
    public_url: String,
    announcing: Announcing,
    client: reqwest::Client,
    clock: Clock,
    status: Status,
    /// Send times (unix ms) in the last minute, per Telegram chat.
    windows: Mutex<HashMap<String, VecDeque<i64>>>,
    /// With several instances: deliver only while holding the lease, claiming each delivery.
    claims: Option<Claims>,
}

/// What one look at a target's queue led to.
enum Step {
    /// Something was sent or settled: look again at once.
    Again,
    /// Nothing to do before this long (or before being woken).
    Wait(Duration),
}

impl Announcer {
    pub fn new(
        store: Arc<Store>,
        settings: Settings,
        public_url: &str,
        announcing: Announcing,
        clock: Clock,
        claims: Option<Claims>,
    ) -> anyhow::Result<Announcer> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("crypto-report/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.send_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Announcer(Arc::new(Inner {
            store,
            settings,
            public_url: public_url.trim_end_matches('/').to_owned(),
            announcing,
            client,
            clock,
            status: Status::default(),
            windows: Mutex::default(),
            claims,
        })))
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn announcing(&self) -> &Announcing {
        &self.0.announcing
    }

    /// Outcomes so far, per configured target.
    pub fn status(&self) -> std::collections::BTreeMap<String, TargetStatus> {
        let mut all = self.0.status.snapshot();
        for t in &self.0.settings.targets {
            all.entry(t.name.clone()).or_default();
        }
        all
    }

    /// Per configured target: its outcomes and the deliveries waiting for it.
    pub async fn per_target(&self) -> Vec<(String, TargetStatus, u64)> {
        let counts = match self.0.store.call(|s| s.outbox_counts()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the announcement outbox");
                Default::default()
            }
        };
        self.status()
            .into_iter()
            .map(|(name, status)| {
                let queued = counts.get(&name).map_or(0, |c| c.pending);
                (name, status, queued)
            })
            .collect()
    }

    /// `/health`: per target the last success, the last error and the queue length.
    pub async fn health(&self) -> serde_json::Value {
        let targets: Vec<serde_json::Value> = self
            .per_target()
            .await
            .into_iter()
            .map(|(name, s, queued)| {
                let url = self
                    .0
                    .settings
                    .targets
                    .iter()
                    .find(|t| t.name == name)
                    .map(Target::redacted);
                serde_json::json!({
                    "name": name,
                    "url": url,
                    "queued": queued,
                    "last_success": s.last_success,
                    "last_error": s.last_error,
                    "last_error_at": s.last_error_at,
                    "sent": s.sent,
                    "retried": s.retried,
                    "failed": s.failed,
                })
            })
            .collect();
        serde_json::json!({ "armed": self.0.announcing.is_armed(), "targets": targets })
    }

    /// Queues report `id` again for every target (`POST /admin/announce/{id}`); 0 when the
    /// store does not hold it.
    pub async fn requeue(&self, id: u64) -> Result<usize, crate::store::StoreError> {
        let names = self.0.settings.names();
        let now = self.0.clock.now_ms();
        let queued = self
            .0
            .store
            .call(move |s| s.outbox_requeue(id, &names, now))
            .await?;
        self.0.announcing.wake();
        Ok(queued)
    }

    /// Sends until `stop`: one worker per target.
    pub async fn run(self, stop: CancellationToken) {
        let names = self.0.settings.names();
        match self
            .0
            .store
            .call(move |s| s.outbox_orphans_failed(&names))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                deliveries = n,
                "deliveries to targets no longer configured recorded as failed"
            ),
            Err(e) => tracing::error!(error = %e, "cannot read the announcement outbox"),
        }
        let workers: Vec<_> = self
            .0
            .settings
            .targets
            .iter()
            .map(|t| {
                let this = self.clone();
                let target = t.clone();
                let stop = stop.clone();
                tokio::spawn(async move { this.worker(&target, &stop).await })
            })
            .collect();
        for w in workers {
            if let Err(e) = w.await {
                tracing::error!(error = %e, "an announcement worker stopped");
            }
        }
    }

    async fn worker(&self, target: &Target, stop: &CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            let wait = match self.step(target, stop).await {
                Step::Again => continue,
                Step::Wait(d) => d.min(self.0.settings.poll),
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.0.announcing.queued() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Looks at the oldest pending delivery to `target` and acts on it.
    async fn step(&self, target: &Target, stop: &CancellationToken) -> Step {
        let inner = &self.0;
        let poll = Step::Wait(inner.settings.poll);
        if inner.claims.as_ref().is_some_and(|c| !c.leading()) {
            return poll;
        }
        let name = target.name.clone();
        let head = match inner.store.call(move |s| s.outbox_head(&name)).await {
            Ok(Some(head)) => head,
            Ok(None) => return poll,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the announcement outbox");
                return poll;
            }
        };
        let (seq, mut delivery) = head;
        let now = inner.clock.now_ms();
        let age = Duration::from_millis(u64::try_from(now - delivery.queued_ms).unwrap_or(0));
        if age > inner.settings.give_up {
            let reason = format!(
                "not delivered within {} h: {}",
                inner.settings.give_up.as_secs() / 3600,
                delivery
                    .last_error
                    .as_deref()
                    .unwrap_or("no attempt succeeded")
            );
            return self.give_up(target, seq, delivery, reason).await;
        }
        if delivery.next_ms > now {
            return Step::Wait(ms(delivery.next_ms - now));
        }
        if let Some(wait) = self.rate_wait(target, now) {
            return Step::Wait(wait);
        }
        let id = delivery.report;
        let report = match inner.store.call(move |s| s.report(id)).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                let reason = "the report is no longer stored".to_owned();
                return self.give_up(target, seq, delivery, reason).await;
            }
            Err(e) => {
                tracing::error!(error = %e, report = id, "cannot read a report to announce");
                return poll;
            }
        };
        let a = Announcement::of(&report, target.lang, &inner.public_url, delivery.id());
        let fence = match inner.claims.as_ref() {
            None => None,
            Some(claims) => match claims.claim(&a.delivery_id).await {
                Ok(Claim::Go(fence)) => Some(fence),
                Ok(Claim::Done) => {
                    // Another holder delivered it.
                    if let Err(e) = inner.store.call(move |s| s.outbox_done(seq)).await {
                        tracing::error!(error = %e, "cannot record a delivery as done");
                        return poll;
                    }
                    return Step::Again;
                }
                Ok(Claim::NotOurs) => return poll,
                Err(e) => {
                    // Without Redis no instance can tell what the others sent: wait.
                    tracing::warn!(error = %e, "cannot claim an announcement in Redis; waiting");
                    return poll;
                }
            },
        };
        let sent = tokio::select! {
            // A send cut short by shutdown is sent again after the restart.
            () = stop.cancelled() => return poll,
            // Signed with the wall clock: the receiver checks the time against its own.
            sent = send::send(&inner.client, &inner.settings, target, &a, chrono::Utc::now()) => sent,
        };
        self.note_sent(target, now);
        match sent {
            Sent::Done { .. } => {
                if let (Some(claims), Some(fence)) = (inner.claims.as_ref(), fence)
                    && let Err(e) = claims.done(&a.delivery_id, fence).await
                {
                    tracing::error!(error = %e, "cannot record a delivery as done in Redis");
                }
                if let Err(e) = inner.store.call(move |s| s.outbox_done(seq)).await {
                    // Sent but not recorded: it is sent again, with the same delivery id.
                    tracing::error!(error = %e, "cannot record a delivery as done");
                    return poll;
                }
                let at = inner.clock.now();
                inner.status.update(&target.name, |s| {
                    s.sent += 1;
                    s.last_success = Some(at);
                });
                tracing::info!(target = %target.name, report = id, delivery = %a.delivery_id, "announced");
                Step::Again
            }
            Sent::Retry { reason, after } => {
                delivery.attempts += 1;
                let jitter = rand::rng().random::<f64>();
                let wait = inner
                    .settings
                    .backoff(delivery.attempts, jitter)
                    .max(after.unwrap_or_default());
                delivery.next_ms = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                tracing::warn!(target = %target.name, report = id, attempt = delivery.attempts, retry_in = ?wait, %reason, "announcement failed; will retry");
                delivery.last_error = Some(reason.clone());
                self.note_error(target, reason, false);
                let d = delivery.clone();
                if let Err(e) = inner.store.call(move |s| s.outbox_update(seq, &d)).await {
                    tracing::error!(error = %e, "cannot record a failed delivery");
                }
                Step::Wait(wait)
            }
            Sent::Refused { reason } => self.give_up(target, seq, delivery, reason).await,
        }
    }

    async fn give_up(&self, target: &Target, seq: u64, mut d: Delivery, reason: String) -> Step {
        tracing::error!(target = %target.name, report = d.report, %reason, "announcement given up");
        d.failed = true;
        d.last_error = Some(reason.clone());
        self.note_error(target, reason, true);
        match self.0.store.call(move |s| s.outbox_update(seq, &d)).await {
            Ok(()) => Step::Again,
            Err(e) => {
                tracing::error!(error = %e, "cannot record a failed delivery");
                Step::Wait(self.0.settings.poll)
            }
        }
    }

    fn note_error(&self, target: &Target, reason: String, failed: bool) {
        let at = self.0.clock.now();
        self.0.status.update(&target.name, |s| {
            if failed {
                s.failed += 1;
            } else {
                s.retried += 1;
            }
            s.last_error = Some(reason);
            s.last_error_at = Some(at);
        });
    }

    /// How long a Telegram chat must rest before the next message, if at its limit.
    fn rate_wait(&self, target: &Target, now: i64) -> Option<Duration> {
        let Kind::Telegram { chat, .. } = &target.kind else {
            return None;
        };
        let mut windows = lock(&self.0.windows);
        let window = windows.entry(chat.clone()).or_default();
        while window.front().is_some_and(|t| now - t >= 60_000) {
            window.pop_front();
        }
        (window.len() >= self.0.settings.telegram_per_minute)
            .then(|| window.front().map(|t| ms(t + 60_000 - now)))
            .flatten()
    }

    fn note_sent(&self, target: &Target, now: i64) {
        if let Kind::Telegram { chat, .. } = &target.kind {
            lock(&self.0.windows)
                .entry(chat.clone())
                .or_default()
                .push_back(now);
        }
    }
}

fn ms(n: i64) -> Duration {
    Duration::from_millis(u64::try_from(n).unwrap_or(0))
}
