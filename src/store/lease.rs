//! Claims as leases: which attempt at a trial a worker holds, and the error of a write made
//! after that attempt was taken from it (its lease expired and the trial went to another).

use crate::trial::TrialRecord;

/// One worker's hold on one trial: the trial and the attempt number its claim made. Every
/// write names it; once another claim has started a later attempt, the write changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub trial_id: i64,
    pub attempt: i64,
}

/// A trial just claimed, with the lease its writes must name.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub trial: TrialRecord,
    pub lease: Lease,
}

/// A write under a lease the worker no longer holds was rejected (it changed no row): the
/// trial is another worker's now, or finished. The worker drops the trial.
#[derive(Debug, thiserror::Error)]
#[error("trial {trial_id}: attempt {attempt} no longer holds its lease (the trial went to another worker); dropped")]
pub struct LeaseLost {
    pub trial_id: i64,
    pub attempt: i64,
}

impl LeaseLost {
    pub fn of(lease: &Lease) -> LeaseLost {
        LeaseLost {
            trial_id: lease.trial_id,
            attempt: lease.attempt,
        }
    }
}

/// `Ok` when the write under `lease` changed one row, else [`LeaseLost`].
pub(super) fn ensure_lease_held(changed: u64, lease: &Lease) -> anyhow::Result<()> {
    if changed != 1 {
        return Err(LeaseLost::of(lease).into());
    }
    Ok(())
}
