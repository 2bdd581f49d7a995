//! The PostgreSQL sync inside a running server (the real binary): a new row becomes visible on
//! every route and is announced to WebSocket clients, an outage of the source never touches
//! serving, and a second writer is told how to import into the running server.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::ADMIN_TOKEN;
use common::pg;
use common::process::{Instance, bin};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

/// A server syncing from `sync_from` (every hour: the tests trigger passes themselves).
fn start(data_dir: &std::path::Path, sync_from: &str) -> Instance {
    Instance::start(
        data_dir,
        &[
            "--sync-every",
            "1h",
            "--sync-from",
            sync_from,
            "--admin-token",
            ADMIN_TOKEN,
        ],
        &[],
    )
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client.get(url).send().await.expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn health(client: &reqwest::Client, server: &Instance) -> serde_json::Value {
    let r = client
        .get(server.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

async fn wait_for_first_pass(client: &reqwest::Client, server: &Instance) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(client, server).await;
        if h["sync"]["passes"].as_u64().unwrap_or(0) >= 1 {
            return h;
        }
        assert!(Instant::now() < deadline, "no sync pass: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_synced_report_shows_everywhere_at_once_and_is_announced() {
    let Some(admin) = pg::admin_url() else { return };
    let db = pg::create_db(&admin, "cr_sync").await;
    pg::apply(&db.client, &["current.sql"]).await;
    pg::insert(&db.client, "crypto_report", 1, 30, 1, true).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &db.url);
    let client = reqwest::Client::new();
    let password = pg::password_of(&db.url);

    let h = wait_for_first_pass(&client, &server).await;
    assert_eq!(h["sync"]["last_pass"]["new"], 30, "{h}");
    assert!(h["sync"]["lag_seconds"].as_i64().is_some(), "{h}");
    assert!(!h.to_string().contains(&password));

    // Warm every listing page, so what follows proves invalidation, not a cold render.
    let routes = [
        "/",
        "/crypto_report",
        "/crypto_reports_list",
        "/rss.xml",
        "/sitemap.xml",
        "/api/reports",
    ];
    for route in routes {
        let (status, body) = get(&client, &server.url(route)).await;
        assert_eq!(status, 200, "{route}");
        assert!(!body.contains("/crypto_report/31"), "{route}");
    }

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .expect("websocket");
    db.client
        .execute(
            "INSERT INTO crypto_report (html_content, html_content_en, created_at) VALUES \
             ('<section id=\"moi\"><h2>Báo cáo mới nhất</h2><p>Tin mới.</p></section>', \
              '<section id=\"new\"><h2>Newest report</h2><p>Fresh.</p></section>', now() - interval '1 minute')",
            &[],
        )
        .await
        .expect("insert");
    let synced = sync_now(&client, &server).await;
    assert_eq!(synced.status(), 200);
    let synced: serde_json::Value = synced.json().await.expect("json");
    assert_eq!(synced["pass"]["new"], 1, "{synced}");
    assert_eq!(synced["pass"]["unchanged"], 30, "{synced}");

    for route in routes {
        let (status, body) = get(&client, &server.url(route)).await;
        assert_eq!(status, 200, "{route}");
        assert!(
            body.contains("/crypto_report/31"),
            "{route} does not show report 31"
        );
    }
    let (_, latest) = get(&client, &server.url("/crypto_report")).await;
    assert!(
        latest.contains("Báo cáo mới nhất"),
        "the latest report page is the new one"
    );
    let (_, api) = get(&client, &server.url("/api/reports")).await;
    let api: serde_json::Value = serde_json::from_str(&api).expect("json");
    assert_eq!(api["reports"][0]["id"], 31);
    assert_eq!(api["total"], 31);

    // The sync shows in /metrics too (the test client is on loopback).
    let (status, metrics) = get(&client, &server.url("/metrics")).await;
    assert_eq!(status, 200);
    for series in [
        "crypto_report_sync_lag_seconds ",
        "crypto_report_sync_passes_total{outcome=\"ok\"} 2",
        "crypto_report_sync_reports_total{kind=\"new\"} 31",
    ] {
        assert!(metrics.contains(series), "{series} missing: {metrics}");
    }

    let announced = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            let m: serde_json::Value = serde_json::from_str(&text).expect("json");
            if m["type"] == "report_published" {
                return m;
            }
        }
        panic!("the socket closed");
    })
    .await
    .expect("report_published arrives");
    assert_eq!(announced["data"]["id"], 31);

    // While the server holds the store, an import is refused and told where to go.
    let second = Command::new(bin())
        .args(["import", "--from", &db.url])
        .env("CR_DATA_DIR", dir.path())
        .output()
        .expect("import");
    assert_eq!(second.status.code(), Some(75), "{second:?}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("--sync-from") && err.contains("/admin/sync"),
        "{err}"
    );
    assert!(!err.contains(&password));
    assert!(!server.logged().contains(&password));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_source_never_touches_serving() {
    let Some(admin) = pg::admin_url() else { return };
    let password = pg::password_of(&admin);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    let url = format!("postgres://postgres:{password}@127.0.0.1:{port}/gone");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &url);
    let client = reqwest::Client::new();

    let h = wait_for_first_pass(&client, &server).await;
    assert_eq!(h["status"], "ok", "{h}");
    let error = h["sync"]["last_error"]["message"]
        .as_str()
        .expect("an error");
    assert!(error.contains("cannot connect"), "{error}");
    assert!(h["sync"]["last_success_at"].is_null());
    let (_, metrics) = get(&client, &server.url("/metrics")).await;
    assert!(
        metrics.contains("crypto_report_sync_passes_total{outcome=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("crypto_report_sync_lag_seconds"),
        "no lag before a success"
    );
    assert!(!h.to_string().contains(&password));
    for route in ["/", "/crypto_reports_list", "/rss.xml", "/api/reports"] {
        assert_eq!(get(&client, &server.url(route)).await.0, 200, "{route}");
    }
    let sync = sync_now(&client, &server).await;
    assert_eq!(sync.status(), 502);
    let body = sync.text().await.expect("body");
    assert!(
        body.contains("cannot connect") && !body.contains(&password),
        "{body}"
    );
    let refused = client
        .post(server.url("/admin/sync"))
        .send()
        .await
        .expect("sync");
    assert_eq!(refused.status(), 401);
    assert!(!server.logged().contains(&password));
}

