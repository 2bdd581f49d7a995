//! Command line and environment configuration: parsing, fallbacks, validation, redaction.

mod parse;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use self::parse::{
    parse_age, parse_base_url, parse_interval, parse_prefix, parse_public_url, present,
};

use crate::market;
use crate::market::alternative_me::AlternativeMe;
use crate::market::binance::Binance;
use crate::market::coingecko::{self, CoinGecko};
use crate::market::coinmarketcap::CoinMarketCap;
use crate::market::config::Budgets;
use crate::market::finnhub::Finnhub;
use crate::market::taapi::Taapi;
pub use crate::secret::Secret;
use crate::workers::PoolSettings;

#[derive(Parser, Debug)]
#[command(
    name = "crypto-report",
    version,
    about = "Publishes crypto market reports next to a live market dashboard",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Read this environment file first (the service's /etc/crypto-report/crypto-report.env):
    /// its variables fill what neither a flag nor the environment sets.
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Options of `serve`, which runs when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The command line, with `--version` saying what this build is (read at run time: the
    /// glibc floor is a fact of the linked file). Exits on a usage error, as `parse` does.
    pub fn parse_args() -> Cli {
        let build = crate::build_info::BuildInfo::get();
        let matches = Cli::command()
            .long_version(build.long_version())
            .get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// Loads the `--env-file` of the command line (wherever it stands), then `.env` in the working
/// directory, before the command line is parsed; neither replaces a variable already set.
/// Must run before any thread exists (it sets process environment variables).
pub fn load_env_files() -> Result<(), ConfigError> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let named = args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        if a == "--env-file" {
            args.get(i + 1).map(PathBuf::from)
        } else {
            a.strip_prefix("--env-file=").map(PathBuf::from)
        }
    });
    if let Some(path) = named {
        dotenvy::from_path(&path).map_err(|e| ConfigError {
            option: "--env-file",
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
    }
    let _ = dotenvy::dotenv();
    Ok(())
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up; size does not matter
pub enum Command {
    /// Run the production server (the default).
    Serve(ServeArgs),
    /// Run the server on a throw-away store seeded with the bundled sample reports and a
    /// simulated market feed. Makes no outbound connection.
    Demo(DemoArgs),
    /// Import reports from the generator's PostgreSQL or from a JSONL file into the store.
    Import(ImportArgs),
    /// Export every report of the store to a JSONL file.
    Export(ExportArgs),
    /// Write a consistent copy of the store to a file and verify it; while a server holds the
    /// store, the copy is taken by the server (POST /admin/backup).
    Backup(BackupArgs),
    /// Verify the store (every report against its hash, the date index) and print what it
    /// holds; exits non-zero on damage. Changes nothing unless --repair is given.
    Check(CheckArgs),
    /// Check the configuration and this machine as `serve` would use them (data directory,
    /// store, ports, admin token, public URL, providers, PostgreSQL, Redis, clock): one line
    /// per check, ok / warn / fail and what to do; exits non-zero on a failure.
    Doctor(DoctorArgs),
    /// Print or install the hardened systemd unit and its environment file (both built in).
    Systemd(crate::systemd::install::SystemdArgs),
    /// Announcement targets: `announce test --target NAME` sends a test message to one of
    /// the configured targets and prints its answer.
    Announce(AnnounceCommand),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub sync: SyncArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub market: MarketArgs,
    #[command(flatten)]
    pub announce: AnnounceArgs,
}

/// Several instances sharing one Redis.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Redis shared by several instances (second cache tier, live updates, one market
    /// poller), e.g. redis://:password@10.0.0.5:6379/0 [fallback: REDIS_URL].
    #[arg(long, hide_env_values = true, env = "CR_REDIS_URL")]
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key and channel: one Redis can serve several deployments.
    #[arg(long, env = "CR_REDIS_PREFIX", default_value = "crypto-report", value_parser = parse_prefix)]
    pub redis_prefix: String,
}

impl ClusterArgs {
    /// The Redis URL: the flag or `CR_REDIS_URL`, else the upstream's `REDIS_URL`.
    pub fn url(&self) -> Option<Secret> {
        self.redis_url.clone().or_else(|| {
            std::env::var("REDIS_URL")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(Secret::new)
        })
    }
}

/// Keeping the store in step with the generator's PostgreSQL while serving.
#[derive(Args, Debug, Clone)]
pub struct SyncArgs {
    /// PostgreSQL to import reports from while serving, e.g.
    /// postgres://user:pass@host/db?sslmode=require [fallback: DATABASE_URL].
    #[arg(long, hide_env_values = true, env = "CR_PG_URL")]
    pub sync_from: Option<Secret>,
    /// Time between two sync passes (`90s`, `5m`, `1h`); `POST /admin/sync` runs one at once.
    #[arg(long, env = "CR_SYNC_EVERY", default_value = "5m", value_parser = parse_interval)]
    pub sync_every: Duration,
    /// Seconds a PostgreSQL statement may take before the pass is abandoned.
    #[arg(long, env = "CR_PG_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub pg_timeout: u64,
}

impl SyncArgs {
    /// The sync source: the flag or `CR_PG_URL`, else the upstream's `DATABASE_URL`.
    pub fn source(&self) -> Option<Secret> {
        self.sync_from.clone().or_else(|| {
            std::env::var("DATABASE_URL")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(Secret::new)
        })
    }

    pub fn pg_timeout(&self) -> Duration {
        Duration::from_secs(self.pg_timeout)
    }
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    /// Milliseconds between two simulated market ticks (benchmarks use a fast feed).
    #[arg(long, env = "CR_DEMO_INTERVAL_MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub demo_interval_ms: u64,
    /// Demo instances can share a Redis too (to try or measure several instances).
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// Source to import from: postgres://user:pass@host/db?sslmode=require (the generator's
    /// database; a missing password is read from PGPASSWORD), or a JSONL file with one
    /// report per line.
    #[arg(long)]
    pub from: Secret,
    /// Seconds a PostgreSQL statement may take before the import stops with an error.
    #[arg(long, env = "CR_PG_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub pg_timeout: u64,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Queue an announcement of every report this import adds (to the targets of
    /// --announce); without it an import announces nothing.
    #[arg(long)]
    pub announce_new: bool,
    #[command(flatten)]
    pub announce: AnnounceArgs,
}

/// Where new reports are announced, and how patiently.
#[derive(Args, Debug, Clone)]
pub struct AnnounceArgs {
    /// Announce each new report here (repeatable): tgram://BOT_TOKEN/CHAT_ID,
    /// discord://WEBHOOK_ID/WEBHOOK_TOKEN, webhook+https://host/path?secret=S; `?lang=en`
    /// for English (default vi). CR_ANNOUNCE takes several, comma-separated.
    #[arg(
        long = "announce",
        value_name = "URL",
        hide_env_values = true,
        env = "CR_ANNOUNCE",
        value_delimiter = ','
    )]
    pub targets: Vec<Secret>,
    /// How long a delivery is retried before it is recorded as failed (`30m`, `24h`, `3d`).
    #[arg(long, env = "CR_ANNOUNCE_GIVE_UP", default_value = "24h", value_parser = parse_age)]
    pub announce_give_up: Duration,
    /// Base URL of the Telegram Bot API.
    #[arg(long, env = "CR_TELEGRAM_API_URL", default_value = crate::announce::TELEGRAM_API, value_parser = parse_base_url)]
    pub telegram_api_url: String,
    /// Base URL of Discord's API (webhooks live under /api/webhooks).
    #[arg(long, env = "CR_DISCORD_API_URL", default_value = crate::announce::DISCORD_API, value_parser = parse_base_url)]
    pub discord_api_url: String,
}

