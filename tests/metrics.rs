//! `GET /metrics`: who may read it, and every series by name, fed by real traffic, a live
//! market against the fake provider server and WebSocket clients.

mod common;

use std::time::Duration;

use common::fake::{Fake, config};
use common::server::{RunningServer, raw};
use common::{ADMIN_TOKEN, TestApp};
use std::sync::Arc;

use crypto_report::Feed;
use crypto_report::market::Market;
use crypto_report::metrics::names;

/// The value of the first sample line that starts with `prefix` (name and labels).
fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"))
}

async fn scrape(server: &RunningServer) -> String {
    let response = raw(
        server.addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{response}"
    );
    response
}

#[tokio::test]
async fn metrics_need_the_token_unless_the_peer_is_on_loopback() {
    let app = TestApp::with_reports(1);
    // Through the router without a peer address: a remote client, as far as it knows.
    assert_eq!(app.get("/metrics").await.status, 401);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let r = app
        .get_with("/metrics", &[("authorization", &bearer)])
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains(names::REPORTS), "{}", r.text());
    let closed = TestApp::build(1, false);
    assert_eq!(closed.get("/metrics").await.status, 403);
    // Over TCP from 127.0.0.1: no token needed.
    let server = RunningServer::start(app.state.clone()).await;
    scrape(&server).await;
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn every_series_is_exposed_by_name() {
    let fake = Fake::start().await;
    let app = TestApp::build_with(3, true, |p| {
        p.feed = Feed::Running(Market::start(
            config(&fake),
            Arc::clone(&p.store),
            &p.background,
        ));
    });
    let market = app.state.market.clone();
    let state = app.state.clone();
    let server = RunningServer::start(state.clone()).await;
    for path in [
        "/crypto_report/2",
        "/crypto_report/2",
        "/crypto_report/3",
        "/nope",
        "/health",
    ] {
        server.get(path).await;
    }
    let (_ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .expect("connect");
    // The market's first round has reached the providers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while market.provider_stats().iter().all(|(s, _)| s.calls == 0) {
        assert!(tokio::time::Instant::now() < deadline, "no provider call");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = scrape(&server).await;

    let requests = format!("{}_total", names::HTTP_REQUESTS);
    assert_eq!(
        value(
            &text,
            &format!(r#"{requests}{{method="GET",route="/crypto_report/{{id}}",status="200"}}"#)
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"{requests}{{method="GET",route="unmatched",status="404"}}"#)
        ),
        1.0
    );
    let duration = format!(
        r#"{}_count{{route="/crypto_report/{{id}}"}}"#,
        names::HTTP_DURATION
    );
    assert_eq!(value(&text, &duration), 3.0);
    let bytes = format!(
        r#"{}_total{{route="/crypto_report/{{id}}"}}"#,
        names::HTTP_RESPONSE_BYTES
    );
    assert!(value(&text, &bytes) > 1000.0);

    let l1 = r#"{tier="l1"}"#;
    assert!(value(&text, &format!("{}_total{l1}", names::CACHE_HITS)) >= 1.0);
    assert!(value(&text, &format!("{}_total{l1}", names::CACHE_MISSES)) >= 2.0);
    assert!(value(&text, &format!("{}_total{l1}", names::CACHE_RENDERS)) >= 2.0);
    value(&text, &format!("{}_total{l1}", names::CACHE_COALESCED));
    assert!(value(&text, &format!("{}{l1}", names::CACHE_ENTRIES)) >= 2.0);
    assert!(value(&text, &format!("{}{l1}", names::CACHE_BYTES)) > 0.0);
    // The second tier (the store's table here): misses of the first renders, then writes.
    let l2 = r#"{tier="l2"}"#;
    assert!(value(&text, &format!("{}_total{l2}", names::CACHE_MISSES)) >= 2.0);
    value(&text, &format!("{}_total{l2}", names::CACHE_HITS));
    value(&text, &format!("{}_total{l2}", names::CACHE_WRITES));
    value(&text, &format!("{}_total{l2}", names::CACHE_ERRORS));

    let cg = r#"{provider="coingecko"}"#;
    assert!(value(&text, &format!("{}_total{cg}", names::PROVIDER_CALLS)) >= 1.0);
    value(&text, &format!("{}_total{cg}", names::PROVIDER_FAILURES));
    assert!(value(&text, &format!("{}_count{cg}", names::PROVIDER_DURATION)) >= 1.0);
    assert_eq!(
        value(
            &text,
            &format!(
                r#"{}{{provider="coingecko",state="closed"}}"#,
                names::PROVIDER_BREAKER
            )
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!(
                r#"{}{{provider="coingecko",state="open"}}"#,
                names::PROVIDER_BREAKER
            )
        ),
        0.0
    );

    assert_eq!(value(&text, names::WS_CLIENTS), 1.0);
    for kind in ["client", "snapshot", "announcement"] {
        value(
            &text,
            &format!(r#"{}_total{{kind="{kind}"}}"#, names::WS_DROPPED),
        );
    }
    assert_eq!(value(&text, names::REPORTS), 3.0);
    assert!(value(&text, names::STORE_BYTES) > 0.0);
    value(&text, names::UPTIME);
    let build = crypto_report::build_info::BuildInfo::get();
    let info = format!(
        r#"{}{{version="{}",commit="{}",date="{}",target="{}",glibc="{}"}}"#,
        names::BUILD_INFO,
        build.version,
        build.commit_label(),
        build.date,
        build.target,
        build.glibc
    );
    assert_eq!(value(&text, &info), 1.0, "{text}");
    server.stop().await.expect("clean stop");
}
