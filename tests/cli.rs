//! The binary's subcommands, run as real processes: import, export, check, the lock held by
//! another process, configuration errors.

mod common;

use std::process::{Command, Output};

use common::process::bin;
use crypto_report::store::{FILE_NAME, Store};

fn run(args: &[&str], data_dir: &std::path::Path) -> Output {
    Command::new(bin())
        .args(args)
        .env("CR_DATA_DIR", data_dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run binary")
}

fn line(id: u64, created_at: &str) -> String {
    serde_json::json!({
        "id": id,
        "html_content": format!("<section id=\"s\"><h2>Báo cáo {id}</h2><p>Nội dung.</p></section>"),
        "css_content": null,
        "js_content": null,
        "html_content_en": null,
        "js_content_en": null,
        "created_at": created_at,
    })
    .to_string()
}

#[test]
fn import_export_check_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("in.jsonl");
    let text = [
        line(1, "2026-11-18T08:00:00Z"),
        "{\"id\": 2, \"html_content\": ".into(),
        line(3, "2026-11-19T08:00:00"),
    ]
    .join("\n");
    std::fs::write(&file, text).expect("write");
    let out = run(
        &["import", "--from", file.to_str().expect("utf8")],
        dir.path(),
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("new 2, updated 0, unchanged 0, skipped 1"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped line 2"), "{stderr}");

    let again = run(
        &["import", "--from", file.to_str().expect("utf8")],
        dir.path(),
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("new 0, updated 0, unchanged 2"));

    let check = run(&["check"], dir.path());
    assert!(check.status.success(), "{check:?}");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        report.contains("reports: 2")
            && report.contains("schema version: 3")
            && report.contains("ok"),
        "{report}"
    );

    let backup = dir.path().join("out.jsonl");
    let export = run(
        &["export", "--to", backup.to_str().expect("utf8")],
        dir.path(),
    );
    assert!(export.status.success(), "{export:?}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&backup)
        .expect("backup")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["id"], 3);
    assert_eq!(lines[1]["created_at"], "2026-11-19T08:00:00Z");
    let keys: Vec<&String> = lines[0].as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 7, "exactly the generator's columns: {keys:?}");
}

#[test]
fn a_second_writer_process_exits_75_with_advice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _held = Store::open(&dir.path().join(FILE_NAME)).expect("open");
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, line(1, "2026-11-18T08:00:00Z")).expect("write");
    let out = run(
        &["import", "--from", file.to_str().expect("utf8")],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
    assert!(stderr.contains("serve"), "{stderr}");
}

#[test]
fn check_fails_on_a_missing_or_foreign_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(&["check"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    std::fs::write(dir.path().join(FILE_NAME), b"this is not a database").expect("write");
    let out = run(&["check"], dir.path());
    assert!(!out.status.success());
}

#[test]
fn bad_configuration_names_the_option_and_hides_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(&["serve", "--listen", "not-an-address"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CR_DATA_DIR", dir.path())
        .env("CR_ADMIN_TOKEN", "tiny-secret")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CR_ADMIN_TOKEN"), "{stderr}");
    assert!(!stderr.contains("tiny-secret"), "{stderr}");
    let out = Command::new(bin())
        .args(["serve"])
        .env("CR_DATA_DIR", dir.path())
        .env_remove("CR_LISTEN")
        .env("PORT", "seventy")
        .output()
        .expect("run");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PORT"),
        "{out:?}"
    );
}

#[test]
fn a_malformed_announce_target_stops_the_start_named_without_its_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (urls, shown) in [
        (
            "tgram://123456:TOPSECRET-token/-1001,discord://not-a-number/TOPSECRET",
            "discord://not-a-number/***",
        ),
        (
            "tgram://123456:TOPSECRET-token/-1001?lang=fr",
            "tgram://***/-1001?lang=fr",
        ),
        (
            "webhook+https://h.example/x?secret=TOPSECRET&colour=red",
            "secret=***",
        ),
    ] {
        let out = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("CR_DATA_DIR", dir.path())
            .env("CR_ANNOUNCE", urls)
            .env_remove("RUST_LOG")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(78), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--announce / CR_ANNOUNCE"), "{stderr}");
        assert!(stderr.contains(shown), "{stderr}");
        assert!(!stderr.contains("TOPSECRET"), "{stderr}");
    }
    // The same through the flag, for `announce test`, which names the known targets.
    let out = Command::new(bin())
        .args([
            "announce",
            "test",
            "--target",
            "nope",
            "--announce",
            "discord://1/TOPSECRET",
        ])
        .env_remove("CR_ANNOUNCE")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("configured: discord-1"), "{stderr}");
    assert!(!stderr.contains("TOPSECRET"), "{stderr}");
}

