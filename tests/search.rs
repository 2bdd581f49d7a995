//! Search over the bundled sample reports, through `app(state)`: relevance and accent folding,
//! snippets, paging, date ranges, bad input, the header form on every page, and a report
//! published through the publish path found at once.

mod common;

use std::time::{Duration, Instant};

use common::{Reply, TestApp, fixture_reports, get, publish, report};
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
            .contains("<mark>lạm phát</mark>"),
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
        // Read as every other route reads a page number.
        "/api/search?q=x&page=%2B2",
        "/search?q=x&page=%2B2",
        "/api/search?q=x&page=2.0",
        "/api/search?q=x&from=2026-13-01",
        "/api/search?q=x&from=2026-11-20&to=2026-11-01",
        "/search?q=x&to=yesterday",
    ] {
        assert_eq!(app.get(bad).await.status, 400, "{bad}");
    }
    assert_eq!(app.get("/crypto_reports_list?page=%2B2").await.status, 400);
    assert_eq!(
        app.get("/api/search?q=x&page=99999999999999999999999")
            .await
            .status,
        404
    );
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

/// A store holding `tests/fixtures/syllables`: "lạm phát" (inflation) in 201 and, late in a
/// long text, in 206; "Tham lam" (greed) in 201, 202 and 206; "làm" in 203 (once in "làm
/// phát sinh", which folds to "lam phat sinh") and 205; "phát triển" in 202, 203 and 204;
/// "phát" alone (of "phát hành") early in 206. 205 has no English text.
async fn syllables() -> TestApp {
    let app = TestApp::with_reports(0);
    publish(&app.state, fixture_reports("syllables")).await;
    app.state.search.settled().await;
    app
}

/// A hit as a reader sees it: (id, listed apart, marks of the snippet shown, its language).
type Shown = (u64, bool, Vec<String>, String);

/// Each hit of a search, in the order of the results.
async fn marks(app: &TestApp, query: &str) -> Vec<Shown> {
    let reply = app.get(&format!("/api/search?{query}")).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.text());
    let json = reply.json();
    let hits = json["hits"].as_array().expect("hits");
    assert_eq!(json["total"], hits.len(), "{query}: one page");
    hits.iter()
        .map(|h| {
            let html = h["snippet_html"].as_str().expect("html");
            let marks = html
                .split("<mark>")
                .skip(1)
                .map(|m| m.split("</mark>").next().unwrap_or_default().to_owned())
                .collect();
            (
                h["id"].as_u64().expect("id"),
                h["apart"].as_bool().expect("apart"),
                marks,
                h["snippet_lang"].as_str().expect("lang").to_owned(),
            )
        })
        .collect()
}

/// The hits sorted by id within each tier (together, then apart), for exact comparison.
fn tiers(mut hits: Vec<Shown>) -> Vec<Shown> {
    let first_apart = hits.iter().position(|h| h.1).unwrap_or(hits.len());
    assert!(
        hits[first_apart..].iter().all(|h| h.1),
        "apart hits come last: {hits:?}"
    );
    hits[..first_apart].sort_by_key(|h| h.0);
    hits[first_apart..].sort_by_key(|h| h.0);
    hits
}

fn hit(id: u64, apart: bool, marks: &[&str], lang: &str) -> Shown {
    (
        id,
        apart,
        marks.iter().map(|m| (*m).to_owned()).collect(),
        lang.to_owned(),
    )
}

#[tokio::test]
async fn syllables_typed_side_by_side_are_matched_side_by_side() {
    let app = syllables().await;
    let vi = |q: &str| format!("q={q}&lang=vi");
    // Accented: the words as typed, side by side; "Tham lam" and "làm phát sinh" are other
    // words, and marks cover the phrase whole.
    let inflation = vec![
        hit(201, false, &["Lạm phát"], "vi"),
        hit(206, false, &["lạm phát", "Lạm phát"], "vi"),
    ];
    assert_eq!(
        tiers(marks(&app, &vi("l%E1%BA%A1m+ph%C3%A1t")).await),
        inflation
    );
    assert_eq!(
        tiers(marks(&app, &vi("%22l%E1%BA%A1m+ph%C3%A1t%22")).await),
        inflation
    );
    // Without accents: every spelling side by side ("làm phát sinh" too); 202 holds "lam"
    // and "phát" only apart, so it comes last, with no lone syllable marked.
    assert_eq!(
        tiers(marks(&app, &vi("lam+phat")).await),
        vec![
            hit(201, false, &["Lạm phát"], "vi"),
            hit(203, false, &["làm phát"], "vi"),
            hit(206, false, &["lạm phát", "Lạm phát"], "vi"),
            hit(202, true, &[], "vi"),
        ]
    );
    // Quoted: only side by side.
    assert_eq!(
        tiers(marks(&app, &vi("%22lam+phat%22")).await),
        vec![
            hit(201, false, &["Lạm phát"], "vi"),
            hit(203, false, &["làm phát"], "vi"),
            hit(206, false, &["lạm phát", "Lạm phát"], "vi"),
        ]
    );
    // One syllable is a word: with its accents only that word, without them every spelling.
    assert_eq!(
        tiers(marks(&app, &vi("l%C3%A0m")).await),
        vec![
            hit(203, false, &["làm", "làm"], "vi"),
            hit(205, false, &["làm"], "vi")
        ]
    );
    let lam: Vec<u64> = marks(&app, &vi("lam")).await.iter().map(|h| h.0).collect();
    let mut lam_sorted = lam.clone();
    lam_sorted.sort_unstable();
    assert_eq!(lam_sorted, vec![201, 202, 203, 205, 206]);
    assert_eq!(
        tiers(marks(&app, &vi("Tham+lam")).await),
        vec![
            hit(201, false, &["Tham lam", "Tham lam"], "vi"),
            hit(202, false, &["Tham lam", "Tham lam"], "vi"),
            hit(206, false, &["Tham lam", "Tham lam"], "vi"),
        ]
    );
    assert_eq!(
        tiers(marks(&app, &vi("ph%C3%A1t+tri%E1%BB%83n")).await),
        vec![
            hit(202, false, &["phát triển"], "vi"),
            hit(203, false, &["phát triển"], "vi"),
            hit(204, false, &["phát triển"], "vi"),
        ]
    );
    // Found through the other language: that language's snippet, with its marks.
    assert_eq!(
        tiers(marks(&app, &vi("inflation")).await),
        vec![
            hit(201, false, &["Inflation"], "en"),
            hit(206, false, &["inflation", "inflation"], "en"),
        ]
    );
    assert_eq!(
        tiers(marks(&app, "q=l%E1%BA%A1m+ph%C3%A1t&lang=en").await),
        vec![
            hit(201, false, &["Lạm phát"], "vi"),
            hit(206, false, &["lạm phát", "Lạm phát"], "vi"),
        ]
    );
    // English keeps working: words apart are found and marked in English text.
    assert_eq!(
        tiers(marks(&app, "q=greed+growing&lang=en").await),
        vec![hit(202, true, &["Greed", "Greed", "growing"], "en")]
    );
}

