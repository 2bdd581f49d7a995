//! The archive by month, the feed in each language (parsed by an XML parser), the share tags
//! of every report page with their card images, and the web app manifest with its icons.

mod common;

use common::{TestApp, get, samples};

/// The `content` of `<meta property|name="key" content="…">`.
fn meta<'a>(html: &'a str, key: &str) -> Option<&'a str> {
    for attr in ["property", "name"] {
        let marker = format!("<meta {attr}=\"{key}\" content=\"");
        if let Some(i) = html.find(&marker) {
            let rest = &html[i + marker.len()..];
            return rest.find('"').map(|e| &rest[..e]);
        }
    }
    None
}

fn png_size(body: &[u8]) -> (u32, u32) {
    assert_eq!(&body[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert_eq!(&body[12..16], b"IHDR");
    let n = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().expect("u32"));
    (n(16), n(20))
}

#[tokio::test]
async fn months_list_their_reports_and_link_to_their_neighbours() {
    let app = TestApp::with_reports(40); // 2 Jan .. 10 Feb 2026, 08:00 UTC
    let index = app.get("/archive").await;
    assert_eq!(index.status, 200);
    let html = index.text();
    assert!(
        html.contains("href=\"/archive/2026/02\"") && html.contains("href=\"/archive/2026/01\""),
        "{html}"
    );
    assert!(
        html.find("/archive/2026/02") < html.find("/archive/2026/01"),
        "newest month first"
    );
    assert!(html.contains("(30)") && html.contains("(10)"), "{html}");

    let jan = app.get("/archive/2026/01?lang=en").await;
    assert_eq!(jan.status, 200);
    let html = jan.text();
    assert_eq!(html.matches("class=\"report-item\"").count(), 30);
    assert!(html.contains("January 2026"));
    assert!(
        html.contains("rel=\"next\" href=\"/archive/2026/02\"") && !html.contains("rel=\"prev\"")
    );
    let feb = app.get("/archive/2026/2").await.text();
    assert_eq!(feb.matches("class=\"report-item\"").count(), 10);
    assert!(feb.contains("rel=\"prev\" href=\"/archive/2026/01\""));
    assert!(feb.contains("tháng 2, 2026"));

    assert_eq!(app.get("/archive/2025/12").await.status, 404);
    for bad in [
        "/archive/2026/13",
        "/archive/2026/00",
        "/archive/26/01",
        "/archive/abcd/01",
    ] {
        assert_eq!(app.get(bad).await.status, 400, "{bad}");
    }
    // The sitemap names the archive and each month.
    let sitemap = app.get("/sitemap.xml").await.text();
    roxmltree::Document::parse(&sitemap).expect("sitemap is XML");
    for loc in ["/archive<", "/archive/2026/01<", "/archive/2026/02<"] {
        assert!(
            sitemap.contains(&format!("https://reports.example{loc}")),
            "{loc}"
        );
    }
    // The list links to the archive.
    assert!(
        app.get("/crypto_reports_list")
            .await
            .text()
            .contains("href=\"/archive\"")
    );
}

/// A month of 120 reports (every 6 hours from 1 March 2026) and one in April.
async fn crowded_month() -> TestApp {
    let app = TestApp::with_reports(0);
    let start: chrono::DateTime<chrono::Utc> = "2026-03-01T00:00:00Z".parse().expect("date");
    let mut reports: Vec<_> = (1..=120)
        .map(|i| {
            let mut r = common::report(i, "2026-03-01T00:00:00Z");
            r.created_at = start + chrono::TimeDelta::hours(6 * (i as i64 - 1));
            r
        })
        .collect();
    reports.push(common::report(500, "2026-04-10T08:00:00Z"));
    common::publish(&app.state, reports).await;
    app
}

#[tokio::test]
async fn a_crowded_month_is_paged_fifty_at_a_time() {
    let app = crowded_month().await;
    let index = app.get("/archive").await.text();
    assert!(index.contains("(120)") && index.contains("(1)"), "{index}");

    let first = app.get("/archive/2026/03").await;
    assert_eq!(first.status, 200);
    let html = first.text();
    assert_eq!(html.matches("class=\"report-item\"").count(), 50);
    assert!(
        html.contains("<strong>120</strong>"),
        "the month's count, not the page's"
    );
    assert!(html.contains("href=\"/crypto_report/1\""), "oldest first");
    assert!(
        html.contains("href=\"/archive/2026/03?page=2\""),
        "a link to the next page"
    );
    assert!(
        html.contains("<link rel=\"canonical\" href=\"https://reports.example/archive/2026/03\">"),
        "page 1 is the month's own address"
    );
    assert!(
        html.contains("rel=\"next\" href=\"/archive/2026/04\""),
        "the next month"
    );
    let again = app.get("/archive/2026/03?page=1").await.text();
    assert!(
        again.contains("<link rel=\"canonical\" href=\"https://reports.example/archive/2026/03\">")
    );

    let second = app.get("/archive/2026/03?page=2&lang=en").await.text();
    assert_eq!(second.matches("class=\"report-item\"").count(), 50);
    assert!(second.contains("href=\"/crypto_report/51\""));
    assert!(
        second.contains("href=\"/archive/2026/03\""),
        "back to page 1"
    );
    assert!(second.contains("href=\"/archive/2026/03?page=3\""));
    assert!(second.contains(
        "<link rel=\"canonical\" href=\"https://reports.example/archive/2026/03?page=2\">"
    ));
    assert!(second.contains("href=\"https://reports.example/archive/2026/03?page=2&amp;lang=vi\""));

    let last = app.get("/archive/2026/03?page=3").await.text();
    assert_eq!(last.matches("class=\"report-item\"").count(), 20);
    assert!(!last.contains("?page=4"));
    assert_eq!(app.get("/archive/2026/03?page=4").await.status, 404);
    assert_eq!(app.get("/archive/2026/03?page=0").await.status, 400);
    assert_eq!(app.get("/archive/2026/04?page=2").await.status, 404);
}

/// What lists show comes from the cards stored with the reports: no page that lists reports
/// reads a report body (the store counts every body it reads).
#[tokio::test]
async fn pages_that_list_reports_read_no_report_body() {
    let app = crowded_month().await;
    // The search index reads each published report once, in the background.
    app.state.search.settled().await;
    // The report page reads its own report, and its neighbours' cards only.
    assert_eq!(app.get("/crypto_report/60").await.status, 200);
    let before = app.state.store.reports_decoded();
    for path in [
        "/",
        "/crypto_reports_list",
        "/crypto_reports_list?page=3",
        "/rss.xml",
        "/rss-en.xml",
        "/archive",
        "/archive/2026/03",
        "/archive/2026/03?page=2",
        "/api/reports",
        "/api/reports?page=2",
    ] {
        assert_eq!(app.get(path).await.status, 200, "{path}");
        assert_eq!(
            app.state.store.reports_decoded(),
            before,
            "{path} read a report body"
        );
    }
    let before = app.state.store.reports_decoded();
    assert_eq!(app.get("/crypto_report/61").await.status, 200);
    assert_eq!(
        app.state.store.reports_decoded(),
        before + 1,
        "a report page reads its own report, not its neighbours"
    );
}

#[tokio::test]
async fn feeds_in_both_languages_are_valid_rss() {
    let (state, _dir) = samples();
    for (path, lang) in [("/rss.xml", "vi"), ("/rss-en.xml", "en")] {
        let reply = get(&state, path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply
                .header("content-type")
                .starts_with("application/rss+xml")
        );
        let text = reply.text();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let rss = doc.root_element();
        assert_eq!(rss.tag_name().name(), "rss");
        assert_eq!(rss.attribute("version"), Some("2.0"));
        let channel = rss
            .children()
            .find(|n| n.has_tag_name("channel"))
            .expect("channel");
        let child = |n: roxmltree::Node<'_, '_>, name: &str| {
            n.children()
                .find(|c| c.has_tag_name(name))
                .and_then(|c| c.text())
                .map(str::to_owned)
        };
        assert_eq!(child(channel, "language").as_deref(), Some(lang));
        let self_link = channel
            .children()
            .find(|c| c.tag_name().name() == "link" && c.attribute("rel") == Some("self"))
            .and_then(|c| c.attribute("href"));
        assert_eq!(
            self_link,
            Some(format!("https://reports.example{path}").as_str())
        );
        let items: Vec<_> = channel
            .children()
            .filter(|n| n.has_tag_name("item"))
            .collect();
        assert_eq!(items.len(), 7, "{path}");
        for item in &items {
            for field in ["title", "link", "guid", "pubDate", "description"] {
                assert!(
                    child(*item, field).is_some_and(|t| !t.trim().is_empty()),
                    "{path}: {field}"
                );
            }
            let date = child(*item, "pubDate").expect("date");
            assert!(
                chrono::DateTime::parse_from_rfc2822(&date).is_ok(),
                "{date}"
            );
        }
        let first = child(items[0], "link").expect("link");
        if lang == "en" {
            assert_eq!(first, "https://reports.example/crypto_report/107?lang=en");
        } else {
            assert_eq!(first, "https://reports.example/crypto_report/107");
        }
    }
    let vi = get(&state, "/rss.xml").await.text();
    let en = get(&state, "/rss-en.xml").await.text();
    assert_ne!(vi, en, "each feed in its own language");
    // Every page names both feeds.
    let home = get(&state, "/").await.text();
    assert!(
        home.contains("type=\"application/rss+xml\" hreflang=\"en\"")
            && home.contains("href=\"/rss-en.xml\"")
    );
}

#[tokio::test]
async fn every_report_page_carries_share_tags_and_its_card() {
    let (state, _dir) = samples();
    for id in 101..=107u64 {
        let html = get(&state, &format!("/crypto_report/{id}")).await.text();
        let url = format!("https://reports.example/crypto_report/{id}");
        assert_eq!(meta(&html, "og:type"), Some("article"), "{id}");
        assert_eq!(meta(&html, "og:url"), Some(url.as_str()), "{id}");
        assert_eq!(
            meta(&html, "og:image"),
            Some(format!("{url}/card.png").as_str()),
            "{id}"
        );
        assert_eq!(
            meta(&html, "twitter:image"),
            Some(format!("{url}/card.png").as_str())
        );
        assert_eq!(meta(&html, "twitter:card"), Some("summary_large_image"));
        for key in [
            "og:title",
            "og:description",
            "twitter:title",
            "twitter:description",
            "article:published_time",
        ] {
            assert!(
                meta(&html, key).is_some_and(|v| !v.is_empty()),
                "{id}: {key}"
            );
        }
        assert!(html.contains(&format!("<link rel=\"canonical\" href=\"{url}\">")));
        for (lang, href) in [
            ("vi", format!("{url}?lang=vi")),
            ("en", format!("{url}?lang=en")),
            ("x-default", url.clone()),
        ] {
            assert!(
                html.contains(&format!(
                    "<link rel=\"alternate\" hreflang=\"{lang}\" href=\"{href}\">"
                )),
                "{id} {lang}"
            );
        }
        let card = get(&state, &format!("/crypto_report/{id}/card.png")).await;
        assert_eq!(card.status, 200);
        assert_eq!(card.header("content-type"), "image/png");
        assert_eq!(png_size(&card.body), (1200, 630));
    }
    // The latest report's page names the report itself as canonical.
    let latest = get(&state, "/crypto_report").await.text();
    assert!(
        latest.contains(
            "<link rel=\"canonical\" href=\"https://reports.example/crypto_report/107\">"
        )
    );
    // Other pages: a website with the site's card.
    let home = get(&state, "/?lang=en").await.text();
    assert_eq!(meta(&home, "og:type"), Some("website"));
    assert_eq!(meta(&home, "og:locale"), Some("en_US"));
    // The site card in the page's language.
    assert_eq!(
        meta(&home, "og:image"),
        Some("https://reports.example/card.png?lang=en")
    );
    let home_vi = get(&state, "/?lang=vi").await.text();
    assert_eq!(
        meta(&home_vi, "og:image"),
        Some("https://reports.example/card.png")
    );
    assert_eq!(png_size(&get(&state, "/card.png").await.body), (1200, 630));
    assert_eq!(get(&state, "/crypto_report/999/card.png").await.status, 404);
    assert_eq!(get(&state, "/crypto_report/x/card.png").await.status, 400);
}

#[tokio::test]
async fn the_manifest_and_its_icons() {
    let app = TestApp::with_reports(1);
    let reply = app.get("/manifest.webmanifest?lang=en").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), "application/manifest+json");
    let m = reply.json();
    assert_eq!(m["name"], "Crypto Report");
    assert_eq!(m["start_url"], "/");
    for icon in m["icons"].as_array().expect("icons") {
        let src = icon["src"].as_str().expect("src");
        let r = app.get(src).await;
        assert_eq!(r.status, 200, "{src}");
        if let Some((w, _)) = icon["sizes"].as_str().and_then(|s| s.split_once('x')) {
            assert_eq!(png_size(&r.body).0, w.parse::<u32>().expect("size"));
        }
    }
    assert_eq!(
        png_size(&app.get("/apple-touch-icon.png").await.body),
        (180, 180)
    );
    let home = app.get("/").await.text();
    assert!(home.contains("<link rel=\"manifest\" href=\"/manifest.webmanifest\">"));
    assert!(home.contains("<link rel=\"apple-touch-icon\" href=\"/apple-touch-icon.png\">"));
}
