//! A store with damaged pages, as found in the field: 300 reports (one a day), then 64 KiB of
//! random bytes written over the file at twenty positions. `export` writes every report
//! `check` can read and names exactly the others; lists, feeds and the archive answer instead
//! of failing, showing every readable report (and a damaged one by the card stored when it was
//! whole: its own page is its 500).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use chrono::{Datelike, TimeDelta};
use common::get;
use common::process::bin;
use crypto_report::reports::{Batch, Publisher, Report};
use crypto_report::store::{CheckSummary, FILE_NAME, Store};
use crypto_report::{AppState, Settings};

/// Enough for the damage at twenty positions to land in the reports' table, in the date index,
/// and in the store's own structures (the store had 1,500; a debug build spends most
/// of this test summarising listed reports, so fewer keep it short).
const REPORTS: u64 = 300;
const PAGE: u64 = 4096;
/// 16 pages, as `dd bs=4096 count=16` writes them.
const DAMAGE: u64 = 16 * PAGE;

/// A small deterministic generator (xorshift), so every run damages the same bytes.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: &[&str] = &[
    "thị",
    "trường",
    "bitcoin",
    "giá",
    "tăng",
    "giảm",
    "lạm",
    "phát",
    "dòng",
    "tiền",
    "quỹ",
    "ETF",
    "nhà",
    "đầu",
    "tư",
    "kỳ",
    "vọng",
    "lãi",
    "suất",
    "Fed",
    "ethereum",
    "solana",
    "thanh",
    "khoản",
    "biến",
    "động",
    "ngắn",
    "hạn",
    "dài",
    "hỗ",
    "trợ",
    "kháng",
    "cự",
];

fn day(id: u64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2022-01-01T08:00:00Z")
        .expect("date")
        .to_utc()
        + TimeDelta::days(i64::try_from(id).expect("id"))
}

/// The reports of the pristine store: a few kilobytes each once compressed, so their pages,
/// not the store's own structures, make most of the file.
fn reports() -> Vec<Report> {
    let mut noise = Noise(0x5EED);
    (1..=REPORTS)
        .map(|id| {
            let words: Vec<String> = (0..2000)
                .map(|i| {
                    let n = noise.next();
                    if i % 8 == 0 {
                        format!("{}", n % 100_000)
                    } else {
                        WORDS[(n % WORDS.len() as u64) as usize].to_owned()
                    }
                })
                .collect();
            Report {
                id,
                html_content: format!(
                    "<section id=\"tong-quan\"><h2>Báo cáo {id}</h2><p>{}</p></section>",
                    words.join(" ")
                ),
                css_content: None,
                js_content: None,
                html_content_en: None,
                js_content_en: None,
                created_at: day(id),
            }
        })
        .collect()
}

/// The undamaged store, built once per test binary through the publish path `import` uses
/// (in batches, each one commit), then closed.
fn pristine() -> &'static Path {
    static STORE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        let publisher = Publisher::new(Arc::new(Store::open(&path).expect("store")));
        let mut all = reports();
        while !all.is_empty() {
            let rest = all.split_off(all.len().min(crypto_report::import::BATCH));
            publisher.publish(Batch::of(all)).expect("publish");
            all = rest;
        }
        drop(publisher);
        (dir, path)
    });
    path
}

/// Where the damage goes, as offsets into the file: nineteen spread over it (at 2.5%, 7.5%, …),
/// and the issue's `seek=$((SIZE/8192))` with `bs=4096`, the middle of the file.
fn positions() -> Vec<u64> {
    let size = std::fs::metadata(pristine()).expect("size").len();
    let mut at: Vec<u64> = (0..19)
        .map(|k| (size * (2 * k + 1) / 40 / PAGE * PAGE).min(size.saturating_sub(DAMAGE)))
        .collect();
    at.push(size / 8192 * PAGE);
    at
}

/// A copy of the pristine store with [`DAMAGE`] random bytes written at `offset`.
fn damaged_copy(offset: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes = std::fs::read(pristine()).expect("read");
    let mut noise = Noise(offset | 1);
    let start = usize::try_from(offset).expect("offset");
    let end = (start + DAMAGE as usize).min(bytes.len());
    for b in &mut bytes[start..end] {
        *b = noise.next() as u8;
    }
    std::fs::write(dir.path().join(FILE_NAME), bytes).expect("write");
    dir
}

/// What `check` says: the reports it read, and the ids it names as damaged. `None` when the
/// store cannot be read at all.
fn checked(summary: &CheckSummary) -> (u64, BTreeSet<u64>) {
    let damaged = summary
        .problems
        .iter()
        .filter_map(|l| l.split("report ").nth(1))
        .filter_map(|rest| rest.split(':').next()?.trim().parse().ok())
        .collect();
    (summary.reports, damaged)
}

