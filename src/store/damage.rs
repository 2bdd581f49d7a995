//! A damaged page makes redb panic where it reads it. Every walk that must get past damage
//! (check, export, the lists, backup, opening) runs its reads inside [`guarded`], which turns
//! that panic into an error naming the damage.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Result, StoreError};

thread_local! {
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside [`guarded`], where a panic is an expected report of damage
/// (a panic hook can stay quiet about it).
pub fn panic_is_handled() -> bool {
    GUARDED.with(std::cell::Cell::get)
}

/// Runs `f`, turning a panic inside redb (a corrupted page) into an error.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let outer = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    match result {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(StoreError::Unreadable(format!(
                "a damaged page cannot be read ({what})"
            )))
        }
    }
}

/// `walked`, or, where that walk met a damaged page, what `around` gathers around the damage.
pub(super) fn or_around_damage<T>(
    walked: Result<T>,
    around: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match walked {
        Err(StoreError::Unreadable(_) | StoreError::Db(redb::Error::Corrupted(_))) => around(),
        other => other,
    }
}
