//! The PostgreSQL importer against a real PostgreSQL (scripts/pg-server): both schema forms
//! and the generator's migration between them, idempotence, bad rows, TLS, faults of the
//! source (refused, stalled, cut, stopped), `kill -9` of the importer, and the sync inside a
//! running server. The importer runs as the real binary.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::pg::{self, Db};
use common::process::bin;
use crypto_report::reports::Report;
use crypto_report::store::{FILE_NAME, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn import(from: &str, data_dir: &Path, extra: &[&str]) -> Output {
    Command::new(bin())
        .args(["import", "--from", from])
        .args(extra)
        .env("CR_DATA_DIR", data_dir)
        .env_remove("RUST_LOG")
        .env_remove("PGPASSWORD")
        .output()
        .expect("run the importer")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Lines of `stderr` past the warning a password in the URL earns.
fn error_lines(stderr: &[u8]) -> usize {
    text(stderr)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("warning: the password"))
        .count()
}

/// The summary line of an import.
fn summary(out: &Output) -> String {
    text(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// Everything the store in `data_dir` holds, each report read (and verified) whole.
fn stored(data_dir: &Path) -> BTreeMap<u64, Report> {
    let store = Store::open(&data_dir.join(FILE_NAME)).expect("open the store");
    let mut out = BTreeMap::new();
    store
        .for_each_report(|r| {
            out.insert(r.id, r);
            Ok(())
        })
        .expect("every stored report reads whole");
    out
}

fn assert_no_secret(out: &Output, password: &str) {
    assert!(!password.is_empty());
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !text(stream).contains(password),
            "the password leaked: {out:?}"
        );
    }
}

async fn current_db(admin: &str, name: &str, n: i64, kib: i32) -> Db {
    let db = pg::create_db(admin, name).await;
    pg::apply(&db.client, &["current.sql"]).await;
    pg::insert(&db.client, "crypto_report", 1, n, kib, true).await;
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_the_current_form_and_a_rerun_changes_nothing() {
    let Some(admin) = pg::admin_url() else { return };
    let db = current_db(&admin, "cr_current", 5_000, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let password = pg::password_of(&db.url);

    let first = import(&db.url, dir.path(), &[]);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(
        summary(&first),
        "new 5000, updated 0, unchanged 0, skipped 0"
    );
    assert!(text(&first.stderr).contains("crypto_report"), "{first:?}");
    assert_no_secret(&first, &password);
    assert_eq!(
        stored(dir.path()),
        pg::rows(&db.client, "crypto_report").await
    );

    let again = import(&db.url, dir.path(), &[]);
    assert_eq!(
        summary(&again),
        "new 0, updated 0, unchanged 5000, skipped 0"
    );

    // A changed row is updated, a moved date too, a new row is new; nothing else is touched.
    db.client
        .batch_execute(
            "UPDATE crypto_report SET css_content = 'p{color:red}' WHERE id IN (7, 4000);
             UPDATE crypto_report SET created_at = created_at + interval '1 minute' WHERE id = 12;
             INSERT INTO crypto_report (html_content, created_at) VALUES ('<p>nouveau</p>', '2026-11-01T00:00:00Z');",
        )
        .await
        .expect("change the source");
    let third = import(&db.url, dir.path(), &[]);
    assert_eq!(
        summary(&third),
        "new 1, updated 3, unchanged 4997, skipped 0"
    );
    assert_eq!(
        stored(dir.path()),
        pg::rows(&db.client, "crypto_report").await
    );

    // The password is never shown, in --help either (it may come from the environment).
    let help = Command::new(bin())
        .args(["import", "--help"])
        .env("CR_PG_URL", &db.url)
        .output()
        .expect("help");
    assert_no_secret(&help, &password);
    let wrong = import(
        &pg::url_of(&db.url.replace(&password, "not-the-password"), "cr_current"),
        dir.path(),
        &[],
    );
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("password authentication failed"),
        "{wrong:?}"
    );
    assert!(
        !text(&wrong.stderr).contains("not-the-password"),
        "{wrong:?}"
    );
    assert_eq!(error_lines(&wrong.stderr), 1, "one line: {wrong:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_the_legacy_form_and_follows_the_generators_migration() {
    let Some(admin) = pg::admin_url() else { return };
    let db = pg::create_db(&admin, "cr_legacy").await;
    // The session's time zone must not shift the legacy UTC wall-clock times.
    db.client
        .batch_execute("ALTER DATABASE cr_legacy SET timezone = 'Asia/Ho_Chi_Minh'")
        .await
        .expect("timezone");
    pg::apply(&db.client, &["0001_report_legacy.sql"]).await;
    pg::insert(&db.client, "report", 1, 40, 1, false).await;
    let dir = tempfile::tempdir().expect("tempdir");

    let legacy = import(&db.url, dir.path(), &[]);
    assert!(legacy.status.success(), "{legacy:?}");
    assert_eq!(
        summary(&legacy),
        "new 40, updated 0, unchanged 0, skipped 0"
    );
    assert!(text(&legacy.stderr).contains("table report"), "{legacy:?}");
    assert!(
        text(&legacy.stderr).contains("no English columns"),
        "{legacy:?}"
    );
    let before = stored(dir.path());
    assert_eq!(before, pg::rows(&db.client, "report").await);
    assert_eq!(
        before[&1].created_at.to_rfc3339(),
        "2026-01-01T09:00:00+00:00",
        "a legacy timestamp means UTC"
    );

    // The generator's own upgrade: rename, timestamptz, English columns.
    pg::apply(
        &db.client,
        &[
            "0002_rename_to_crypto_report.sql",
            "0003_created_at_timestamptz.sql",
            "0004_english_columns.sql",
        ],
    )
    .await;
    db.client
        .batch_execute(
            "UPDATE crypto_report SET html_content_en = '<p>English ' || id || '</p>' WHERE id <= 5;
             INSERT INTO crypto_report (html_content, html_content_en, created_at) VALUES ('<p>mới</p>', '<p>new</p>', '2026-10-01T00:00:00Z');",
        )
        .await
        .expect("write after the upgrade");
    let upgraded = import(&db.url, dir.path(), &[]);
    assert!(upgraded.status.success(), "{upgraded:?}");
    assert!(
        text(&upgraded.stderr).contains("table crypto_report"),
        "{upgraded:?}"
    );
    // The table rewrite gave every row a new version; content decides: only 5 changed.
    assert_eq!(
        summary(&upgraded),
        "new 1, updated 5, unchanged 35, skipped 0"
    );
    let after = stored(dir.path());
    assert_eq!(after, pg::rows(&db.client, "crypto_report").await);
    assert_eq!(after[&1].created_at, before[&1].created_at);
    assert_eq!(after[&41].html_content_en.as_deref(), Some("<p>new</p>"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rows_are_skipped_named_and_the_rest_imported() {
    let Some(admin) = pg::admin_url() else { return };
    let db = pg::create_db(&admin, "cr_bad_rows").await;
    pg::apply(&db.client, &["current.sql"]).await;
    pg::insert(&db.client, "crypto_report", 1, 10, 1, true).await;
    db.client
        .batch_execute(
            "ALTER TABLE crypto_report ALTER COLUMN created_at DROP NOT NULL;
             INSERT INTO crypto_report (id, html_content, created_at) VALUES
               (101, '   ', now() - interval '1 day'),
               (102, '<p>no date</p>', NULL),
               (103, '<p>infinite</p>', 'infinity'),
               (104, '<p>too old</p>', '1999-12-31T00:00:00Z'),
               (105, '<p>' || repeat('x', 9 * 1024 * 1024) || '</p>', now() - interval '1 day'),
               (-3, '<p>negative</p>', now() - interval '1 day'),
               (106, '<p>far future</p>', now() + interval '30 days');",
        )
        .await
        .expect("bad rows");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = import(&db.url, dir.path(), &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(summary(&out), "new 10, updated 0, unchanged 0, skipped 7");
    let err = text(&out.stderr);
    for (id, why) in [
        ("101", "empty"),
        ("102", "created_at"),
        ("103", "created_at"),
        ("104", "created_at"),
        ("105", "bytes"),
        ("-3", "positive"),
        ("106", "created_at"),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!(" {id}")) && l.starts_with("skipped"))
            .unwrap_or_else(|| panic!("row {id} is not named: {err}"));
        assert!(line.contains(why), "{line}");
    }
    assert_eq!(stored(dir.path()).len(), 10);
}

/// Rows that once stopped a whole pass: a date past what a bigint of microseconds holds (the
/// listing failed), text that is not UTF-8 in a `SQL_ASCII` database (its batch failed), and
/// the smallest bigint id (never listed, never counted). Each is skipped and named; the rest
/// of its batch imports.
#[tokio::test(flavor = "multi_thread")]
async fn rows_that_stopped_a_pass_are_skipped_and_named() {
    let Some(admin) = pg::admin_url() else { return };
    let db = pg::create_db_with(
        &admin,
        "cr_hostile_rows",
        "ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
    )
    .await;
    pg::apply(&db.client, &["current.sql"]).await;
    db.client
        .batch_execute("ALTER TABLE crypto_report ALTER COLUMN id TYPE bigint")
        .await
        .expect("bigint ids");
    pg::insert(&db.client, "crypto_report", 1, 10, 1, true).await;
    db.client
        .batch_execute(
            "INSERT INTO crypto_report (id, html_content, created_at) VALUES
               (5, E'<p>bytes \\xff\\xfe that are not UTF-8</p>', '2026-01-01T12:00:00Z'),
               (11, '<p>far future</p>', '294276-01-01T00:00:00Z'),
               (-9223372036854775808, '<p>smallest id</p>', '2026-01-02T00:00:00Z')
             ON CONFLICT (id) DO UPDATE SET html_content = EXCLUDED.html_content;",
        )
        .await
        .expect("hostile rows");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = import(&db.url, dir.path(), &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(summary(&out), "new 9, updated 0, unchanged 0, skipped 3");
    let err = text(&out.stderr);
    for (id, why) in [
        ("5", "UTF-8"),
        ("11", "created_at"),
        ("-9223372036854775808", "positive"),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!(" {id}")) && l.starts_with("skipped"))
            .unwrap_or_else(|| panic!("row {id} is not named: {err}"));
        assert!(line.contains(why), "{line}");
    }
    let stored = stored(dir.path());
    assert_eq!(stored.len(), 9);
    assert!(!stored.contains_key(&5) && stored.contains_key(&4) && stored.contains_key(&6));
}

/// A password given on the command line is readable by every local user (`ps`): the
/// importer says so and where else to put it, and reads it from a password file as libpq
/// does (`passfile=` in the URL, or `PGPASSFILE`).
#[tokio::test(flavor = "multi_thread")]
async fn a_password_comes_from_a_password_file_and_one_in_the_url_is_warned_about() {
    let Some(admin) = pg::admin_url() else { return };
    let db = current_db(&admin, "cr_passfile", 3, 1).await;
    let password = pg::password_of(&db.url);
    let bare = db.url.replacen(&format!(":{password}@"), "@", 1);
    assert!(!bare.contains(&password), "{bare}");
    let dir = tempfile::tempdir().expect("tempdir");
    let (host_port, _) = bare
        .split_once("@")
        .and_then(|(_, rest)| rest.split_once('/'))
        .expect("host and port");
    let (host, port) = host_port.split_once(':').expect("port");
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!("# test\n{host}:{port}:cr_passfile:postgres:{password}\n"),
    )
    .expect("passfile");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let joiner = if bare.contains('?') { '&' } else { '?' };
    let with_passfile = format!("{bare}{joiner}passfile={}", passfile.display());
    let data = dir.path().join("a");
    let out = import(&with_passfile, &data, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(summary(&out), "new 3, updated 0, unchanged 0, skipped 0");
    assert!(!text(&out.stderr).contains("warning"), "{out:?}");
    // PGPASSFILE, as libpq reads it.
    let out = Command::new(bin())
        .args(["import", "--from", &bare])
        .env("CR_DATA_DIR", dir.path().join("b"))
        .env("PGPASSFILE", &passfile)
        .env_remove("RUST_LOG")
        .env_remove("PGPASSWORD")
        .output()
        .expect("run the importer");
    assert!(out.status.success(), "{out:?}");
    // The password in the URL works, and is warned about without being repeated.
    let out = import(&db.url, &dir.path().join("c"), &[]);
    assert!(out.status.success(), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("warning") && err.contains("PGPASSWORD") && err.contains("passfile"),
        "{err}"
    );
    assert_no_secret(&out, &password);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_used_as_the_url_asks() {
    let Some(admin) = pg::admin_url() else { return };
    let db = current_db(&admin, "cr_tls", 3, 1).await;
    let ca = std::env::var("CR_TEST_PG_CA").ok();
    let dir = tempfile::tempdir().expect("tempdir");
    let with = |params: &str| format!("{}?{params}", db.url);

    let required = import(&with("sslmode=require"), dir.path(), &[]);
    assert!(required.status.success(), "{required:?}");
    assert!(text(&required.stderr).contains("over TLS"), "{required:?}");
    let plain = import(&with("sslmode=disable"), dir.path(), &[]);
    assert!(text(&plain.stderr).contains("unencrypted"), "{plain:?}");
    if let Some(ca) = ca {
        let verified = import(
            &with(&format!("sslmode=verify-full&sslrootcert={ca}")),
            dir.path(),
            &[],
        );
        assert!(verified.status.success(), "{verified:?}");
        assert!(text(&verified.stderr).contains("over TLS"), "{verified:?}");
        // Reached under a name its certificate does not carry: `verify-ca` checks the chain
        // only, `verify-full` the name too.
        let renamed = |mode: &str| {
            let url = db.url.replacen("@127.0.0.1:", "@crypto-report.invalid:", 1);
            assert_ne!(url, db.url, "the test database is on 127.0.0.1");
            format!("{url}?hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={ca}")
        };
        let chain_only = import(&renamed("verify-ca"), dir.path(), &[]);
        assert!(chain_only.status.success(), "{chain_only:?}");
        let wrong_name = import(&renamed("verify-full"), dir.path(), &[]);
        assert!(!wrong_name.status.success(), "{wrong_name:?}");
        assert!(
            text(&wrong_name.stderr).contains("certificate"),
            "{wrong_name:?}"
        );
    }
    // A self-signed server is not trusted by the bundled roots.
    let untrusted = import(&with("sslmode=verify-full"), dir.path(), &[]);
    assert!(!untrusted.status.success());
    assert!(
        text(&untrusted.stderr).contains("certificate"),
        "{untrusted:?}"
    );

    // A server that refuses TLS fails `require` instead of talking in the clear.
    let fake = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = fake.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = fake.accept().await {
            let mut request = [0u8; 8];
            if socket.read_exact(&mut request).await.is_ok() {
                let _ = socket.write_all(b"N").await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let refused = import(
        &format!("postgres://u:pw-xyz@127.0.0.1:{port}/db?sslmode=require"),
        dir.path(),
        &[],
    );
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("TLS"), "{refused:?}");
}

/// A TCP relay to PostgreSQL that passes `limit` bytes from the server, then stalls (keeps
/// the connection open and silent) or cuts the connection.
async fn relay(upstream: u16, limit: usize, cut: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut passed = 0;
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let allowed = n.min(limit.saturating_sub(passed));
                    if cw.write_all(&buf[..allowed]).await.is_err() {
                        break;
                    }
                    passed += allowed;
                    if passed >= limit {
                        if cut {
                            up.abort();
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                }
            });
        }
    });
    port
}

fn port_of(url: &str) -> u16 {
    let host = url.rsplit_once('@').map_or(url, |(_, h)| h);
    let port = host
        .split(['/', '?'])
        .next()
        .and_then(|h| h.rsplit_once(':'));
    port.and_then(|(_, p)| p.parse().ok()).unwrap_or(5432)
}

/// The store holds only whole reports, each equal to its source row.
fn assert_partial_import(dir: &Path, source: &BTreeMap<u64, Report>) -> usize {
    let held = stored(dir);
    for (id, report) in &held {
        assert_eq!(
            Some(report),
            source.get(id),
            "report {id} differs from its row"
        );
    }
    held.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_stalled_or_cut_source_fails_cleanly_and_keeps_what_landed() {
    let Some(admin) = pg::admin_url() else { return };
    let db = current_db(&admin, "cr_faults", 2_000, 4).await;
    let source = pg::rows(&db.client, "crypto_report").await;
    let upstream = port_of(&db.url);
    let password = pg::password_of(&db.url);

    // Nothing listens: refused at once, one line, nothing written.
    let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead_port = dead.local_addr().expect("addr").port();
    drop(dead);
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Instant::now();
    let refused = import(
        &format!("postgres://postgres:{password}@127.0.0.1:{dead_port}/x"),
        dir.path(),
        &[],
    );
    assert!(!refused.status.success());
    assert!(clock.elapsed() < Duration::from_secs(10));
    assert!(
        text(&refused.stderr).contains("cannot connect"),
        "{refused:?}"
    );
    assert_eq!(error_lines(&refused.stderr), 1, "{refused:?}");
    assert_no_secret(&refused, &password);

    // A server that accepts and never answers: the connect timeout ends it.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let clock = Instant::now();
    let stalled = import(
        &format!("postgres://postgres:{password}@127.0.0.1:{silent_port}/x?connect_timeout=1"),
        dir.path(),
        &[],
    );
    assert!(!stalled.status.success());
    assert!(
        clock.elapsed() < Duration::from_secs(10),
        "{:?}",
        clock.elapsed()
    );
    assert_no_secret(&stalled, &password);

    // Mid-import: the server stops answering, then the connection is cut. Each time the
    // importer says what it committed, the store holds exactly that, and a rerun completes.
    for cut in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = relay(upstream, 3 << 20, cut).await;
        let url =
            format!("postgres://postgres:{password}@127.0.0.1:{port}/cr_faults?sslmode=disable");
        let clock = Instant::now();
        let out = import(&url, dir.path(), &["--pg-timeout", "1"]);
        assert!(!out.status.success(), "{out:?}");
        assert!(
            clock.elapsed() < Duration::from_secs(15),
            "{:?}",
            clock.elapsed()
        );
        let line = summary(&out);
        assert!(line.ends_with("(committed before the error)"), "{out:?}");
        let err = text(&out.stderr);
        assert!(err.contains("error: PostgreSQL at"), "{err}");
        assert_no_secret(&out, &password);
        let committed: usize = line
            .strip_prefix("new ")
            .and_then(|l| l.split(',').next())
            .and_then(|n| n.parse().ok())
            .expect("count");
        assert!(committed > 0 && committed < 2_000, "{line}");
        assert_eq!(assert_partial_import(dir.path(), &source), committed);
        let rerun = import(&db.url, dir.path(), &[]);
        assert_eq!(
            summary(&rerun),
            format!(
                "new {}, updated 0, unchanged {committed}, skipped 0",
                2_000 - committed
            )
        );
        assert_eq!(stored(dir.path()), source);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_stopped_in_the_middle_of_an_import() {
    let Some(_) = pg::admin_url() else { return };
    // A server of its own, so that stopping it disturbs no other test.
    let cluster = tempfile::tempdir().expect("tempdir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let script = format!("{}/scripts/pg-server", env!("CARGO_MANIFEST_DIR"));
    let start = || {
        let started = Command::new(&script)
            .args([
                "start",
                cluster.path().to_str().expect("utf8"),
                &port.to_string(),
            ])
            .output()
            .expect("pg-server");
        assert!(started.status.success(), "{started:?}");
        text(&started.stdout).trim().to_owned()
    };
    let admin = start();
    let stop = |mode: &str| {
        Command::new(&script)
            .args(["stop", cluster.path().to_str().expect("utf8"), mode])
            .status()
            .expect("pg-server stop")
    };
    let db = current_db(&admin, "cr_stopped", 1_500, 16).await;
    // The test cluster commits asynchronously (scripts/pg-server): an immediate stop loses
    // what the WAL writer had not written yet, the table itself included. A checkpoint makes
    // the rows as durable as a committed row on a real server.
    db.client
        .batch_execute("CHECKPOINT")
        .await
        .expect("checkpoint");
    let source = pg::rows(&db.client, "crypto_report").await;
    let dir = tempfile::tempdir().expect("tempdir");

    let mut child = Command::new(bin())
        .args(["import", "--from", &db.url])
        .env("CR_DATA_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("import");
    // Stop the server once the import fetches rows: on a loaded machine a fixed sleep, or
    // merely seeing its connection, can stop it while it connects ("cannot connect to …"),
    // which is another test's subject.
    for _ in 0..1_000 {
        let others: i64 = db
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                 AND query LIKE '%= ANY($1%'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if others > 0 || child.try_wait().expect("try_wait").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stop("immediate").success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let landed = assert_partial_import(dir.path(), &source);
    if out.status.success() {
        // The import beat the stop on this machine: everything is there.
        assert_eq!(landed, 1_500);
    } else {
        assert!(
            text(&out.stderr).contains("error: PostgreSQL at"),
            "{out:?}"
        );
        assert_eq!(
            text(&out.stderr)
                .lines()
                .filter(|l| l.starts_with("error"))
                .count(),
            1
        );
        assert!(
            summary(&out).contains("committed before the error"),
            "{out:?}"
        );
    }
    start();
    let rerun = import(&db.url, dir.path(), &[]);
    assert!(rerun.status.success(), "{rerun:?}");
    assert_eq!(stored(dir.path()), source);
    drop(db);
    stop("fast");
}

fn remember(versions: &mut BTreeMap<u64, Vec<Report>>, rows: BTreeMap<u64, Report>) {
    for (id, r) in rows {
        let seen = versions.entry(id).or_default();
        if !seen.contains(&r) {
            seen.push(r);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_never_leaves_a_partial_report() {
    let Some(admin) = pg::admin_url() else { return };
    let db = current_db(&admin, "cr_kill", 1_000, 16).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("store");

    // How long a whole import takes here: kills land anywhere inside it.
    let clock = Instant::now();
    assert!(import(&db.url, &data, &[]).status.success());
    let whole = clock.elapsed();
    std::fs::remove_dir_all(&data).expect("reset");

    // Each row's every version seen so far: a stored report must equal one of them, whole.
    let mut versions: BTreeMap<u64, Vec<Report>> = BTreeMap::new();
    remember(&mut versions, pg::rows(&db.client, "crypto_report").await);
    let mut killed_mid_work = 0;
    // At least 20 rounds, and more (up to 40) until 10 kills have hit a running import: on a
    // busy machine a round's import may end before its kill.
    for round in 0..40u64 {
        if round >= 20 && killed_mid_work >= 10 {
            break;
        }
        if round % 2 == 1 {
            // Give the next import work to do on a store that already holds reports.
            db.client
                .execute(
                    "UPDATE crypto_report SET css_content = '.v' || $1::text || '{}' WHERE id % 5 = $1::bigint % 5",
                    &[&(round as i64)],
                )
                .await
                .expect("update");
            remember(&mut versions, pg::rows(&db.client, "crypto_report").await);
        } else if round % 4 == 0 {
            let _ = std::fs::remove_dir_all(&data);
        }
        let mut child = Command::new(bin())
            .args(["import", "--from", &db.url])
            .env("CR_DATA_DIR", &data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("import");
        // A round that starts from an empty store does the whole import; the others do a
        // fifth of it or less, so their kills land early.
        let share = if round % 4 == 0 { 1.0 } else { 0.3 };
        let at = whole.mul_f64(share * rand::random::<f64>());
        tokio::time::sleep(at).await;
        let _ = child.kill(); // SIGKILL
        let status = child.wait().expect("wait");
        if !status.success() {
            killed_mid_work += 1;
        }
        if !data.join(FILE_NAME).exists() {
            continue;
        }
        // What a reader would see now: every report whole and equal to a version of its row.
        let store = Store::open(&data.join(FILE_NAME)).expect("the store opens after a kill");
        store
            .for_each_report(|r| {
                let known = versions.get(&r.id).is_some_and(|v| v.contains(&r));
                assert!(
                    known,
                    "round {round}: report {} is not any version of its row",
                    r.id
                );
                Ok(())
            })
            .expect("every report reads whole");
    }
    assert!(
        killed_mid_work >= 10,
        "only {killed_mid_work} kills hit a running import"
    );
    let last = import(&db.url, &data, &[]);
    assert!(last.status.success(), "{last:?}");
    assert_eq!(stored(&data), pg::rows(&db.client, "crypto_report").await);
}