/// The first pass of an empty store imports the archive and announces nothing; a row that
/// arrives afterwards is announced once, to the webhook configured with CR_ANNOUNCE.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_pass_announces_nothing_and_a_later_new_row_is_announced_once() {
    let Some(admin) = pg::admin_url() else { return };
    let db = pg::create_db(&admin, "cr_sync_announce").await;
    pg::apply(&db.client, &["current.sql"]).await;
    pg::insert(&db.client, "crypto_report", 1, 5, 1, true).await;
    let fake = common::receiver::Receiver::start("sync-secret").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Instance::start(
        dir.path(),
        &[
            "--sync-every",
            "1h",
            "--sync-from",
            &db.url,
            "--admin-token",
            ADMIN_TOKEN,
        ],
        &[(
            "CR_ANNOUNCE",
            format!("webhook+http://{}/hook?secret=sync-secret", fake.addr),
        )],
    );
    let client = reqwest::Client::new();
    let h = wait_for_first_pass(&client, &server).await;
    assert_eq!(h["sync"]["last_pass"]["new"], 5, "{h}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        fake.received("/hook").is_empty(),
        "the archive is not announced"
    );
    let h = health(&client, &server).await;
    assert_eq!(h["announce"]["armed"], true, "{h}");
    assert_eq!(h["announce"]["targets"][0]["queued"], 0, "{h}");

    db.client
        .execute(
            "INSERT INTO crypto_report (html_content, created_at) VALUES \
             ('<section id=\"moi\"><h2>Mới</h2><p>Tin mới.</p></section>', now())",
            &[],
        )
        .await
        .expect("insert");
    for _ in 0..2 {
        let synced = sync_now(&client, &server).await;
        assert_eq!(synced.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.posted("/hook").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the new report was not announced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posted = fake.posted("/hook");
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].json()["id"], 6);
    assert_eq!(fake.received("/hook").len(), 1);
}

/// `POST /admin/sync` with the admin token: one sync pass now.
async fn sync_now(client: &reqwest::Client, server: &Instance) -> reqwest::Response {
    client
        .post(server.url("/admin/sync"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("sync")
}
