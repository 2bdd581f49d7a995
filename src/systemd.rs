//! systemd integration beyond readiness: a watchdog ping sent only after the runtime and the
//! store have answered, and a `STATUS=` line (reports, market) refreshed with it. Outside
//! systemd (no `NOTIFY_SOCKET`) nothing runs. The unit itself: systemd/install.rs.

pub mod install;

use std::time::Duration;

use sd_notify::NotifyState;

use crate::AppState;

/// How often the status line is refreshed when systemd asks for no watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(30);

/// Starts the `systemd` background task when running under systemd.
pub fn start(state: &AppState) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    // systemd's advice: ping at half the watchdog interval.
    let watchdog = sd_notify::watchdog_enabled();
    let every = watchdog.map_or(STATUS_EVERY, |w| (w / 2).max(Duration::from_millis(100)));
    if let Some(w) = watchdog {
        tracing::info!(watchdog = ?w, "systemd watchdog enabled");
    }
    let state = state.clone();
    state
        .background()
        .clone()
        .spawn("systemd", move |stop| async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                // Being here proves the async workers run; the count proves the blocking
                // pool and the store answer, within half an interval.
                let count = tokio::time::timeout(every / 2, state.store.call(|s| s.count())).await;
                let sent = match count {
                    Ok(Ok(reports)) => {
                        let status = status(&state, reports);
                        let mut message = vec![NotifyState::Status(&status)];
                        if watchdog.is_some() {
                            message.push(NotifyState::Watchdog);
                        }
                        sd_notify::notify(&message)
                    }
                    failed => {
                        // No ping: if this lasts, systemd restarts the service.
                        let why = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".to_owned(),
                        };
                        tracing::error!(error = %why, "the store does not answer; withholding the watchdog ping");
                        sd_notify::notify(&[NotifyState::Status("store not answering")])
                    }
                };
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "cannot notify systemd");
                }
            }
        });
}

/// `7 reports; market live, partial failure`.
fn status(state: &AppState, reports: u64) -> String {
    let market = state.market.health();
    let mode = market["mode"].as_str().unwrap_or("unknown");
    let partial = if market["partial_failure"] == true {
        ", partial failure"
    } else {
        ""
    };
    format!(
        "{reports} reports; market {mode}{partial}; {} live clients",
        state.live.clients()
    )
}
