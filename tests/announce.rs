//! Announcing new reports: the delivery task against fake Telegram, Discord and webhook
//! receivers on loopback (never the real services).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::receiver::{Fault, Receiver};
use crypto_report::announce::claims::{Claims, LeaseView};
use crypto_report::announce::send::verify;
use crypto_report::announce::{Announcer, Clock, Settings, target};
use crypto_report::cluster::lease::{Held, Lease};
use crypto_report::redis_conn::Redis;
use crypto_report::reports::outbox::Announcing;
use crypto_report::reports::{Batch, Publisher, Report};
use crypto_report::secret::Secret;
use crypto_report::store::{FILE_NAME, Store};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec-test-0123";
/// A bound on waits for deliveries, not a speed claim.
const PATIENCE: Duration = Duration::from_secs(20);

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    publisher: Publisher,
    announcer: Announcer,
    clock: Clock,
    fake: Receiver,
    stop: CancellationToken,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A store, its publisher (armed) and a running announcer whose three targets are the fake:
/// Telegram in English, Discord and the webhook in Vietnamese.
async fn rig(change: impl FnOnce(&mut Settings)) -> Rig {
    rig_on(None, change, None).await
}

/// [`rig`] sending to `fake` (a new one when `None`), one of several instances when given
/// their `claims`.
async fn rig_on(
    fake: Option<Receiver>,
    change: impl FnOnce(&mut Settings),
    claims: Option<Claims>,
) -> Rig {
    let fake = match fake {
        Some(f) => f,
        None => Receiver::start(SECRET).await,
    };
    let urls = [
        "tgram://123456:BOT-token_x/-1001?lang=en".to_owned(),
        "discord://42/dc-token".to_owned(),
        format!("webhook+http://{}/hook?secret={SECRET}", fake.addr),
    ];
    let targets = target::parse_all(&urls.map(Secret::new)).expect("targets");
    let mut settings = Settings {
        telegram_api: fake.base(),
        discord_api: fake.base(),
        send_timeout: Duration::from_millis(800),
        backoff_first: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        poll: Duration::from_millis(20),
        ..Settings::new(targets)
    };
    change(&mut settings);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("store"));
    let announcing = Announcing::new(settings.names(), true);
    let publisher = Publisher::new(store.clone()).announcing(announcing.clone());
    let clock = Clock::default();
    let announcer = Announcer::new(
        store.clone(),
        settings,
        "https://r.example",
        announcing,
        clock.clone(),
        claims,
    )
    .expect("announcer");
    let stop = CancellationToken::new();
    tokio::spawn(announcer.clone().run(stop.clone()));
    Rig {
        _dir: dir,
        store,
        publisher,
        announcer,
        clock,
        fake,
        stop,
    }
}

fn publish(publisher: &Publisher, reports: Vec<Report>) {
    publisher.publish(Batch::of(reports)).expect("publish");
}

/// Waits until `done` holds, failing after [`PATIENCE`].
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < PATIENCE,
            "timed out waiting for {what}; received: {:?}",
            common::receiver::log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const PATHS: [&str; 3] = [
    "/bot123456:BOT-token_x/sendMessage",
    "/api/webhooks/42/dc-token",
    "/hook",
];

