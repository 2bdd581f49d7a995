//! What a reader meets before opening a report, checked on the bundled sample reports (the
//! real shapes: stat cards, captions, summary paragraphs, headlines): summaries and titles on
//! the home page, the list, meta descriptions, RSS and the JSON API; the print view's markup.

mod common;

use axum::http::StatusCode;
use common::{TestApp, fixture_reports};
use crypto_report::import::parse_created_at;
use crypto_report::reports::Report;

/// The bundled samples, published into an empty store.
async fn samples() -> TestApp {
    let app = TestApp::with_reports(0);
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sample-reports.jsonl"
    ))
    .expect("data/sample-reports.jsonl");
    let reports: Vec<Report> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            let s = |k: &str| v[k].as_str().map(str::to_owned);
            Report {
                id: v["id"].as_u64().expect("id"),
                html_content: s("html_content").expect("html"),
                css_content: s("css_content"),
                js_content: s("js_content"),
                html_content_en: s("html_content_en"),
                js_content_en: s("js_content_en"),
                created_at: parse_created_at(&s("created_at").expect("date")).expect("date"),
            }
        })
        .collect();
    assert!(reports.len() >= 7, "samples");
    common::publish(&app.state, reports).await;
    app
}

/// Everything wrong with a summary, named; empty when it reads as whole sentences.
fn summary_faults(s: &str) -> Vec<String> {
    let mut faults = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 40 {
        faults.push("shorter than 40 characters".into());
    }
    if chars.len() > 260 {
        faults.push(format!("{} characters", chars.len()));
    }
    for (i, w) in chars.windows(2).enumerate() {
        if w[0] == ' ' && matches!(w[1], ',' | '.' | ';' | ':' | ')' | '%' | '!' | '?') {
            faults.push(format!("space before {:?} at {i}", w[1]));
        }
        if w[0] == '(' && w[1] == ' ' {
            faults.push(format!("space after '(' at {i}"));
        }
    }
    if !chars
        .first()
        .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
    {
        faults.push("does not start a sentence".into());
    }
    if !chars
        .last()
        .is_some_and(|c| matches!(c, '.' | '!' | '?' | '…' | '"' | '”' | ')'))
    {
        faults.push("does not end a sentence".into());
    }
    // Stat-card labels and values run together ("1,3% / 24h Khối lượng 24h 104 tỷ USD").
    if s.contains("/ 24h") || s.contains("Tổng vốn hóa 3,07") || s.contains("market cap $3.07")
    {
        faults.push("stat card text".into());
    }
    faults
}

