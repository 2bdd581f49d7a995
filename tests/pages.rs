//! Handler tests against `app(state)`: every route, the status codes, the headers.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{ADMIN_TOKEN, TestApp, get, occupy, publish, report, until};
use crypto_report::store::{FILE_NAME, Store};
use crypto_report::workers::PoolSettings;
use crypto_report::{AppState, Settings};

fn assert_security_headers(r: &common::Reply) {
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert!(!r.header("content-security-policy").is_empty());
    assert!(!r.header("referrer-policy").is_empty());
    assert_eq!(r.header("x-frame-options"), "SAMEORIGIN");
}

#[tokio::test]
async fn home_lists_the_latest_and_recent_reports() {
    let app = TestApp::with_reports(8);
    let r = app.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    assert!(r.header("etag").starts_with('"'));
    assert!(r.header("vary").contains("Accept-Language"));
    assert_security_headers(&r);
    let csp = r.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = r.text();
    assert!(
        html.contains("href=\"/crypto_report/8\""),
        "latest report linked"
    );
    assert!(
        html.contains("href=\"/crypto_report/3\""),
        "recent reports linked"
    );
    assert!(
        !html.contains("href=\"/crypto_report/2\""),
        "only six shown"
    );
    assert!(html.contains("<html lang=\"vi\""));
    assert!(
        !html.contains("<script>"),
        "no inline script on the site's pages"
    );
    assert!(
        html.contains("id=\"market-dashboard\""),
        "a place for the live dashboard"
    );
}

#[tokio::test]
async fn language_comes_from_query_then_cookie_then_accept_language() {
    let app = TestApp::with_reports(2);
    let en = app.get("/crypto_report/1?lang=en").await;
    assert!(en.text().contains("<html lang=\"en\""));
    assert!(en.text().contains("Overview 1"));
    assert!(en.header("set-cookie").starts_with("lang=en"));
    let cookie = app
        .get_with("/crypto_report/1", &[("cookie", "theme=dark; lang=en")])
        .await;
    assert!(cookie.text().contains("<html lang=\"en\""));
    let accept = app
        .get_with("/crypto_report/1", &[("accept-language", "en-GB,en;q=0.9")])
        .await;
    assert!(accept.text().contains("<html lang=\"en\""));
    let vi = app
        .get_with("/crypto_report/1", &[("accept-language", "fr")])
        .await;
    assert!(vi.text().contains("<html lang=\"vi\""));
    assert!(vi.text().contains("Tổng quan 1"));
    assert!(vi.header("set-cookie").is_empty());
}

#[tokio::test]
async fn report_page_has_toc_frame_neighbours_and_print_link() {
    let app = TestApp::with_reports(3);
    let r = app.get("/crypto_report/2").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains("data-src=\"/crypto_report/2/frame?lang=vi\""));
    assert!(html.contains("sandbox=\"allow-scripts"));
    assert!(!html.contains("allow-same-origin"));
    assert!(html.contains("data-section=\"tong-quan\""));
    assert!(html.contains("data-section=\"btc\""));
    assert!(html.contains("rel=\"prev\" class=\"report-nav-prev\" href=\"/crypto_report/1\""));
    assert!(html.contains("rel=\"next\" class=\"report-nav-next\" href=\"/crypto_report/3\""));
    assert!(html.contains("/crypto_report/2/pdf?lang=vi"));
    // The report's own markup never lands in the site's origin.
    assert!(!html.contains("<section id=\"tong-quan\">"));
    assert!(!html.contains("initializeAllVisuals_report"));
}

