//! Upgrade in place, with the binary under test (the release artifact in CI): a store written
//! by every released schema (tests/fixtures/store-v<N>/, each written by the release that
//! introduced schema N and frozen since) is served by this release with every report intact;
//! a store written by a newer release is refused with a message naming it, and left alone.
//!
//! A new schema gets its fixture from the release that introduces it:
//!   CR_BIN=target/release/crypto-report cargo test --test upgrade -- --ignored write_the_fixture

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::fake::Fake;
use common::process::{Instance, bin};
use crypto_report::store::{FILE_NAME, Inspection, SCHEMA_VERSION};

fn fixture_dir(schema: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/store-v{schema}"))
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("fixture"))
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

fn gzip(bytes: &[u8], to: &Path) {
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(to).expect("create"),
        flate2::Compression::best(),
    );
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip");
}

/// One JSON object per report, keyed by id, as `export` writes them.
fn reports(jsonl: &[u8]) -> std::collections::BTreeMap<u64, serde_json::Value> {
    String::from_utf8_lossy(jsonl)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("json");
            // One instant, however the release that wrote it spelled it.
            let at =
                crypto_report::import::parse_created_at(v["created_at"].as_str().expect("date"))
                    .expect("date");
            v["created_at"] = at.timestamp_micros().into();
            (v["id"].as_u64().expect("id"), v)
        })
        .collect()
}

fn run(args: &[&str], data_dir: &Path) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("CR_DATA_DIR", data_dir)
        .output()
        .expect("run")
}

async fn get(client: &reqwest::Client, url: String) -> (u16, String) {
    let r = client.get(&url).send().await.expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_released_store_is_served_by_this_release() {
    let client = reqwest::Client::new();
    for schema in 1..=SCHEMA_VERSION {
        let fixture = fixture_dir(schema);
        assert!(
            fixture.join("crypto-report.redb.gz").exists(),
            "no store fixture for schema {schema}: write it with the release that introduced that schema (see the top of tests/upgrade.rs)"
        );
        let expected = reports(&gunzip(&fixture.join("reports.jsonl.gz")));
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(FILE_NAME),
            gunzip(&fixture.join("crypto-report.redb.gz")),
        )
        .expect("copy");

        let mut server = Instance::start(dir.path(), &[], &[]);
        let (status, health) = get(&client, server.url("/health")).await;
        assert_eq!(status, 200, "schema {schema}: {health}");
        let health: serde_json::Value = serde_json::from_str(&health).expect("json");
        assert_eq!(
            health["store"]["reports"],
            expected.len(),
            "schema {schema}"
        );
        for id in expected.keys() {
            let (status, _) = get(&client, server.url(&format!("/crypto_report/{id}"))).await;
            assert_eq!(status, 200, "schema {schema}: report {id}");
        }
        assert!(
            server.stop(),
            "schema {schema}: no clean stop: {}",
            server.logged()
        );

        let check = run(&["check"], dir.path());
        assert!(check.status.success(), "schema {schema}: {check:?}");
        let exported = run(&["export", "--to", "-"], dir.path());
        assert!(exported.status.success(), "schema {schema}: {exported:?}");
        let got = reports(&exported.stdout);
        assert_eq!(got.len(), expected.len(), "schema {schema}");
        for (id, want) in &expected {
            assert_eq!(
                got.get(id),
                Some(want),
                "schema {schema}: report {id} changed"
            );
        }
        assert!(
            matches!(
                crypto_report::store::inspect(&dir.path().join(FILE_NAME)),
                Ok(Inspection::Found { schema: s, .. }) if s == SCHEMA_VERSION
            ),
            "schema {schema} was not upgraded"
        );
    }
}

#[test]
fn a_store_from_a_newer_release_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    std::fs::write(
        &path,
        gunzip(&fixture_dir(SCHEMA_VERSION).join("crypto-report.redb.gz")),
    )
    .expect("copy");
    common::from_a_newer_release(&path, "9.1.0");
    let serve = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CR_DATA_DIR", dir.path())
        .env("CR_BINANCE_URL", common::process::NOWHERE)
        .output()
        .expect("serve");
    assert!(!serve.status.success(), "{serve:?}");
    let said = String::from_utf8_lossy(&serve.stderr);
    for part in [
        "was written by a newer release of crypto-report (9.1.0, store schema",
        &format!("reads store schemas up to {SCHEMA_VERSION}"),
        "never downgrades a store",
    ] {
        assert!(said.contains(part), "{part}: {said}");
    }
    for refused in [
        run(&["check"], dir.path()),
        run(&["export", "--to", "-"], dir.path()),
    ] {
        assert!(!refused.status.success(), "{refused:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("9.1.0"),
            "{refused:?}"
        );
    }
    assert_eq!(
        crypto_report::store::inspect(&path).expect("inspect"),
        Inspection::Found {
            schema: SCHEMA_VERSION + 1,
            reports: None,
            written_by: Some("9.1.0".into())
        },
        "the refused store was changed"
    );
}

/// Writes tests/fixtures/store-v<schema of the binary>/ with the binary under test: the bundled
/// samples imported, then served for a while against fake providers (market values, history,
/// the market at each report's publication, cached pages), stopped cleanly. Never replaces a
/// fixture: a released one is frozen.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes a fixture; run once per new schema, with the release that introduced it"]
async fn write_the_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample-reports.jsonl");
    let import = run(
        &["import", "--from", samples.to_str().expect("utf8")],
        dir.path(),
    );
    assert!(import.status.success(), "{import:?}");
    let fake = Fake::start().await;
    let env = [
        ("CR_COINGECKO_URL", fake.url("/cg")),
        ("CR_BINANCE_URL", fake.url("/bn")),
        ("CR_ALTERNATIVE_ME_URL", fake.url("/am")),
    ];
    let mut server = Instance::start(dir.path(), &[], &env);
    let client = reqwest::Client::new();
    // The first market round and the daily history of the samples' days.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for path in [
        "/",
        "/crypto_reports_list",
        "/rss.xml",
        "/crypto_report/101",
    ] {
        get(&client, server.url(path)).await;
    }
    assert!(server.stop(), "{}", server.logged());
    let path = dir.path().join(FILE_NAME);
    let schema = match crypto_report::store::inspect(&path).expect("inspect") {
        Inspection::Found { schema, .. } => schema,
        other => panic!("{other:?}"),
    };
    let out = fixture_dir(schema);
    assert!(
        !out.exists(),
        "{} exists: a released fixture is never rewritten",
        out.display()
    );
    std::fs::create_dir_all(&out).expect("mkdir");
    gzip(
        &std::fs::read(&path).expect("store"),
        &out.join("crypto-report.redb.gz"),
    );
    let exported = run(&["export", "--to", "-"], dir.path());
    assert!(exported.status.success(), "{exported:?}");
    gzip(&exported.stdout, &out.join("reports.jsonl.gz"));
    let version = Command::new(bin())
        .arg("--version")
        .output()
        .expect("version");
    std::fs::write(
        out.join("README.md"),
        format!(
            "A store of schema {schema}, written by\n\n```\n{}```\n\nthrough `cargo test --test upgrade -- --ignored write_the_fixture`: the bundled\nsamples imported, then served against the fake providers (market values, history, the\nmarket at each report's publication, cached pages) and stopped cleanly.\n`reports.jsonl.gz` is what that release exported from it. Frozen: never rewritten.\n",
            String::from_utf8_lossy(&version.stdout)
        ),
    )
    .expect("readme");
}
