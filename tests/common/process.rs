//! A `crypto-report serve` process on a free port, for what needs a real process: signals,
//! `kill -9`, several instances. Its stderr is read on a thread; it is killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The program under test: `CR_BIN` when set (CI runs the real-process tests against the
/// release artifact), else this build's binary.
pub fn bin() -> String {
    std::env::var("CR_BIN")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_crypto-report").to_owned())
}
/// `bin()` with `args`, as an unprivileged user (nobody, through util-linux's `setpriv`) when
/// the tests run as root: what a service's user may and may not do, even in CI.
pub fn unprivileged(args: &[&str]) -> Command {
    let mut command = if rustix::process::geteuid().is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin());
        c
    } else {
        Command::new(bin())
    };
    command.args(args).current_dir("/");
    command
}

/// Where the market providers are unless a test says otherwise: nowhere (tests never reach
/// the internet).
pub const NOWHERE: &str = "http://127.0.0.1:9";
const PROVIDERS: [&str; 6] = [
    "CR_COINGECKO_URL",
    "CR_COINMARKETCAP_URL",
    "CR_BINANCE_URL",
    "CR_ALTERNATIVE_ME_URL",
    "CR_TAAPI_URL",
    "CR_FINNHUB_URL",
];

pub struct Instance {
    child: Child,
    pub addr: SocketAddr,
    logs: mpsc::Receiver<String>,
}

impl Instance {
    /// `serve --listen 127.0.0.1:0` on `data_dir` with `args`; `env` overrides the defaults
    /// (providers nowhere, `RUST_LOG=info`).
    pub fn start(data_dir: &std::path::Path, args: &[&str], env: &[(&str, String)]) -> Instance {
        let mut command = Command::new(bin());
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("CR_DATA_DIR", data_dir)
            .env("RUST_LOG", "info")
            .env_remove("CR_REDIS_URL")
            .env_remove("REDIS_URL")
            .env_remove("CR_PG_URL")
            .env_remove("DATABASE_URL");
        for p in PROVIDERS {
            command.env(p, NOWHERE);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let line = logs
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the server logs its address");
            if line.contains("listening")
                && let Some(rest) = line.split("address=").nth(1)
            {
                break rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.parse().ok())
                    .expect("address");
            }
        };
        Instance { child, addr, logs }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged since the last call.
    pub fn logged(&self) -> String {
        self.logs.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM, then waits (at most 30 s) for a clean stop; true when it exited with 0.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}
