//! The SQLite SQL of each store operation: studies, trials through their states, and epochs.
//! Every write of a claimed trial names its lease (`attempts` and state `running`).

use super::columns::study_from_row;
use super::Sqlite;
use crate::store::backend::Backend;
use crate::store::lease::{ensure_lease_held, Claimed, Lease};
use crate::store::rows::{
    count_to_sql, EpochRow, TrialRow, EPOCH_COLUMNS, EPOCH_ORDER, TRIAL_COLUMNS,
};
use crate::store::Recovered;
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

impl Backend for Sqlite {
    fn ensure_study(
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

    fn study_fingerprint(&self, study_id: i64) -> anyhow::Result<Option<String>> {
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

    fn add_trials(&mut self, study_id: i64, trials: &[TrialSpec]) -> anyhow::Result<usize> {
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

    fn claim(
        &mut self,
        study_id: i64,
        keys: &[String],
        worker: &str,
    ) -> anyhow::Result<Vec<Claimed>> {
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
                 balanced_accuracy = NULL, f1 = NULL, best_objective = NULL, folds = NULL, objective_sd = NULL \
                 WHERE study_id = ?1 AND trial_key = ?2 AND state = 'pending' RETURNING id, attempts"
            ))?;
            for key in keys {
                let taken: Option<(i64, i64)> = take
                    .query_row(params![study_id, key, worker], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()?;
                if let Some((trial_id, attempt)) = taken {
                    delete_epochs(&tx, trial_id)?;
                    claimed.push(Claimed {
                        trial: trial_by_id(&tx, trial_id)?,
                        lease: Lease { trial_id, attempt },
                    });
                }
            }
        }
        tx.commit()?;
        Ok(claimed)
    }

    fn heartbeat(&mut self, leases: &[Lease]) -> anyhow::Result<()> {
        let tx = self.write_transaction()?;
        {
            let mut touch = tx.prepare(concat!(
                "UPDATE trials SET heartbeat_at = ",
                now_sql!(),
                " WHERE id = ?1 AND attempts = ?2 AND state = 'running'"
            ))?;
            for lease in leases {
                let changed = touch.execute([lease.trial_id, lease.attempt])?;
                ensure_lease_held(changed as u64, lease)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn recover_abandoned(
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

    /// One host, one file: a dead process is seen by its pid when the next run starts.
    fn recover_expired_leases(&mut self, _study_id: i64) -> anyhow::Result<Recovered> {
        Ok(Recovered::default())
    }

    fn lease_poll_interval(&self) -> Option<Duration> {
        None
    }

    fn record_epoch(&mut self, lease: &Lease, metrics: &EpochMetrics) -> anyhow::Result<()> {
        let trial_id = lease.trial_id;
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            "INSERT OR REPLACE INTO epochs (trial_id, phase, epoch, train_loss, train_accuracy, \
             val_loss, val_accuracy, seconds, val_balanced_accuracy, val_f1, fold) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12 FROM trials \
             WHERE id = ?1 AND attempts = ?11 AND state = 'running'",
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
                metrics.val_f1,
                lease.attempt,
                count_to_sql(metrics.fold)?
            ],
        )
        .with_context(|| format!("recording an epoch of trial {trial_id}"))?;
        ensure_lease_held(changed as u64, lease)?;
        tx.commit()?;
        Ok(())
    }

    fn complete_trial(&mut self, lease: &Lease, outcome: &TrialOutcome) -> anyhow::Result<()> {
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            concat!(
                "UPDATE trials SET state = 'complete', val_accuracy = ?2, best_val_accuracy = ?3, \
                 val_loss = ?4, epochs = ?5, seconds = ?6, balanced_accuracy = ?7, f1 = ?8, \
                 best_objective = ?9, folds = ?11, objective_sd = ?12, error = NULL, finished_at = ",
                now_sql!(),
                " WHERE id = ?1 AND attempts = ?10 AND state = 'running'"
            ),
            params![
                lease.trial_id,
                outcome.val_accuracy,
                outcome.best_val_accuracy,
                outcome.val_loss,
                count_to_sql(outcome.epochs)?,
                outcome.seconds,
                outcome.balanced_accuracy,
                outcome.f1,
                outcome.best_objective,
                lease.attempt,
                count_to_sql(outcome.folds)?,
                outcome.objective_sd
            ],
        )?;
        ensure_lease_held(changed as u64, lease)?;
        tx.commit()?;
        Ok(())
    }

    fn fail_trial(&mut self, lease: &Lease, error: &str) -> anyhow::Result<()> {
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            concat!(
                "UPDATE trials SET state = 'failed', error = ?2, val_accuracy = NULL, \
                 best_val_accuracy = NULL, val_loss = NULL, epochs = NULL, seconds = NULL, \
                 balanced_accuracy = NULL, f1 = NULL, best_objective = NULL, folds = NULL, objective_sd = NULL, finished_at = ",
                now_sql!(),
                " WHERE id = ?1 AND attempts = ?3 AND state = 'running'"
            ),
            params![lease.trial_id, error, lease.attempt],
        )?;
        ensure_lease_held(changed as u64, lease)?;
        tx.commit()?;
        Ok(())
    }

    fn release(&mut self, leases: &[Lease]) -> anyhow::Result<()> {
        let tx = self.write_transaction()?;
        {
            let mut release = tx.prepare(
                "UPDATE trials SET state = 'pending', worker = NULL, started_at = NULL, \
                 heartbeat_at = NULL WHERE id = ?1 AND attempts = ?2 AND state = 'running'",
            )?;
            for lease in leases {
                if release.execute([lease.trial_id, lease.attempt])? == 1 {
                    delete_epochs(&tx, lease.trial_id)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn study(&self, name: &str) -> anyhow::Result<Option<StudyRecord>> {
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

    fn latest_study(&self) -> anyhow::Result<Option<StudyRecord>> {
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

    fn studies(&self) -> anyhow::Result<Vec<StudyRecord>> {
        let mut select = self
            .conn
            .prepare("SELECT id, name, grid_toml, created_at FROM studies ORDER BY id")?;
        let studies = select.query_map([], study_from_row)?;
        Ok(studies.collect::<Result<_, _>>()?)
    }

    fn trials(&self, study_id: i64) -> anyhow::Result<Vec<TrialRecord>> {
        let sql = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE study_id = ?1 ORDER BY id");
        let mut select = self.conn.prepare(&sql)?;
        let rows = select.query_map([study_id], TrialRow::from_row)?;
        rows.map(|row| row?.into_record()).collect()
    }

    fn epochs(&self, trial_id: i64) -> anyhow::Result<Vec<EpochMetrics>> {
        let sql = format!(
            "SELECT {EPOCH_COLUMNS} FROM epochs WHERE trial_id = ?1 ORDER BY {EPOCH_ORDER}"
        );
        let mut select = self.conn.prepare(&sql)?;
        let rows = select.query_map([trial_id], EpochRow::from_row)?;
        rows.map(|row| row?.into_metrics(trial_id)).collect()
    }

    fn epochs_of_study(&self, study_id: i64) -> anyhow::Result<BTreeMap<i64, Vec<EpochMetrics>>> {
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
