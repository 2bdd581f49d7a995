//! Taking a mutex that a panicking thread held: every critical section in this crate leaves
//! its data whole before anything that can panic, so the data is still good and the guard is
//! taken anyway instead of spreading the panic to every later user.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
