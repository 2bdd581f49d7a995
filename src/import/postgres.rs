//! The generator's PostgreSQL as an import source.
//!
//! Reads the table `crypto_report`, or the legacy `report`, with or without the English
//! columns, `created_at` as `timestamptz` or as `timestamp` meaning UTC (see
//! `migrations-import/`). One pass lists every row in id order in pages of ids, row versions
//! (`xmin`), dates and sizes, then fetches in full only the rows whose version differs from
//! the one the store last imported, in groups bounded in bytes. Each group is published as one
//! batch with its row versions, while the next one is fetched. Memory stays bounded whatever the
//! table holds, and a pass after an interruption skips what already landed.

use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Row};

use super::Skips;
use super::passfile;
use super::rows::{CREATED_US, Listed, not_utf8};
use super::tls::{self, Mode};

/// How long connecting (TCP, TLS, authentication) may take unless the URL's
/// `connect_timeout` says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows listed per round trip (a few dozen bytes each).
const LIST_PAGE: i64 = 1000;

mod pass;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid PostgreSQL URL: {0}")]
    Url(String),
    #[error("cannot connect to PostgreSQL at {at}: {reason}")]
    Connect { at: String, reason: String },
    #[error("PostgreSQL at {at} did not answer within {} s ({what})", .after.as_secs())]
    Timeout {
        at: String,
        what: &'static str,
        after: Duration,
    },
    #[error("PostgreSQL at {at} failed while {what}: {reason}")]
    Query {
        at: String,
        what: &'static str,
        reason: String,
    },
    /// The server cannot send a value as UTF-8 (a `SQL_ASCII` database holding other bytes).
    #[error("a value is not valid UTF-8: {0}")]
    NotUtf8(String),
    #[error(
        "PostgreSQL at {at} has neither a `crypto_report` nor a `report` table with the columns id, html_content and created_at in schema {schema}"
    )]
    NoTable { at: String, schema: String },
}

/// Where to import from: a parsed `postgres://` URL. Its `Debug` and every message it
/// produces name the host, port and database, never the password.
pub struct Source {
    config: tokio_postgres::Config,
    mode: Mode,
    root_cert: Option<PathBuf>,
    statement_timeout: Duration,
    at: String,
    /// The URL itself carries a password (see [`Source::password_in_url`]).
    password_in_url: bool,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("at", &self.at)
            .field("sslmode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// True for the URLs this module reads (scheme in any case).
pub fn is_postgres_url(s: &str) -> bool {
    let s = s.trim_start().to_ascii_lowercase();
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

impl Source {
    /// Parses a libpq-style URL. `sslmode` takes libpq's values (`disable`, `prefer`,
    /// `require`, `verify-ca`, `verify-full`), `sslrootcert` a PEM file; a missing password
    /// is taken from `PGPASSWORD`, else from the password file (`passfile=` in the URL, else
    /// `PGPASSFILE`, else `~/.pgpass`). `statement_timeout` bounds every statement.
    pub fn parse(url: &str, statement_timeout: Duration) -> Result<Source, SourceError> {
        if !is_postgres_url(url) {
            return Err(SourceError::Url(
                "must start with postgres:// or postgresql://".into(),
            ));
        }
        let url = url.trim();
        // The scheme in lower case, as the driver's parser wants it.
        let lowered;
        let url = match url.split_once("://") {
            Some((scheme, rest)) if scheme != scheme.to_ascii_lowercase() => {
                lowered = format!("{}://{rest}", scheme.to_ascii_lowercase());
                lowered.as_str()
            }
            _ => url,
        };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = Mode::Prefer;
        let mut root_cert = None;
        let mut passfile = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
            match key {
                "sslmode" => {
                    mode = Mode::parse(&value).ok_or_else(|| {
                        SourceError::Url(format!(
                            "sslmode {value:?} is not one of disable, prefer, require, verify-ca, verify-full"
                        ))
                    })?;
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(value.into_owned())),
                "passfile" => passfile = Some(PathBuf::from(value.into_owned())),
                _ => rest.push(pair),
            }
        }
        let plain = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let password = password_of(base);
        let mut config = tokio_postgres::Config::from_str(&plain)
            .map_err(|e| SourceError::Url(redact(&e.to_string(), password.as_deref())))?;
        if config.get_password().is_none()
            && let Ok(p) = std::env::var("PGPASSWORD")
        {
            config.password(p);
        }
        if config.get_password().is_none()
            && let Some(file) = passfile::location(passfile.as_deref())
        {
            let (host, port, database) = target(&config);
            let user = config.get_user().unwrap_or_default();
            if let Some(p) = passfile::lookup(&file, &host, port, &database, user) {
                config.password(p);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.ssl_mode(match mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        });
        config.application_name("crypto-report");
        let at = describe(&config);
        Ok(Source {
            config,
            mode,
            root_cert,
            statement_timeout,
            at,
            password_in_url: password.is_some(),
        })
    }

    /// Whether the URL carries a password. Given on a command line, it can be read by every
    /// user of the machine (`ps`): `PGPASSWORD` or a password file keep it private.
    pub fn password_in_url(&self) -> bool {
        self.password_in_url
    }

    /// `host:port/database`: how messages name this source.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// Connects, bounded in time, and finds the reports table.
    pub async fn connect(&self) -> Result<Connection, SourceError> {
        let connect_timeout = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT);
        // The configured timeout covers each address; this covers the whole handshake.
        let bound = connect_timeout + Duration::from_secs(2);
        let connected = tokio::time::timeout(bound, self.open()).await;
        let (client, driver) = match connected {
            Ok(result) => result?,
            Err(_) => {
                return Err(SourceError::Timeout {
                    at: self.at.clone(),
                    what: "connecting",
                    after: bound,
                });
            }
        };
        let mut conn = Connection {
            client,
            driver,
            at: self.at.clone(),
            timeout: self.statement_timeout,
            table: Table::default(),
        };
        let ms = self.statement_timeout.as_millis();
        conn.timed(
            "configuring the session",
            conn.client.batch_execute(&format!(
                "SET statement_timeout = {ms}; SET default_transaction_read_only = on"
            )),
        )
        .await?;
        conn.table = conn.find_table().await?;
        Ok(conn)
    }

    async fn open(&self) -> Result<(Client, JoinHandle<()>), SourceError> {
        let connect_err = |e: tokio_postgres::Error| SourceError::Connect {
            at: self.at.clone(),
            reason: reason(&e),
        };
        if self.mode == Mode::Disable {
            let (client, connection) = self.config.connect(NoTls).await.map_err(connect_err)?;
            return Ok((client, drive(connection)));
        }
        let tls = tls::connector(self.mode, self.root_cert.as_deref()).map_err(|reason| {
            SourceError::Connect {
                at: self.at.clone(),
                reason,
            }
        })?;
        let (client, connection) = self.config.connect(tls).await.map_err(connect_err)?;
        Ok((client, drive(connection)))
    }
}

fn drive<F>(connection: F) -> JoinHandle<()>
where
    F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %reason(&e), "PostgreSQL connection ended");
        }
    })
}