#[tokio::test]
async fn the_page_marks_the_phrase_and_lists_words_apart_last() {
    let app = syllables().await;
    let html = app.get("/search?q=lam+phat&lang=vi").await.text();
    // No lone syllable of another word is marked anywhere on the page.
    assert!(!html.contains("Tham <mark>"), "{html}");
    assert!(
        !html.contains("<mark>lam</mark>") && !html.contains("<mark>phát</mark>"),
        "{html}"
    );
    // 203's English text holds neither word: English readers see its Vietnamese snippet.
    assert!(
        html.contains("<p class=\"search-snippet\" data-show-lang=\"en\" lang=\"vi\">Bản nâng cấp mới của Ethereum không <mark>làm phát</mark> sinh"),
        "{html}"
    );
    let (together, apart) = html
        .split_once("class=\"search-hint search-apart\"")
        .expect("apart line");
    assert_eq!(
        together.matches("class=\"report-item search-hit\"").count(),
        3
    );
    assert_eq!(apart.matches("class=\"report-item search-hit\"").count(), 1);
    assert!(apart.contains("href=\"/crypto_report/202\""));
    // A Vietnamese reader of a hit found only in English sees the English snippet, marked.
    let html = app.get("/search?q=inflation&lang=vi").await.text();
    assert!(
        html.contains("<p class=\"search-snippet\" data-show-lang=\"vi\" lang=\"en\"><mark>Inflation</mark> in the US cooled in September"),
        "{html}"
    );
    assert!(!html.contains("search-apart"), "one word: no tier");
}

#[tokio::test]
async fn bad_dates_answer_the_search_page_with_the_words_kept() {
    let app = syllables().await;
    let reversed = app
        .get("/search?q=l%E1%BA%A1m+ph%C3%A1t&from=2026-11-20&to=2026-11-01&lang=vi")
        .await;
    assert_eq!(reversed.status, 400);
    assert!(reversed.header("content-type").starts_with("text/html"));
    let html = reversed.text();
    assert!(
        html.contains(
            "id=\"search-q\" class=\"search-input\" type=\"search\" name=\"q\" value=\"lạm phát\""
        ),
        "{html}"
    );
    assert!(html.contains("value=\"2026-11-20\"") && html.contains("value=\"2026-11-01\""));
    assert_eq!(html.matches("role=\"alert\"").count(), 1, "one line");
    assert!(
        html.contains(">Ngày bắt đầu (20 tháng 11, 2026) sau ngày kết thúc (1 tháng 11, 2026): hãy đổi chỗ hai ngày hoặc sửa một ngày.</p>"),
        "{html}"
    );
    assert!(html.contains("data-en=\"The start date (November 20, 2026) is after the end date (November 1, 2026): swap them or change one.\""));
    assert!(!html.contains("search-hit") && !html.contains("search-total"));

    let invalid = app.get("/search?q=bitcoin&from=2026-13-01&lang=en").await;
    assert_eq!(invalid.status, 400);
    let html = invalid.text();
    assert!(html.contains("value=\"bitcoin\""));
    assert!(html.contains(">The start date “2026-13-01” is not a date: enter it as year-month-day (YYYY-MM-DD).</p>"), "{html}");
    assert!(html.contains("id=\"search-from\" type=\"date\" name=\"from\" value=\"2026-13-01\" aria-invalid=\"true\""), "{html}");
    let both = app.get("/search?q=bitcoin&from=x&to=%3Cb%3E").await.text();
    assert!(
        both.contains("“x” và “&lt;b&gt;” không phải là ngày"),
        "{both}"
    );
    // The JSON API says the same in its error.
    let api = app
        .get("/api/search?q=x&from=2026-11-20&to=2026-11-01")
        .await;
    assert_eq!(api.status, 400);
}
