use super::*;
use crate::reports::{Batch, Publisher};
use crate::store::FILE_NAME;

fn report(id: u64, at: &str, vi: &str, en: Option<&str>) -> crate::reports::Report {
    crate::reports::Report {
        id,
        html_content: format!("<section id=\"a\"><h2>Tiêu đề {id}</h2><p>{vi}</p></section>"),
        css_content: None,
        js_content: None,
        html_content_en: en
            .map(|e| format!("<section id=\"a\"><h2>Title {id}</h2><p>{e}</p></section>")),
        js_content_en: None,
        created_at: at.parse().expect("date"),
    }
}

fn ids(r: &Results) -> Vec<u64> {
    let mut v: Vec<u64> = r.hits.iter().map(|h| h.id).collect();
    v.sort_unstable();
    v
}

fn q(text: &str) -> SearchQuery {
    SearchQuery {
        text: text.into(),
        page: 1,
        ..SearchQuery::default()
    }
}

#[tokio::test]
async fn finds_folded_words_in_both_languages_and_keeps_up_with_publishing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("store"));
    let search = Search::open(Arc::clone(&store));
    let publisher = Publisher::new(Arc::clone(&store)).with(Arc::new(search.clone()));
    publisher
        .publish(Batch::of(vec![
            report(
                1,
                "2026-11-01T08:00:00Z",
                "Lạm phát Mỹ hạ nhiệt.",
                Some("US inflation cools."),
            ),
            report(
                2,
                "2026-11-02T08:00:00Z",
                "Dòng tiền ETF quay lại.",
                Some("ETF flows return."),
            ),
            report(3, "2026-11-03T08:00:00Z", "Lạm phát và lãi suất.", None),
        ]))
        .expect("publish");
    let tasks = Background::new();
    search.start(&tasks);
    search.settled().await;
    assert_eq!(
        ids(&search.search(&q("lam phat")).expect("search")),
        vec![1, 3]
    );
    assert_eq!(
        ids(&search.search(&q("LẠM PHÁT")).expect("search")),
        vec![1, 3]
    );
    assert_eq!(
        ids(&search.search(&q("inflation")).expect("search")),
        vec![1]
    );
    let hit = &search.search(&q("etf")).expect("search").hits[0];
    assert!(hit.vi.snippet.has_hits() && hit.en.as_ref().is_some_and(|e| e.snippet.has_hits()));
    assert_eq!(
        hit.vi
            .snippet
            .pieces
            .iter()
            .filter(|p| p.hit)
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>(),
        vec!["ETF"]
    );
    // A date range keeps only what was published inside it.
    let mut ranged = q("lam phat");
    ranged.from = Some("2026-11-02T00:00:00Z".parse().expect("date"));
    assert_eq!(ids(&search.search(&ranged).expect("search")), vec![3]);
    ranged.until = Some("2026-11-03T00:00:00Z".parse().expect("date"));
    assert!(search.search(&ranged).expect("search").hits.is_empty());
    // Nothing to look for finds nothing, and syntax mistakes are words.
    assert_eq!(search.search(&q("  ")).expect("search").total, 0);
    assert_eq!(search.search(&q("\"lạm phát")).expect("search").total, 2);

    // A new report and a changed one are found as soon as the indexer has them.
    publisher
        .publish(Batch::of(vec![
            report(4, "2026-11-04T08:00:00Z", "Halving sắp tới.", None),
            report(2, "2026-11-02T08:00:00Z", "Dòng tiền rút khỏi quỹ.", None),
        ]))
        .expect("publish");
    search.settled().await;
    assert_eq!(ids(&search.search(&q("halving")).expect("search")), vec![4]);
    assert!(search.search(&q("etf")).expect("search").hits.is_empty());
    assert_eq!(search.status().documents, 4);
    assert!(tasks.shutdown(std::time::Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_missing_or_stale_index_catches_up_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("store"));
    // Written without the index listening (as `crypto-report import` does).
    let quiet = Publisher::new(Arc::clone(&store));
    quiet
        .publish(Batch::of(vec![
            report(1, "2026-11-01T08:00:00Z", "Bitcoin tăng.", None),
            report(2, "2026-11-02T08:00:00Z", "Ethereum giảm.", None),
        ]))
        .expect("publish");
    {
        let search = Search::open(Arc::clone(&store));
        let tasks = Background::new();
        search.start(&tasks);
        search.settled().await;
        assert_eq!(search.status().documents, 2);
        assert!(tasks.shutdown(std::time::Duration::from_secs(5)).await);
    }
    quiet
        .publish(Batch::of(vec![
            report(2, "2026-11-02T08:00:00Z", "Solana bứt phá.", None),
            report(3, "2026-11-03T08:00:00Z", "Bitcoin đi ngang.", None),
        ]))
        .expect("publish");
    let search = Search::open(Arc::clone(&store));
    let tasks = Background::new();
    search.start(&tasks);
    search.settled().await;
    assert_eq!(
        ids(&search.search(&q("bitcoin")).expect("search")),
        vec![1, 3]
    );
    assert_eq!(ids(&search.search(&q("solana")).expect("search")), vec![2]);
    assert!(
        search
            .search(&q("ethereum"))
            .expect("search")
            .hits
            .is_empty()
    );
    assert_eq!(search.status().documents, 3);
    assert!(tasks.shutdown(std::time::Duration::from_secs(5)).await);

    // A damaged index directory is derived data: it is rebuilt.
    drop(search);
    for entry in std::fs::read_dir(dir.path().join(DIR_NAME)).expect("dir") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "meta.json") {
            std::fs::write(&path, b"{ not json").expect("damage");
        }
    }
    let search = Search::open(Arc::clone(&store));
    let tasks = Background::new();
    search.start(&tasks);
    search.settled().await;
    assert_eq!(search.status().documents, 3);
    assert!(tasks.shutdown(std::time::Duration::from_secs(5)).await);
}

/// A batch published (a sync pass) is not searchable until the indexer has committed it:
/// until then the index says it is catching up, not only during its first catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_says_it_is_catching_up_while_a_published_batch_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("store"));
    let search = Search::open(Arc::clone(&store));
    let publisher = Publisher::new(Arc::clone(&store)).with(Arc::new(search.clone()));
    let tasks = Background::new();
    search.start(&tasks);
    search.settled().await;
    assert!(!search.status().catching_up);
    // The indexer is held at its writer, as a long commit would hold it.
    let held = search
        .0
        .writer
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    publisher
        .publish(Batch::of(vec![report(
            9,
            "2026-11-09T08:00:00Z",
            "Thanh khoản thấp.",
            None,
        )]))
        .expect("publish");
    // Time for the indexer to take the batch and wait at the writer (no await while held).
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        search.status().catching_up,
        "a published batch is not searchable yet"
    );
    assert!(ids(&search.search(&q("thanh khoan")).expect("search")).is_empty());
    drop(held);
    search.settled().await;
    let status = search.status();
    assert!(!status.catching_up, "{status:?}");
    assert_eq!(
        ids(&search.search(&q("thanh khoan")).expect("search")),
        vec![9]
    );
}
