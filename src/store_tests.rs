use super::*;
use crate::reports::sample;

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join(FILE_NAME)).expect("open");
    (dir, store)
}

#[test]
fn reports_survive_reopen_and_page_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join(FILE_NAME);
    {
        let store = Store::open(&path).expect("open");
        let reports = [
            sample(1, "2026-11-18T08:00:00Z"),
            sample(3, "2026-11-20T08:00:00Z"),
            sample(2, "2026-11-19T08:00:00Z"),
        ];
        let outcomes = store.commit_reports(&reports, &[]).expect("upsert");
        assert_eq!(outcomes.outcomes, vec![UpsertOutcome::New; 3]);
        assert_eq!(outcomes.affected, vec![1, 2, 3]);
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.count().expect("count"), 3);
    let ids: Vec<u64> = store
        .newest(0, 10)
        .expect("newest")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![3, 2, 1]);
    let page2: Vec<u64> = store
        .newest(2, 2)
        .expect("page")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(page2, vec![1]);
    assert!(store.newest(3, 10).expect("past the end").is_empty());
    assert_eq!(
        store.report(2).expect("read"),
        Some(sample(2, "2026-11-19T08:00:00Z"))
    );
    assert_eq!(store.report(9).expect("read"), None);
}

#[test]
fn upsert_detects_changes_and_moves_the_index() {
    let (_dir, store) = temp_store();
    let a = sample(1, "2026-11-18T08:00:00Z");
    let b = sample(2, "2026-11-19T08:00:00Z");
    store
        .commit_reports(&[a.clone(), b.clone()], &[])
        .expect("first");
    assert_eq!(
        store
            .commit_reports(std::slice::from_ref(&a), &[])
            .expect("again")
            .outcomes,
        vec![UpsertOutcome::Unchanged]
    );
    let mut moved = a.clone();
    moved.created_at = "2026-11-21T08:00:00Z".parse().expect("date");
    assert_eq!(
        store
            .commit_reports(&[moved.clone()], &[])
            .expect("update")
            .outcomes,
        vec![UpsertOutcome::Updated]
    );
    let refs = store.newest(0, 10).expect("newest");
    assert_eq!(refs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(store.count().expect("count"), 2);
    let (older, newer) = store.neighbours(&b).expect("neighbours");
    assert_eq!((older, newer.map(|r| r.id)), (None, Some(1)));
    let (older, newer) = store.neighbours(&moved).expect("neighbours");
    assert_eq!((older.map(|r| r.id), newer), (Some(2), None));
}

#[test]
fn schema_mismatch_is_refused_not_rewritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    {
        let store = Store::open(&path).expect("open");
        store
            .write(|tx| {
                let mut meta = tx.open_table(META).map_err(db_err)?;
                meta.insert(SCHEMA_KEY, 99u32.to_le_bytes().as_slice())
                    .map_err(db_err)?;
                meta.insert(WRITTEN_BY_KEY, b"9.9.0".as_slice())
                    .map_err(db_err)?;
                Ok(())
            })
            .expect("write");
    }
    let err = Store::open(&path).expect_err("must refuse");
    let message = err.to_string();
    assert!(
        message.contains("written by a newer release of crypto-report (9.9.0, store schema 99)")
            && message.contains(&format!("reads store schemas up to {SCHEMA_VERSION}")),
        "{message}"
    );
    assert_eq!(
        inspect(&path).expect("inspect"),
        Inspection::Found {
            schema: 99,
            reports: None,
            written_by: Some("9.9.0".into())
        }
    );
    assert!(
        matches!(
            err,
            StoreError::SchemaMismatch {
                found: 99,
                expected: SCHEMA_VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        check(&path, false),
        Err(StoreError::SchemaMismatch { .. })
    ));
    // Still 99 afterwards: nothing was rewritten.
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::SchemaMismatch { .. })
    ));
}

#[test]
fn a_second_writer_is_told_the_store_is_locked() {
    let (dir, _store) = temp_store();
    let err = Store::open(&dir.path().join(FILE_NAME)).expect_err("locked");
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
    assert_eq!(err.exit_code(), 75);
    assert!(err.to_string().contains("--sync-from"), "{err}");
}