#[test]
fn help_names_secret_variables_without_their_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin())
        .args(["serve", "--help"])
        .current_dir(dir.path())
        .env("CR_ADMIN_TOKEN", "admin-token-value-0123456789")
        .env("CR_FINNHUB_API_KEY", "finnhub-key-value")
        .env("CR_CACHE_MB", "32")
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("CR_ADMIN_TOKEN"), "{help}");
    assert!(!help.contains("admin-token-value"), "{help}");
    assert!(!help.contains("finnhub-key-value"), "{help}");
    assert!(
        help.contains("CR_CACHE_MB=32"),
        "ordinary values still show: {help}"
    );
}

/// The bundled samples imported into a fresh store in `dir`.
fn seeded(dir: &std::path::Path) {
    let samples = format!("{}/data/sample-reports.jsonl", env!("CARGO_MANIFEST_DIR"));
    let out = run(&["import", "--from", &samples], dir);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn an_empty_store_file_is_refused_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, b"").expect("truncate");
    for args in [
        &["check"][..],
        &["export", "--to", "-"],
        &["serve", "--listen", "127.0.0.1:0"],
    ] {
        let out = run(args, dir.path());
        assert!(!out.status.success(), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("empty file"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::metadata(&path).expect("still there").len(), 0);
    std::fs::write(&path, b"PK\x03\x04 a zip file").expect("foreign");
    let out = run(&["serve", "--listen", "127.0.0.1:0"], dir.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a crypto-report store"));
}

#[test]
fn check_after_an_unclean_stop_says_what_it_found_and_repairs_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    seeded(dir.path());
    // A server killed with SIGKILL leaves the store needing redb's repair.
    let mut server = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CR_DATA_DIR", dir.path())
        .env("CR_COINGECKO_URL", "http://127.0.0.1:9")
        .env("CR_BINANCE_URL", "http://127.0.0.1:9")
        .env("CR_ALTERNATIVE_ME_URL", "http://127.0.0.1:9")
        .env("CR_COINMARKETCAP_URL", "http://127.0.0.1:9")
        .env("CR_TAAPI_URL", "http://127.0.0.1:9")
        .env("CR_FINNHUB_URL", "http://127.0.0.1:9")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let mut log = std::io::BufReader::new(server.stderr.take().expect("stderr"));
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut log, &mut line).expect("log") > 0
        && !line.contains("listening")
    {
        line.clear();
    }
    server.kill().expect("kill -9");
    server.wait().expect("wait");

    let before = std::fs::read(dir.path().join(FILE_NAME)).expect("read");
    let check = run(&["check"], dir.path());
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{check:?}");
    assert!(
        stdout.contains("not closed cleanly") && stdout.contains("reports: 7"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(dir.path().join(FILE_NAME)).expect("read"),
        before,
        "check changed the file"
    );

    let repair = run(&["check", "--repair"], dir.path());
    assert!(repair.status.success(), "{repair:?}");
    assert!(String::from_utf8_lossy(&repair.stdout).contains("repaired in place"));
    let again = run(&["check"], dir.path());
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success() && !stdout.contains("note:"),
        "{stdout}"
    );
}