/// Reads of damaged pages panic inside redb, and the store catches them and reports damage:
/// as the binary does, those stay quiet (the default hook would print, and with
/// `RUST_BACKTRACE` set resolve, a backtrace for each of hundreds of them).
fn quiet_handled_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !crypto_report::store::panic_is_handled() {
            default(info);
        }
    }));
}

/// One damaged copy of the pristine store and what `check` read of it.
struct Case {
    offset: u64,
    dir: tempfile::TempDir,
    /// The reports `check` read and the ids it named as damaged; `None` when it could read
    /// nothing (the store's own structures damaged).
    check: Option<(u64, BTreeSet<u64>)>,
    /// Every problem `check` found, and why it could not check at all.
    problems: Vec<String>,
    /// `check` ran to its end (it may still have read no report).
    checked: bool,
}

/// The ten damaged copies, made and checked once for both tests.
fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        quiet_handled_panics();
        positions()
            .into_iter()
            .map(|offset| {
                let dir = damaged_copy(offset);
                let (check, problems, ran) =
                    match crypto_report::store::check(&dir.path().join(FILE_NAME), false) {
                        Ok(summary) => (
                            Some(checked(&summary)).filter(|(read, _)| *read > 0),
                            summary.problems,
                            true,
                        ),
                        Err(e) => (None, vec![e.to_string()], false),
                    };
                if let Some((read, damaged)) = &check {
                    eprintln!(
                        "at {offset}: check read {read} reports, named {} damaged",
                        damaged.len()
                    );
                }
                Case {
                    offset,
                    dir,
                    check,
                    problems,
                    checked: ran,
                }
            })
            .collect()
    })
}

#[test]
fn the_damage_lands_in_each_table_that_names_reports_and_in_the_structures() {
    let said = |what: &str| {
        cases()
            .iter()
            .any(|c| c.problems.iter().any(|p| p.contains(what)))
    };
    assert!(said(
        "the reports table cannot be walked past a damaged page"
    ));
    assert!(said("the date index cannot be walked past a damaged page"));
    assert!(
        cases().iter().any(|c| c.check.is_none()),
        "at one position at least nothing can be read"
    );
    let spread: BTreeSet<u64> = cases().iter().map(|c| c.offset).collect();
    assert_eq!(spread.len(), 20, "twenty distinct positions");
}

#[test]
fn export_writes_every_report_check_can_read_and_names_the_rest() {
    // The exports run as the command does, as processes (its exit status and its last line
    // are part of what is checked), side by side.
    let exports: Vec<(&Case, PathBuf, Child)> = cases()
        .iter()
        .map(|case| {
            let backup = case.dir.path().join("backup.jsonl");
            let child = Command::new(bin())
                .args(["export", "--to", backup.to_str().expect("utf8")])
                .env("CR_DATA_DIR", case.dir.path())
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run export");
            (case, backup, child)
        })
        .collect();
    for (case, backup, child) in exports {
        let offset = case.offset;
        let out = child.wait_with_output().expect("export");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(101), "{offset}: panicked: {stderr}");
        // A store `check` can read nothing of (its dictionary or its schema damaged): the
        // export fails too, and writes nothing.
        let Some((readable, damaged)) = case.check.clone() else {
            // Both tables that name reports unreadable from either end: `check` ran and read
            // nothing, and the export writes nothing and says where it could not walk.
            if case.checked {
                assert!(
                    std::fs::read_to_string(&backup)
                        .unwrap_or_default()
                        .trim()
                        .is_empty()
                        && stderr.contains("cannot be walked past a damaged page"),
                    "{offset}: {stderr}"
                );
                assert!(
                    !out.status.success(),
                    "{offset}: the export wrote nothing and must fail: {stderr}"
                );
                continue;
            }
            assert!(
                !out.status.success(),
                "{offset}: check cannot read it, export must not say it did: {stderr}"
            );
            continue;
        };
        let written = std::fs::read_to_string(&backup).unwrap_or_default();
        let exported: BTreeSet<u64> = written
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json line")["id"]
                    .as_u64()
                    .expect("id")
            })
            .collect();
        assert_eq!(
            exported.len() as u64,
            readable,
            "at {offset}: check read {readable}, export wrote {}: {stderr}",
            exported.len()
        );
        assert!(exported.is_disjoint(&damaged), "{offset}");
        let named: BTreeSet<u64> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("not exported: report "))
            .filter_map(|rest| rest.split(':').next()?.trim().parse().ok())
            .collect();
        assert_eq!(named, damaged, "at {offset}: {stderr}");
        let walked_around = case
            .problems
            .iter()
            .any(|p| p.contains("cannot be walked past a damaged page"));
        if damaged.is_empty() && !walked_around {
            assert!(out.status.success(), "{offset}: {stderr}");
        } else if damaged.is_empty() {
            assert!(
                !out.status.success()
                    && stderr.contains("reports on the damaged pages may be missing"),
                "{offset}: the walk went around damage: {stderr}"
            );
        } else {
            assert!(!out.status.success(), "{offset}");
            let last = stderr.lines().last().unwrap_or("");
            assert!(
                last.contains(&format!("{} damaged report(s)", damaged.len())),
                "at {offset}: {last}"
            );
        }
    }
}