#[tokio::test]
async fn summaries_are_whole_sentences_of_each_reports_own_lead() {
    let app = samples().await;
    let api = app.get("/api/reports").await.json();
    let mut bad = Vec::new();
    for r in api["reports"].as_array().expect("reports") {
        for lang in ["vi", "en"] {
            let summary = r[format!("summary_{lang}")].as_str().expect("summary");
            assert_eq!(
                r[format!("excerpt_{lang}")].as_str(),
                Some(summary),
                "excerpt_* stays the summary"
            );
            let faults = summary_faults(summary);
            if !faults.is_empty() {
                bad.push(format!("#{} {lang}: {faults:?}: {summary}", r["id"]));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));

    // The report with stat cards, a gauge caption and a chart commentary before its summary
    // paragraph: its summary is that paragraph.
    let r107 = app.get("/api/reports/107").await.json();
    assert!(
        r107["summary_en"]
            .as_str()
            .expect("summary")
            .starts_with("The crypto market closed the third trading week of November"),
        "{}",
        r107["summary_en"]
    );
    // Signs are kept and no space stands inside brackets.
    let r105 = app.get("/api/reports/105").await.json();
    assert!(
        r105["summary_en"]
            .as_str()
            .expect("summary")
            .contains("$85,310 (+2.73%)"),
        "{}",
        r105["summary_en"]
    );
}

#[tokio::test]
async fn the_same_summary_reaches_cards_list_meta_and_rss() {
    let app = samples().await;
    let api = app.get("/api/reports").await.json();
    let newest = &api["reports"][0];
    let escaped = |s: &str| {
        s.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
            .replace('<', "&lt;")
    };
    let summary_vi = escaped(newest["summary_vi"].as_str().expect("summary"));
    let summary_en = escaped(newest["summary_en"].as_str().expect("summary"));
    let home = app.get("/").await.text();
    assert!(home.contains(&format!(">{summary_vi}</p>")), "home card");
    assert!(
        home.contains(&format!("data-en=\"{summary_en}\"")),
        "home card, English"
    );
    let list = app.get("/crypto_reports_list?lang=en").await.text();
    assert!(list.contains(&format!(">{summary_en}</p>")), "list");
    let page = app.get("/crypto_report/107").await.text();
    assert!(
        page.contains(&format!(
            "<meta name=\"description\" content=\"{summary_vi}\""
        )),
        "meta description"
    );
    let rss = app.get("/rss.xml").await.text();
    assert!(
        rss.contains(&format!("<description>{summary_vi}</description>")),
        "rss"
    );
}

#[tokio::test]
async fn titles_are_headlines_with_the_date_as_the_last_fallback() {
    let app = samples().await;
    let api = app.get("/api/reports").await.json();
    let reports = api["reports"].as_array().expect("reports");
    let mut titles: Vec<&str> = reports
        .iter()
        .map(|r| r["title_vi"].as_str().expect("title"))
        .collect();
    assert!(
        titles
            .iter()
            .all(|t| !t.starts_with("Báo cáo thị trường crypto")),
        "date-based titles although every sample has a headline: {titles:?}"
    );
    titles.dedup();
    assert_eq!(titles.len(), reports.len(), "titles repeat: {titles:?}");
    let r107 = app.get("/api/reports/107").await.json();
    assert_eq!(
        r107["headline_en"],
        "Bitcoin closes in on $90,000 as sentiment returns to neutral after a volatile week"
    );
    // The report page puts the date beside the headline in the page title.
    let page = app.get("/crypto_report/107?lang=en").await.text();
    assert!(page.contains(
        "<title data-vi=\"Bitcoin tiến sát 90.000 USD, tâm lý thị trường trở lại vùng trung lập sau một tuần biến động mạnh · 21 tháng 11, 2026 · Báo cáo Crypto\" data-en=\"Bitcoin closes in on $90,000 as sentiment returns to neutral after a volatile week · November 21, 2026 · Crypto Report\">"
    ));
    // A report with no prose and no headline keeps the date-based title.
    let plain = TestApp::with_reports(1);
    let api = plain.get("/api/reports").await.json();
    assert_eq!(
        api["reports"][0]["title_en"],
        "Crypto market report January 2, 2026"
    );
    assert_eq!(api["reports"][0]["headline_en"], serde_json::Value::Null);
}

#[tokio::test]
async fn the_sandbox_test_report_is_labelled_as_a_demonstration() {
    let app = samples().await;
    let r = app.get("/api/reports/104").await.json();
    assert!(
        r["title_en"]
            .as_str()
            .expect("title")
            .starts_with("Isolation demo:"),
        "{}",
        r["title_en"]
    );
    assert!(
        r["title_vi"]
            .as_str()
            .expect("title")
            .starts_with("Trình diễn cơ chế cách ly:"),
        "{}",
        r["title_vi"]
    );
}

#[tokio::test]
async fn vietnamese_only_reports_are_marked_for_english_readers() {
    let app = samples().await;
    let list = app.get("/crypto_reports_list?lang=en").await.text();
    // 103 has no English: its Vietnamese summary is marked as Vietnamese, and labelled.
    let card = list
        .split("<article class=\"report-item\">")
        .find(|c| c.contains("/crypto_report/103\""))
        .expect("card of 103");
    assert!(card.contains("data-lang-en=\"vi\" lang=\"vi\""), "{card}");
    assert!(
        card.contains("<span class=\"badge vi-only\" data-i18n=\"vi_only\">Vietnamese only</span>"),
        "{card}"
    );
    let bilingual = list
        .split("<article class=\"report-item\">")
        .find(|c| c.contains("/crypto_report/107\""))
        .expect("card of 107");
    assert!(!bilingual.contains("vi-only"), "{bilingual}");
}

#[tokio::test]
async fn every_label_carries_both_languages() {
    let app = samples().await;
    let page = app.get("/crypto_report/106").await.text();
    for needle in [
        "<meta name=\"description\" content=\"",
        "data-i18n-aria=\"main_nav\"",
        "data-i18n-aria=\"market_title\"",
        "data-i18n-aria=\"report_neighbours\"",
        "data-i18n-title=\"report_frame_title\"",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    let many = TestApp::with_reports(70);
    let list = many.get("/crypto_reports_list?page=3").await.text();
    assert!(list.contains("data-i18n-aria=\"pagination\""));
    assert!(
        list.contains("aria-label=\"Trang 2\" data-i18n-label=\"page\" data-label-suffix=\" 2\"")
    );
    // One page either side of the current one, so the row fits a phone.
    assert!(list.contains("?page=4\""));
    assert!(!list.contains("?page=5\""));
}

#[tokio::test]
async fn the_print_view_runs_no_report_script_and_frames_its_source() {
    let app = samples().await;
    let r = app.get("/crypto_report/107/pdf?lang=en").await;
    assert_eq!(r.status, StatusCode::OK);
    let csp = r.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'; style-src"),
        "no inline script at all: {csp}"
    );
    assert!(csp.contains("frame-src 'self'"), "{csp}");
    let html = r.text();
    assert!(
        !html.contains("initializeAllVisuals_report"),
        "the report's script is not in the print view"
    );
    assert!(!html.contains("report-boot"), "no boot script");
    assert!(html.contains("data-source=\"/crypto_report/107/print-source?lang=en\""));
    assert!(html.contains("id=\"back-link\""));
    assert!(html.contains("href=\"/crypto_report/107?lang=en\""));
    assert!(html.contains(
        "@bottom-right { content: \"Page\" \" \" counter(page) \" / \" counter(pages); }"
    ));
    assert!(html.contains("@bottom-left { content: \"Crypto Report · November 21, 2026\"; }"));

    let source = app.get("/crypto_report/107/print-source?lang=en").await;
    assert_eq!(source.status, StatusCode::OK);
    let csp = source.header("content-security-policy");
    assert!(csp.starts_with("sandbox allow-scripts;"), "{csp}");
    assert!(!csp.contains("frame-ancestors"), "{csp}");
    assert_eq!(
        source.header("x-frame-options"),
        "",
        "an opaque parent must be able to frame it"
    );
    let html = source.text();
    assert!(html.contains("data-mode=\"print-source\""));
    assert!(html.contains("initializeAllVisuals_report"));
    assert!(
        !html.contains("id=\"report-content-vi\""),
        "only the language printed"
    );
    // Every other page keeps its framing rules.
    assert_eq!(
        app.get("/crypto_report/107/frame")
            .await
            .header("x-frame-options"),
        "SAMEORIGIN"
    );
    assert_eq!(app.get("/").await.header("x-frame-options"), "SAMEORIGIN");
}

/// Reports in the generator's own template (`tests/fixtures/generator-template`): a header
/// block with a title every report shares, the author's role and the date, then the sections.
async fn generator_template() -> TestApp {
    let app = TestApp::with_reports(0);
    common::publish(&app.state, fixture_reports("generator-template")).await;
    app
}

#[tokio::test]
async fn the_header_block_is_never_the_summary_or_the_headline() {
    let app = generator_template().await;
    let summary_vi = "Tổng vốn hóa thị trường đi ngang quanh 2,3 nghìn tỷ USD, khối lượng giao dịch giảm 12% so với hôm qua. Dòng tiền vào các quỹ ETF giao ngay chậm lại nhưng vẫn dương.";
    let summary_en = "Total market capitalisation is flat at about $2.3 trillion, and trading volume is down 12% from yesterday. Flows into the spot ETFs slowed but stayed positive.";
    let r = app.get("/api/reports/301").await.json();
    assert_eq!(r["summary_vi"], summary_vi, "{r}");
    assert_eq!(r["summary_en"], summary_en, "{r}");
    assert_eq!(
        r["headline_vi"],
        "Bitcoin giữ vững vùng 64.000 USD sau phiên biến động mạnh"
    );
    assert_eq!(
        r["headline_en"],
        "Bitcoin holds the $64,000 area after a volatile session"
    );
    // The same lead everywhere a reader meets it: the list, the home page, the feeds, the
    // report page's description and Open Graph card.
    let byline = [
        "Chuyên gia Phân tích",
        "Senior Financial Market Analyst",
        "Báo Cáo Phân Tích",
        "Crypto Market Analysis Report",
    ];
    for (path, summary) in [
        ("/crypto_reports_list?lang=vi", summary_vi),
        ("/?lang=vi", summary_vi),
        ("/crypto_reports_list?lang=en", summary_en),
        ("/rss.xml", summary_vi),
        ("/rss-en.xml", summary_en),
    ] {
        let text = app.get(path).await.text();
        assert!(text.contains(summary), "{path}");
        for b in byline {
            assert!(!text.contains(b), "{path} shows the header block ({b})");
        }
    }
    let page = app.get("/crypto_report/301?lang=vi").await.text();
    assert!(
        page.contains(&format!(
            "<meta name=\"description\" content=\"{summary_vi}\""
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<meta property=\"og:description\" content=\"{summary_vi}\""
        )),
        "{page}"
    );
    assert!(
        page.contains(
            "<title data-vi=\"Bitcoin giữ vững vùng 64.000 USD sau phiên biến động mạnh · "
        ),
        "{page}"
    );
}

#[tokio::test]
async fn headlines_are_whole_clauses_short_enough_for_a_list() {
    let app = generator_template().await;
    let api = app.get("/api/reports").await.json();
    let titles: Vec<(u64, String, String)> = api["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().expect("id"),
                r["title_vi"].as_str().expect("title").to_owned(),
                r["title_en"].as_str().expect("title").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        titles,
        vec![
            (
                303,
                "Báo cáo thị trường crypto 9 tháng 10, 2026".to_owned(),
                "Crypto market report October 9, 2026".to_owned()
            ),
            (
                302,
                "Thị trường tiền mã hóa giảm mạnh trong phiên đêm qua".to_owned(),
                "The crypto market fell sharply overnight".to_owned()
            ),
            (
                301,
                "Bitcoin giữ vững vùng 64.000 USD sau phiên biến động mạnh".to_owned(),
                "Bitcoin holds the $64,000 area after a volatile session".to_owned()
            ),
        ]
    );
    // The bundled samples: every headline whole (no "…") and short enough for a list.
    let samples = samples().await;
    let api = samples.get("/api/reports").await.json();
    for r in api["reports"].as_array().expect("reports") {
        for lang in ["vi", "en"] {
            let title = r[format!("title_{lang}")].as_str().expect("title");
            assert!(
                !title.ends_with('…') && title.chars().count() <= 110,
                "#{} {lang}: {title}",
                r["id"]
            );
        }
    }
}