#[tokio::test]
async fn latest_report_is_the_newest() {
    let app = TestApp::with_reports(3);
    let r = app.get("/crypto_report").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("data-src=\"/crypto_report/3/frame"));
    let empty = TestApp::with_reports(0);
    assert_eq!(
        empty.get("/crypto_report").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(empty.get("/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_and_unknown_ids_get_localized_pages() {
    let app = TestApp::with_reports(1);
    for uri in [
        "/crypto_report/%FF",
        "/crypto_report/abc",
        "/crypto_report/-1",
        "/crypto_report/0",
        "/crypto_report/1.5",
        "/crypto_report/+1",
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(r.text().contains("Yêu cầu không hợp lệ"), "{uri}");
        assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
        assert_security_headers(&r);
    }
    let r = app.get("/crypto_report/42?lang=en").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("Not found"));
    assert!(r.text().contains("<html lang=\"en\""));
    let r = app.get("/no/such/page").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("Không tìm thấy"));
    assert_security_headers(&r);
    for uri in [
        "/crypto_report/x/frame",
        "/crypto_report/x/pdf",
        "/pdf-template/x",
    ] {
        assert_eq!(app.get(uri).await.status, StatusCode::BAD_REQUEST, "{uri}");
    }
    for uri in [
        "/crypto_report/9/frame",
        "/crypto_report/9/pdf",
        "/pdf-template/9",
    ] {
        assert_eq!(app.get(uri).await.status, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn ids_past_two_to_the_63_are_unknown_not_malformed() {
    let app = TestApp::with_reports(1);
    for uri in [
        "/crypto_report/9223372036854775808",
        "/crypto_report/18446744073709551616",
        "/crypto_report/99999999999999999999999/frame",
        "/pdf-template/99999999999999999999999",
        "/crypto_reports_list?page=99999999999999999999999",
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
    for uri in [
        "/api/reports/18446744073709551616",
        "/api/reports?page=99999999999999999999999",
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(
            !r.text().contains("positive integer"),
            "{uri}: {}",
            r.text()
        );
    }
}

#[tokio::test]
async fn report_document_is_sandboxed_with_its_own_csp() {
    let app = TestApp::with_reports(1);
    let r = app.get("/crypto_report/1/frame?lang=en&theme=dark").await;
    assert_eq!(r.status, StatusCode::OK);
    let csp = r.header("content-security-policy");
    assert!(csp.starts_with("sandbox allow-scripts"), "{csp}");
    assert!(!csp.contains("allow-same-origin"), "{csp}");
    assert!(csp.contains("connect-src 'none'"), "{csp}");
    let html = r.text();
    assert!(html.contains("data-mode=\"frame\""));
    assert!(html.contains("data-lang=\"en\""));
    assert!(
        html.contains("data-theme=\"light\""),
        "the theme is applied in the browser"
    );
    assert!(
        html.contains("Thị trường hôm nay số 1"),
        "both languages in the frame"
    );
    assert!(html.contains("Today's market number 1"));
    assert!(html.contains("<style>.x{color:red}</style>"));
    assert!(html.contains("function initializeAllVisuals_report(l){}"));
    let bogus = app
        .get("/crypto_report/1/frame?lang=xx&theme=%3Cscript%3E")
        .await;
    assert!(bogus.text().contains("data-theme=\"light\""));
}

#[tokio::test]
async fn print_view_and_its_alias() {
    let app = TestApp::with_reports(1);
    for uri in ["/crypto_report/1/pdf?lang=en", "/pdf-template/1?lang=en"] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        let csp = r.header("content-security-policy");
        assert!(
            csp.contains("allow-modals") && !csp.contains("allow-same-origin"),
            "{csp}"
        );
        let html = r.text();
        assert!(html.contains("data-mode=\"print\""));
        assert!(html.contains("id=\"print-button\""));
        assert!(html.contains("Today's market number 1"));
        assert!(
            !html.contains("Thị trường hôm nay"),
            "only the reader's language"
        );
        assert!(!html.contains("site-nav"), "no navigation");
    }
}

#[tokio::test]
async fn report_closing_tags_cannot_break_out_of_their_element() {
    let app = TestApp::with_reports(0);
    let mut r = report(5, "2026-11-20T08:00:00Z");
    r.js_content = Some("var s = '</script><script>alert(1)</script>';".into());
    r.css_content = Some("p{} </style><script>alert(2)</script>".into());
    publish(&app.state, vec![r]).await;
    let html = app.get("/crypto_report/5/frame").await.text();
    assert!(html.contains("var s = '<\\/script>\\x3Cscript>alert(1)<\\/script>';"));
    assert!(html.contains("p{} <\\/style>"));
}

#[tokio::test]
async fn list_pages_and_bad_page_numbers() {
    let app = TestApp::with_reports(23);
    let r = app.get("/crypto_reports_list").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains("id=\"reports-total\">23<"));
    assert!(html.contains("href=\"/crypto_report/23\""));
    assert!(html.contains("href=\"/crypto_report/14\""));
    assert!(!html.contains("href=\"/crypto_report/13\""));
    assert!(html.contains("href=\"/crypto_reports_list?page=2\""));
    let p3 = app.get("/crypto_reports_list?page=3").await;
    assert_eq!(p3.status, StatusCode::OK);
    assert!(p3.text().contains("href=\"/crypto_report/1\""));
    assert!(p3.text().contains("rel=\"prev\""));
    for bad in ["abc", "0", "-2", "1e3", "%FF"] {
        let r = app.get(&format!("/crypto_reports_list?page={bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "page={bad}");
    }
    assert_eq!(
        app.get("/crypto_reports_list?page=4").await.status,
        StatusCode::NOT_FOUND
    );
    let empty = TestApp::with_reports(0);
    assert_eq!(
        empty.get("/crypto_reports_list").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn json_api_mirrors_the_pages() {
    let app = TestApp::with_reports(12);
    let r = app.get("/api/reports?page=2").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/json");
    let v = r.json();
    assert_eq!(v["total"], 12);
    assert_eq!(v["pages"], 2);
    assert_eq!(v["reports"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["reports"][0]["id"], 2);
    let one = app.get("/api/reports/7").await.json();
    assert_eq!(one["id"], 7);
    assert!(
        one["html_content"]
            .as_str()
            .is_some_and(|h| h.contains("Tổng quan 7"))
    );
    assert_eq!(one["js_content_en"], serde_json::Value::Null);
    assert_eq!(one["created_at"], "2026-01-08T08:00:00Z");
    let bad = app.get("/api/reports/abc").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].is_string());
    assert_eq!(
        app.get("/api/reports/99").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/reports?page=x").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/api/reports?page=3").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn feeds_sitemap_and_robots_use_the_public_url() {
    let app = TestApp::with_reports(3);
    for uri in ["/rss.xml", "/rss"] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.header("content-type").starts_with("application/rss+xml"));
        let xml = r.text();
        assert!(xml.contains("<link>https://reports.example/crypto_report/3</link>"));
        assert!(xml.contains("<pubDate>"));
        assert!(
            xml.find("/crypto_report/3<") < xml.find("/crypto_report/1<"),
            "newest first"
        );
    }
    let sitemap = app.get("/sitemap.xml").await;
    assert!(
        sitemap
            .header("content-type")
            .starts_with("application/xml")
    );
    assert!(
        sitemap
            .text()
            .contains("<loc>https://reports.example/crypto_report/2</loc>")
    );
    let robots = app.get("/robots.txt").await.text();
    assert!(robots.contains("Sitemap: https://reports.example/sitemap.xml"));
}

/// The `<loc>` and `<lastmod>` of each entry of a sitemap or sitemap index.
fn sitemap_entries(xml: &str, root: &str, entry: &str) -> Vec<(String, Option<String>)> {
    let doc = roxmltree::Document::parse(xml).expect("sitemap is XML");
    assert_eq!(doc.root_element().tag_name().name(), root, "{xml}");
    let child = |node: roxmltree::Node<'_, '_>, name: &str| {
        node.children()
            .find(|c| c.tag_name().name() == name)
            .and_then(|c| c.text())
            .map(str::to_owned)
    };
    doc.root_element()
        .children()
        .filter(|n| n.tag_name().name() == entry)
        .map(|n| (child(n, "loc").expect("loc"), child(n, "lastmod")))
        .collect()
}

#[tokio::test]
async fn a_sitemap_past_its_url_limit_becomes_an_index_of_parts() {
    // 40 reports a day apart from 2 January 2026 (two months), 10 URLs per file: 3 own pages
    // + 2 months + 40 reports = 45 URLs in 5 parts.
    let app = TestApp::build_with(40, false, |parts| parts.settings.sitemap_urls = 10);
    let date_of = |id: u64| -> String {
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T08:00:00Z").expect("date")
            + chrono::Duration::days(id as i64);
        at.to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };

    let index = app.get("/sitemap.xml").await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.header("content-type").starts_with("application/xml"));
    let parts = sitemap_entries(&index.text(), "sitemapindex", "sitemap");
    let expected: Vec<(String, Option<String>)> = [40, 35, 25, 15, 5]
        .into_iter()
        .enumerate()
        .map(|(i, newest)| {
            let loc = format!("https://reports.example/sitemap-{}.xml", i + 1);
            (loc, Some(date_of(newest)))
        })
        .collect();
    assert_eq!(parts, expected, "each part dated by its newest page");

    let mut seen = std::collections::BTreeSet::new();
    for (n, want) in [(1, 10), (2, 10), (3, 10), (4, 10), (5, 5)] {
        let uri = format!("/sitemap-{n}.xml");
        let part = app.get(&uri).await;
        assert_eq!(part.status, StatusCode::OK, "{uri}");
        assert!(part.header("content-type").starts_with("application/xml"));
        let urls = sitemap_entries(&part.text(), "urlset", "url");
        assert_eq!(urls.len(), want, "{uri}: {urls:?}");
        for (loc, lastmod) in urls {
            if let Some(id) = loc.strip_prefix("https://reports.example/crypto_report/") {
                let id: u64 = id.parse().expect("id");
                assert_eq!(lastmod, Some(date_of(id)), "{loc}");
            }
            assert!(seen.insert(loc.clone()), "{loc} listed twice");
        }
        // One file for both languages: the pages it names carry their own alternates.
        for lang in [
            &[("accept-language", "en")][..],
            &[("accept-language", "vi")][..],
        ] {
            let other = app.get_with(&format!("{uri}?lang=en"), lang).await;
            assert_eq!(other.body, part.body, "{uri} {lang:?}");
        }
    }
    // Every URL once, in order: own pages, months newest first, reports newest first.
    assert_eq!(seen.len(), 45);
    let first = app.get("/sitemap-1.xml").await.text();
    let order: Vec<String> = sitemap_entries(&first, "urlset", "url")
        .into_iter()
        .map(|(loc, _)| loc)
        .collect();
    assert_eq!(
        order[..7],
        [
            "https://reports.example/",
            "https://reports.example/crypto_reports_list",
            "https://reports.example/archive",
            "https://reports.example/archive/2026/02",
            "https://reports.example/archive/2026/01",
            "https://reports.example/crypto_report/40",
            "https://reports.example/crypto_report/39",
        ]
    );
    for past in [
        "/sitemap-6.xml",
        "/sitemap-0.xml",
        "/sitemap-01.xml",
        "/sitemap-x.xml",
    ] {
        assert_eq!(app.get(past).await.status, StatusCode::NOT_FOUND, "{past}");
    }
    let robots = app.get("/robots.txt").await.text();
    assert!(robots.contains("Sitemap: https://reports.example/sitemap.xml"));

    // Below the limit the sitemap is one file again, and there are no parts.
    let small = TestApp::build_with(4, false, |parts| parts.settings.sitemap_urls = 10);
    let urls = sitemap_entries(&small.get("/sitemap.xml").await.text(), "urlset", "url");
    assert_eq!(urls.len(), 3 + 1 + 4);
    assert_eq!(
        small.get("/sitemap-1.xml").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn conditional_get_and_compression() {
    let app = TestApp::with_reports(2);
    let first = app
        .get_with("/crypto_report/1", &[("accept-encoding", "gzip, br")])
        .await;
    assert_eq!(first.header("content-encoding"), "br");
    assert!(first.header("vary").contains("Accept-Encoding"));
    let etag = first.header("etag").to_owned();
    let again = app
        .get_with(
            "/crypto_report/1",
            &[("accept-encoding", "gzip, br"), ("if-none-match", &etag)],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), etag);
    let gz = app
        .get_with("/crypto_report/1", &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(gz.header("content-encoding"), "gzip");
    let plain = app.get("/crypto_report/1").await;
    assert!(plain.header("content-encoding").is_empty());
    assert!(plain.text().contains("<!doctype html>"));
}

#[tokio::test]
async fn assets_are_fingerprinted_immutable_and_confined() {
    let app = TestApp::with_reports(1);
    let html = app.get("/").await.text();
    let start = html.find("/assets/css/site.").expect("stylesheet link");
    let end = start + html[start..].find('"').expect("closing quote");
    let url = &html[start..end];
    let r = app.get_with(url, &[("accept-encoding", "br")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "text/css; charset=utf-8");
    assert!(r.header("cache-control").contains("immutable"));
    assert_eq!(r.header("content-encoding"), "br");
    let plain = app.get("/assets/css/site.css").await;
    assert_eq!(plain.header("cache-control"), "no-cache");
    for uri in [
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/",
        "/assets/css/",
        "/assets/nope.js",
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
}

/// The id the report page's "next report" link points to.
async fn next_of(app: &TestApp, id: u64) -> Option<u64> {
    let html = app.get(&format!("/crypto_report/{id}")).await.text();
    let marker = "rel=\"next\" class=\"report-nav-next\" href=\"/crypto_report/";
    let start = html.find(marker)? + marker.len();
    html[start..].split('"').next()?.parse().ok()
}

#[tokio::test]
async fn publishing_invalidates_the_pages_it_affects() {
    let app = TestApp::with_reports(2);
    let home = app.get("/").await.text();
    assert!(!home.contains("/crypto_report/3\""));
    let page2 = app.get("/crypto_report/2").await.text();
    assert!(!page2.contains("rel=\"next\""));
    let unrelated = app
        .get("/crypto_report/1/frame")
        .await
        .header("etag")
        .to_owned();

    publish(&app.state, vec![report(3, "2026-01-05T08:00:00Z")]).await;
    assert!(app.get("/").await.text().contains("/crypto_report/3\""));
    assert!(
        app.get("/crypto_report")
            .await
            .text()
            .contains("/crypto_report/3/frame")
    );
    assert_eq!(next_of(&app, 2).await, Some(3));
    assert!(
        app.get("/rss.xml")
            .await
            .text()
            .contains("/crypto_report/3<")
    );
    assert!(
        app.get("/sitemap.xml")
            .await
            .text()
            .contains("/crypto_report/3<")
    );
    assert_eq!(
        app.get("/crypto_report/1/frame").await.header("etag"),
        unrelated
    );

    // Moving report 2 after report 3 changes the links of its old neighbours too.
    assert_eq!(next_of(&app, 1).await, Some(2));
    publish(&app.state, vec![report(2, "2026-01-09T08:00:00Z")]).await;
    assert_eq!(next_of(&app, 1).await, Some(3));
    assert_eq!(next_of(&app, 3).await, Some(2));

    let mut changed = report(1, "2026-01-02T08:00:00Z");
    changed.html_content = "<section id=\"new\"><h2>Đã sửa</h2></section>".into();
    publish(&app.state, vec![changed]).await;
    assert!(
        app.get("/crypto_report/1")
            .await
            .text()
            .contains("data-section=\"new\"")
    );
    assert!(
        app.get("/crypto_report/1/frame")
            .await
            .text()
            .contains("Đã sửa")
    );
}

#[tokio::test]
async fn admin_endpoints_need_the_token() {
    let app = TestApp::with_reports(1);
    let r = app.get("/cache-stats").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    let wrong = app
        .get_with("/cache-stats", &[("authorization", "Bearer nope")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let ok = app
        .get_with("/admin/cache/stats", &[("authorization", &bearer)])
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.json()["l1_pages"]["capacity_bytes"].is_u64());
    // The scheme is case-insensitive; other schemes and a bare token are refused.
    for (value, status) in [
        (format!("bearer {ADMIN_TOKEN}"), StatusCode::OK),
        (format!("BEARER   {ADMIN_TOKEN}"), StatusCode::OK),
        (format!("Basic {ADMIN_TOKEN}"), StatusCode::UNAUTHORIZED),
        (format!("Bearer{ADMIN_TOKEN}"), StatusCode::UNAUTHORIZED),
        (ADMIN_TOKEN.to_owned(), StatusCode::UNAUTHORIZED),
    ] {
        let r = app
            .get_with("/cache-stats", &[("authorization", &value)])
            .await;
        assert_eq!(r.status, status, "{value}");
    }
    let get_clear = app
        .get_with("/clear-cache", &[("authorization", &bearer)])
        .await;
    assert_eq!(get_clear.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_security_headers(&get_clear);
    let clear = app
        .request(
            Request::post("/admin/cache/clear")
                .header("authorization", &bearer)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(clear.status, StatusCode::OK);
    assert_eq!(clear.json()["cleared"], true);

    let no_token = TestApp::build(1, false);
    let refused = no_token
        .get_with("/cache-stats", &[("authorization", "Bearer anything")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::with_reports(1);
    let big = vec![b'x'; 1024 * 1024];
    let r = app
        .request(
            Request::post("/clear-cache")
                .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                .header("content-length", big.len())
                .body(Body::from(big))
                .expect("request"),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers(&r);
}

#[tokio::test]
async fn health_reports_store_and_cache() {
    let app = TestApp::with_reports(4);
    let r = app.get("/health").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["store"]["reports"], 4);
    assert!(v["version"].is_string());
}

/// Where the script element whose content starts at `start` ends, following the HTML
/// tokenizer's script-data states (escaped after `<!--`, double escaped after a further
/// `<script`, where `</script>` does not close the element).
fn script_end(html: &str, start: usize) -> usize {
    #[derive(PartialEq)]
    enum State {
        Data,
        Escaped,
        DoubleEscaped,
    }
    let lower = html.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let tag_at = |i: usize, tag: &str| {
        lower[i..].starts_with(tag)
            && matches!(
                bytes.get(i + tag.len()),
                Some(b' ' | b'\t' | b'\n' | b'\x0c' | b'/' | b'>')
            )
    };
    let mut state = State::Data;
    let mut i = start;
    while i < bytes.len() {
        let rest = &lower[i..];
        match state {
            State::Data if tag_at(i, "</script") => return i,
            State::Data if rest.starts_with("<!--") => {
                // `<!-->` opens and closes at once.
                if !rest[4..].starts_with('>') {
                    state = State::Escaped;
                }
                i += 4;
                continue;
            }
            State::Escaped if tag_at(i, "</script") => return i,
            State::Escaped if tag_at(i, "<script") => {
                state = State::DoubleEscaped;
                i += 7;
                continue;
            }
            State::DoubleEscaped if tag_at(i, "</script") => {
                state = State::Escaped;
                i += 8;
                continue;
            }
            State::Escaped | State::DoubleEscaped if rest.starts_with("-->") => {
                state = State::Data;
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

#[tokio::test]
async fn report_script_cannot_swallow_the_boot_script() {
    let app = TestApp::with_reports(0);
    let mut r = common::report(1, "2026-01-02T08:00:00Z");
    r.js_content = Some(
        "var a = '<!--<script>'; var b = \"<!-- <SCRIPT type=x>\"; /* <!--<script/ */ function initializeAllVisuals_report(l){}"
            .into(),
    );
    r.js_content_en = Some("var c = '<!--<script>';".into());
    publish(&app.state, vec![r]).await;
    let html = app.get("/crypto_report/1/frame?lang=vi").await.text();
    // Every inline script element ends where the page means it to, so the boot script is an
    // element of its own.
    let boot = html
        .find("<script src=\"/assets/js/report-boot")
        .expect("boot script tag");
    let mut from = 0;
    while let Some(open) = html[from..].find("<script>").map(|i| from + i) {
        let content = open + "<script>".len();
        let end = script_end(&html, content);
        assert_eq!(
            html.get(end..end + 9),
            Some("</script>"),
            "an inline script runs past its closing tag (to the end of the page)"
        );
        assert!(end < boot, "the boot script was swallowed");
        from = end;
    }
    assert!(html.contains("var a = '<!--\\x3Cscript>'"), "{html}");
}

/// Report HTML that leaves something open (a comment, a raw-text element, an attribute's
/// quote, `<plaintext>`) ends where the report ends: the other language, the report's script
/// and the boot script after it are still elements of the document.
#[tokio::test]
async fn report_html_left_open_cannot_swallow_the_document() {
    let app = TestApp::with_reports(0);
    for (id, open) in [
        (1, "<p>before</p><!-- CHART_DATA: {\"a\": 1}"),
        (2, "<p>a</p><style>p { color: red }"),
        (3, "<textarea>notes"),
        (4, "<p title=\"unclosed>quote</p>"),
        (5, "<plaintext>raw"),
    ] {
        let mut r = common::report(id, "2026-01-02T08:00:00Z");
        r.html_content = format!("<section id=\"s\"><h2>T {id}</h2>{open}");
        r.js_content = Some("function initializeAllVisuals_report(l){ window.ran = l; }".into());
        publish(&app.state, vec![r]).await;
        let html = app
            .get(&format!("/crypto_report/{id}/frame?lang=vi"))
            .await
            .text();
        let doc = scraper::Html::parse_document(&html);
        let select = |css: &str| {
            let s = scraper::Selector::parse(css).expect("selector");
            doc.select(&s).count()
        };
        assert_eq!(select("script[src*=\"report-boot\"]"), 1, "{id}: {html}");
        assert_eq!(select("#report-content-en"), 1, "{id}: the English part");
        let inline = scraper::Selector::parse("script:not([src])").expect("selector");
        assert!(
            doc.select(&inline)
                .any(|s| s.inner_html().contains("initializeAllVisuals_report")),
            "{id}: the report's script is an element"
        );
    }
}

/// The second tier in the store: a restarted server serves its first report pages without
/// rendering them, and a thousand concurrent cold requests cost one render.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_serves_its_first_pages_from_the_store_tier_without_rendering() {
    use crypto_report::store::{FILE_NAME, Store};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    let open = || {
        let mut settings = crypto_report::Settings::new("https://reports.example");
        settings.admin_token = Some(crypto_report::secret::Secret::new(ADMIN_TOKEN));
        crypto_report::AppState::new(Store::open(&path).expect("store"), settings).expect("state")
    };
    let stats = |state: &crypto_report::AppState| {
        let state = state.clone();
        async move {
            let r = common::request(
                &state,
                Request::get("/cache-stats")
                    .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
            r.json()["l1_pages"].clone()
        }
    };
    let pages = ["/crypto_report/2", "/crypto_report/2/frame?lang=en", "/"];
    let bodies = {
        let state = open();
        publish(
            &state,
            vec![
                report(1, "2026-01-02T08:00:00Z"),
                report(2, "2026-01-03T08:00:00Z"),
            ],
        )
        .await;
        // A thousand concurrent requests for one cold page: one render.
        let mut waiting = Vec::new();
        for _ in 0..1000 {
            let state = state.clone();
            waiting.push(tokio::spawn(async move {
                let r = common::request(
                    &state,
                    Request::get("/crypto_report/1")
                        .body(Body::empty())
                        .expect("req"),
                )
                .await;
                r.status
            }));
        }
        for w in waiting {
            assert_eq!(w.await.expect("join"), StatusCode::OK);
        }
        assert_eq!(stats(&state).await["renders"], 1);
        let mut bodies = Vec::new();
        for p in pages {
            let r =
                common::request(&state, Request::get(p).body(Body::empty()).expect("req")).await;
            assert_eq!(r.status, StatusCode::OK, "{p}");
            bodies.push(r.body);
        }
        // L2 writes happen in the background: wait until they are in.
        for _ in 0..200 {
            if stats(&state).await["l2"]["puts"].as_u64() >= Some(4) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(stats(&state).await["l2"]["puts"].as_u64() >= Some(4));
        bodies
    };
    // Restart: a new state over the same file.
    let state = open();
    for (p, before) in pages.iter().zip(&bodies) {
        let r = common::request(&state, Request::get(*p).body(Body::empty()).expect("req")).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
        assert_eq!(&r.body, before, "{p} is the page served before the restart");
    }
    let after = stats(&state).await;
    assert_eq!(after["renders"], 0, "{after}");
    assert_eq!(after["l2_hits"], 3, "{after}");

    // A new report changes what the store holds: pages are rendered again, not read back.
    publish(&state, vec![report(3, "2026-01-04T08:00:00Z")]).await;
    let r = common::request(&state, Request::get("/").body(Body::empty()).expect("req")).await;
    assert!(r.text().contains("/crypto_report/3"));
    assert_eq!(stats(&state).await["renders"], 1);
}

/// Lighthouse counts a relative `hreflang` alternate as invalid: every `<link rel="alternate">`
/// of every kind of page is absolute, on the public URL.
#[tokio::test]
async fn every_alternate_link_is_absolute() {
    let app = TestApp::with_reports(3);
    for uri in ["/", "/crypto_report/2", "/crypto_reports_list", "/archive"] {
        let html = app.get(uri).await.text();
        let links: Vec<&str> = html
            .split("<link ")
            .skip(1)
            .filter(|l| l.starts_with("rel=\"alternate\""))
            .collect();
        assert!(links.len() >= 5, "{uri}: {links:?}");
        for l in links {
            let href = l.split("href=\"").nth(1).unwrap_or_default();
            assert!(
                href.starts_with("https://reports.example/"),
                "{uri}: relative alternate {l}"
            );
        }
    }
}

/// A page not yet cached is drawn on the render pool; beyond its queue it is answered 503 with
/// `Retry-After` (report pages, share cards and lists alike), while a cached page never waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_beyond_the_render_queue_get_503_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join(FILE_NAME)).expect("store");
    let mut settings = Settings::new("https://reports.example");
    settings.render = PoolSettings {
        workers: 1,
        queue: 0,
        ..settings.render
    };
    let state = AppState::new(store, settings).expect("state");
    crypto_report::demo::seed(&state.publisher).expect("seed");
    assert_eq!(
        get(&state, "/crypto_report/101").await.status,
        StatusCode::OK
    );
    let release = occupy(&state.renders).await;
    let uris = [
        "/crypto_report/102",
        "/crypto_report/103/card.png",
        "/archive",
    ];
    for uri in uris {
        let r = get(&state, uri).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(r.header("retry-after"), "1", "{uri}");
    }
    assert_eq!(state.renders.stats().refused, 3);
    let health = get(&state, "/health").await.json();
    assert_eq!(health["render_pool"]["refused"], 3, "{health}");
    let cached = get(&state, "/crypto_report/101").await;
    assert_eq!(cached.status, StatusCode::OK, "a cached page does not wait");
    drop(release);
    until(&state.renders, "the thread is free", |s| s.running == 0).await;
    for uri in uris {
        assert_eq!(get(&state, uri).await.status, StatusCode::OK, "{uri}");
    }
}