impl AnnounceArgs {
    /// The parsed targets and delivery settings; a malformed target is named, redacted.
    pub fn settings(&self) -> Result<crate::announce::Settings, ConfigError> {
        let targets =
            crate::announce::target::parse_all(&self.targets).map_err(|e| ConfigError {
                option: "--announce / CR_ANNOUNCE",
                reason: e.to_string(),
            })?;
        Ok(crate::announce::Settings {
            give_up: self.announce_give_up,
            telegram_api: self.telegram_api_url.clone(),
            discord_api: self.discord_api_url.clone(),
            ..crate::announce::Settings::new(targets)
        })
    }
}

/// `announce test --target NAME`.
#[derive(Args, Debug, Clone)]
pub struct AnnounceCommand {
    #[command(subcommand)]
    pub action: AnnounceAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum AnnounceAction {
    /// Send a test message to one configured target and print what it answered.
    Test {
        /// The target's name (`?name=`, or as `/health` lists it, e.g. telegram-1001234).
        #[arg(long)]
        target: String,
        /// The server whose targets to use (the same options as `serve`).
        #[command(flatten)]
        announce: AnnounceArgs,
        #[arg(long, env = "CR_PUBLIC_URL", value_parser = parse_public_url)]
        public_url: Option<String>,
    },
}

/// `doctor`: the configuration `serve` would use, checked.
#[derive(Args, Debug, Clone)]
pub struct DoctorArgs {
    /// One JSON object on standard output instead of the table (for scripts).
    #[arg(long)]
    pub json: bool,
    /// The configuration to check: the same options as `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// File to write, one report per line (`-` for standard output).
    #[arg(long)]
    pub to: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// File to write (a redb store that `check --data-dir` on its folder can verify).
    #[arg(long)]
    pub to: PathBuf,
    /// The running server that holds the store [default: http://<CR_LISTEN or HOST:PORT>].
    #[arg(long, env = "CR_BACKUP_FROM", value_parser = parse_public_url)]
    pub server: Option<String>,
    /// Admin token of that server.
    #[arg(long, hide_env_values = true, env = "CR_ADMIN_TOKEN")]
    pub admin_token: Option<Secret>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Repair a store left by an unclean stop in place (as `serve` does when it opens it),
    /// then verify it. Without it, a repaired copy is verified and the file left alone.
    #[arg(long)]
    pub repair: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory that holds the store file `crypto-report.redb`.
    #[arg(long, env = "CR_DATA_DIR", default_value = "crypto-report-data")]
    pub data_dir: PathBuf,
}

impl StoreArgs {
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join(crate::store::FILE_NAME)
    }
}

