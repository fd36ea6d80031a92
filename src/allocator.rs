//! The global allocator's settings (mimalloc is installed in `main.rs`).

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// mimalloc's `mi_option_purge_delay`: milliseconds freed memory is kept before it goes back to
/// the OS. The crate names no constant for it; it is entry 15 of `mi_option_e` in mimalloc's v2
/// and v3 headers (v3's default, 1000, is tested below).
const PURGE_DELAY: mi_option_t = 15;

/// How long freed memory is kept. The frozen pass frees and reallocates each batch's tensors as
/// a core moves on; with mimalloc's 1 s some went back to the OS in between, and the kernel
/// zeroing them again made the streamed pass slower than decoding everything first
/// (`bench/frozen_pass.sh`). Memory freed and not reused for this long still goes back.
const KEEP_FREED_MS: i64 = 10_000;

/// Apply the settings; call first thing in `main`. mimalloc's own `MIMALLOC_PURGE_DELAY`, when
/// set, wins.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's integer options; any value is valid for it.
        unsafe { mi_option_set(PURGE_DELAY, KEEP_FREED_MS as _) }
    }
}

/// The purge delay in force.
pub fn purge_delay_ms() -> i64 {
    // SAFETY: reads one of mimalloc's integer options.
    unsafe { mi_option_get(PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_15_is_the_purge_delay_and_configure_sets_it() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // Only purge_delay defaults to 1000 among mimalloc's options (its neighbours: 1 and 0).
        assert_eq!(purge_delay_ms(), 1000);
        configure();
        assert_eq!(purge_delay_ms(), KEEP_FREED_MS);
    }
}
