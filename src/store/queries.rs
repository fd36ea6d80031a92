//! The SQL of each `Store` operation: studies, trials through their states, and epochs.

use super::columns::{study_from_row, EPOCH_COLUMNS, TRIAL_COLUMNS};
use super::errors::ensure_one_trial_changed;
use super::rows::{count_to_sql, EpochRow, TrialRow};
use super::{Recovered, Store};
use crate::trial::{EpochMetrics, StudyRecord, TrialOutcome, TrialRecord, TrialSpec, Vocabulary};
use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;
use std::time::Duration;

/// The current time as RFC 3339 UTC with milliseconds, made by SQLite.
macro_rules! now_sql {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
    };
}

/// Head epochs first, then fine-tune epochs, each by epoch number.
const EPOCH_ORDER: &str = "CASE phase WHEN 'head' THEN 0 ELSE 1 END, epoch";

impl Store {
    /// Insert the study, or return the existing one with its grid text replaced by `grid_toml`.
    /// An existing study keeps its first fingerprint (see [`Store::study_fingerprint`]).
    pub fn ensure_study(
        &mut self,
        name: &str,
        grid_toml: &str,
        fingerprint: &str,
    ) -> anyhow::Result<StudyRecord> {
        let tx = self.write_transaction()?;
        let study = tx.query_row(
            concat!(
                "INSERT INTO studies (name, grid_toml, fingerprint, created_at) VALUES (?1, ?2, ?3, ",
                now_sql!(),
                ") ON CONFLICT (name) DO UPDATE SET grid_toml = excluded.grid_toml \
                 RETURNING id, name, grid_toml, created_at"
            ),
            params![name, grid_toml, fingerprint],
            study_from_row,
        )?;
        tx.commit()?;
        Ok(study)
    }

    /// The fingerprint the study was created with, if the study exists.
    pub fn study_fingerprint(&self, study_id: i64) -> anyhow::Result<Option<String>> {
        let fingerprint = self
            .conn
            .query_row(
                "SELECT fingerprint FROM studies WHERE id = ?1",
                [study_id],
                |row| row.get(0),
            )
            .optional()?;
        Ok(fingerprint)
    }