#[derive(Args, Debug, Clone)]
pub struct HttpArgs {
    /// Address to listen on [default: 127.0.0.1:8000, or HOST and PORT].
    #[arg(long, env = "CR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Public base URL used in RSS, the sitemap and robots.txt.
    #[arg(long, env = "CR_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Bearer token for the admin endpoints; they are refused while it is unset.
    #[arg(long, hide_env_values = true, env = "CR_ADMIN_TOKEN")]
    pub admin_token: Option<Secret>,
    /// Memory budget of the in-process page cache, in MiB.
    #[arg(long, env = "CR_CACHE_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub cache_mb: u64,
    /// Disk budget of the second page cache tier (its own file beside the store, kept across
    /// restarts), in MiB; 0 turns it off. With --redis-url, Redis is that tier instead.
    #[arg(long, env = "CR_L2_CACHE_MB", default_value_t = 32, value_parser = clap::value_parser!(u64).range(0..=65536))]
    pub l2_cache_mb: u64,
    /// Most simultaneous connections. At the cap the connection idle the longest is closed to
    /// make room; when every one is busy, new ones wait in the kernel's backlog.
    #[arg(long, env = "CR_MAX_CONNECTIONS", default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(16..=1_000_000))]
    pub max_connections: u64,
    /// Most simultaneous live-update (WebSocket) clients; further ones are answered with 503.
    #[arg(long, env = "CR_WS_MAX_CLIENTS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub ws_max_clients: u64,
    /// Address of a separate listener that serves only `GET /metrics`, to anyone who can
    /// reach it. On --listen, /metrics needs the admin token or a loopback peer.
    #[arg(long, env = "CR_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds a request may take before it is answered with 408.
    #[arg(long, env = "CR_REQUEST_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout: u64,
    /// Searches run at once, on threads of their own [default: one per core].
    #[arg(long, env = "CR_SEARCH_WORKERS", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub search_workers: Option<u64>,
    /// Searches that may wait for a search thread; beyond them a search is answered 503 with
    /// Retry-After.
    #[arg(long, env = "CR_SEARCH_QUEUE", default_value_t = 32, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub search_queue: u64,
    /// Milliseconds one search may run before it is stopped (answered 503).
    #[arg(long, env = "CR_SEARCH_BUDGET_MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub search_budget_ms: u64,
    /// Pages and share cards drawn at once, on threads of their own [default: one per core].
    #[arg(long, env = "CR_RENDER_WORKERS", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub render_workers: Option<u64>,
    /// Pages not yet cached that may wait for a render thread; beyond them such a page is
    /// answered 503 with Retry-After.
    #[arg(long, env = "CR_RENDER_QUEUE", default_value_t = 64, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub render_queue: u64,
}