#[test]
fn overwritten_pages_are_reported_never_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    seeded(dir.path());
    let path = dir.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    let end = (middle + 64 * 1024).min(bytes.len());
    bytes[middle..end].fill(0xA5);
    std::fs::write(&path, &bytes).expect("write");
    for args in [&["check"][..], &["export", "--to", "-"]] {
        let out = run(args, dir.path());
        assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let check = run(&["check"], dir.path());
    assert!(!check.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(all.contains("problem") || all.contains("error"), "{all}");
}

#[test]
fn a_full_disk_during_import_says_what_was_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("in.jsonl");
    // Text that does not compress: the store must really grow.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = || {
        (0..200_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'!' + (seed % 90) as u8)
            })
            .collect::<String>()
    };
    let lines: Vec<String> = (1..=60)
        .map(|i| {
            serde_json::json!({
                "id": i, "html_content": format!("<p>{i} {}</p>", noise()), "css_content": null,
                "js_content": null, "html_content_en": null, "js_content_en": null,
                "created_at": "2026-11-18T08:00:00Z",
            })
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("write");
    // A file-size limit stands in for a full disk: writes past it fail (SIGXFSZ ignored).
    let out = Command::new("bash")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 4096; exec \"$0\" import --from \"$1\"",
            &bin(),
        ])
        .arg(&file)
        .env("CR_DATA_DIR", dir.path().join("store"))
        .output()
        .expect("run");
    assert!(!out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(committed before the error)"), "{out:?}");
    let committed: u64 = stdout
        .trim()
        .strip_prefix("new ")
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect("a summary line");
    let check = run(&["check", "--repair"], &dir.path().join("store"));
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{check:?}");
    assert!(
        report.contains(&format!("reports: {committed}")),
        "{report}"
    );
}

#[test]
fn backup_is_consistent_whether_or_not_a_server_holds_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    seeded(dir.path());
    let exported = |data: &std::path::Path| {
        let out = run(&["export", "--to", "-"], data);
        assert!(out.status.success(), "{out:?}");
        out.stdout
    };
    let original = exported(dir.path());

    // No server: the command copies the store itself.
    let direct = dir.path().join("direct.redb");
    let out = run(
        &["backup", "--to", direct.to_str().expect("utf8")],
        dir.path(),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("backup of 7 reports"),
        "{out:?}"
    );
    let restored = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&direct, restored.path().join(FILE_NAME)).expect("copy");
    assert_eq!(exported(restored.path()), original);

    // A server holds the store: it takes the copy from a read transaction.
    const TOKEN: &str = "backup-admin-token-0123456789";
    let mut server = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", TOKEN])
        .env("CR_DATA_DIR", dir.path())
        .envs(
            [
                "COINGECKO",
                "COINMARKETCAP",
                "BINANCE",
                "ALTERNATIVE_ME",
                "TAAPI",
                "FINNHUB",
            ]
            .map(|p| (format!("CR_{p}_URL"), "http://127.0.0.1:9")),
        )
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let mut log = std::io::BufReader::new(server.stderr.take().expect("stderr"));
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut log, &mut line).expect("log") > 0,
            "no address"
        );
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    let online = dir.path().join("online.redb");
    let refused = run(
        &[
            "backup",
            "--to",
            online.to_str().expect("utf8"),
            "--server",
            &format!("http://{addr}"),
        ],
        dir.path(),
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("admin token"),
        "{refused:?}"
    );
    let out = Command::new(bin())
        .args(["backup", "--to", online.to_str().expect("utf8")])
        .args(["--server", &format!("http://{addr}")])
        .env("CR_DATA_DIR", dir.path())
        .env("CR_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("backup");
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("taken by the server"),
        "{out:?}"
    );
    let restored = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&online, restored.path().join(FILE_NAME)).expect("copy");
    assert_eq!(exported(restored.path()), original);
    assert!(!dir.path().join("online.partial").exists());
}

/// Every option of `serve --help` and `demo --help` as (flag, env, default).
fn help_options() -> Vec<(String, Option<String>, Option<String>)> {
    let mut options: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for command in ["serve", "demo"] {
        let out = Command::new(bin())
            .args([command, "--help"])
            .output()
            .expect("run --help");
        let help = String::from_utf8(out.stdout).expect("utf8");
        let mut lines = help.lines().peekable();
        while let Some(line) = lines.next() {
            let Some(flag) = line.trim_start().strip_prefix("--") else {
                continue;
            };
            let flag = format!("--{}", flag.split(' ').next().unwrap_or_default());
            if flag == "--help" || options.iter().any(|(f, _, _)| *f == flag) {
                continue;
            }
            let text = lines.next().unwrap_or_default();
            let bracket = |key: &str| {
                let start = text.find(key)? + key.len();
                let end = text[start..].find(']')? + start;
                Some(text[start..end].to_owned())
            };
            let env = bracket("[env: ").map(|e| e.trim_end_matches('=').to_owned());
            // A hand-written default in the description ("x, or y") counts up to its comma.
            let default =
                bracket("[default: ").map(|d| d.split(", ").next().unwrap_or("").to_owned());
            options.push((flag, env, default));
        }
    }
    options
}