/// The password in a URL's user-info, to keep it out of a parser's message.
fn password_of(base: &str) -> Option<String> {
    let rest = base.split_once("://")?.1;
    let user_info = rest.rsplit_once('@')?.0;
    let password = user_info.split_once(':')?.1;
    Some(
        percent_encoding::percent_decode_str(password)
            .decode_utf8_lossy()
            .into_owned(),
    )
    .filter(|p| !p.is_empty())
}

fn redact(message: &str, password: Option<&str>) -> String {
    match password {
        Some(p) => message.replace(p, "***"),
        None => message.to_owned(),
    }
}

/// The host, port and database a connection goes to.
fn target(config: &tokio_postgres::Config) -> (String, u16, String) {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    (host, port, db.to_owned())
}

fn describe(config: &tokio_postgres::Config) -> String {
    let (host, port, db) = target(config);
    format!("{host}:{port}/{db}")
}

/// One line describing a driver error: the server's own message where there is one.
fn reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.replace('\n', " ")
}

/// The form of the reports table found in the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// `crypto_report` or the legacy `report`.
    pub name: String,
    pub schema: String,
    pub css: bool,
    pub js: bool,
    pub html_en: bool,
    pub js_en: bool,
}

impl Table {
    fn column(&self, present: bool, name: &str) -> String {
        if present {
            format!("\"{name}\"")
        } else {
            "NULL::text".into()
        }
    }

    fn qualified(&self) -> String {
        format!("\"{}\".\"{}\"", self.schema.replace('"', "\"\""), self.name)
    }

    /// Bytes of text of a row, without reading TOASTed values.
    fn size_expr(&self) -> String {
        let mut parts = vec!["coalesce(octet_length(html_content), 0)".to_owned()];
        for (present, name) in [
            (self.css, "css_content"),
            (self.js, "js_content"),
            (self.html_en, "html_content_en"),
            (self.js_en, "js_content_en"),
        ] {
            if present {
                parts.push(format!("coalesce(octet_length(\"{name}\"), 0)"));
            }
        }
        format!("({})::bigint", parts.join(" + "))
    }
}

/// An open connection to the source, with the table it reads.
pub struct Connection {
    client: Client,
    driver: JoinHandle<()>,
    at: String,
    timeout: Duration,
    table: Table,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// How far a pass is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

impl Connection {
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Whether the session is encrypted (as the server sees it).
    pub async fn encrypted(&self) -> Result<bool, SourceError> {
        let row = self
            .timed(
                "reading the TLS state",
                self.client.query_one(
                    "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                    &[],
                ),
            )
            .await?;
        Ok(row.get(0))
    }