/// Connections always left to page requests by the WebSocket cap.
const PAGE_HEADROOM: u64 = 256;

impl HttpArgs {
    /// The listen address: the flag or `CR_LISTEN`, else the upstream's `HOST`/`PORT`.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        if let Some(addr) = self.listen {
            return Ok(addr);
        }
        let host = match std::env::var("HOST") {
            Ok(h) => IpAddr::from_str(h.trim()).map_err(|_| ConfigError::new("HOST", &h))?,
            Err(_) => IpAddr::from([127, 0, 0, 1]),
        };
        let port = match std::env::var("PORT") {
            Ok(p) => p.trim().parse().map_err(|_| ConfigError::new("PORT", &p))?,
            Err(_) => 8000,
        };
        Ok(SocketAddr::new(host, port))
    }

    /// Checks what clap cannot check without echoing a secret.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.admin_token
            && token.expose().len() < 16
        {
            return Err(ConfigError {
                option: "--admin-token / CR_ADMIN_TOKEN",
                reason: "must be at least 16 characters long".into(),
            });
        }
        // Upgraded sockets keep their connection slot: live clients must not be able to take
        // every slot from page readers.
        if self.ws_max_clients + PAGE_HEADROOM > self.max_connections {
            return Err(ConfigError {
                option: "--ws-max-clients / CR_WS_MAX_CLIENTS",
                reason: format!(
                    "{} leaves fewer than {PAGE_HEADROOM} of --max-connections {} for page requests",
                    self.ws_max_clients, self.max_connections
                ),
            });
        }
        Ok(())
    }

    pub fn public_url_or(&self, listen: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout)
    }

    /// Threads, queue and budget of the searches.
    pub fn search_pool(&self) -> PoolSettings {
        let default = PoolSettings {
            budget: Duration::from_millis(self.search_budget_ms),
            ..PoolSettings::default()
        };
        pool(self.search_workers, self.search_queue, default)
    }

    /// Threads and queue of the page and card renders.
    pub fn render_pool(&self) -> PoolSettings {
        pool(
            self.render_workers,
            self.render_queue,
            crate::request::render_pool(),
        )
    }
}

/// `default` with the workers and queue given on the command line.
fn pool(workers: Option<u64>, queue: u64, default: PoolSettings) -> PoolSettings {
    PoolSettings {
        workers: workers
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(default.workers),
        queue: usize::try_from(queue).unwrap_or(default.queue),
        ..default
    }
}

/// Provider credentials and base URLs of the market refresher.
#[derive(Args, Debug, Clone)]
pub struct MarketArgs {
    /// CoinGecko demo API key (sent as `x-cg-demo-api-key`).
    #[arg(long, hide_env_values = true, env = "CR_COINGECKO_API_KEY")]
    pub coingecko_api_key: Option<Secret>,
    /// CoinGecko pro API key; switches to the pro host.
    #[arg(long, hide_env_values = true, env = "CR_COINGECKO_PRO_API_KEY")]
    pub coingecko_pro_api_key: Option<Secret>,
    /// CoinMarketCap API key [fallback: CMC_API_KEY].
    #[arg(long, hide_env_values = true, env = "CR_CMC_API_KEY")]
    pub cmc_api_key: Option<Secret>,
    /// TAAPI.IO secret [fallback: TAAPI_SECRET].
    #[arg(long, hide_env_values = true, env = "CR_TAAPI_SECRET")]
    pub taapi_secret: Option<Secret>,
    /// Finnhub API key [fallback: FINNHUB_API_KEY].
    #[arg(long, hide_env_values = true, env = "CR_FINNHUB_API_KEY")]
    pub finnhub_api_key: Option<Secret>,
    /// CoinGecko base URL [default: https://api.coingecko.com, or
    /// https://pro-api.coingecko.com with a pro key].
    #[arg(long, env = "CR_COINGECKO_URL", value_parser = parse_base_url)]
    pub coingecko_url: Option<String>,
    /// CoinMarketCap base URL.
    #[arg(long, env = "CR_COINMARKETCAP_URL", default_value = "https://pro-api.coinmarketcap.com", value_parser = parse_base_url)]
    pub coinmarketcap_url: String,
    /// Binance base URL: the market-data-only host, which also answers where api.binance.com
    /// refuses the server's location (HTTP 451).
    #[arg(long, env = "CR_BINANCE_URL", default_value = "https://data-api.binance.vision", value_parser = parse_base_url)]
    pub binance_url: String,
    /// alternative.me base URL (fear & greed index).
    #[arg(long, env = "CR_ALTERNATIVE_ME_URL", default_value = "https://api.alternative.me", value_parser = parse_base_url)]
    pub alternative_me_url: String,
    /// TAAPI.IO base URL.
    #[arg(long, env = "CR_TAAPI_URL", default_value = "https://api.taapi.io", value_parser = parse_base_url)]
    pub taapi_url: String,
    /// Finnhub base URL.
    #[arg(long, env = "CR_FINNHUB_URL", default_value = "https://finnhub.io", value_parser = parse_base_url)]
    pub finnhub_url: String,
}

