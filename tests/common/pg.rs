//! A real PostgreSQL for the importer tests: scripts/test starts one (scripts/pg-server) and
//! passes its superuser URL in `CR_TEST_PG_URL`. Each test works in a database of its own,
//! built from the generator's schema files in `migrations-import/`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use crypto_report::reports::Report;
use tokio_postgres::{Client, NoTls};

/// The superuser URL of the test server. Without one, a test is skipped locally and fails in
/// CI, where PostgreSQL is part of the suite.
pub fn admin_url() -> Option<String> {
    match std::env::var("CR_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") => {
            panic!(
                "CR_TEST_PG_URL is not set: in CI the PostgreSQL tests must run (scripts/test starts a server)"
            )
        }
        _ => {
            eprintln!(
                "skipped: no PostgreSQL (set CR_TEST_PG_URL, or run scripts/test, which starts one)"
            );
            None
        }
    }
}

/// `url` with its database replaced by `db`.
pub fn url_of(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host = path.map_or(base, |p| &base[..p]);
    if query.is_empty() {
        format!("{host}/{db}")
    } else {
        format!("{host}/{db}?{query}")
    }
}

/// The password of a URL (the tests check it never shows up anywhere).
pub fn password_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let user_info = rest.rsplit_once('@').map_or("", |(u, _)| u);
    user_info.split_once(':').map_or("", |(_, p)| p).to_owned()
}

pub struct Db {
    pub url: String,
    pub client: Client,
    _driver: tokio::task::JoinHandle<()>,
}

pub async fn connect(url: &str) -> (Client, tokio::task::JoinHandle<()>) {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, driver)
}

/// A fresh, empty database `name` on the test server.
pub async fn create_db(admin: &str, name: &str) -> Db {
    create_db_with(admin, name, "").await
}

/// A fresh, empty database `name` made with `options` (`ENCODING 'SQL_ASCII' …`).
pub async fn create_db_with(admin: &str, name: &str, options: &str) -> Db {
    let (client, _driver) = connect(admin).await;
    // Two statements: neither may run inside the implicit transaction of a batch.
    client
        .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), &[])
        .await
        .expect("drop database");
    client
        .execute(&format!("CREATE DATABASE {name} {options}"), &[])
        .await
        .expect("create database");
    let url = url_of(admin, name);
    let (client, driver) = connect(&url).await;
    Db {
        url,
        client,
        _driver: driver,
    }
}

/// Runs schema files of `migrations-import/`, in order.
pub async fn apply(client: &Client, files: &[&str]) {
    for file in files {
        let path = format!("{}/migrations-import/{file}", env!("CARGO_MANIFEST_DIR"));
        let sql = std::fs::read_to_string(&path).expect("schema file");
        client.batch_execute(&sql).await.expect(file);
    }
}

/// Inserts reports `from..=to` into `table`, each about `kib` KiB of Vietnamese HTML, one
/// hour apart from 2026-01-01 08:00 UTC. `english` fills the English columns (current form).
pub async fn insert(client: &Client, table: &str, from: i64, to: i64, kib: i32, english: bool) {
    let english_cols = if english {
        ", html_content_en, js_content_en"
    } else {
        ""
    };
    let english_vals = if english {
        ", '<section id=\"s\"><h2>Report ' || g || '</h2><p>' || repeat(md5(g::text) || ' Markets ', $3 * 24) || '</p></section>', NULL"
    } else {
        ""
    };
    let created = if table == "report" {
        "timestamp '2026-01-01 08:00:00' + g * interval '1 hour'"
    } else {
        "timestamptz '2026-01-01 08:00:00+00' + g * interval '1 hour'"
    };
    let sql = format!(
        "INSERT INTO {table} (id, html_content, css_content, js_content{english_cols}, created_at) \
         SELECT g, '<section id=\"s\"><h2>Báo cáo số ' || g || '</h2><p>' || repeat(md5(g::text) || ' Thị trường ', $3 * 24) || '</p></section>', \
         '.r' || g || '{{color:#123}}', 'function initializeAllVisuals_report(l){{return ' || g || ';}}'{english_vals}, {created} \
         FROM generate_series($1::bigint, $2::bigint) g"
    );
    client
        .execute(&sql, &[&from, &to, &kib])
        .await
        .expect("insert reports");
    let seq = format!("{table}_id_seq");
    client
        .execute(
            &format!("SELECT setval('{seq}', (SELECT max(id) FROM {table}))"),
            &[],
        )
        .await
        .expect("sequence");
}

/// Every row of `table`, as the store should hold it.
pub async fn rows(client: &Client, table: &str) -> BTreeMap<u64, Report> {
    let english: bool = client
        .query_one(
            "SELECT count(*) > 0 FROM information_schema.columns WHERE table_name = $1 AND column_name = 'html_content_en'",
            &[&table],
        )
        .await
        .expect("columns")
        .get(0);
    let cols = if english {
        "html_content_en, js_content_en"
    } else {
        "NULL::text, NULL::text"
    };
    let legacy: bool = client
        .query_one(
            "SELECT data_type = 'timestamp without time zone' FROM information_schema.columns WHERE table_name = $1 AND column_name = 'created_at'",
            &[&table],
        )
        .await
        .expect("columns")
        .get(0);
    let sql = format!(
        "SELECT id::bigint, html_content, css_content, js_content, {cols}, created_at FROM {table} ORDER BY id"
    );
    let mut out = BTreeMap::new();
    for row in client.query(&sql, &[]).await.expect("rows") {
        let created_at: DateTime<Utc> = if legacy {
            row.get::<_, NaiveDateTime>(6).and_utc()
        } else {
            row.get(6)
        };
        let id = row.get::<_, i64>(0) as u64;
        out.insert(
            id,
            Report {
                id,
                html_content: row.get(1),
                css_content: row.get(2),
                js_content: row.get(3),
                html_content_en: row.get(4),
                js_content_en: row.get(5),
                created_at,
            },
        );
    }
    out
}