#[test]
fn check_counts_and_finds_nothing_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    {
        let store = Store::open(&path).expect("open");
        store
            .commit_reports(&[sample(1, "2026-11-18T08:00:00Z")], &[])
            .expect("upsert");
    }
    let summary = check(&path, false).expect("check");
    assert_eq!(summary.reports, 1);
    assert_eq!(summary.index_entries, 1);
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    assert!(matches!(
        check(&dir.path().join("absent.redb"), false),
        Err(StoreError::Missing(_))
    ));
}

#[test]
fn the_page_cache_of_an_older_store_leaves_it_and_the_file_shrinks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    {
        let store = Store::open(&path).expect("open");
        store
            .commit_reports(&[sample(1, "2026-11-18T08:00:00Z")], &[])
            .expect("upsert");
        // What a release before the page cache's own file left in the store: 32 MiB.
        let tx = store.db.begin_write().expect("write");
        {
            let mut table = tx.open_table(CACHE).expect("cache table");
            for k in 0..512 {
                table
                    .insert(format!("page:{k}").as_str(), vec![7u8; 64 << 10].as_slice())
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    let grown = std::fs::metadata(&path).expect("size").len();
    assert!(grown > 32 << 20, "{grown}");
    let store = Store::open(&path).expect("reopen");
    let shrunk = std::fs::metadata(&path).expect("size").len();
    assert!(shrunk < 4 << 20, "compacted from {grown} to {shrunk} bytes");
    let tx = store.db.begin_read().expect("read");
    assert!(matches!(
        tx.open_table(CACHE),
        Err(redb::TableError::TableDoesNotExist(_))
    ));
    assert!(store.report(1).expect("read").is_some());
}

#[test]
fn the_import_cursors_of_an_older_store_are_removed_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    {
        let store = Store::open(&path).expect("open");
        store
            .commit_reports(&[sample(1, "2026-11-18T08:00:00Z")], &[Some(7)])
            .expect("upsert");
        // What an older release wrote on every import batch and never read.
        let tx = store.db.begin_write().expect("write");
        tx.open_table(LEGACY_CURSORS)
            .expect("cursors table")
            .insert("postgres://db/reports", 1)
            .expect("insert");
        tx.commit().expect("commit");
    }
    let store = Store::open(&path).expect("reopen");
    let tx = store.db.begin_read().expect("read");
    assert!(matches!(
        tx.open_table(LEGACY_CURSORS),
        Err(redb::TableError::TableDoesNotExist(_))
    ));
    drop(tx);
    assert!(store.report(1).expect("read").is_some());
    assert_eq!(
        store.source_versions(0, 10).expect("versions"),
        vec![(1, 7)]
    );
    // A store without the table opens as well.
    drop(store);
    Store::open(&path).expect("reopen again");
}

#[test]
fn history_keeps_only_the_window() {
    let (_dir, store) = temp_store();
    for t in [1_000, 2_000, 3_000] {
        store.history_push(t, b"x", t - 1_500).expect("push");
    }
    let kept: Vec<i64> = store
        .history_since(0)
        .expect("range")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(kept, vec![2_000, 3_000]);
}

/// Opens a copy of a store written by schema 1 (the bundled samples, imported by the release
/// before compression) and checks every report survives the upgrade.
#[test]
fn a_schema_1_store_is_upgraded_in_place() {
    use std::io::Read;
    let fixture = |name: &str| {
        let path = format!(
            "{}/tests/fixtures/store-v1/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).expect("fixture"))
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, fixture("crypto-report.redb.gz")).expect("copy");
    assert!(matches!(
        check(&path, false),
        Err(StoreError::NeedsUpgrade(_))
    ));
    let expected: Vec<crate::reports::Report> = String::from_utf8(fixture("reports.jsonl.gz"))
        .expect("utf8")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            crate::reports::Report {
                id: v["id"].as_u64().expect("id"),
                html_content: v["html_content"].as_str().expect("html").to_owned(),
                css_content: v["css_content"].as_str().map(str::to_owned),
                js_content: v["js_content"].as_str().map(str::to_owned),
                html_content_en: v["html_content_en"].as_str().map(str::to_owned),
                js_content_en: v["js_content_en"].as_str().map(str::to_owned),
                created_at: crate::import::parse_created_at(
                    v["created_at"].as_str().expect("date"),
                )
                .expect("date"),
            }
        })
        .collect();
    let before = std::fs::metadata(&path).expect("size").len();
    {
        let store = Store::open(&path).expect("upgrade");
        assert_eq!(store.count().expect("count"), expected.len() as u64);
        for r in &expected {
            assert_eq!(store.report(r.id).expect("read").as_ref(), Some(r));
        }
        let newest = store.newest(0, 1).expect("index")[0].id;
        assert_eq!(
            newest,
            expected
                .iter()
                .max_by_key(|r| r.created_at)
                .expect("any")
                .id
        );
    }
    let summary = check(&path, false).expect("check");
    assert_eq!(summary.schema_version, SCHEMA_VERSION);
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    // Opening again is a plain open (nothing left to migrate).
    Store::open(&path).expect("reopen");
    assert!(std::fs::metadata(&path).expect("size").len() <= before * 2);
}