impl MarketArgs {
    /// Fills unset keys from the upstream project's variable names.
    pub fn with_upstream_fallbacks(mut self) -> Self {
        let fallback = |current: &mut Option<Secret>, name: &str| {
            if current.is_none() {
                *current = std::env::var(name)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .map(Secret::new);
            }
        };
        fallback(&mut self.cmc_api_key, "CMC_API_KEY");
        fallback(&mut self.taapi_secret, "TAAPI_SECRET");
        fallback(&mut self.finnhub_api_key, "FINNHUB_API_KEY");
        self
    }

    /// The refresher's settings: providers with a key are enabled, a CoinGecko pro key picks
    /// the pro host and a larger budget; cadences and policies are the defaults.
    pub fn market_config(&self) -> market::Config {
        let cg_key = match (
            present(&self.coingecko_pro_api_key),
            present(&self.coingecko_api_key),
        ) {
            (Some(pro), _) => Some(coingecko::Key::Pro(pro)),
            (None, Some(demo)) => Some(coingecko::Key::Demo(demo)),
            (None, None) => None,
        };
        let cg_base = self.coingecko_url.clone().unwrap_or_else(|| {
            match cg_key {
                Some(coingecko::Key::Pro(_)) => coingecko::PRO_URL,
                _ => coingecko::DEFAULT_URL,
            }
            .into()
        });
        market::Config {
            budgets: Budgets::for_coingecko_key(cg_key.as_ref()),
            coingecko: CoinGecko {
                base: cg_base,
                key: cg_key,
            },
            coinmarketcap: present(&self.cmc_api_key).map(|key| CoinMarketCap {
                base: self.coinmarketcap_url.clone(),
                key,
            }),
            binance: Binance {
                base: self.binance_url.clone(),
            },
            alternative_me: AlternativeMe {
                base: self.alternative_me_url.clone(),
            },
            taapi: present(&self.taapi_secret).map(|secret| Taapi {
                base: self.taapi_url.clone(),
                secret,
            }),
            finnhub: present(&self.finnhub_api_key).map(|key| Finnhub {
                base: self.finnhub_url.clone(),
                key,
            }),
            ..market::Config::default()
        }
    }
}

