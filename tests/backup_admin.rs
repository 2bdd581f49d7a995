//! `POST /admin/backup` as an operator meets it: one at a time (409 for the next), copies left
//! by a killed server removed at the next start, and a damaged store answered with what is
//! damaged, never "temporarily unavailable" or "internal error".

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{ADMIN_TOKEN, publish, report};
use crypto_report::secret::Secret;
use crypto_report::store::{FILE_NAME, Store};
use crypto_report::{AppState, Settings};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn settings() -> Settings {
    let mut s = Settings::new("https://reports.example");
    s.admin_token = Some(Secret::new(ADMIN_TOKEN));
    s
}

fn backup_request() -> Request<Body> {
    Request::post("/admin/backup")
        .header(header::HOST, "reports.example")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .expect("request")
}

#[tokio::test]
async fn a_copy_left_by_a_killed_server_is_removed_at_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(&dir.path().join(FILE_NAME)).expect("store"));
    // What `kill -9` during a backup leaves: a temporary copy as large as the store.
    let left = dir.path().join(".backup-k1LL3d");
    std::fs::write(&left, vec![0u8; 1 << 20]).expect("leftover");
    let unrelated = dir.path().join("notes.txt");
    std::fs::write(&unrelated, b"mine").expect("unrelated");
    let _store = Store::open(&dir.path().join(FILE_NAME)).expect("reopen");
    assert!(!left.exists(), "the leftover copy is gone");
    assert!(unrelated.exists(), "nothing else is touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_backup_at_a_time_the_next_is_told_to_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = AppState::new(
        Store::open(&dir.path().join(FILE_NAME)).expect("store"),
        settings(),
    )
    .expect("state");
    publish(&state, vec![report(1, "2026-01-02T08:00:00Z")]).await;
    let app = crypto_report::app(state.clone());
    let first = app.clone().oneshot(backup_request()).await.expect("first");
    assert_eq!(first.status(), StatusCode::OK);
    // While the first is still being sent, a second is refused.
    let second = app.clone().oneshot(backup_request()).await.expect("second");
    assert_eq!(second.status(), StatusCode::CONFLICT);
    let message = second.into_body().collect().await.expect("body").to_bytes();
    assert!(
        String::from_utf8_lossy(&message).contains("backup is being taken"),
        "{message:?}"
    );
    let copy = first.into_body().collect().await.expect("body").to_bytes();
    assert!(copy.len() > 4096);
    // Sent: the next one runs, and no temporary copy stays behind.
    let third = app.oneshot(backup_request()).await.expect("third");
    assert_eq!(third.status(), StatusCode::OK);
    drop(third.into_body().collect().await.expect("body"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".backup-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_is_answered_with_what_is_damaged() {
    // Built by the importer, a process of its own: the file is closed cleanly.
    let pristine = tempfile::tempdir().expect("tempdir");
    let path = pristine.path().join(FILE_NAME);
    let mut lines = String::new();
    for id in 1..=600u64 {
        let words: Vec<String> = (0..400).map(|w| format!("w{}", (w * id) % 997)).collect();
        let line = serde_json::json!({
            "id": id,
            "html_content": format!("<section id=\"s\"><h2>R {id}</h2><p>{}</p></section>", words.join(" ")),
            "created_at": (chrono::DateTime::parse_from_rfc3339("2026-01-02T08:00:00Z").expect("date")
                + chrono::TimeDelta::hours(i64::try_from(id).expect("id"))).to_rfc3339(),
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let jsonl = pristine.path().join("reports.jsonl");
    std::fs::write(&jsonl, lines).expect("jsonl");
    let out = std::process::Command::new(common::process::bin())
        .args(["import", "--from", jsonl.to_str().expect("utf8")])
        .env("CR_DATA_DIR", pristine.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("import");
    assert!(out.status.success(), "{out:?}");
    let bytes = std::fs::read(&path).expect("read");
    let mut explained = 0;
    for k in 1..10u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut damaged = bytes.clone();
        let at = (bytes.len() as u64 * k / 10 / 4096 * 4096) as usize;
        let end = (at + 16 * 4096).min(damaged.len());
        let mut noise = 0x1234_5678_9ABC_DEF1_u64 ^ k;
        for b in &mut damaged[at..end] {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            *b = noise as u8;
        }
        std::fs::write(dir.path().join(FILE_NAME), &damaged).expect("write");
        let store = match Store::open(&dir.path().join(FILE_NAME)) {
            Ok(store) => store,
            Err(e) => {
                eprintln!("at {at}: the store does not open: {e}");
                continue;
            }
        };
        let state = AppState::new(store, settings()).expect("state");
        let response = crypto_report::app(state)
            .oneshot(backup_request())
            .await
            .expect("answer");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        eprintln!("at {at} of {}: {status}", bytes.len());
        match status {
            // The damage is in record bytes, copied as they are: `check` of the copy names it.
            StatusCode::OK => {}
            StatusCode::INTERNAL_SERVER_ERROR => {
                assert!(
                    text.contains("damaged") && text.contains("crypto-report check"),
                    "at {at}: {text}"
                );
                explained += 1;
            }
            other => panic!("at {at}: {other}: {text}"),
        }
    }
    assert!(explained > 0, "no position damaged what a backup reads");
}
