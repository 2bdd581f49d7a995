//! The allocator's options. mimalloc reads them from the environment once, as the process
//! starts (before `main`), and safe Rust cannot set them later: so when the environment lacks
//! one of [`OPTIONS`], the process replaces itself (same PID, arguments and environment) with
//! the same program started with them. An option the environment sets is left as it is.

use std::os::unix::process::CommandExt;

/// mimalloc's options this program runs with unless the environment sets them. Freed memory
/// goes back to the system at once, not a second later: mimalloc purges only when a thread
/// allocates again, so an idle server kept what it freed for good. Arenas are committed as
/// they are used, not up front. `demo` 20 s after start: 60 MiB RSS with mimalloc's
/// defaults, 30 MiB with these (`scripts/bench-idle`).
pub const OPTIONS: [(&str, &str); 2] = [
    ("MIMALLOC_PURGE_DELAY", "0"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];

/// Restarts the process in place with the missing [`OPTIONS`]; returns only when none is
/// missing, or when the restart failed (then the process goes on with mimalloc's defaults).
/// Call it first in `main`, before any thread exists.
pub fn with_options() {
    let missing: Vec<(&str, &str)> = OPTIONS
        .into_iter()
        .filter(|(name, _)| std::env::var_os(name).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let error = command.args(args).envs(missing).exec();
    eprintln!("warning: allocator options not applied ({error}); running with its defaults");
}
