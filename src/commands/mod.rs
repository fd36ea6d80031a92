//! One small module per subcommand: glue between settings, store, training and report.

pub mod backbones;
pub mod export;
pub mod index;
pub mod plan;
pub mod predict;
pub mod progress;
pub mod report;
pub mod run;
pub mod serve;
pub mod similar;
pub mod status;

/// Process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// An unexpected error (a bug, or the machine).
    Failure = 1,
    /// Bad input: grid, data, weights or database path.
    BadInput = 2,
    /// The sweep finished but some trials failed (recorded with their error).
    TrialsFailed = 3,
    /// Interrupted by Ctrl-C / SIGTERM; running trials were put back to pending.
    Interrupted = 130,
}
