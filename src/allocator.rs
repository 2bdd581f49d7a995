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

/// The purge delay of a command that runs to its end without a rest (`import`), in ms.
/// Returning freed pages at once costs an import a `madvise` and a TLB flush on every core
/// per page it is done with: 25% of its CPU (perf, 20,000 reports), and 7.3 s against 6.1 s
/// with 10 ms, for 3 MiB more at its peak. Its memory goes back when it exits.
pub const BATCH_PURGE_DELAY: &str = "10";

/// [`OPTIONS`] for the command line `args` (without the program's name).
pub fn options_for(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> [(&'static str, &'static str); 2] {
    let mut options = OPTIONS;
    if subcommand(args).as_deref() == Some(std::ffi::OsStr::new("import")) {
        options[0].1 = BATCH_PURGE_DELAY;
    }
    options
}

/// The first argument that is neither an option nor the value of `--env-file` (the one
/// option that comes before a subcommand).
fn subcommand(args: impl IntoIterator<Item = std::ffi::OsString>) -> Option<std::ffi::OsString> {
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--env-file" {
            args.next();
        } else if !arg.as_encoded_bytes().starts_with(b"-") {
            return Some(arg);
        }
    }
    None
}

/// Restarts the process in place with the missing [`OPTIONS`]; returns only when none is
/// missing, or when the restart failed (then the process goes on with mimalloc's defaults).
/// Call it first in `main`, before any thread exists.
pub fn with_options() {
    let missing: Vec<(&str, &str)> = options_for(std::env::args_os().skip(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options(line: &str) -> [(&'static str, &'static str); 2] {
        options_for(line.split_whitespace().map(std::ffi::OsString::from))
    }

    #[test]
    fn an_import_purges_after_a_delay_and_everything_else_at_once() {
        let delay = |line: &str| options(line)[0];
        assert_eq!(
            delay("import --from r.jsonl"),
            ("MIMALLOC_PURGE_DELAY", BATCH_PURGE_DELAY)
        );
        assert_eq!(
            delay("--env-file import import"),
            ("MIMALLOC_PURGE_DELAY", BATCH_PURGE_DELAY)
        );
        for line in [
            "",
            "serve",
            "demo",
            "--env-file import",
            "--env-file x serve",
            "export",
        ] {
            assert_eq!(delay(line), OPTIONS[0], "{line:?}");
        }
        assert_eq!(options("import")[1], OPTIONS[1]);
    }
}