    async fn timed<T>(
        &self,
        what: &'static str,
        query: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, SourceError> {
        // The server enforces statement_timeout; this bound also covers a server that stopped
        // answering at all.
        let bound = self.timeout + Duration::from_secs(2);
        match tokio::time::timeout(bound, query).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e))
                if e.code().is_some_and(|c| {
                    *c == SqlState::CHARACTER_NOT_IN_REPERTOIRE
                        || *c == SqlState::UNTRANSLATABLE_CHARACTER
                }) =>
            {
                Err(SourceError::NotUtf8(reason(&e)))
            }
            Ok(Err(e)) => Err(SourceError::Query {
                at: self.at.clone(),
                what,
                reason: reason(&e),
            }),
            Err(_) => Err(SourceError::Timeout {
                at: self.at.clone(),
                what,
                after: bound,
            }),
        }
    }

    async fn find_table(&self) -> Result<Table, SourceError> {
        let rows = self
            .timed(
                "looking for the reports table",
                self.client.query(
                    "SELECT current_schema()::text, table_name::text, column_name::text \
                     FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name IN ('crypto_report', 'report')",
                    &[],
                ),
            )
            .await?;
        let schema = rows
            .first()
            .map(|r| r.get::<_, String>(0))
            .unwrap_or_else(|| "public".into());
        let columns_of = |table: &str| -> Vec<String> {
            rows.iter()
                .filter(|r| r.get::<_, String>(1) == table)
                .map(|r| r.get::<_, String>(2))
                .collect()
        };
        for name in ["crypto_report", "report"] {
            let columns = columns_of(name);
            let has = |c: &str| columns.iter().any(|x| x == c);
            if has("id") && has("html_content") && has("created_at") {
                return Ok(Table {
                    name: name.into(),
                    schema,
                    css: has("css_content"),
                    js: has("js_content"),
                    html_en: has("html_content_en"),
                    js_en: has("js_content_en"),
                });
            }
        }
        Err(SourceError::NoTable {
            at: self.at.clone(),
            schema,
        })
    }

    async fn count(&self) -> Result<u64, SourceError> {
        let sql = format!("SELECT count(*) FROM {}", self.table.qualified());
        let row = self
            .timed("counting rows", self.client.query_one(&sql, &[]))
            .await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// A page of the listing, from id `from` on.
    async fn list(&self, from: i64) -> Result<Vec<Listed>, SourceError> {
        let sql = format!(
            "SELECT id::bigint, xmin::text::bigint, {CREATED_US}, {} FROM {} \
             WHERE id >= $1::bigint ORDER BY id LIMIT {LIST_PAGE}",
            self.table.size_expr(),
            self.table.qualified()
        );
        let rows = self
            .timed("listing rows", self.client.query(&sql, &[&from]))
            .await?;
        Ok(rows.iter().map(Listed::of).collect())
    }

    /// The rows `ids`; where one's text cannot be sent as UTF-8 (which fails the whole
    /// fetch), each row on its own, that one skipped and named in `skipped`.
    async fn fetch_readable(
        &self,
        ids: &[i64],
        skipped: &mut Skips,
    ) -> Result<Vec<Row>, SourceError> {
        let whole = match self.fetch(ids).await {
            Err(SourceError::NotUtf8(why)) if ids.len() == 1 => {
                skipped.push(not_utf8(ids[0], &why));
                return Ok(Vec::new());
            }
            Err(SourceError::NotUtf8(_)) => None,
            other => Some(other?),
        };
        if let Some(rows) = whole {
            return Ok(rows);
        }
        let mut rows = Vec::with_capacity(ids.len());
        for &id in ids {
            match self.fetch(&[id]).await {
                Ok(r) => rows.extend(r),
                Err(SourceError::NotUtf8(why)) => skipped.push(not_utf8(id, &why)),
                Err(e) => return Err(e),
            }
        }
        Ok(rows)
    }

    async fn fetch(&self, ids: &[i64]) -> Result<Vec<Row>, SourceError> {
        let t = &self.table;
        let sql = format!(
            "SELECT id::bigint, xmin::text::bigint, {CREATED_US}, html_content, {}, {}, {}, {} \
             FROM {} WHERE id = ANY($1::bigint[]) ORDER BY id",
            t.column(t.css, "css_content"),
            t.column(t.js, "js_content"),
            t.column(t.html_en, "html_content_en"),
            t.column(t.js_en, "js_content_en"),
            t.qualified()
        );
        self.timed("reading reports", self.client.query(&sql, &[&ids]))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_never_leak_the_password() {
        let s = Source::parse(
            "postgresql://importer:s3cr%40t-pw@db.example:6543/reports?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
            Duration::from_secs(5),
        )
        .expect("parses");
        assert_eq!(s.at(), "db.example:6543/reports");
        assert_eq!(s.mode, Mode::VerifyFull);
        assert_eq!(
            s.root_cert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(s.config.get_password(), Some(&b"s3cr@t-pw"[..]));
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert!(!format!("{s:?}").contains("s3cr"));

        let err = Source::parse(
            "postgres://u:hunter2-pw@h/db?sslmode=sometimes",
            Duration::from_secs(5),
        )
        .expect_err("bad sslmode");
        assert!(err.to_string().contains("sslmode"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = Source::parse(
            "postgres://u:hunter2-pw@h:notaport/db",
            Duration::from_secs(5),
        )
        .expect_err("bad port");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(Source::parse("mysql://h/db", Duration::from_secs(5)).is_err());
    }
}
