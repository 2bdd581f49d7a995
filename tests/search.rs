//! Search over the bundled sample reports, through `app(state)`: relevance and accent folding,
//! snippets, paging, date ranges, bad input, the header form on every page, and a report
//! published through the publish path found at once.

mod common;

use std::time::{Duration, Instant};

use common::{Reply, TestApp, get, publish, report};
use crypto_report::AppState;

/// A state seeded with the bundled samples (ids 101-107), the index caught up.
async fn samples() -> (AppState, tempfile::TempDir) {
    let (state, dir) = common::samples();
    state.search.settled().await;
    (state, dir)
}

fn ids(reply: &Reply) -> Vec<u64> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut ids: Vec<u64> = reply.json()["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["id"].as_u64().expect("id"))
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn finds_exactly_the_samples_that_discuss_it_with_or_without_accents() {
    let (state, _dir) = samples().await;
    // "lạm phát" (inflation) appears in 101, 102, 106 and 107, nowhere else.
    let inflation = vec![101, 102, 106, 107];
    for q in [
        "lam+phat",
        "l%E1%BA%A1m+ph%C3%A1t",
        "L%E1%BA%A0M+PH%C3%81T",
        "%22lam+phat%22",
    ] {
        assert_eq!(
            ids(&get(&state, &format!("/api/search?q={q}")).await),
            inflation,
            "{q}"
        );
    }
    assert_eq!(ids(&get(&state, "/api/search?q=fed").await), vec![106, 107]);
    let health = get(&state, "/health").await.json();
    assert_eq!(health["search"]["documents"], 7);
    assert_eq!(health["search"]["catching_up"], false);
    assert_eq!(
        ids(&get(&state, "/api/search?q=stablecoin").await),
        vec![103, 106, 107]
    );
    assert!(ids(&get(&state, "/api/search?q=zzyzx").await).is_empty());

    // Snippets mark the matched words, in the reader's language where it has them.
    let reply = get(&state, "/api/search?q=lam+phat&lang=vi").await;
    let json = reply.json();
    assert_eq!(json["total"], 4);
    assert_eq!(json["pages"], 1);
    let first = &json["hits"][0];
    assert!(
        first["snippet_html"]
            .as_str()
            .expect("html")
            .contains("<mark>lạm</mark> <mark>phát</mark>"),
        "{first}"
    );
    assert!(!first["snippet"].as_str().expect("text").contains('<'));
    let en = get(&state, "/api/search?q=inflation&lang=en").await.json();
    assert!(
        en["hits"][0]["snippet_html"]
            .as_str()
            .expect("html")
            .to_lowercase()
            .contains("<mark>inflation</mark>"),
        "{en}"
    );

    // A date range in Vietnam days: 106 is on 20 Nov (UTC+7), 107 on the 21st.
    let ranged = get(
        &state,
        "/api/search?q=lam+phat&from=2026-11-16&to=2026-11-20",
    )
    .await;
    assert_eq!(ids(&ranged), vec![106]);
    assert_eq!(ranged.json()["to"], "2026-11-20");
    assert_eq!(
        ids(&get(&state, "/api/search?q=lam+phat&from=2026-11-21").await),
        vec![107]
    );
}

#[tokio::test]
async fn the_page_shows_marked_snippets_and_every_page_has_the_form() {
    let (state, _dir) = samples().await;
    let page = get(&state, "/search?q=stablecoin&lang=en").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    let html = page.text();
    assert_eq!(
        html.matches("class=\"report-item search-hit\"").count(),
        3,
        "{html}"
    );
    assert!(html.contains("<mark>stablecoin</mark>") || html.contains("<mark>Stablecoin</mark>"));
    assert!(html.contains("value=\"stablecoin\""));
    // No query: the form and its hint, no results.
    let empty = get(&state, "/search").await.text();
    assert!(empty.contains("id=\"search-q\"") && !empty.contains("search-hit"));
    // Markup in a query is text.
    let hostile = get(&state, "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await
        .text();
    assert!(!hostile.contains("<script>alert"), "{hostile}");
    for path in [
        "/",
        "/crypto_reports_list",
        "/crypto_report/101",
        "/search?q=x",
    ] {
        let html = get(&state, path).await.text();
        assert!(
            html.contains("<form class=\"site-search\" role=\"search\" action=\"/search\""),
            "{path}"
        );
    }
}

#[tokio::test]
async fn results_are_paginated_and_bad_input_is_refused() {
    let app = TestApp::with_reports(25);
    app.state.search.settled().await;
    let first = app.get("/api/search?q=thi+truong").await.json();
    assert_eq!(first["total"], 25);
    assert_eq!(first["pages"], 3);
    assert_eq!(first["hits"].as_array().expect("hits").len(), 10);
    let third = app.get("/api/search?q=thi+truong&page=3").await;
    assert_eq!(third.json()["hits"].as_array().expect("hits").len(), 5);
    let mut all: Vec<u64> = Vec::new();
    for p in 1..=3 {
        all.extend(ids(&app
            .get(&format!("/api/search?q=thi+truong&page={p}"))
            .await));
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=25).collect::<Vec<_>>(),
        "every report once across the pages"
    );
    assert_eq!(app.get("/api/search?q=thi+truong&page=4").await.status, 404);
    assert_eq!(
        app.get("/api/search?q=thi+truong&page=101").await.status,
        404
    );
    let html = app.get("/search?q=thi+truong&page=2").await.text();
    assert!(
        html.contains("href=\"/search?q=thi%20truong&amp;page=3\""),
        "{html}"
    );
    for bad in [
        "/api/search?q=x&page=0",
        "/api/search?q=x&page=abc",
        "/api/search?q=x&from=2026-13-01",
        "/api/search?q=x&from=2026-11-20&to=2026-11-01",
        "/search?q=x&to=yesterday",
    ] {
        assert_eq!(app.get(bad).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn a_published_report_is_searchable_at_once() {
    let app = TestApp::with_reports(3);
    app.state.search.settled().await;
    let mut fresh = report(50, "2026-11-28T08:00:00Z");
    fresh.html_content = "<section id=\"a\"><h2>Quỹ hưu trí</h2><p>Quỹ hưu trí Na Uy mua thêm Bitcoin.</p></section>".into();
    let started = Instant::now();
    publish(&app.state, vec![fresh]).await;
    // Polled, not waited for: the bound is generous; scripts/bench-search measures the delay.
    loop {
        let found = ids(&app.get("/api/search?q=quy+huu+tri").await);
        if found == vec![50] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not searchable: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
