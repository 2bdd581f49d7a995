//! Several instances sharing a real Redis (Debian's redis-server, started per test): live
//! updates reach the clients of every instance, exactly one instance polls the providers and
//! another takes over when it is killed, pages come from the shared tier without rendering,
//! and Redis faults (killed, restarted, paused, garbage) never reach a reader.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::ADMIN_TOKEN;
use common::fake::{Fake, Fault};
use common::process::{Instance, bin};
use common::redis::RedisServer;
use crypto_report::cluster::Cluster;
use crypto_report::cluster::bus::{self, BusStats};
use crypto_report::cluster::lease::Lease;
use crypto_report::market::Source;
use crypto_report::market::snapshot::Snapshot;
use crypto_report::market::wire::SnapshotWire;
use crypto_report::redis_conn::Redis;
use crypto_report::reports::Publisher;
use crypto_report::secret::Secret;
use crypto_report::store::{FILE_NAME, Store};
use crypto_report::{AppState, Feed, Parts, Settings};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// A store in `dir` holding the bundled sample reports.
fn seeded_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let samples = format!("{}/data/sample-reports.jsonl", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(bin())
        .args(["import", "--from", &samples])
        .env("CR_DATA_DIR", dir.path())
        .output()
        .expect("import");
    assert!(out.status.success(), "{out:?}");
    dir
}

/// An instance sharing `redis`, its market providers at `fake` (CoinGecko, Binance,
/// alternative.me; the keyed ones are off).
fn instance(dir: &std::path::Path, redis: &str, fake: Option<&Fake>) -> Instance {
    let mut env = vec![("CR_REDIS_URL", redis.to_owned())];
    if let Some(f) = fake {
        env.push(("CR_COINGECKO_URL", f.url("/cg")));
        env.push(("CR_BINANCE_URL", f.url("/bn")));
        env.push(("CR_ALTERNATIVE_ME_URL", f.url("/am")));
    }
    // Behind one load balancer, every instance has the site's one public URL.
    Instance::start(
        dir,
        &[
            "--admin-token",
            ADMIN_TOKEN,
            "--public-url",
            "https://reports.example",
        ],
        &env,
    )
}

/// An instance tests talk to over HTTP: a spawned binary or one in this process.
trait Served {
    fn url(&self, path: &str) -> String;
}

impl Served for Instance {
    fn url(&self, path: &str) -> String {
        Instance::url(self, path)
    }
}