#[tokio::test]
async fn a_damaged_report_is_an_error_for_that_report_only() {
    let (_dir, store) = temp_store();
    let reports = [
        sample(1, "2026-11-18T08:00:00Z"),
        sample(2, "2026-11-19T08:00:00Z"),
    ];
    store.commit_reports(&reports, &[]).expect("write");
    // Flip one byte of report 1's stored body behind the store's back.
    damage_record(&store, 1, |bytes| {
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
    });
    assert!(matches!(
        store.report(1),
        Err(StoreError::Damaged { id: 1, .. })
    ));
    assert_eq!(store.report(2).expect("read"), Some(reports[1].clone()));
    let summary = check_store(&store);
    assert_eq!(summary.problems.len(), 1, "{:?}", summary.problems);
    assert!(
        summary.problems[0].starts_with("report 1:"),
        "{:?}",
        summary.problems
    );

    // Served: a 500 page for that report only; its neighbour and the lists still work.
    let state =
        crate::AppState::new(store, crate::Settings::new("http://example.test")).expect("state");
    let status = |path: &'static str| {
        let app = crate::app(state.clone());
        async move {
            use tower::ServiceExt;
            let req = axum::http::Request::get(path)
                .header("host", "example.test")
                .body(axum::body::Body::empty())
                .expect("request");
            app.oneshot(req)
                .await
                .expect("infallible")
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("/crypto_report/1/frame").await, 500);
    assert_eq!(status("/crypto_report/1").await, 500);
    for ok in [
        "/crypto_report/2/frame",
        "/crypto_report/2",
        "/",
        "/crypto_reports_list",
        "/rss.xml",
    ] {
        assert_eq!(status(ok).await, 200, "{ok}");
    }
}

#[test]
fn writing_a_damaged_report_again_repairs_it() {
    let (_dir, store) = temp_store();
    let reports = [
        sample(1, "2026-11-18T08:00:00Z"),
        sample(2, "2026-11-19T08:00:00Z"),
    ];
    store
        .commit_reports(&reports, &[Some(5), Some(6)])
        .expect("write");
    let digest = store.version().digest;
    for damage in ["body", "header"] {
        damage_record(&store, 1, |bytes| match damage {
            "body" => {
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
            }
            _ => bytes.truncate(3),
        });
        assert!(store.report(1).is_err(), "{damage}");
        assert_eq!(store.damaged_ids(), vec![1], "{damage}");
        // The same report again (as a re-import would write it): rewritten, not "unchanged".
        let again = store
            .commit_reports(&reports[..1], &[Some(5)])
            .expect("rewrite");
        assert_eq!(again.outcomes, vec![UpsertOutcome::Updated], "{damage}");
        assert_eq!(store.report(1).expect("read"), Some(reports[0].clone()));
        assert!(store.damaged_ids().is_empty());
        assert_eq!(store.version().digest, digest, "{damage}");
        assert_eq!(store.newest(0, 10).expect("index").len(), 2, "{damage}");
        let summary = check_store(&store);
        assert!(
            summary.problems.is_empty(),
            "{damage}: {:?}",
            summary.problems
        );
    }
}

/// `check` on a store that is open: verifies a backup taken from it.
fn check_store(store: &Store) -> CheckSummary {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join(FILE_NAME);
    store.backup_to(&copy).expect("backup");
    check(&copy, false).expect("check")
}