#[tokio::test]
async fn one_new_report_is_one_message_per_target_in_its_language_escaped() {
    let rig = rig(|_| {}).await;
    let report = common::fixture_reports("announce").remove(0);
    publish(&rig.publisher, vec![report.clone()]);
    until("three posts", || {
        PATHS.iter().all(|p| rig.fake.posted(p).len() == 1)
    })
    .await;

    let tg = &rig.fake.posted(PATHS[0])[0];
    let body = tg.json();
    assert_eq!(body["parse_mode"], "HTML");
    assert_eq!(body["chat_id"], "-1001");
    let text = body["text"].as_str().expect("text");
    assert!(
        text.starts_with("<b>BTC &lt; 100k &amp; *_[fall] &lt;b&gt;</b>\n<i>"),
        "{text}"
    );
    assert!(text.contains("The market fell hard &amp; fast."), "{text}");
    assert!(
        text.ends_with(
            "<a href=\"https://r.example/crypto_report/401?lang=en\">Read the report</a>"
        ),
        "{text}"
    );
    assert_eq!(
        body["link_preview_options"]["url"],
        "https://r.example/crypto_report/401?lang=en"
    );

    let discord = rig.fake.posted(PATHS[1])[0].json();
    let embed = &discord["embeds"][0];
    assert_eq!(embed["title"], "BTC < 100k & *_[giảm] <b>");
    assert_eq!(embed["url"], "https://r.example/crypto_report/401");
    assert_eq!(
        embed["image"]["url"],
        "https://r.example/crypto_report/401/card.png"
    );
    assert_eq!(embed["timestamp"], "2026-11-21T01:00:00Z");
    assert!(
        embed["description"]
            .as_str()
            .expect("description")
            .contains("\\*\\_chiếm ưu thế\\_\\*"),
        "{embed}"
    );

    let hook = &rig.fake.posted(PATHS[2])[0];
    let body = hook.json();
    assert_eq!(body["id"], 401);
    assert_eq!(body["lang"], "vi");
    assert_eq!(body["delivery_id"], "401-webhook-127.0.0.1-0");
    assert_eq!(
        hook.header("idempotency-key"),
        Some("401-webhook-127.0.0.1-0")
    );
    let signature = hook.header("x-crypto-report-signature").expect("signed");
    let now = chrono::Utc::now().timestamp();
    verify(SECRET.as_bytes(), signature, &hook.body, now, 300).expect("valid signature");
    // The receiver refuses the same delivery replayed ten minutes later.
    assert!(verify(SECRET.as_bytes(), signature, &hook.body, now + 600, 300).is_err());

    // Nothing more comes, and the outbox is empty.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for p in PATHS {
        assert_eq!(rig.fake.received(p).len(), 1, "{p}");
    }
    assert!(rig.store.outbox_all().expect("outbox").is_empty());
    let status = rig.announcer.status();
    assert_eq!(status["discord-42"].sent, 1);
    assert!(status["discord-42"].last_success.is_some());

    // The same report again, and an update of it: not announced again.
    let mut updated = report;
    updated.css_content = Some("p{color:red}".into());
    publish(&rig.publisher, vec![updated]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for p in PATHS {
        assert_eq!(rig.fake.received(p).len(), 1, "{p}");
    }
}

