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