#[test]
fn lists_feeds_and_the_archive_leave_out_what_they_cannot_read() {
    // Two stores at a time, each with a runtime of its own.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let opened: Vec<bool> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .enable_all()
                        .build()
                        .expect("runtime");
                    let mut opened = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(case) = cases().get(i) else {
                            break opened;
                        };
                        opened.extend(serve_damaged(case, &runtime));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    let served = opened.iter().filter(|o| **o).count();
    assert!(
        served >= 5,
        "served {served} damaged stores, {} refused to open",
        opened.len() - served
    );
}

/// Serves the damaged copy of `case` and checks its pages: `Some(true)` when the store opened,
/// `Some(false)` when it was refused (as it must be, saying why), `None` when `check` could
/// read nothing of it.
fn serve_damaged(case: &Case, runtime: &tokio::runtime::Runtime) -> Option<bool> {
    let offset = case.offset;
    let (readable, damaged) = case.check.clone()?;
    // A copy of its own: opening a store for writing locks it, and the export test reads the
    // same damaged copy at the same time.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(case.dir.path().join(FILE_NAME), dir.path().join(FILE_NAME)).expect("copy");
    let store = match Store::open(&dir.path().join(FILE_NAME)) {
        Ok(s) => s,
        // Damaged where redb looks when it opens a file for writing: the server does not
        // start, and says why (`export` still reads it, above).
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains("crypto-report check"),
                "at {offset}: {message}"
            );
            eprintln!(
                "at {offset}: check read {readable} reports; the store does not open: {message}"
            );
            return Some(false);
        }
    };
    eprintln!("at {offset}: check read {readable} reports; the store opens");
    // Made outside the runtime, as `serve` makes it: the search index (not under test here)
    // does not start indexing every report.
    let state = AppState::new(store, Settings::new("https://reports.example")).expect("state");
    runtime.block_on(pages_of(&state, offset, readable, &damaged));
    Some(true)
}

/// Every list, feed and archive page of `state` answers, and the lists show every report
/// `check` could read (`readable`), and of the others at most those it named (`damaged`, listed
/// by their cards); report pages beside the damage answer too, a damaged one with its 500.
async fn pages_of(state: &AppState, offset: u64, readable: u64, damaged: &BTreeSet<u64>) {
    let mut listed = BTreeSet::new();
    for page in 1..=REPORTS / 10 + 1 {
        let api = get(state, &format!("/api/reports?page={page}")).await;
        let html = get(state, &format!("/crypto_reports_list?page={page}")).await;
        assert_eq!(api.status, html.status, "at {offset}, page {page}");
        match api.status {
            StatusCode::OK => {
                for r in api.json()["reports"].as_array().expect("reports") {
                    listed.insert(r["id"].as_u64().expect("id"));
                }
            }
            StatusCode::NOT_FOUND => break,
            other => panic!("at {offset}: /api/reports?page={page} answered {other}"),
        }
    }
    assert_eq!(
        listed.iter().filter(|id| !damaged.contains(id)).count() as u64,
        readable,
        "at {offset}: the lists show every readable report"
    );
    for path in [
        "/",
        "/crypto_report",
        "/rss.xml",
        "/rss-en.xml",
        "/sitemap.xml",
        "/archive",
    ] {
        let r = get(state, path).await;
        assert_eq!(r.status, StatusCode::OK, "at {offset}: {path}");
    }
    let mut months = BTreeSet::new();
    for id in 1..=REPORTS {
        let d = day(id) + TimeDelta::hours(7);
        months.insert((d.year(), d.month()));
    }
    for (year, month) in months {
        let r = get(state, &format!("/archive/{year}/{month:02}")).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND,
            "at {offset}: /archive/{year}/{month:02} answered {}",
            r.status
        );
    }
    // Report pages link their neighbours in time: those next to the damage, and a sample.
    let beside_damage = |id: &&u64| {
        (**id).is_multiple_of(50) || !listed.contains(&(**id - 1)) || !listed.contains(&(**id + 1))
    };
    for id in listed.iter().filter(beside_damage) {
        let r = get(state, &format!("/crypto_report/{id}")).await;
        let expected = if damaged.contains(id) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        assert_eq!(r.status, expected, "at {offset}: report {id}");
    }
}