#[tokio::test]
async fn latency_from_publish_to_target() {
    let rig = rig(|_| {}).await;
    let mut latencies = Vec::new();
    for id in 1..=10u64 {
        let published = Instant::now();
        publish(
            &rig.publisher,
            vec![common::report(id, &format!("2026-11-{:02}T08:00:00Z", id))],
        );
        until("the webhook post", || {
            rig.fake.posted("/hook").len() == id as usize
        })
        .await;
        let got = rig.fake.posted("/hook")[id as usize - 1].at;
        latencies.push(got.duration_since(published));
    }
    latencies.sort();
    eprintln!(
        "publish -> webhook latency over 10 reports: median {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}

#[tokio::test]
async fn a_target_down_for_ten_minutes_gets_everything_once_in_order() {
    let rig = rig(|s| s.backoff_max = Duration::from_secs(120)).await;
    rig.fake.sticky("/hook", Fault::Status(500));
    rig.fake.sticky("/api/webhooks", Fault::Status(503));
    // Telegram meets every other kind of trouble once, then is fine.
    rig.fake.once("/bot", Fault::Hang);
    rig.fake.once("/bot", Fault::CloseMid);
    rig.fake.once("/bot", Fault::TooMany(0.3));
    rig.fake.once("/bot", Fault::Status(502));
    publish(
        &rig.publisher,
        (1..=3)
            .map(|id| common::report(id, &format!("2026-11-0{id}T08:00:00Z")))
            .collect(),
    );
    until("failed attempts", || rig.fake.received("/hook").len() >= 2).await;
    // Ten minutes of outage, in steps of 30 s of the delivery clock.
    for _ in 0..20 {
        rig.clock.advance(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let attempts = rig.fake.received("/hook").len();
    assert!(attempts >= 4, "retried with backoff: {attempts} attempts");
    assert!(rig.fake.posted("/hook").is_empty());
    let failing = rig.announcer.status();
    assert!(
        failing["webhook-127.0.0.1"]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("500")
    );
    rig.fake.heal("/hook");
    rig.fake.heal("/api/webhooks");
    // Back: the next retry (at most backoff_max of the delivery clock away) delivers.
    rig.clock.advance(Duration::from_secs(120));
    until("everything", || {
        PATHS.iter().all(|p| rig.fake.posted(p).len() == 3)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for p in PATHS {
        let ids = posted_ids(&rig.fake, p);
        assert_eq!(ids, vec![1, 2, 3], "{p}: once each, in order");
    }
    assert!(rig.store.outbox_all().expect("outbox").is_empty());
}

#[tokio::test]
async fn a_delivery_older_than_the_give_up_age_is_recorded_failed() {
    let rig = rig(|s| s.give_up = Duration::from_secs(3600)).await;
    rig.fake.sticky("/hook", Fault::Status(500));
    // A 4xx other than 429 is refused at once: retrying the same message cannot help.
    rig.fake.sticky("/api/webhooks", Fault::Status(400));
    publish(
        &rig.publisher,
        vec![common::report(1, "2026-11-01T08:00:00Z")],
    );
    until("an attempt", || !rig.fake.received("/hook").is_empty()).await;
    until("discord refused", || {
        rig.store
            .outbox_counts()
            .expect("counts")
            .get("discord-42")
            .is_some_and(|c| c.failed == 1)
    })
    .await;
    assert_eq!(rig.fake.received("/api/webhooks").len(), 1);
    rig.clock.advance(Duration::from_secs(3601));
    until("given up", || {
        rig.store.outbox_counts().expect("counts")["webhook-127.0.0.1"].failed == 1
    })
    .await;
    let status = rig.announcer.status();
    assert_eq!(status["webhook-127.0.0.1"].failed, 1);
    assert!(
        status["webhook-127.0.0.1"]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("not delivered within 1 h")
    );
    let tries = rig.fake.received("/hook").len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        rig.fake.received("/hook").len(),
        tries,
        "no attempt after giving up"
    );
    // Telegram was fine all along.
    assert_eq!(rig.fake.posted("/bot").len(), 1);
}

#[tokio::test]
async fn telegram_sends_at_most_the_per_minute_limit_to_one_chat() {
    let rig = rig(|s| s.telegram_per_minute = 3).await;
    publish(
        &rig.publisher,
        (1..=5)
            .map(|id| common::report(id, &format!("2026-11-0{id}T08:00:00Z")))
            .collect(),
    );
    until("the webhook", || rig.fake.posted("/hook").len() == 5).await;
    until("three messages", || rig.fake.posted("/bot").len() == 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rig.fake.posted("/bot").len(),
        3,
        "the fourth waits for the minute"
    );
    rig.clock.advance(Duration::from_secs(61));
    until("the rest", || rig.fake.posted("/bot").len() == 5).await;
}

#[tokio::test]
async fn discord_429_retry_after_is_honoured() {
    let rig = rig(|_| {}).await;
    rig.fake.once("/api/webhooks", Fault::TooMany(0.5));
    publish(
        &rig.publisher,
        vec![common::report(1, "2026-11-01T08:00:00Z")],
    );
    until("the post", || rig.fake.posted("/api/webhooks").len() == 1).await;
    let all = rig.fake.received("/api/webhooks");
    assert_eq!(all.len(), 2);
    let waited = all[1].at.duration_since(all[0].at);
    assert!(waited >= Duration::from_millis(480), "waited {waited:?}");
}

/// The lease as a test holds it: set by hand, like an instance that took it or lost it.
struct TestLease {
    key: String,
    held: std::sync::Mutex<Option<Held>>,
}

impl LeaseView for TestLease {
    fn held(&self) -> Option<Held> {
        self.held.lock().expect("lease").clone()
    }

    fn lease_key(&self) -> String {
        self.key.clone()
    }
}

/// The ids of the reports a fake's posts to `path` name, in order (webhook body or link).
fn posted_ids(fake: &Receiver, path: &str) -> Vec<u64> {
    fake.posted(path)
        .iter()
        .map(|r| {
            let j = r.json();
            j["id"].as_u64().unwrap_or_else(|| {
                let url = j["link_preview_options"]["url"]
                    .as_str()
                    .or(j["embeds"][0]["url"].as_str())
                    .expect("url");
                url.trim_end_matches("?lang=en")
                    .rsplit('/')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("id")
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_deliver_everything_once_across_a_failover() {
    let Some(server) = common::redis::RedisServer::start() else {
        return;
    };
    let redis = Arc::new(Redis::new(&Secret::new(server.url()), "announce-test").expect("redis"));
    let lease = Lease::new(&redis, "market");
    let held_a = loop {
        if let Ok(Some(h)) = lease.acquire(&redis, "a").await {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let view = |held: Option<Held>| {
        Arc::new(TestLease {
            key: lease.key().to_owned(),
            held: std::sync::Mutex::new(held),
        })
    };
    let (view_a, view_b) = (view(Some(held_a)), view(None));
    let claims_a = Claims::new(redis.clone(), view_a.clone());
    let a = rig_on(None, |_| {}, Some(claims_a)).await;
    let claims_b = Claims::new(redis.clone(), view_b.clone());
    let b = rig_on(Some(a.fake.clone()), |_| {}, Some(claims_b)).await;
    // Both instances import the same 20 reports; only the lease holder sends.
    let reports: Vec<Report> = (1..=20)
        .map(|id| common::report(id, &format!("2026-10-{id:02}T08:00:00Z")))
        .collect();
    publish(&a.publisher, reports.clone());
    publish(&b.publisher, reports);
    until("some deliveries by the holder", || {
        a.fake.posted("/hook").len() >= 5
    })
    .await;
    // The holder dies mid-queue (its lease lapses); the other takes the lease over.
    a.stop.cancel();
    let killed_at = a.fake.posted("/hook").len();
    let held_b = loop {
        if let Ok(Some(h)) = lease.acquire(&redis, "b").await {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    *view_b.held.lock().expect("lease") = Some(held_b);
    until("every report to every target", || {
        b.store.outbox_all().is_ok_and(|o| o.is_empty())
    })
    .await;
    // The former holder wakes from its hang still believing it holds the lease: its claims
    // are refused, it sends nothing.
    let before = a.fake.received("").len();
    let stop = CancellationToken::new();
    tokio::spawn(a.announcer.clone().run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.cancel();
    assert_eq!(
        a.fake.received("").len(),
        before,
        "a former holder sent nothing"
    );

    for p in PATHS {
        let mut ids = posted_ids(&a.fake, p);
        ids.sort_unstable();
        let distinct = {
            let mut d = ids.clone();
            d.dedup();
            d
        };
        assert_eq!(
            distinct,
            (1..=20).collect::<Vec<u64>>(),
            "{p}: every report"
        );
        eprintln!("failover {p}: {} posts for 20 reports", ids.len());
        if p == "/hook" {
            assert_eq!(
                ids.len(),
                20,
                "webhook: each delivery once (a repeat is dropped by its key)"
            );
        }
    }
    let repeats = a.fake.received("/hook").iter().filter(|r| r.repeat).count();
    eprintln!(
        "failover: the first holder delivered {killed_at} webhook posts before it died; repeats dropped by Idempotency-Key: {repeats}"
    );
    assert!(
        repeats <= 1,
        "at most the delivery cut short by the kill is sent again"
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_send_and_record_sends_a_webhook_delivery_at_most_twice() {
    let fake = Receiver::start(SECRET).await;
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("store"));
        let reports = (1..=40)
            .map(|id| {
                common::report(
                    id,
                    &format!("2026-09-{:02}T{:02}:00:00Z", 1 + id / 24, id % 24),
                )
            })
            .collect();
        publish(&Publisher::new(store), reports);
    }
    let env = [
        (
            "CR_ANNOUNCE",
            format!(
                "webhook+http://{}/hook?secret={SECRET},discord://42/dc-token",
                fake.addr
            ),
        ),
        ("CR_DISCORD_API_URL", fake.base()),
        ("CR_ADMIN_TOKEN", common::ADMIN_TOKEN.to_owned()),
    ];
    // A target that takes 30 ms to answer: a server lives through a few deliveries.
    fake.slow(Duration::from_millis(30));
    let mut server = common::process::Instance::start(dir.path(), &[], &env);
    let client = reqwest::Client::new();
    for id in 1..=40 {
        let answer = client
            .post(server.url(&format!("/admin/announce/{id}")))
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .await
            .expect("requeue");
        assert_eq!(answer.status(), 202);
    }
    // Ten kills, each right after the receiver got a webhook request: between the send and
    // the record of a delivery. After a restart the first request repeats the delivery whose
    // record the kill lost; the next kill comes after 2 to 4 more delivery ids, at a random
    // one. Counted in distinct ids, not requests: the receiver records a request as it
    // answers, 30 ms after it came, so the killed server's last request can be recorded after
    // the count was taken, and two requests past the count could then be that request and its
    // repeat: the next kill would cut the repeat too.
    let delivery_ids = || {
        let mut keys: Vec<String> = fake
            .received("/hook")
            .iter()
            .filter_map(|r| r.header("idempotency-key").map(str::to_owned))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len()
    };
    let mut kills = 0;
    while kills < 10 {
        let wait_for = delivery_ids() + rand::random_range(2..=4);
        let started = Instant::now();
        while delivery_ids() < wait_for && started.elapsed() < PATIENCE {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if delivery_ids() < wait_for {
            break; // everything delivered
        }
        server.kill9();
        kills += 1;
        server = common::process::Instance::start(dir.path(), &[], &env);
    }
    until("every delivery after the kills", || {
        PATHS[1..].iter().all(|p| {
            let mut ids = posted_ids(&fake, p);
            ids.sort_unstable();
            ids.dedup();
            ids.len() == 40
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hook = fake.received("/hook");
    let mut per_key = std::collections::BTreeMap::<String, usize>::new();
    for r in &hook {
        *per_key
            .entry(r.header("idempotency-key").unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let most = per_key.values().copied().max().unwrap_or(0);
    let repeats = hook.iter().filter(|r| r.repeat).count();
    let mut line = format!(
        "kill -9 x{kills}: webhook {} requests for {} delivery ids (most per id {most}, repeats dropped by key {repeats})",
        hook.len(),
        per_key.len()
    );
    for p in &PATHS[1..2] {
        let ids = posted_ids(&fake, p);
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        line.push_str(&format!(
            "; {p}: {} posts for {} reports",
            ids.len(),
            distinct.len()
        ));
    }
    eprintln!("{line}");
    assert_eq!(per_key.len(), 40);
    assert!(most <= 2, "a delivery id sent more than twice: {per_key:?}");
    assert!(repeats <= kills, "at most one repeat per kill");
    // Discord has no idempotency key: a kill between its 2xx and the record posts again, at
    // most once per kill; a delivery whose answer was recorded is never posted again.
    let discord = posted_ids(&fake, PATHS[1]).len();
    assert!(
        discord - 40 <= kills,
        "{discord} Discord posts after {kills} kills"
    );
    assert_eq!(
        posted_ids(&fake, "/hook").len(),
        40,
        "the receiver kept each once"
    );
    assert!(
        kills >= 5,
        "the kills landed while deliveries were under way: {kills}"
    );
}

fn admin_post(uri: &str, token: Option<&str>) -> axum::http::Request<axum::body::Body> {
    let mut req = axum::http::Request::post(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.body(axum::body::Body::empty()).expect("request")
}

#[tokio::test]
async fn health_metrics_and_the_admin_route() {
    let fake = Receiver::start(SECRET).await;
    let url = format!("webhook+http://{}/hook?secret={SECRET}", fake.addr);
    let targets = target::parse_all(&[Secret::new(url)]).expect("target");
    let settings = Settings {
        poll: Duration::from_millis(20),
        ..Settings::new(targets)
    };
    let app = common::TestApp::build_with(2, true, |p| p.announce = Some(settings));
    let state = app.state.clone();

    let token = Some(common::ADMIN_TOKEN);
    let refused = common::request(&state, admin_post("/admin/announce/2", None)).await;
    assert_eq!(refused.status, 401);
    let unknown = common::request(&state, admin_post("/admin/announce/99", token)).await;
    assert_eq!(unknown.status, 404);
    let bad = common::request(&state, admin_post("/admin/announce/x", token)).await;
    assert_eq!(bad.status, 400);
    let queued = common::request(&state, admin_post("/admin/announce/2", token)).await;
    assert_eq!(queued.status, 202, "{}", queued.text());
    assert_eq!(queued.json()["queued"], 1);
    until("the webhook", || fake.posted("/hook").len() == 1).await;
    assert_eq!(fake.posted("/hook")[0].json()["id"], 2);

    let health = common::get(&state, "/health").await.json();
    let t = &health["announce"]["targets"][0];
    assert_eq!(t["name"], "webhook-127.0.0.1");
    assert_eq!(t["queued"], 0);
    assert_eq!(t["sent"], 1);
    assert!(t["last_success"].is_string(), "{t}");
    assert!(
        t["url"].as_str().expect("url").contains("secret=***"),
        "{t}"
    );
    assert!(!health.to_string().contains(SECRET));

    let metrics = common::request(
        &state,
        axum::http::Request::get("/metrics")
            .header("authorization", format!("Bearer {}", common::ADMIN_TOKEN))
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
    .text();
    assert!(
        metrics.contains(
            "crypto_report_announce_deliveries_total{target=\"webhook-127.0.0.1\",outcome=\"sent\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("crypto_report_announce_queued{target=\"webhook-127.0.0.1\"} 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_test_sends_one_message_and_prints_the_answer() {
    let fake = Receiver::start(SECRET).await;
    let run = |target: &'static str, fake: &Receiver| {
        let targets = format!(
            "tgram://123456:BOT-token_x/-1001?lang=en,webhook+http://{}/hook?secret={SECRET}",
            fake.addr
        );
        let base = fake.base();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(common::process::bin())
                .args(["announce", "test", "--target", target])
                .env("CR_ANNOUNCE", targets)
                .env("CR_TELEGRAM_API_URL", base)
                .env_remove("RUST_LOG")
                .output()
                .expect("run")
        })
    };
    let out = run("telegram-1001", &fake).await.expect("join");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("telegram-1001: 200 {\"ok\":true"),
        "{stdout}"
    );
    let sent = fake.posted("/bot");
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].json()["text"]
            .as_str()
            .expect("text")
            .contains("Test message")
    );
    // A refusal is printed with the target's answer, redacted, and fails the command.
    fake.once("/hook", Fault::Status(403));
    let out = run("webhook-127.0.0.1", &fake).await.expect("join");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("answered 403"), "{stderr}");
    assert!(
        stderr.contains("secret=***") && !stderr.contains(SECRET),
        "{stderr}"
    );
}