#[test]
fn source_versions_follow_their_reports() {
    let (_dir, store) = temp_store();
    let a = sample(1, "2026-11-18T08:00:00Z");
    let mut b = sample(2, "2026-11-19T08:00:00Z");
    store
        .commit_reports(&[a.clone(), b.clone()], &[Some(10), Some(11)])
        .expect("write");
    assert_eq!(
        store.source_versions(1, 2).expect("read"),
        vec![(1, 10), (2, 11)]
    );
    // The same content written from elsewhere keeps its version; a change from elsewhere
    // drops it (the source row no longer describes the report).
    store.commit_reports(&[a], &[]).expect("same");
    b.css_content = Some("p{}".into());
    store.commit_reports(&[b], &[]).expect("changed");
    assert_eq!(store.source_versions(0, 9).expect("read"), vec![(1, 10)]);
}

#[test]
fn a_file_that_is_not_a_store_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, b"definitely not redb").expect("write");
    assert!(Store::open(&path).is_err());
}

#[test]
fn the_content_digest_depends_on_the_reports_not_the_order_they_came_in() {
    let (_a_dir, a) = temp_store();
    let (_b_dir, b) = temp_store();
    let r1 = sample(1, "2026-11-18T08:00:00Z");
    let r2 = sample(2, "2026-11-19T08:00:00Z");
    let empty = a.version();
    a.commit_reports(&[r1.clone(), r2.clone()], &[]).expect("a");
    b.commit_reports(std::slice::from_ref(&r2), &[])
        .expect("b2");
    assert_ne!(a.version().digest, b.version().digest);
    b.commit_reports(std::slice::from_ref(&r1), &[])
        .expect("b1");
    assert_eq!(a.version().digest, b.version().digest);
    assert_ne!(a.version().digest, empty.digest);
    assert_eq!(a.version().writers, 0);

    // A change moves it; changing back restores it; an unchanged write does not count.
    let before = a.version();
    let mut changed = r1.clone();
    changed.css_content = Some("p{}".into());
    a.commit_reports(&[changed], &[]).expect("change");
    assert_ne!(a.version().digest, before.digest);
    a.commit_reports(std::slice::from_ref(&r1), &[])
        .expect("revert");
    assert_eq!(a.version().digest, before.digest);
    let generation = a.version().generation;
    a.commit_reports(&[r1], &[]).expect("same");
    assert_eq!(a.version().generation, generation);
}

#[test]
fn the_digest_survives_a_reopen_and_is_rebuilt_when_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    let digest = {
        let store = Store::open(&path).expect("open");
        store
            .commit_reports(&[sample(1, "2026-11-18T08:00:00Z")], &[])
            .expect("write");
        forget_digest(&store);
        store.version().digest
    };
    assert_eq!(Store::open(&path).expect("reopen").version().digest, digest);
}

/// Removes the stored digest, as a store written before the digest was kept has none.
fn forget_digest(store: &Store) {
    store
        .write(|tx| {
            tx.open_table(META)
                .map_err(db_err)?
                .remove("content_digest")
                .map_err(db_err)?;
            Ok(())
        })
        .expect("forget");
}

/// Changes report `id`'s stored record with `damage`, behind the store's back.
fn damage_record(store: &Store, id: u64, damage: impl FnOnce(&mut Vec<u8>)) {
    store
        .write(|tx| {
            let mut table = tx.open_table(REPORTS).map_err(db_err)?;
            let mut bytes = table
                .get(id)
                .map_err(db_err)?
                .expect("present")
                .value()
                .to_vec();
            damage(&mut bytes);
            table.insert(id, bytes.as_slice()).map_err(db_err)?;
            Ok(())
        })
        .expect("damage");
}

#[test]
fn a_store_without_a_digest_opens_around_a_record_whose_header_is_unreadable() {
    let (_other, alone) = temp_store();
    alone
        .commit_reports(&[sample(1, "2026-11-18T08:00:00Z")], &[])
        .expect("write");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    {
        let store = Store::open(&path).expect("open");
        store
            .commit_reports(
                &[
                    sample(1, "2026-11-18T08:00:00Z"),
                    sample(2, "2026-11-19T08:00:00Z"),
                ],
                &[],
            )
            .expect("write");
        damage_record(&store, 2, |bytes| bytes.truncate(1));
        forget_digest(&store);
    }
    // Counted as the commit's recount and the search index count it: without the record.
    let store = Store::open(&path).expect("opens around the damage");
    assert_eq!(store.version().digest, alone.version().digest);
    assert_eq!(store.report_terms().expect("terms").len(), 1);
}