/// An instance in this process, launched by `launch` as `serve --redis-url` launches one, on a
/// store holding the bundled samples; its market polls `fake` while it leads.
struct Here {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Here {
    async fn start(redis: &str, fake: &Fake) -> Here {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join(FILE_NAME)).expect("store");
        let store = Arc::new(store);
        crypto_report::demo::seed(&Publisher::new(Arc::clone(&store))).expect("seed");
        let mut settings = Settings::new("https://reports.example");
        settings.admin_token = Some(Secret::new(ADMIN_TOKEN));
        let mut parts = Parts::new(Arc::clone(&store), settings);
        join(&mut parts, redis, fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(crypto_report::launch(parts, listener, async move {
            let _ = stopped.await;
        }));
        Here {
            addr,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    /// Shuts down as a signal would, and waits for `launch` to return.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("stopped in time")
            .expect("no panic")
            .expect("a clean stop");
    }
}

impl Served for Here {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// `parts` as one of the instances sharing `redis`, its market polling `fake` while it leads.
fn join(parts: &mut Parts, redis: &str, fake: &Fake) {
    let (config, store) = (common::fake::config(fake), Arc::clone(&parts.store));
    parts.feed = Feed::Start(Box::new(move || {
        Source::live(config.clone(), Arc::clone(&store))
    }));
    parts.cluster = Some(Cluster::new(&Secret::new(redis), "crypto-report").expect("cluster"));
}

async fn health(client: &reqwest::Client, i: &impl Served) -> serde_json::Value {
    let r = client.get(i.url("/health")).send().await.expect("health");
    assert_eq!(r.status(), 200, "health stays 200");
    r.json().await.expect("json")
}

async fn role(client: &reqwest::Client, i: &impl Served) -> String {
    health(client, i).await["cluster"]["market_role"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until `check` holds, at most `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The market polls a fake has answered. The one-off history backfill ("since this report"
/// values of old reports) is each instance's own, for its own store, and not counted here.
fn calls(fake: &Fake) -> usize {
    fake.all_hits()
        .iter()
        .filter(|(key, _)| !is_history(key))
        .map(|(_, n)| n)
        .sum()
}

fn is_history(key: &str) -> bool {
    key.starts_with("bn.history.") || key == "fng.history"
}

/// A page, a report, the JSON API and the market summary all answer 200.
async fn serves_every_kind_of_page(client: &reqwest::Client, i: &impl Served) {
    for path in [
        "/",
        "/crypto_report/107",
        "/api/reports",
        "/api/crypto/dashboard-summary",
    ] {
        let r = client.get(i.url(path)).send().await.expect("request");
        assert_eq!(r.status(), 200, "{path}");
    }
}

async fn cache_stats(client: &reqwest::Client, i: &Instance) -> serde_json::Value {
    client
        .get(i.url("/cache-stats"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("stats")
        .json::<serde_json::Value>()
        .await
        .expect("json")["l1_pages"]
        .clone()
}

/// The leader `i` sees a new fear & greed reading (93, "Relayed Greed") from its provider
/// `fake` on a forced refresh. (alternative.me: its budget leaves room for a forced refresh
/// whatever ran before.)
async fn relay_greed(client: &reqwest::Client, fake: &Fake, i: &Instance) {
    fake.sticky(
        "fng",
        Fault::Body(
            r#"{"data":[{"value":"93","value_classification":"Relayed Greed","timestamp":"1794960000"}]}"#
                .into(),
        ),
    );
    let refreshed = client
        .post(i.url("/api/crypto/dashboard-summary/refresh"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("refresh");
    assert!(refreshed.status().is_success(), "{refreshed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_instance_polls_the_others_follow_and_a_killed_holder_is_replaced() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fakes = [Fake::start().await, Fake::start().await];
    let dirs = [seeded_dir(), seeded_dir()];
    let mut instances: Vec<Instance> = (0..2)
        .map(|n| instance(dirs[n].path(), &redis.url(), Some(&fakes[n])))
        .collect();
    let client = reqwest::Client::new();

    let mut leader = 0;
    eventually(Duration::from_secs(10), "one instance leads", || {
        let (client, instances) = (&client, &instances);
        async move {
            let roles = [
                role(client, &instances[0]).await,
                role(client, &instances[1]).await,
            ];
            roles.contains(&"leading".into()) && roles.contains(&"following".into())
        }
    })
    .await;
    if role(&client, &instances[1]).await == "leading" {
        leader = 1;
    }
    let follower = 1 - leader;
    eventually(Duration::from_secs(5), "the leader polls", || async {
        calls(&fakes[leader]) > 0
    })
    .await;
    assert_eq!(
        calls(&fakes[follower]),
        0,
        "the follower never polls a provider"
    );
    for (key, n) in fakes[follower].all_hits() {
        assert!(
            is_history(&key) && n <= 2,
            "the follower only fetched its own history, once: {key} x{n}"
        );
    }

    // A change seen by the leader reaches a WebSocket client of the follower.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws", instances[follower].addr))
            .await
            .expect("websocket");
    relay_greed(&client, &fakes[leader], &instances[leader]).await;
    // A bound on the wait, not a speed claim: with the other cluster tests' servers on the same
    // two cores the relay can take seconds.
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            if text.contains("Relayed Greed") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(seen, "the follower's client got the leader's update");
    let summary: serde_json::Value = client
        .get(instances[follower].url("/api/crypto/dashboard-summary"))
        .send()
        .await
        .expect("summary")
        .json()
        .await
        .expect("json");
    assert_eq!(summary["fng_value"], 93, "{summary}");
    // Clearing the page cache leaves the snapshot a new follower starts from: it is not a page.
    let snapshot_keys = || async {
        let client = redis::Client::open(redis.url()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*market:snapshot")
            .query_async(&mut conn)
            .await
            .expect("keys");
        keys
    };
    assert_eq!(
        snapshot_keys().await.len(),
        1,
        "the leader shared its snapshot"
    );
    let cleared = client
        .post(instances[leader].url("/clear-cache"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("clear");
    assert!(cleared.status().is_success(), "{cleared:?}");
    assert_eq!(
        snapshot_keys().await.len(),
        1,
        "a cache clear kept the snapshot"
    );
    let refused = client
        .post(instances[follower].url("/api/crypto/dashboard-summary/refresh"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("refresh");
    assert_eq!(refused.status(), 409, "only the lease holder polls");
    assert_eq!(
        calls(&fakes[follower]),
        0,
        "the follower still never polled a provider"
    );

    // The holder dies: the other takes over within a few seconds and starts polling.
    let killed_at = Instant::now();
    instances[leader].kill9();
    eventually(Duration::from_secs(10), "takeover", || async {
        role(&client, &instances[follower]).await == "leading"
    })
    .await;
    let takeover = killed_at.elapsed();
    eventually(Duration::from_secs(5), "the new holder polls", || async {
        calls(&fakes[follower]) > 0
    })
    .await;
    assert!(
        takeover < Duration::from_secs(8),
        "takeover took {takeover:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_are_shared_through_redis_and_rendered_once_per_instance() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (dir_a, dir_b) = (seeded_dir(), seeded_dir());
    let a = instance(dir_a.path(), &redis.url(), None);
    let b = instance(dir_b.path(), &redis.url(), None);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");

    // A thousand concurrent cold requests for one page across both: one render at most each.
    let mut waiting = Vec::new();
    for n in 0..1000 {
        let url = if n % 2 == 0 {
            a.url("/crypto_report/105")
        } else {
            b.url("/crypto_report/105")
        };
        let client = client.clone();
        waiting.push(tokio::spawn(async move {
            client
                .get(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    for w in waiting {
        assert_eq!(w.await.expect("join"), 200);
    }
    let (sa, sb) = (
        cache_stats(&client, &a).await,
        cache_stats(&client, &b).await,
    );
    let ra = sa["renders"].as_u64().expect("renders");
    let rb = sb["renders"].as_u64().expect("renders");
    assert!(ra <= 1 && rb <= 1, "at most one render each: {sa} {sb}");
    assert!(ra + rb >= 1, "someone rendered it: {sa} {sb}");

    // A page rendered by A is served by B (same reports, same store digest) without rendering.
    let from_a = client
        .get(a.url("/crypto_report/103/frame?lang=en"))
        .send()
        .await
        .expect("a");
    let body_a = from_a.bytes().await.expect("body");
    eventually(Duration::from_secs(5), "A's page reaches Redis", || async {
        cache_stats(&client, &a).await["l2"]["puts"].as_u64() >= Some(2)
    })
    .await;
    let before = cache_stats(&client, &b).await["renders"].as_u64();
    let from_b = client
        .get(b.url("/crypto_report/103/frame?lang=en"))
        .send()
        .await
        .expect("b");
    assert_eq!(from_b.bytes().await.expect("body"), body_a);
    let after = cache_stats(&client, &b).await;
    assert_eq!(
        after["renders"].as_u64(),
        before,
        "B did not render: {after}"
    );
    assert!(after["l2_hits"].as_u64() >= Some(1), "{after}");

    // A restarted instance serves its first page from Redis without rendering.
    drop(a);
    let a = instance(dir_a.path(), &redis.url(), None);
    let again = client
        .get(a.url("/crypto_report/103/frame?lang=en"))
        .send()
        .await
        .expect("a");
    assert_eq!(again.bytes().await.expect("body"), body_a);
    let stats = cache_stats(&client, &a).await;
    assert_eq!(stats["renders"], 0, "{stats}");

    // An instance holding other reports never reads those pages (another store digest).
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = instance(other_dir.path(), &redis.url(), None);
    let r = client
        .get(other.url("/crypto_report/103"))
        .send()
        .await
        .expect("other");
    assert_eq!(r.status(), 404, "its store does not hold report 103");
}

/// Requests on a loop against both instances until `stop`; returns statuses by code.
fn load(
    client: reqwest::Client,
    urls: Vec<String>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<BTreeMap<u16, usize>> {
    tokio::spawn(async move {
        let mut statuses = BTreeMap::new();
        let mut n = 0usize;
        // Bounded in count as well as in time.
        while !stop.load(Ordering::Relaxed) && n < 20_000 {
            let url = &urls[n % urls.len()];
            let status = client
                .get(url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            *statuses.entry(status).or_default() += 1;
            n += 1;
        }
        statuses
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_restarted_or_paused_never_reaches_a_reader() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (dir_a, dir_b) = (seeded_dir(), seeded_dir());
    let a = instance(dir_a.path(), &redis.url(), None);
    let b = instance(dir_b.path(), &redis.url(), None);
    let client = reqwest::Client::new();
    let mut urls = Vec::new();
    for i in [&a, &b] {
        for path in [
            "/",
            "/crypto_report/107",
            "/crypto_report/101/frame?lang=en",
            "/crypto_reports_list",
            "/api/reports",
            "/api/crypto/dashboard-summary",
            "/health",
        ] {
            urls.push(i.url(path));
        }
    }
    // A WebSocket client that must stay connected through all of it.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", b.addr))
        .await
        .expect("websocket");

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| load(client.clone(), urls.clone(), Arc::clone(&stop)))
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Cold pages while Redis is gone: rendered, never an error.
    for id in [102, 104, 106] {
        let r = client
            .get(a.url(&format!("/crypto_report/{id}")))
            .send()
            .await
            .expect("page");
        assert_eq!(r.status(), 200);
    }
    let h = health(&client, &a).await;
    assert_eq!(h["cluster"]["redis"]["state"], "degraded", "{h}");
    let metrics = |i: &Instance| {
        let url = i.url("/metrics");
        let client = client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text")
        }
    };
    assert!(metrics(&a).await.contains("crypto_report_redis_up 0"));
    redis.restart();
    eventually(Duration::from_secs(10), "Redis is back in use", || async {
        health(&client, &a).await["cluster"]["redis"]["state"] == "ok"
            && health(&client, &b).await["cluster"]["bus"]["connected"] == true
    })
    .await;
    assert!(metrics(&a).await.contains("crypto_report_redis_up 1"));
    // A Redis that accepts and never answers (paused): each request waits at most briefly.
    redis.pause(true);
    let started = Instant::now();
    let r = client
        .get(b.url("/crypto_report/103"))
        .send()
        .await
        .expect("page");
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.pause(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut total: BTreeMap<u16, usize> = BTreeMap::new();
    for w in workers {
        for (status, n) in w.await.expect("join") {
            *total.entry(status).or_default() += n;
        }
    }
    let served: usize = total.values().sum();
    assert!(served > 100, "{total:?}");
    assert!(
        total.keys().all(|s| (200..400).contains(s)),
        "every answer was a success: {total:?}"
    );
    ws.send(Message::text("ping"))
        .await
        .expect("still connected");
    let pong = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m
                && t.contains("pong")
            {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(pong, "the WebSocket client kept its connection");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_that_answers_garbage_is_only_degraded() {
    let Some(_) = RedisServer::start() else {
        return;
    };
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = garbage.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&accepted);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = garbage.accept().await {
            seen.fetch_add(1, Ordering::Relaxed);
            let _ = s
                .write_all(b"%%% not RESP at all \x00\xff\r\n$-7\r\n*x\r\n")
                .await;
        }
    });
    let dir = seeded_dir();
    let i = instance(
        dir.path(),
        &format!("redis://:secret-pass-42@127.0.0.1:{port}/0"),
        None,
    );
    let client = reqwest::Client::new();
    serves_every_kind_of_page(&client, &i).await;
    eventually(
        Duration::from_secs(10),
        "the garbage is noticed",
        || async { health(&client, &i).await["cluster"]["redis"]["state"] == "degraded" },
    )
    .await;
    assert!(accepted.load(Ordering::Relaxed) > 0);
    let h = health(&client, &i).await;
    assert!(!h.to_string().contains("secret-pass-42"), "{h}");
    assert!(!i.logged().contains("secret-pass-42"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_started_while_redis_is_down_serves_then_joins_when_it_comes() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    redis.kill();
    let fake = Fake::start().await;
    let i = Here::start(&redis.url(), &fake).await;
    let client = reqwest::Client::new();
    serves_every_kind_of_page(&client, &i).await;
    eventually(
        Duration::from_secs(15),
        "it polls alone while Redis is away",
        || async {
            let h = health(&client, &i).await;
            h["cluster"]["redis"]["state"] == "degraded"
                && h["cluster"]["market_role"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("alone"))
        },
    )
    .await;
    redis.restart();
    eventually(
        Duration::from_secs(15),
        "it joins once Redis is there",
        || async {
            let h = health(&client, &i).await;
            h["cluster"]["redis"]["state"] == "ok"
                && h["cluster"]["market_role"] == "leading"
                && h["cluster"]["bus"]["connected"] == true
        },
    )
    .await;
    i.stop().await;
}

/// A follower in this process, joined to `redis` as `serve --redis-url` joins it, over a
/// store holding the bundled samples; its own market would poll `fake` if it ever led.
fn follower_here(redis: &str, fake: &Fake) -> (AppState, Cluster, tempfile::TempDir) {
    let mut cluster = None;
    let (state, dir) = common::samples_with(|parts| {
        join(parts, redis, fake);
        cluster = parts.cluster.clone();
    });
    (state, cluster.expect("joined"), dir)
}

/// A forged market message: `snapshot` with the lease holder's `fence` (or any other).
async fn forge(redis: &Redis, fence: u64, snapshot: &Snapshot) {
    let message = bus::Message::Market {
        fence,
        snapshot: Box::new(SnapshotWire::from(snapshot)),
    };
    bus::publish(redis, "crypto-report:bus", 7, message, &BusStats::default())
        .await
        .expect("publish");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_snapshots_on_the_bus_neither_show_nor_silence_the_holder() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fakes = [Fake::start().await, Fake::start().await];
    let dir = seeded_dir();
    let leader = instance(dir.path(), &redis.url(), Some(&fakes[0]));
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(20), "the process leads", || async {
        role(&client, &leader).await == "leading"
    })
    .await;
    let (state, cluster, _store) = follower_here(&redis.url(), &fakes[1]);
    eventually(
        Duration::from_secs(20),
        "the follower shows the leader's market",
        || async {
            cluster.health()["market_role"] == "following"
                && state.market.current().values.prices[0].is_some()
        },
    )
    .await;
    let real = state.market.current();
    let real_btc = real.values.prices[0].as_ref().expect("btc").value.price;
    let redis_conn = Redis::new(&Secret::new(redis.url()), "crypto-report").expect("redis");
    let fence = Lease::new(&redis_conn, "market")
        .holder_fence(&redis_conn)
        .await
        .expect("lease")
        .expect("held");

    // Forged: BTC at $1e300 under the holder's own fence, and a plausible snapshot (BTC at
    // $12,345) under a fence far ahead of any lease.
    let now = chrono::Utc::now();
    let mut absurd = (*real).clone();
    for entry in absurd.values.prices.iter_mut().flatten() {
        entry.value.price = 1e300;
        entry.fetched_at_ms = now.timestamp_millis();
    }
    let mut ahead = (*real).clone();
    if let Some(btc) = &mut ahead.values.prices[0] {
        btc.value.price = 12_345.0;
        btc.fetched_at_ms = now.timestamp_millis();
    }
    let received = || cluster.health()["bus"]["received"].as_u64().unwrap_or(0);
    let before = received();
    forge(&redis_conn, fence, &absurd).await;
    forge(&redis_conn, fence + 1_000, &ahead).await;
    eventually(Duration::from_secs(20), "both forgeries arrive", || async {
        received() >= before + 2
    })
    .await;
    // The lease is looked up for the fence ahead before that one is taken or refused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shown = state.market.current().values.prices[0]
        .as_ref()
        .expect("btc")
        .value
        .price;
    assert_eq!(shown, real_btc, "the follower shows the leader's BTC price");
    assert_eq!(
        cluster.health()["bus"]["refused"],
        2,
        "both forgeries refused"
    );

    // A report published on the follower now records the market it shows, not a forgery.
    let mut fresh = common::report(900, "2026-01-01T00:00:00Z");
    fresh.created_at = now - chrono::TimeDelta::minutes(1);
    common::publish(&state, vec![fresh]).await;
    let page = common::get(&state, "/crypto_report/900?lang=en")
        .await
        .text();
    let start = page
        .find("<tr data-field=\"btc_price_usd\"")
        .expect("btc row");
    let btc = &page[start..start + page[start..].find("</tr>").expect("row end")];
    assert!(
        btc.contains(&format!("data-then=\"{real_btc}\"")),
        "the price at publication is the leader's ({real_btc}): {btc}"
    );

    // The holder was not talked out of its lease, and its next snapshot (a new fear & greed
    // reading) still reaches the follower.
    assert_eq!(role(&client, &leader).await, "leading");
    relay_greed(&client, &fakes[0], &leader).await;
    eventually(
        Duration::from_secs(20),
        "the follower takes the holder's next snapshot",
        || async {
            state
                .market
                .current()
                .values
                .fng
                .as_ref()
                .is_some_and(|f| f.value.value == 93)
        },
    )
    .await;
    assert_eq!(cluster.health()["market_role"], "following");
    assert_eq!(calls(&fakes[1]), 0, "the follower never polled");
    let _ = state.background().shutdown(Duration::from_secs(5)).await;
}

/// Followers try to take the lease every tick; only a take draws a fencing number, so the
/// counter says how many times the lease changed hands, not how long the followers waited.
#[tokio::test]
async fn the_fence_moves_once_per_take_not_once_per_follower_tick() {
    use crypto_report::cluster::lease::Lease;
    use crypto_report::redis_conn::Redis;
    use crypto_report::secret::Secret;

    let Some(server) = RedisServer::start() else {
        return;
    };
    let redis = Redis::new(&Secret::new(server.url()), "fence-test").expect("redis");
    let lease = Lease::new(&redis, "market");
    let fence_key = redis.key("lease:market:fence");
    let held = lease
        .acquire(&redis, "a")
        .await
        .expect("acquire")
        .expect("nobody held it");
    for _ in 0..20 {
        assert_eq!(lease.acquire(&redis, "b").await.expect("acquire"), None);
    }
    let fence: u64 = redis
        .cmd(redis::cmd("GET").arg(&fence_key))
        .await
        .expect("fence");
    assert_eq!(fence, held.fence, "followers moved the fence");
    assert_eq!(
        lease.holder_fence(&redis).await.expect("holder"),
        Some(held.fence)
    );
    lease.release(&redis, &held).await.expect("release");
    let next = lease
        .acquire(&redis, "b")
        .await
        .expect("acquire")
        .expect("released");
    assert_eq!(next.fence, held.fence + 1);
    assert_eq!(next.value, format!("b#{}", next.fence));
}

/// The app's shared tier and the one the cluster keeps its snapshot in are one tier, with one
/// set of counters (not a new tier, with counters of its own, per use).
#[tokio::test]
async fn the_shared_tier_is_one_tier() {
    let cluster = crypto_report::cluster::Cluster::new(
        &crypto_report::secret::Secret::new("redis://127.0.0.1:9/0"),
        "one-tier",
    )
    .expect("cluster");
    assert!(Arc::ptr_eq(&cluster.l2(), &cluster.l2()));
}
