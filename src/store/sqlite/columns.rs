//! The readers that take a SQLite result row in the order of `rows::TRIAL_COLUMNS` and `EPOCH_COLUMNS`.

use crate::store::rows::{EpochRow, TrialRow};
use crate::trial::StudyRecord;

pub(super) fn study_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StudyRecord> {
    Ok(StudyRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        grid_toml: row.get(2)?,
        created_at: row.get(3)?,
    })
}

impl TrialRow {
    pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TrialRow> {
        Ok(TrialRow {
            id: row.get(0)?,
            study_id: row.get(1)?,
            key: row.get(2)?,
            params_json: row.get(3)?,
            settings_json: row.get(4)?,
            state: row.get(5)?,
            val_accuracy: row.get(6)?,
            best_val_accuracy: row.get(7)?,
            val_loss: row.get(8)?,
            epochs: row.get(9)?,
            seconds: row.get(10)?,
            error: row.get(11)?,
            started_at: row.get(12)?,
            finished_at: row.get(13)?,
            balanced_accuracy: row.get(14)?,
            f1: row.get(15)?,
            best_objective: row.get(16)?,
            folds: row.get(17)?,
            objective_sd: row.get(18)?,
        })
    }
}

impl EpochRow {
    pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EpochRow> {
        EpochRow::from_row_at(row, 0)
    }

    /// Read the [`EPOCH_COLUMNS`] starting at column `first`.
    pub(super) fn from_row_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<EpochRow> {
        Ok(EpochRow {
            phase: row.get(first)?,
            epoch: row.get(first + 1)?,
            train_loss: row.get(first + 2)?,
            train_accuracy: row.get(first + 3)?,
            val_loss: row.get(first + 4)?,
            val_accuracy: row.get(first + 5)?,
            seconds: row.get(first + 6)?,
            val_balanced_accuracy: row.get(first + 7)?,
            val_f1: row.get(first + 8)?,
            fold: row.get(first + 9)?,
        })
    }
}
