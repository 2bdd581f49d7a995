//! `crypto-report doctor` as a real process, one test per check with its passing and failing
//! cases: fake providers on loopback (refusing a key, failing, with a clock that is off), a
//! real and a stopped PostgreSQL, a real Redis and a Redis 6 faked by a small server, a
//! read-only data directory, a port held by another program. No output names a secret.

mod common;

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::fake::{self, Fake, Fault};
use common::process::{bin, unprivileged};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const TOKEN: &str = "doctor-admin-token-5e5e5e5e5e";
const PUBLIC_URL: &str = "https://reports.vn-markets.net";

/// Every variable doctor reads that a test sets itself.
const CLEARED: [&str; 16] = [
    "CR_LISTEN",
    "HOST",
    "PORT",
    "CR_METRICS_LISTEN",
    "CR_ADMIN_TOKEN",
    "CR_PUBLIC_URL",
    "CR_DATA_DIR",
    "CR_PG_URL",
    "DATABASE_URL",
    "CR_REDIS_URL",
    "REDIS_URL",
    "CMC_API_KEY",
    "TAAPI_SECRET",
    "FINNHUB_API_KEY",
    "CR_COINGECKO_PRO_API_KEY",
    "RUST_LOG",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A sound configuration: every provider on the fake, with keys; a fresh data directory.
fn healthy(fake: &Fake, data_dir: &Path) -> Vec<(String, String)> {
    [
        ("CR_DATA_DIR", data_dir.display().to_string()),
        ("CR_LISTEN", format!("127.0.0.1:{}", free_port())),
        ("CR_ADMIN_TOKEN", TOKEN.into()),
        ("CR_PUBLIC_URL", PUBLIC_URL.into()),
        ("CR_COINGECKO_URL", fake.url("/cg")),
        ("CR_COINGECKO_API_KEY", fake::CG_KEY.into()),
        ("CR_COINMARKETCAP_URL", fake.url("/cmc")),
        ("CR_CMC_API_KEY", fake::CMC_KEY.into()),
        ("CR_BINANCE_URL", fake.url("/bn")),
        ("CR_ALTERNATIVE_ME_URL", fake.url("/am")),
        ("CR_TAAPI_URL", fake.url("/taapi")),
        ("CR_TAAPI_SECRET", fake::TAAPI_SECRET.into()),
        ("CR_FINNHUB_URL", fake.url("/fh")),
        ("CR_FINNHUB_API_KEY", fake::FINNHUB_KEY.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.into(), value.into()));
}

fn unset(env: &mut Vec<(String, String)>, key: &str) {
    env.retain(|(k, _)| k != key);
}

struct Diagnosis {
    out: Output,
    json: Value,
}

impl Diagnosis {
    fn check(&self, name: &str) -> &Value {
        self.json["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no check {name}: {}", self.json))
    }

    /// The status of check `name`, after making sure it said something and, unless ok, what
    /// to do.
    fn status(&self, name: &str) -> String {
        let c = self.check(name);
        assert!(!c["message"].as_str().unwrap_or("").is_empty(), "{c}");
        if c["status"] != "ok" {
            assert!(!c["advice"].as_str().unwrap_or("").is_empty(), "{c}");
        }
        c["status"].as_str().expect("status").to_owned()
    }

    fn message(&self, name: &str) -> String {
        self.check(name)["message"]
            .as_str()
            .expect("message")
            .to_owned()
    }

    fn exit(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
}

/// `doctor --json` with `env`, through `command` (the binary, or the binary as nobody). Checks
/// what every run must hold: JSON, the exit code agreeing with the failures, no secret.
async fn diagnose_with(mut command: Command, env: &[(String, String)]) -> Diagnosis {
    for k in CLEARED {
        command.env_remove(k);
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run doctor");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let failed = json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .any(|c| c["status"] == "fail");
    assert_eq!(json["ok"], !failed, "{json}");
    assert_eq!(out.status.success(), !failed, "{out:?}");
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for secret in [
        TOKEN,
        fake::CG_KEY,
        fake::CMC_KEY,
        fake::TAAPI_SECRET,
        fake::FINNHUB_KEY,
        "pg-doctor-password",
    ] {
        assert!(!all.contains(secret), "a secret was printed: {all}");
    }
    Diagnosis { out, json }
}

async fn diagnose(env: &[(String, String)]) -> Diagnosis {
    let mut command = Command::new(bin());
    command.args(["doctor", "--json"]).current_dir("/");
    diagnose_with(command, env).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sound_setup_passes_and_the_table_says_so() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = healthy(&fake, dir.path());
    let d = diagnose(&env).await;
    assert_eq!(d.exit(), 0, "{}", d.json);
    for c in d.json["checks"].as_array().expect("checks") {
        assert_eq!(c["status"], "ok", "{c}");
    }
    assert_eq!(d.json["counts"]["fail"], 0);
    // The table: one line per check, and the totals.
    let mut command = Command::new(bin());
    command.arg("doctor").current_dir("/");
    for k in CLEARED {
        command.env_remove(k);
    }
    let out = command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for name in [
        "data directory",
        "store",
        "port",
        "admin token",
        "public URL",
        "provider finnhub",
        "clock",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok") && l.contains(name)),
            "{name}: {text}"
        );
    }
    assert!(text.contains(" ok, 0 warning(s), 0 failure(s)"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_directory_writable_or_read_only() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Readable by the unprivileged user the failing case runs as.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let mut env = healthy(&fake, &data);
    let ok = diagnose(&env).await;
    assert_eq!(ok.status("data directory"), "ok");
    assert!(
        ok.message("data directory").contains("writable"),
        "{}",
        ok.json
    );

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let mut command = unprivileged(&["doctor", "--json"]);
    command.current_dir("/");
    let read_only = diagnose_with(command, &env).await;
    assert_eq!(read_only.status("data directory"), "fail");
    assert!(
        read_only
            .message("data directory")
            .contains("cannot write in"),
        "{}",
        read_only.json
    );
    assert_ne!(read_only.exit(), 0);

    // A folder the user may not even look into (as the service's state directory is to
    // anyone but root and the service): said so, not taken for a missing one.
    if rustix::process::geteuid().is_root() {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        let mut command = unprivileged(&["doctor", "--json"]);
        command.current_dir("/");
        let hidden = diagnose_with(command, &env).await;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        for check in ["data directory", "store"] {
            assert_eq!(hidden.status(check), "fail");
            assert!(
                hidden.message(check).contains("cannot look at"),
                "{}",
                hidden.json
            );
        }
    }

    // One that does not exist yet is fine while serve can create it.
    set(
        &mut env,
        "CR_DATA_DIR",
        &dir.path().join("later").display().to_string(),
    );
    assert_eq!(diagnose(&env).await.status("data directory"), "ok");
}

/// A store written through the binary (schema of this release, 2 reports).
fn store_with_reports(data: &Path) {
    let file = data.join("in.jsonl");
    let line = |id: u64| {
        serde_json::json!({"id": id, "html_content": format!("<p>Báo cáo {id}</p>"), "created_at": "2026-11-18T08:00:00Z"})
            .to_string()
    };
    std::fs::write(&file, format!("{}\n{}\n", line(1), line(2))).expect("write");
    let out = Command::new(bin())
        .args(["import", "--from"])
        .arg(&file)
        .env("CR_DATA_DIR", data)
        .output()
        .expect("import");
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn store_current_older_newer_foreign_or_in_use() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = healthy(&fake, dir.path());
    let path = dir.path().join(crypto_report::store::FILE_NAME);

    let missing = diagnose(&env).await;
    assert_eq!(missing.status("store"), "ok");
    assert!(missing.message("store").contains("does not exist yet"));

    store_with_reports(dir.path());
    let current = diagnose(&env).await;
    assert_eq!(current.status("store"), "ok");
    let message = current.message("store");
    assert!(
        message.contains("(current), 2 reports, last written by"),
        "{message}"
    );

    // In use by a running server: fine, and the port is held by this service.
    let server = common::process::Instance::start(dir.path(), &[], &[]);
    let mut server_env = env.clone();
    set(&mut server_env, "CR_LISTEN", &server.addr.to_string());
    let in_use = diagnose(&server_env).await;
    drop(server);
    assert_eq!(in_use.status("store"), "ok");
    assert!(
        in_use
            .message("store")
            .contains("in use by a running crypto-report")
    );
    assert_eq!(in_use.status("port"), "ok");
    assert!(
        in_use.message("port").contains("held by crypto-report"),
        "{}",
        in_use.json
    );

    common::from_a_newer_release(&path, "9.1.0");
    let newer = diagnose(&env).await;
    assert_eq!(newer.status("store"), "fail");
    assert!(
        newer
            .message("store")
            .contains("written by a newer release, last written by 9.1.0"),
        "{}",
        newer.json
    );
    assert_ne!(newer.exit(), 0);

    std::fs::write(&path, "these are not the bytes of a store\n").expect("write");
    let foreign = diagnose(&env).await;
    assert_eq!(foreign.status("store"), "fail");
    assert!(
        foreign
            .message("store")
            .contains("not a crypto-report store"),
        "{}",
        foreign.json
    );

    // A store of the first release: upgraded at the next start, a warning.
    let v1 = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/store-v1/crypto-report.redb.gz"
    ))
    .expect("fixture");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(v1.as_slice())
        .read_to_end(&mut bytes)
        .expect("gunzip");
    std::fs::write(&path, bytes).expect("write");
    let older = diagnose(&env).await;
    assert_eq!(older.status("store"), "warn");
    assert!(
        older
            .message("store")
            .contains("schema 1, from an earlier release"),
        "{}",
        older.json
    );
    assert_eq!(older.exit(), 0, "a warning is not a failure");
}

#[tokio::test(flavor = "multi_thread")]
async fn port_free_or_held_by_another_program() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = healthy(&fake, dir.path());
    assert_eq!(diagnose(&env).await.status("port"), "ok");
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = squatter.local_addr().expect("addr");
    set(&mut env, "CR_LISTEN", &addr.to_string());
    let held = diagnose(&env).await;
    drop(squatter);
    assert_eq!(held.status("port"), "fail");
    assert!(
        held.message("port").contains("held by another program"),
        "{}",
        held.json
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_token_set_missing_or_short() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = healthy(&fake, dir.path());
    assert_eq!(diagnose(&env).await.status("admin token"), "ok");
    set(&mut env, "CR_ADMIN_TOKEN", "short-token");
    let short = diagnose(&env).await;
    assert_eq!(short.status("admin token"), "fail");
    assert!(!short.json.to_string().contains("short-token"));
    unset(&mut env, "CR_ADMIN_TOKEN");
    assert_eq!(diagnose(&env).await.status("admin token"), "warn");
}

#[tokio::test(flavor = "multi_thread")]
async fn public_url_absolute_placeholder_or_missing() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = healthy(&fake, dir.path());
    assert_eq!(diagnose(&env).await.status("public URL"), "ok");
    set(&mut env, "CR_PUBLIC_URL", "https://reports.example.com");
    assert_eq!(diagnose(&env).await.status("public URL"), "warn");
    unset(&mut env, "CR_PUBLIC_URL");
    assert_eq!(diagnose(&env).await.status("public URL"), "warn");
    // Not absolute: refused before any check, naming the option (as every command does).
    let out = Command::new(bin())
        .args(["doctor", "--public-url", "reports.vn-markets.net"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--public-url"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_answer_refuse_a_key_or_fail() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = healthy(&fake, dir.path());
    let ok = diagnose(&env).await;
    for p in [
        "coingecko",
        "coinmarketcap",
        "binance",
        "alternative.me",
        "taapi",
        "finnhub",
    ] {
        assert_eq!(ok.status(&format!("provider {p}")), "ok", "{}", ok.json);
    }
    assert!(ok.message("provider taapi").contains("key accepted"));
    assert!(ok.message("provider binance").contains("keyless"));
    // One bounded call each.
    assert_eq!(fake.hits("taapi"), 1);
    assert_eq!(fake.hits("bn.ticker"), 1);

    fake.sticky(
        "taapi",
        Fault::Status(401, r#"{"error":"Invalid secret"}"#, None),
    );
    fake.sticky("bn.ticker", Fault::Status(500, "{}", None));
    fake.sticky("fh.SPY", Fault::Body("<html>captive portal</html>".into()));
    let bad = diagnose(&env).await;
    assert_eq!(bad.status("provider taapi"), "fail");
    assert!(
        bad.message("provider taapi")
            .contains("refused the key: HTTP 401"),
        "{}",
        bad.json
    );
    assert!(
        bad.check("provider taapi")["advice"]
            .as_str()
            .unwrap_or("")
            .contains("CR_TAAPI_SECRET")
    );
    // Keyless and covered by the fallbacks: a warning.
    assert_eq!(bad.status("provider binance"), "warn");
    assert_eq!(bad.status("provider finnhub"), "fail");
    assert!(
        bad.message("provider finnhub").contains("invalid response"),
        "{}",
        bad.json
    );
    assert_ne!(bad.exit(), 0);

    // Nothing answers at all: even keyless providers fail.
    for key in [
        "CR_COINGECKO_API_KEY",
        "CR_CMC_API_KEY",
        "CR_TAAPI_SECRET",
        "CR_FINNHUB_API_KEY",
    ] {
        unset(&mut env, key);
    }
    for p in [
        "CR_COINGECKO_URL",
        "CR_BINANCE_URL",
        "CR_ALTERNATIVE_ME_URL",
    ] {
        set(&mut env, p, common::process::NOWHERE);
    }
    let offline = diagnose(&env).await;
    assert_eq!(offline.status("provider coingecko"), "fail");
    assert_eq!(offline.status("clock"), "warn");
    assert!(
        offline.json["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| c["check"] != "provider taapi")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clock_in_step_with_a_provider_or_off() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = healthy(&fake, dir.path());
    let ok = diagnose(&env).await;
    assert_eq!(ok.status("clock"), "ok");
    fake.set_clock_offset(300);
    let off = diagnose(&env).await;
    assert_eq!(off.status("clock"), "fail");
    assert!(off.message("clock").contains("behind"), "{}", off.json);
    fake.set_clock_offset(-45);
    assert_eq!(
        diagnose(&env).await.status("clock"),
        "ok",
        "within a minute"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_reachable_with_its_table_stopped_or_without_it() {
    let Some(admin) = common::pg::admin_url() else {
        return;
    };
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = healthy(&fake, dir.path());
    let db = common::pg::create_db(&admin, "cr_doctor").await;
    common::pg::apply(&db.client, &["current.sql"]).await;
    db.client
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE doctor_reader LOGIN PASSWORD 'pg-doctor-password'; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
             GRANT SELECT ON crypto_report TO doctor_reader",
        )
        .await
        .expect("a reading role");
    let host_and_db = db.url.split_once('@').expect("user in the URL").1;
    let reader = format!("postgres://doctor_reader:pg-doctor-password@{host_and_db}");
    set(&mut env, "CR_PG_URL", &reader);
    let ok = diagnose(&env).await;
    assert_eq!(ok.status("PostgreSQL"), "ok", "{}", ok.json);
    assert!(
        ok.message("PostgreSQL")
            .contains("crypto_report recognised, with English columns"),
        "{}",
        ok.json
    );

    let empty = common::pg::create_db(&admin, "cr_doctor_empty").await;
    set(&mut env, "CR_PG_URL", &empty.url);
    let no_table = diagnose(&env).await;
    assert_eq!(no_table.status("PostgreSQL"), "fail");
    assert!(
        no_table
            .message("PostgreSQL")
            .contains("neither a `crypto_report` nor a `report` table")
    );

    // A stopped server: nothing listens on its port any more.
    let stopped = format!(
        "postgres://reader:pg-doctor-password@127.0.0.1:{}/reports?connect_timeout=3",
        free_port()
    );
    set(&mut env, "CR_PG_URL", &stopped);
    let down = diagnose(&env).await;
    assert_eq!(down.status("PostgreSQL"), "fail");
    assert!(
        down.message("PostgreSQL")
            .contains("cannot connect to PostgreSQL at 127.0.0.1"),
        "{}",
        down.json
    );
}

/// A Redis 6 as far as a client can tell: `+OK` to everything, `INFO` says 6.2.14.
async fn fake_redis_6() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                // One RESP array of bulk strings per command.
                loop {
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let n: usize = line.trim().trim_start_matches('*').parse().unwrap_or(0);
                    let mut args = Vec::new();
                    for _ in 0..n {
                        let mut len = String::new();
                        read.read_line(&mut len).await.ok();
                        let len: usize = len.trim().trim_start_matches('$').parse().unwrap_or(0);
                        let mut arg = vec![0u8; len + 2];
                        if read.read_exact(&mut arg).await.is_err() {
                            return;
                        }
                        arg.truncate(len);
                        args.push(String::from_utf8_lossy(&arg).to_uppercase());
                    }
                    let reply = if args.first().is_some_and(|a| a == "INFO") {
                        let body = "# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n";
                        format!("${}\r\n{body}\r\n", body.len())
                    } else {
                        "+OK\r\n".to_owned()
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_seven_six_or_unreachable() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = healthy(&fake, dir.path());
    if let Some(redis) = common::redis::RedisServer::start() {
        set(&mut env, "CR_REDIS_URL", &redis.url());
        let ok = diagnose(&env).await;
        assert_eq!(ok.status("Redis"), "ok", "{}", ok.json);
    }
    let six = fake_redis_6().await;
    set(
        &mut env,
        "CR_REDIS_URL",
        &format!("redis://127.0.0.1:{six}/0"),
    );
    let old = diagnose(&env).await;
    assert_eq!(old.status("Redis"), "fail");
    assert!(
        old.message("Redis").contains("Redis 6.2.14 is too old"),
        "{}",
        old.json
    );
    set(
        &mut env,
        "CR_REDIS_URL",
        &format!("redis://:pw@127.0.0.1:{}/0", free_port()),
    );
    let down = diagnose(&env).await;
    assert_eq!(down.status("Redis"), "fail");
    assert!(!down.json.to_string().contains(":pw@"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_env_file_is_read_like_the_service_reads_it() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = healthy(&fake, dir.path());
    let file = dir.path().join("crypto-report.env");
    let lines: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    std::fs::write(&file, lines.join("\n")).expect("write");
    let mut command = Command::new(bin());
    command
        .args(["doctor", "--json", "--env-file"])
        .arg(&file)
        .current_dir("/");
    let d = diagnose_with(command, &[]).await;
    assert_eq!(d.status("admin token"), "ok", "{}", d.json);
    assert_eq!(d.status("provider taapi"), "ok", "{}", d.json);
    // The environment still beats the file.
    let mut command = Command::new(bin());
    command
        .args(["doctor", "--json", "--env-file"])
        .arg(&file)
        .current_dir("/");
    let d = diagnose_with(command, &[("CR_ADMIN_TOKEN".into(), "short".into())]).await;
    assert_eq!(d.status("admin token"), "fail");
    let missing = Command::new(bin())
        .args(["doctor", "--env-file", "/nonexistent/crypto-report.env"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(78), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--env-file"));
}