/// An option whose value cannot be used; names the option, never echoes a secret.
#[derive(Debug, thiserror::Error)]
#[error("invalid value for {option}: {reason}")]
pub struct ConfigError {
    pub option: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(option: &'static str, value: &str) -> Self {
        Self {
            option,
            reason: format!("{value:?} is not valid"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::coinmarketcap;

    fn config(args: &[&str]) -> market::Config {
        let mut argv = vec!["crypto-report"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("parses")
            .serve
            .market
            .market_config()
    }

    #[test]
    fn coingecko_key_picks_host_header_and_budget() {
        let keyless = config(&[]);
        assert_eq!(keyless.coingecko.base, coingecko::DEFAULT_URL);
        assert!(keyless.coingecko.key.is_none());
        assert!(keyless.coinmarketcap.is_none() && keyless.taapi.is_none());

        let demo = config(&["--coingecko-api-key", "demo-key"]);
        assert_eq!(demo.coingecko.base, coingecko::DEFAULT_URL);
        assert!(matches!(demo.coingecko.key, Some(coingecko::Key::Demo(_))));
        assert!(demo.budgets.coingecko.every > keyless.budgets.coingecko.every);

        let pro = config(&[
            "--coingecko-api-key",
            "demo-key",
            "--coingecko-pro-api-key",
            "pro-key",
        ]);
        assert_eq!(pro.coingecko.base, coingecko::PRO_URL);
        assert!(matches!(pro.coingecko.key, Some(coingecko::Key::Pro(_))));

        let local = config(&[
            "--coingecko-pro-api-key",
            "pro-key",
            "--coingecko-url",
            "http://127.0.0.1:9/cg/",
        ]);
        assert_eq!(local.coingecko.base, "http://127.0.0.1:9/cg");
    }

    #[test]
    fn base_urls_are_validated_and_keys_enable_providers() {
        let c = config(&[
            "--cmc-api-key",
            "k",
            "--taapi-secret",
            " ",
            "--binance-url",
            "https://data-api.binance.vision",
        ]);
        assert_eq!(
            c.coinmarketcap.map(|m| m.base).as_deref(),
            Some(coinmarketcap::DEFAULT_URL)
        );
        assert!(c.taapi.is_none(), "a blank secret is no secret");
        assert_eq!(c.binance.base, "https://data-api.binance.vision");
        let err = Cli::try_parse_from(["crypto-report", "--finnhub-url", "finnhub.io"])
            .expect_err("bad url");
        assert!(err.to_string().contains("--finnhub-url"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let args = MarketArgs {
            coingecko_api_key: None,
            coingecko_pro_api_key: None,
            cmc_api_key: Some(s),
            taapi_secret: None,
            finnhub_api_key: None,
            coingecko_url: None,
            coinmarketcap_url: String::new(),
            binance_url: String::new(),
            alternative_me_url: String::new(),
            taapi_url: String::new(),
            finnhub_url: String::new(),
        };
        assert!(!format!("{args:?}").contains("hunter2"));
    }

    #[test]
    fn public_url_is_validated_and_normalised() {
        assert_eq!(
            parse_public_url("https://example.org/").as_deref(),
            Ok("https://example.org")
        );
        assert!(parse_public_url("example.org").is_err());
        assert!(parse_public_url("https://").is_err());
        assert!(parse_public_url("https://a.b/?x=1").is_err());
    }

    #[test]
    fn bad_values_name_the_option() {
        let err = Cli::try_parse_from(["crypto-report", "serve", "--listen", "nonsense"])
            .expect_err("must fail");
        assert!(err.to_string().contains("--listen"), "{err}");
        let cli = Cli::try_parse_from(["crypto-report", "--admin-token", "short-secret"])
            .expect("parses");
        let err = cli.serve.http.validate().expect_err("too short");
        assert!(err.to_string().contains("CR_ADMIN_TOKEN"), "{err}");
        assert!(!err.to_string().contains("short-secret"), "{err}");
    }

    #[test]
    fn websocket_cap_leaves_room_for_pages() {
        let ok = Cli::try_parse_from(["crypto-report"]).expect("defaults parse");
        assert!(
            ok.serve.http.validate().is_ok(),
            "the defaults are consistent"
        );
        let cli = Cli::try_parse_from([
            "crypto-report",
            "--max-connections",
            "1000",
            "--ws-max-clients",
            "900",
        ])
        .expect("parses");
        let err = cli.serve.http.validate().expect_err("no headroom");
        assert!(err.to_string().contains("--ws-max-clients"), "{err}");
    }

    #[test]
    fn sync_intervals_take_units_and_stay_sane() {
        assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_interval("600"), Ok(Duration::from_secs(600)));
        for bad in ["", "5x", "m", "1s", "2d", "25h"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        let err = Cli::try_parse_from(["crypto-report", "serve", "--sync-every", "often"])
            .expect_err("must fail");
        assert!(err.to_string().contains("--sync-every"), "{err}");
    }

    #[test]
    fn sync_url_is_a_secret() {
        let cli = Cli::try_parse_from([
            "crypto-report",
            "serve",
            "--sync-from",
            "postgres://u:hunter2-secret@db/x",
        ])
        .expect("parses");
        assert!(!format!("{cli:?}").contains("hunter2"));
    }

    #[test]
    fn no_subcommand_means_serve() {
        let cli = Cli::try_parse_from(["crypto-report", "--cache-mb", "8"]).expect("parses");
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.http.cache_mb, 8);
    }
}
