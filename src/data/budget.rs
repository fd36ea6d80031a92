//! The memory image decoding may hold at once, process-wide: each image reserves the bytes its
//! header says it needs before any pixel is allocated, and waits while others hold the rest.
//! So how many images decode side by side is bounded by memory, not by the cores.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Bytes every image being decoded at once may hold together (512 MiB).
pub const DECODE_MEMORY: u64 = 512 << 20;

/// Bytes one image may need to decode (256 MiB, so two of the largest still decode side by
/// side); an image that needs more is refused from its header.
pub const IMAGE_MEMORY: u64 = 256 << 20;

/// The budget every decode in this process draws from (`decode_file` and
/// `decode_bytes`, so training, `index`, `predict` and `serve` alike).
pub static DECODE_BUDGET: MemoryBudget = MemoryBudget::new(DECODE_MEMORY);

/// A pool of bytes handed out as [`Reservation`]s.
pub struct MemoryBudget {
    capacity: u64,
    in_use: Mutex<u64>,
    released: Condvar,
}

/// Bytes held from a [`MemoryBudget`] until dropped.
#[must_use = "the bytes are given back when the reservation is dropped"]
pub struct Reservation<'a> {
    budget: &'a MemoryBudget,
    bytes: u64,
}

impl MemoryBudget {
    pub const fn new(capacity: u64) -> MemoryBudget {
        MemoryBudget {
            capacity,
            in_use: Mutex::new(0),
            released: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        // The count is only ever updated whole, so a panic elsewhere leaves it consistent.
        self.in_use.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `bytes` (at most the whole capacity), if they are free now.
    pub fn try_reserve(&self, bytes: u64) -> Option<Reservation<'_>> {
        let bytes = bytes.min(self.capacity);
        let mut in_use = self.lock();
        self.take(&mut in_use, bytes)
    }

    /// `bytes` (at most the whole capacity), waiting until others have given back enough.
    pub fn reserve(&self, bytes: u64) -> Reservation<'_> {
        let bytes = bytes.min(self.capacity);
        let mut in_use = self.lock();
        loop {
            if let Some(reservation) = self.take(&mut in_use, bytes) {
                return reservation;
            }
            in_use = self
                .released
                .wait(in_use)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn take(&self, in_use: &mut u64, bytes: u64) -> Option<Reservation<'_>> {
        if *in_use + bytes > self.capacity {
            return None;
        }
        *in_use += bytes;
        Some(Reservation {
            budget: self,
            bytes,
        })
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        *self.lock()
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        *self.budget.lock() -= self.bytes;
        self.budget.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_waits_for_the_bytes_others_hold() {
        let budget = MemoryBudget::new(100);
        let first = budget.try_reserve(70).expect("free");
        assert!(budget.try_reserve(40).is_none(), "70 + 40 is over 100");
        let second = budget.try_reserve(30).expect("exactly fits");
        assert_eq!(budget.in_use(), 100);
        drop(first);
        assert_eq!(budget.in_use(), 30);
        // More than the capacity is clamped, so it can always proceed once alone.
        drop(second);
        let all = budget.try_reserve(1_000).expect("clamped to the capacity");
        assert_eq!(budget.in_use(), 100);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let r = budget.reserve(60);
                budget.in_use() - r.bytes
            });
            drop(all);
            // The waiter got its bytes only once `all` was given back: nothing else was held.
            assert_eq!(waiter.join().unwrap(), 0);
        });
        assert_eq!(budget.in_use(), 0);
    }
}
