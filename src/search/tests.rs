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

/// A store of its own, in a folder that lasts as long as the returned guard.
fn open_store() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("store"));
    (dir, store)
}

/// Publishes `reports` with no index listening, as `crypto-report import` does.
fn publish_quietly(store: &Arc<Store>, reports: Vec<crate::reports::Report>) {
    Publisher::new(Arc::clone(store))
        .publish(Batch::of(reports))
        .expect("publish");
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
    let (_dir, store) = open_store();
    let search = Search::open(Arc::clone(&store));
    let publisher = Publisher::telling(Arc::clone(&store), None, vec![Arc::new(search.clone())]);
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
    let (dir, store) = open_store();
    publish_quietly(
        &store,
        vec![
            report(1, "2026-11-01T08:00:00Z", "Bitcoin tăng.", None),
            report(2, "2026-11-02T08:00:00Z", "Ethereum giảm.", None),
        ],
    );
    {
        let search = Search::open(Arc::clone(&store));
        let tasks = Background::new();
        search.start(&tasks);
        search.settled().await;
        assert_eq!(search.status().documents, 2);
        assert!(tasks.shutdown(std::time::Duration::from_secs(5)).await);
    }
    publish_quietly(
        &store,
        vec![
            report(2, "2026-11-02T08:00:00Z", "Solana bứt phá.", None),
            report(3, "2026-11-03T08:00:00Z", "Bitcoin đi ngang.", None),
        ],
    );
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

#[tokio::test]
async fn phrases_filter_exclude_and_rank_with_words_and_dates() {
    let (_dir, store) = open_store();
    let search = Search::open(Arc::clone(&store));
    let publisher = Publisher::telling(Arc::clone(&store), None, vec![Arc::new(search.clone())]);
    let texts = [
        "Lạm phát Mỹ hạ nhiệt, Fed giữ lãi suất.",
        "Fed nói lạm phát còn cao; lãi suất chưa giảm.",
        "Tham lam quay lại, các dự án phát triển; Fed im lặng.",
        "Lạm phát và phát hành stablecoin.",
        "Lãi suất cao làm phát sinh chi phí vay.",
    ];
    // Several segments: phrase sets are kept per segment.
    for (i, text) in texts.iter().enumerate() {
        let id = i as u64 + 1;
        let at = format!("2026-11-0{id}T08:00:00Z");
        publisher
            .publish(Batch::of(vec![report(id, &at, text, None)]))
            .expect("publish");
    }
    let tasks = Background::new();
    search.start(&tasks);
    search.settled().await;
    let ranked = |text: &str| -> Vec<(u64, bool)> {
        search
            .search(&q(text))
            .expect("search")
            .hits
            .iter()
            .map(|h| (h.id, h.apart))
            .collect()
    };
    // Quoted, with another word: only the phrase, and the word anywhere.
    assert_eq!(
        ids(&search.search(&q("\"lạm phát\" fed")).expect("search")),
        vec![1, 2]
    );
    // Left out: a phrase, a word.
    assert_eq!(
        ids(&search.search(&q("lam phat -\"lai suat\"")).expect("search")),
        vec![3, 4]
    );
    assert_eq!(
        ids(&search.search(&q("lãi suất -fed")).expect("search")),
        vec![5]
    );
    // Together first, in each tier by score; apart after.
    let tiers = ranked("lam phat");
    assert_eq!(tiers.len(), 5);
    assert!(tiers[..4].iter().all(|(_, apart)| !apart), "{tiers:?}");
    assert_eq!(tiers[4], (3, true));
    // Two groups: every group together ranks first.
    let two = ranked("lạm phát, lãi suất");
    assert_eq!(two.iter().filter(|(_, apart)| !apart).count(), 2, "{two:?}");
    // A date range with a quoted phrase and a phrase left out.
    let mut dated = q("\"lam phat\" -\"phat hanh\"");
    dated.from = Some("2026-11-02T00:00:00Z".parse().expect("date"));
    assert_eq!(ids(&search.search(&dated).expect("search")), vec![2, 5]);
    // Paging over both tiers gives every hit once.
    let all: usize = (1..=2)
        .map(|page| {
            let mut p = q("lam phat");
            p.page = page;
            search.search(&p).expect("search").hits.len()
        })
        .sum();
    assert_eq!(all, 5);
    assert!(tasks.shutdown(std::time::Duration::from_secs(5)).await);
}

#[tokio::test]
async fn an_index_of_an_earlier_release_is_removed_and_built_again() {
    let (dir, store) = open_store();
    publish_quietly(
        &store,
        vec![report(
            1,
            "2026-11-01T08:00:00Z",
            "Lạm phát hạ nhiệt.",
            None,
        )],
    );
    // What search-v2 left: folded words only, no accented forms.
    let old = dir.path().join("search-v2");
    std::fs::create_dir_all(&old).expect("old dir");
    std::fs::write(old.join("meta.json"), b"{}").expect("old file");
    let search = Search::open(Arc::clone(&store));
    assert!(!old.exists(), "the earlier index is removed");
    assert!(dir.path().join(DIR_NAME).exists());
    let tasks = Background::new();
    search.start(&tasks);
    search.settled().await;
    assert_eq!(
        ids(&search.search(&q("lạm phát")).expect("search")),
        vec![1]
    );
    assert!(tasks.shutdown(std::time::Duration::from_secs(5)).await);
}

#[tokio::test]
async fn reports_holding_part_of_a_group_together_rank_above_those_holding_none() {
    let (_dir, store) = open_store();
    let search = Search::open(Arc::clone(&store));
    let publisher = Publisher::telling(Arc::clone(&store), None, vec![Arc::new(search.clone())]);
    let mut reports = Vec::new();
    // 1-12: the group together; 13-15: "dòng tiền" together, ETF elsewhere; 16-18: all apart
    // (and repeated, so that their own score is higher).
    for id in 1..=18u64 {
        let text = match id {
            1..=12 => "Dòng tiền ETF quay lại thị trường.".to_owned(),
            13..=15 => "Dòng tiền rút khỏi thị trường; quỹ ETF đứng ngoài.".to_owned(),
            _ => "Tiền vào quỹ ETF, dòng chảy ổn định. ".repeat(3),
        };
        let at = format!("2026-11-{:02}T08:00:00Z", id);
        reports.push(report(id, &at, &text, None));
    }
    publisher.publish(Batch::of(reports)).expect("publish");
    let tasks = Background::new();
    search.start(&tasks);
    search.settled().await;
    let page = |n: usize| {
        let mut p = q("dòng tiền ETF");
        p.page = n;
        search.search(&p).expect("search")
    };
    let first = page(1);
    assert_eq!(first.total, 18);
    assert!(
        first.hits.iter().all(|h| !h.apart && h.id <= 12),
        "{:?}",
        ids(&first)
    );
    let second: Vec<(u64, bool)> = page(2).hits.iter().map(|h| (h.id, h.apart)).collect();
    assert_eq!(second.len(), 8);
    assert!(
        second[..2].iter().all(|(id, apart)| *id <= 12 && !apart),
        "{second:?}"
    );
    let apart: Vec<u64> = second[2..].iter().map(|(id, _)| *id).collect();
    assert!(
        apart[..3].iter().all(|id| (13..=15).contains(id)),
        "{apart:?}"
    );
    assert!(apart[3..].iter().all(|id| *id >= 16), "{apart:?}");
    // Dates leave fewer reports holding the group together than a page: the pairs still rank.
    let mut dated = q("dòng tiền ETF");
    dated.from = Some("2026-11-09T00:00:00Z".parse().expect("date"));
    let dated: Vec<(u64, bool)> = search
        .search(&dated)
        .expect("search")
        .hits
        .iter()
        .map(|h| (h.id, h.apart))
        .collect();
    assert_eq!(dated.len(), 10);
    assert!(
        dated[..4]
            .iter()
            .all(|(id, apart)| (9..=12).contains(id) && !apart),
        "{dated:?}"
    );
    assert!(
        dated[4..7].iter().all(|(id, _)| (13..=15).contains(id)),
        "{dated:?}"
    );
    assert!(tasks.shutdown(std::time::Duration::from_secs(5)).await);
}

/// A batch published (a sync pass) is not searchable until the indexer has committed it:
/// until then the index says it is catching up, not only during its first catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_says_it_is_catching_up_while_a_published_batch_waits() {
    let (_dir, store) = open_store();
    let search = Search::open(Arc::clone(&store));
    let publisher = Publisher::telling(Arc::clone(&store), None, vec![Arc::new(search.clone())]);
    let tasks = Background::new();
    search.start(&tasks);
    search.settled().await;
    assert!(!search.status().catching_up);
    // The indexer is held at its writer, as a long commit would hold it.
    let held = search
        .0
        .writing
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

/// A directory whose writes fail while `full` is set, as on a full disk.
#[derive(Clone, Debug)]
struct FullDisk {
    inner: tantivy::directory::RamDirectory,
    full: Arc<AtomicBool>,
}

impl FullDisk {
    fn error(&self) -> Option<std::io::Error> {
        self.full.load(Ordering::SeqCst).then(|| {
            std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device")
        })
    }
}

impl Directory for FullDisk {
    fn get_file_handle(
        &self,
        path: &Path,
    ) -> Result<Arc<dyn tantivy::directory::FileHandle>, tantivy::directory::error::OpenReadError>
    {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), tantivy::directory::error::DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, tantivy::directory::error::OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(
        &self,
        path: &Path,
    ) -> Result<tantivy::directory::WritePtr, tantivy::directory::error::OpenWriteError> {
        match self.error() {
            Some(e) => Err(tantivy::directory::error::OpenWriteError::IoError {
                io_error: Arc::new(e),
                filepath: path.to_owned(),
            }),
            None => self.inner.open_write(path),
        }
    }

    fn atomic_read(
        &self,
        path: &Path,
    ) -> Result<Vec<u8>, tantivy::directory::error::OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        match self.error() {
            Some(e) => Err(e),
            None => self.inner.atomic_write(path, data),
        }
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(
        &self,
        lock: &Lock,
    ) -> Result<DirectoryLock, tantivy::directory::error::LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(
        &self,
        callback: tantivy::directory::WatchCallback,
    ) -> tantivy::Result<tantivy::directory::WatchHandle> {
        self.inner.watch(callback)
    }
}

/// A write that fails (a full disk) does not stop indexing for good: the pass is tried
/// again after a pause, `/health`'s search status says it is failing meanwhile, and the
/// report is found once writes work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_retried_and_reported_until_it_works() {
    let (_dir, store) = open_store();
    let full = Arc::new(AtomicBool::new(false));
    let disk = FullDisk {
        inner: tantivy::directory::RamDirectory::create(),
        full: Arc::clone(&full),
    };
    let search = Search::in_directory(disk, Arc::clone(&store), None).expect("index");
    let publisher = Publisher::telling(Arc::clone(&store), None, vec![Arc::new(search.clone())]);
    let tasks = Background::new();
    search.start(&tasks);
    search.settled().await;
    assert_eq!(search.status().failing, None);

    full.store(true, Ordering::SeqCst);
    publisher
        .publish(Batch::of(vec![report(
            5,
            "2026-11-05T08:00:00Z",
            "Thanh khoản cạn.",
            None,
        )]))
        .expect("publish");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let failing = loop {
        let status = search.status();
        if let Some(f) = status.failing.as_ref().filter(|f| f.attempts >= 2) {
            assert!(status.catching_up, "{status:?}");
            break f.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never retried: {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(failing.error.contains("no space left"), "{failing:?}");
    assert!(failing.next_attempt > failing.since, "{failing:?}");
    let shown = serde_json::to_value(search.status()).expect("json");
    assert!(shown["failing"]["attempts"].as_u64() >= Some(2), "{shown}");
    assert!(ids(&search.search(&q("thanh khoan")).expect("search")).is_empty());

    full.store(false, Ordering::SeqCst);
    tokio::time::timeout(std::time::Duration::from_secs(30), search.settled())
        .await
        .expect("indexed once writes work");
    let status = search.status();
    assert_eq!(status.failing, None);
    assert!(!status.catching_up);
    assert_eq!(
        ids(&search.search(&q("thanh khoan")).expect("search")),
        vec![5]
    );
    assert!(tasks.shutdown(std::time::Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_hit_shows_the_report_as_the_store_holds_it_now() {
    let (_dir, store) = open_store();
    publish_quietly(
        &store,
        vec![
            report(1, "2026-11-01T08:00:00Z", "Dòng tiền ETF quay lại.", None),
            report(
                2,
                "2026-11-02T08:00:00Z",
                "ETF rút vốn.",
                Some("ETF outflows."),
            ),
        ],
    );
    let search = Search::open(Arc::clone(&store));
    let tasks = Background::new();
    search.start(&tasks);
    search.settled().await;
    // Changed behind the index's back (no subscriber told): the index still finds report 1
    // by its old words, and shows it as the store holds it now.
    publish_quietly(
        &store,
        vec![report(
            1,
            "2026-11-01T08:00:00Z",
            "Quỹ ETF mới được duyệt.",
            None,
        )],
    );
    let found = search.search(&q("dong tien")).expect("search");
    assert_eq!(ids(&found), vec![1]);
    let hit = &found.hits[0];
    let now = store.report(1).expect("read").expect("stored");
    assert_eq!(
        hit.vi.title,
        crate::reports::Card::of(&now).title(crate::i18n::Lang::Vi)
    );
    assert_eq!(hit.vi.snippet.text(), "Tiêu đề 1 Quỹ ETF mới được duyệt.");
    assert!(
        !hit.vi.snippet.has_hits(),
        "the words are not there any more"
    );
    let both = search.search(&q("etf")).expect("search");
    assert_eq!(ids(&both), vec![1, 2]);
    let second = both.hits.iter().find(|h| h.id == 2).expect("report 2");
    assert_eq!(
        second.en.as_ref().map(|en| en.snippet.text()),
        Some("Title 2 ETF outflows.".to_owned())
    );
}