#[test]
fn the_readme_options_table_matches_help() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Configuration section");
    let help = help_options();
    let mut documented = Vec::new();
    for row in section.lines().filter(|l| l.starts_with("| `--")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (flags, env_cell, default_cell) = (cells[1], cells[2], cells[3]);
        let flags: Vec<&str> = flags.split('`').filter(|f| f.starts_with("--")).collect();
        for flag in &flags {
            let (_, env, default) = help
                .iter()
                .find(|(f, _, _)| f == flag)
                .unwrap_or_else(|| panic!("README documents {flag}, which --help does not know"));
            documented.push(flag.to_string());
            if flags.len() == 1 {
                match env.as_deref() {
                    Some(env) => assert!(
                        env_cell.starts_with(&format!("`{env}`")),
                        "{flag}: README says {env_cell}, --help says {env}"
                    ),
                    None => assert_eq!(env_cell, "(none)", "{flag}: --help names no variable"),
                }
            }
            match default {
                // A row of several flags may describe their defaults in words.
                Some(_) if flags.len() > 1 && !default_cell.contains('`') => {}
                Some(d) => assert!(
                    default_cell.contains(&format!("`{d}`")),
                    "{flag}: README says default {default_cell}, --help says {d}"
                ),
                None => assert!(
                    default_cell == "unset"
                        || !default_cell.contains('`')
                        || default_cell.contains('<'),
                    "{flag}: README gives default {default_cell}, --help gives none"
                ),
            }
        }
    }
    for (flag, _, _) in &help {
        assert!(
            documented.contains(flag),
            "{flag} is missing from the README's options table"
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One HTTP/1.0 GET; the status line and the body.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn metrics_listen_serves_metrics_without_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (main, metrics) = (free_port(), free_port());
    let mut child = Command::new(bin())
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{main}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics}"),
        ])
        .current_dir(dir.path())
        .env_remove("CR_ADMIN_TOKEN")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start demo");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let scraped = loop {
        if let Some(text) = http_get(metrics, "/metrics") {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "no metrics listener");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // Only /metrics there; the site stays on the main listener.
    let other = http_get(metrics, "/health").unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(scraped.starts_with("HTTP/1.0 200"), "{scraped}");
    assert!(scraped.contains("crypto_report_reports 7"), "{scraped}");
    assert!(other.starts_with("HTTP/1.0 404"), "{other}");
}

#[test]
fn under_systemd_it_signals_ready_then_pings_the_watchdog_with_a_status() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .expect("timeout");
    let mut child = Command::new(bin())
        .args(["demo", "--listen", &format!("127.0.0.1:{}", free_port())])
        .current_dir(dir.path())
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "600000")
        .env_remove("WATCHDOG_PID")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start demo");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut messages = Vec::new();
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let pings = messages.iter().filter(|m| m.contains("WATCHDOG=1")).count();
        if pings >= 3 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let all = messages.join("|");
    assert!(
        messages.first().is_some_and(|m| m.contains("READY=1")),
        "{all}"
    );
    let pings = messages.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(pings >= 3, "{pings} watchdog pings: {all}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("STATUS=7 reports; market demo")),
        "{all}"
    );
}

#[test]
fn a_source_that_is_neither_a_url_nor_a_file_never_echoes_a_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    for from in [
        "postgres:/u:pw-4242-secret@h/db",
        "mysql://u:pw-4242-secret@h/db",
        "u:pw-4242-secret@host",
    ] {
        let out = run(&["import", "--from", from], dir.path());
        assert!(!out.status.success(), "{from}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("pw-4242-secret"), "{from}: {all}");
    }
}

#[test]
fn a_server_on_port_0_links_to_the_port_it_got() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(bin())
        .args(["demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("CR_PUBLIC_URL")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start demo");
    let mut log = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let port: u16 = loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut log, &mut line).expect("log") > 0,
            "no address"
        );
        if let Some(rest) = line.split("address=127.0.0.1:").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            break digits.parse().expect("port");
        }
    };
    let sitemap = http_get(port, "/sitemap.xml").unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(sitemap.starts_with("HTTP/1.0 200"), "{sitemap}");
    assert!(
        sitemap.contains(&format!("<loc>http://127.0.0.1:{port}/")),
        "{sitemap}"
    );
    assert!(!sitemap.contains("127.0.0.1:0/"), "{sitemap}");
}