#[test]
fn months_are_counted_by_the_commits_that_write_reports() {
    let (_dir, store) = temp_store();
    // 23:30 UTC on the last day of October is November at UTC+7.
    let mut reports: Vec<crate::reports::Report> = (1..=130)
        .map(|i| sample(i, "2026-11-02T08:00:00Z"))
        .collect();
    for (i, r) in reports.iter_mut().enumerate() {
        r.created_at += chrono::TimeDelta::minutes(i as i64);
    }
    reports.push(sample(200, "2026-10-31T23:30:00Z"));
    reports.push(sample(201, "2026-10-31T16:30:00Z"));
    store.commit_reports(&reports, &[]).expect("write");
    let counts = |store: &Store| -> Vec<(i32, u32, u64)> {
        store
            .month_counts()
            .expect("months")
            .into_iter()
            .map(|m| (m.year, m.month, m.reports))
            .collect()
    };
    assert_eq!(counts(&store), vec![(2026, 11, 131), (2026, 10, 1)]);
    // Moved to another month by an update; unchanged ones count once.
    let mut moved = sample(201, "2026-09-15T08:00:00Z");
    moved.html_content.push_str("<p>moved</p>");
    store
        .commit_reports(&[moved, reports[0].clone()], &[])
        .expect("update");
    assert_eq!(
        counts(&store),
        vec![(2026, 11, 131), (2026, 9, 1)],
        "October is left empty and gone"
    );
    // A month's reports by range: the second page of 50, oldest first.
    let from = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00+07:00")
        .expect("date")
        .timestamp_millis();
    let to = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00+07:00")
        .expect("date")
        .timestamp_millis();
    let page = store.cards_between(from, to, 50, 50).expect("page");
    assert_eq!(page.len(), 50);
    assert_eq!(page[0].at.id, 50, "report 200 opens the month");
    assert!(
        page.iter().all(|r| r.card.is_none()),
        "written without cards"
    );
}

#[test]
fn check_names_a_month_whose_count_differs_from_the_date_index() {
    let (_dir, store) = temp_store();
    let reports = [
        sample(1, "2026-10-20T08:00:00Z"),
        sample(2, "2026-11-20T08:00:00Z"),
        sample(3, "2026-11-21T08:00:00Z"),
    ];
    store.commit_reports(&reports, &[]).expect("write");
    assert!(check_store(&store).problems.is_empty());
    let tx = store.db.begin_write().expect("write");
    {
        let mut months = tx.open_table(MONTHS).expect("months");
        months.insert((2026, 11), 5).expect("miscount");
        months.insert((2025, 1), 1).expect("a month with nothing");
    }
    tx.commit().expect("commit");
    assert_eq!(
        check_store(&store).problems,
        vec![
            "month 2025-01 counts 1 reports, the date index holds 0".to_string(),
            "month 2026-11 counts 5 reports, the date index holds 2".to_string(),
        ]
    );
    // A deep page does not trust counts that do not add up: it walks the index.
    let ids: Vec<u64> = store
        .newest(1, 5)
        .expect("page")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![2, 1]);
}

#[test]
fn a_backup_keeps_the_cards_and_the_month_counts() {
    let (_dir, store) = temp_store();
    let reports = [
        sample(1, "2026-10-20T08:00:00Z"),
        sample(2, "2026-11-20T08:00:00Z"),
    ];
    let card = |r: &crate::reports::Report| Some(format!("card {}", r.id).into_bytes());
    let beside = Beside {
        card: Some(&card),
        ..Beside::default()
    };
    store.commit_stamped(&reports, &[], beside).expect("write");
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join(FILE_NAME);
    store.backup_to(&copy).expect("backup");
    let restored = Store::open(&copy).expect("open the copy");
    assert_eq!(
        restored.month_counts().expect("months"),
        store.month_counts().expect("months")
    );
    let refs = store.newest(0, 10).expect("refs");
    assert_eq!(
        restored.cards_of(&refs).expect("cards"),
        store.cards_of(&refs).expect("cards")
    );
    assert!(restored.cards_complete().expect("cards"));
}
