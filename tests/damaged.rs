//! A store with damaged pages, as found in the field: 1,500 reports (one a day), then 64 KiB of
//! random bytes written over the file at ten positions. `export` writes every report `check`
//! can read and names exactly the others; lists, feeds and the archive leave out what they
//! cannot read instead of failing.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use axum::http::StatusCode;
use chrono::{Datelike, TimeDelta};
use common::get;
use common::process::bin;
use crypto_report::store::{FILE_NAME, Store};
use crypto_report::{AppState, Settings};

const REPORTS: u64 = 1_500;
const PAGE: u64 = 4096;
/// 16 pages, as `dd bs=4096 count=16` writes them.
const DAMAGE: u64 = 16 * PAGE;

fn run(args: &[&str], data_dir: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .env("CR_DATA_DIR", data_dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run binary")
}

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

/// The undamaged store, built once per test binary with `import`.
fn pristine() -> &'static Path {
    static STORE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut noise = Noise(0x5EED);
        let mut lines = String::new();
        for id in 1..=REPORTS {
            // Reports of a few kilobytes once compressed: their pages, not the store's
            // own structures, make most of the file.
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
            let line = serde_json::json!({
                "id": id,
                "html_content": format!(
                    "<section id=\"tong-quan\"><h2>Báo cáo {id}</h2><p>{}</p></section>",
                    words.join(" ")
                ),
                "css_content": null,
                "js_content": null,
                "html_content_en": null,
                "js_content_en": null,
                "created_at": day(id).to_rfc3339(),
            });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        let file = dir.path().join("reports.jsonl");
        std::fs::write(&file, lines).expect("write");
        let out = run(
            &["import", "--from", file.to_str().expect("utf8")],
            dir.path(),
        );
        assert!(out.status.success(), "{out:?}");
        let path = dir.path().join(FILE_NAME);
        (dir, path)
    });
    path
}

/// Where the damage goes, as offsets into the file: nine spread over it, and the issue's
/// `seek=$((SIZE/8192))` with `bs=4096`.
fn positions() -> Vec<u64> {
    let size = std::fs::metadata(pristine()).expect("size").len();
    let mut at: Vec<u64> = (1..=9)
        .map(|k| (size * k / 10 / PAGE * PAGE).min(size.saturating_sub(DAMAGE)))
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
fn checked(dir: &Path) -> Option<(u64, BTreeSet<u64>)> {
    let out = run(&["check"], dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reports = stdout
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))?
        .trim()
        .parse()
        .expect("count");
    let damaged = stdout
        .lines()
        .filter_map(|l| l.split("report ").nth(1))
        .filter_map(|rest| rest.split(':').next()?.trim().parse().ok())
        .collect();
    Some((reports, damaged))
}

#[test]
fn export_writes_every_report_check_can_read_and_names_the_rest() {
    for offset in positions() {
        let dir = damaged_copy(offset);
        let check = checked(dir.path());
        let backup = dir.path().join("backup.jsonl");
        let out = run(
            &["export", "--to", backup.to_str().expect("utf8")],
            dir.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(101), "{offset}: panicked: {stderr}");
        // A store `check` can read nothing of (its dictionary or its schema damaged): the
        // export fails too, and writes nothing.
        let check = check.filter(|(readable, _)| *readable > 0);
        let Some((readable, damaged)) = check else {
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
        if damaged.is_empty() {
            assert!(out.status.success(), "{offset}: {stderr}");
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (mut served, mut refused) = (0, 0);
    for offset in positions() {
        let dir = damaged_copy(offset);
        let Some((readable, _)) = checked(dir.path()).filter(|(n, _)| *n > 0) else {
            continue;
        };
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
                refused += 1;
                eprintln!(
                    "at {offset}: check read {readable} reports; the store does not open: {message}"
                );
                continue;
            }
        };
        served += 1;
        eprintln!("at {offset}: check read {readable} reports; the store opens");
        // Made outside the runtime, as `serve` makes it: the search index (not under test
        // here) does not start indexing 1,500 reports.
        let state = AppState::new(store, Settings::new("https://reports.example")).expect("state");
        runtime.block_on(pages_of(&state, offset, readable));
    }
    assert!(
        served >= 5,
        "served {served} damaged stores, {refused} refused to open"
    );
}

/// Every list, feed and archive page of `state` answers, and the lists show every report
/// `check` could read (`readable`); report pages beside the damage answer too.
async fn pages_of(state: &AppState, offset: u64, readable: u64) {
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
        listed.len() as u64,
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
        assert_eq!(r.status, StatusCode::OK, "at {offset}: report {id}");
    }
}