    /// Add the trials not yet in the study as pending; returns how many were new.
    pub fn add_trials(&mut self, study_id: i64, trials: &[TrialSpec]) -> anyhow::Result<usize> {
        let tx = self.write_transaction()?;
        let mut added = 0;
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO trials (study_id, trial_key, params_json, settings_json, state) \
                 VALUES (?1, ?2, ?3, ?4, 'pending')",
            )?;
            for spec in trials {
                let params_json = serde_json::to_string(&spec.params)?;
                let settings_json = serde_json::to_string(&spec.settings)?;
                added += insert
                    .execute(params![study_id, spec.key, params_json, settings_json])
                    .with_context(|| format!("adding trial {} to study {study_id}", spec.key))?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Of these keys, move those still pending to running for `worker`; returns them in key order.
    pub fn claim(
        &mut self,
        study_id: i64,
        keys: &[String],
        worker: &str,
    ) -> anyhow::Result<Vec<TrialRecord>> {
        let tx = self.write_transaction()?;
        let mut claimed = Vec::new();
        {
            let mut take = tx.prepare(concat!(
                "UPDATE trials SET state = 'running', attempts = attempts + 1, worker = ?3, \
                 started_at = ",
                now_sql!(),
                ", heartbeat_at = ",
                now_sql!(),
                ", finished_at = NULL, error = NULL, val_accuracy = NULL, \
                 best_val_accuracy = NULL, val_loss = NULL, epochs = NULL, seconds = NULL, \
                 balanced_accuracy = NULL, f1 = NULL, best_objective = NULL \
                 WHERE study_id = ?1 AND trial_key = ?2 AND state = 'pending' RETURNING id"
            ))?;
            for key in keys {
                let id: Option<i64> = take
                    .query_row(params![study_id, key, worker], |row| row.get(0))
                    .optional()?;
                if let Some(id) = id {
                    delete_epochs(&tx, id)?;
                    claimed.push(trial_by_id(&tx, id)?);
                }
            }
        }
        tx.commit()?;
        Ok(claimed)
    }

    /// Mark these running trials as alive now.
    pub fn heartbeat(&mut self, trial_ids: &[i64]) -> anyhow::Result<()> {
        let tx = self.write_transaction()?;
        {
            let mut touch = tx.prepare(concat!(
                "UPDATE trials SET heartbeat_at = ",
                now_sql!(),
                " WHERE id = ?1 AND state = 'running'"
            ))?;
            for id in trial_ids {
                touch.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Recover the study's running trials whose process is gone: those whose heartbeat is
    /// older than `stale_after` or whose worker `is_dead` says so. Each goes back to pending
    /// (its epochs deleted), unless it has already been started `max_attempts` times: then it
    /// kept taking its process down, and is marked failed.
    pub fn recover_abandoned(
        &mut self,
        study_id: i64,
        stale_after: Duration,
        max_attempts: u32,
        is_dead: &dyn Fn(&str) -> bool,
    ) -> anyhow::Result<Recovered> {
        let modifier = format!("-{:.3} seconds", stale_after.as_secs_f64());
        let tx = self.write_transaction()?;
        let running: Vec<(i64, Option<String>, i64, bool)> = {
            let mut select = tx.prepare(
                "SELECT id, worker, attempts, (heartbeat_at IS NULL \
                 OR heartbeat_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)) \
                 FROM trials WHERE study_id = ?1 AND state = 'running'",
            )?;
            let rows = select.query_map(params![study_id, modifier], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut recovered = Recovered::default();
        for (id, worker, attempts, stale) in running {
            let worker = worker.unwrap_or_default();
            if !stale && !is_dead(&worker) {
                continue;
            }
            if attempts >= i64::from(max_attempts) {
                let error = format!(
                    "its process died {attempts} times while running it (last worker {worker}); \
                     not retried"
                );
                tx.execute(
                    "UPDATE trials SET state = 'failed', error = ?2, \
                     finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
                    params![id, error],
                )?;
                recovered.failed += 1;
            } else {
                tx.execute(
                    "UPDATE trials SET state = 'pending', worker = NULL, started_at = NULL, \
                     heartbeat_at = NULL WHERE id = ?1",
                    [id],
                )?;
                delete_epochs(&tx, id)?;
                recovered.requeued += 1;
            }
        }
        tx.commit()?;
        Ok(recovered)
    }

    /// Store one epoch's metrics, replacing any earlier row for the same phase and epoch.
    pub fn record_epoch(&mut self, trial_id: i64, metrics: &EpochMetrics) -> anyhow::Result<()> {
        let tx = self.write_transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO epochs (trial_id, phase, epoch, train_loss, train_accuracy, \
             val_loss, val_accuracy, seconds, val_balanced_accuracy, val_f1) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                trial_id,
                metrics.phase.as_str(),
                count_to_sql(metrics.epoch)?,
                metrics.train_loss,
                metrics.train_accuracy,
                metrics.val_loss,
                metrics.val_accuracy,
                metrics.seconds,
                metrics.val_balanced_accuracy,
                metrics.val_f1
            ],
        )
        .with_context(|| format!("recording an epoch of trial {trial_id}"))?;
        tx.commit()?;
        Ok(())
    }

    /// Mark the trial complete with its outcome.
    pub fn complete_trial(&mut self, trial_id: i64, outcome: &TrialOutcome) -> anyhow::Result<()> {
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            concat!(
                "UPDATE trials SET state = 'complete', val_accuracy = ?2, best_val_accuracy = ?3, \
                 val_loss = ?4, epochs = ?5, seconds = ?6, balanced_accuracy = ?7, f1 = ?8, \
                 best_objective = ?9, error = NULL, finished_at = ",
                now_sql!(),
                " WHERE id = ?1"
            ),
            params![
                trial_id,
                outcome.val_accuracy,
                outcome.best_val_accuracy,
                outcome.val_loss,
                count_to_sql(outcome.epochs)?,
                outcome.seconds,
                outcome.balanced_accuracy,
                outcome.f1,
                outcome.best_objective
            ],
        )?;
        ensure_one_trial_changed(changed, trial_id)?;
        tx.commit()?;
        Ok(())
    }

    /// Mark the trial failed with its error message.
    pub fn fail_trial(&mut self, trial_id: i64, error: &str) -> anyhow::Result<()> {
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            concat!(
                "UPDATE trials SET state = 'failed', error = ?2, val_accuracy = NULL, \
                 best_val_accuracy = NULL, val_loss = NULL, epochs = NULL, seconds = NULL, \
                 balanced_accuracy = NULL, f1 = NULL, best_objective = NULL, finished_at = ",
                now_sql!(),
                " WHERE id = ?1"
            ),
            params![trial_id, error],
        )?;
        ensure_one_trial_changed(changed, trial_id)?;
        tx.commit()?;
        Ok(())
    }

    /// Put interrupted running trials back to pending and forget their epochs; others are untouched.
    pub fn release(&mut self, trial_ids: &[i64]) -> anyhow::Result<()> {
        let tx = self.write_transaction()?;
        {
            let mut release = tx.prepare(
                "UPDATE trials SET state = 'pending', worker = NULL, started_at = NULL, \
                 heartbeat_at = NULL WHERE id = ?1 AND state = 'running'",
            )?;
            for id in trial_ids {
                if release.execute([id])? == 1 {
                    delete_epochs(&tx, *id)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn study(&self, name: &str) -> anyhow::Result<Option<StudyRecord>> {
        let study = self
            .conn
            .query_row(
                "SELECT id, name, grid_toml, created_at FROM studies WHERE name = ?1",
                [name],
                study_from_row,
            )
            .optional()?;
        Ok(study)
    }

    /// The most recently created study.
    pub fn latest_study(&self) -> anyhow::Result<Option<StudyRecord>> {
        let study = self
            .conn
            .query_row(
                "SELECT id, name, grid_toml, created_at FROM studies \
                 ORDER BY created_at DESC, id DESC LIMIT 1",
                [],
                study_from_row,
            )
            .optional()?;
        Ok(study)
    }

    /// Every study, oldest first.
    pub fn studies(&self) -> anyhow::Result<Vec<StudyRecord>> {
        let mut select = self
            .conn
            .prepare("SELECT id, name, grid_toml, created_at FROM studies ORDER BY id")?;
        let studies = select.query_map([], study_from_row)?;
        Ok(studies.collect::<Result<_, _>>()?)
    }

    /// Every trial of the study, by id.
    pub fn trials(&self, study_id: i64) -> anyhow::Result<Vec<TrialRecord>> {
        let sql = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE study_id = ?1 ORDER BY id");
        let mut select = self.conn.prepare(&sql)?;
        let rows = select.query_map([study_id], TrialRow::from_row)?;
        rows.map(|row| row?.into_record()).collect()
    }

    /// The trial's epochs: head phase first, then fine-tune, each by epoch.
    pub fn epochs(&self, trial_id: i64) -> anyhow::Result<Vec<EpochMetrics>> {
        let sql = format!(
            "SELECT {EPOCH_COLUMNS} FROM epochs WHERE trial_id = ?1 ORDER BY {EPOCH_ORDER}"
        );
        let mut select = self.conn.prepare(&sql)?;
        let rows = select.query_map([trial_id], EpochRow::from_row)?;
        rows.map(|row| row?.into_metrics(trial_id)).collect()
    }

    /// The epochs of every trial of the study that has any, by trial id.
    pub fn epochs_of_study(
        &self,
        study_id: i64,
    ) -> anyhow::Result<BTreeMap<i64, Vec<EpochMetrics>>> {
        let sql = format!(
            "SELECT trial_id, {EPOCH_COLUMNS} FROM epochs \
             WHERE trial_id IN (SELECT id FROM trials WHERE study_id = ?1) \
             ORDER BY trial_id, {EPOCH_ORDER}"
        );
        let mut select = self.conn.prepare(&sql)?;
        let rows = select.query_map([study_id], |row| {
            Ok((row.get::<_, i64>(0)?, EpochRow::from_row_at(row, 1)?))
        })?;
        let mut by_trial: BTreeMap<i64, Vec<EpochMetrics>> = BTreeMap::new();
        for row in rows {
            let (trial_id, epoch) = row?;
            by_trial
                .entry(trial_id)
                .or_default()
                .push(epoch.into_metrics(trial_id)?);
        }
        Ok(by_trial)
    }
}

fn delete_epochs(tx: &Transaction<'_>, trial_id: i64) -> rusqlite::Result<usize> {
    tx.execute("DELETE FROM epochs WHERE trial_id = ?1", [trial_id])
}

fn trial_by_id(conn: &Connection, trial_id: i64) -> anyhow::Result<TrialRecord> {
    let sql = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE id = ?1");
    conn.query_row(&sql, [trial_id], TrialRow::from_row)?
        .into_record()
}
