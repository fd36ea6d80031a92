//! The PostgreSQL SQL of each store operation. A claim is one statement (`FOR UPDATE SKIP
//! LOCKED`, so workers never wait on each other) that starts a new attempt with a lease timed
//! by the server's clock; every later write names that attempt and changes nothing once the
//! lease is gone. No transaction is held between statements.

use super::columns::{epoch_from_row, study_from_row, trial_from_row};
use super::Postgres;
use crate::store::backend::Backend;
use crate::store::lease::{ensure_lease_held, Claimed, Lease, LeaseLost};
use crate::store::rows::{count_to_sql, EPOCH_COLUMNS, EPOCH_ORDER, TRIAL_COLUMNS};
use crate::store::Recovered;
use crate::trial::{EpochMetrics, StudyRecord, TrialOutcome, TrialRecord, TrialSpec, Vocabulary};
use std::collections::BTreeMap;
use std::time::Duration;

/// The current time as RFC 3339 UTC with milliseconds (as the SQLite backend writes it).
macro_rules! now_text {
    () => {
        "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    };
}

/// The outcome columns a new attempt clears.
const CLEARED_OUTCOME: &str = "finished_at = NULL, error = NULL, val_accuracy = NULL, \
     best_val_accuracy = NULL, val_loss = NULL, epochs = NULL, seconds = NULL, \
     balanced_accuracy = NULL, f1 = NULL, best_objective = NULL, folds = NULL, objective_sd = NULL";

fn lease_columns(leases: &[Lease]) -> (Vec<i64>, Vec<i64>) {
    leases.iter().map(|l| (l.trial_id, l.attempt)).unzip()
}

impl Backend for Postgres {
    fn ensure_study(
        &mut self,
        name: &str,
        grid_toml: &str,
        fingerprint: &str,
    ) -> anyhow::Result<StudyRecord> {
        let sql = concat!(
            "INSERT INTO studies (name, grid_toml, fingerprint, created_at) VALUES ($1, $2, $3, ",
            now_text!(),
            ") ON CONFLICT (name) DO UPDATE SET grid_toml = excluded.grid_toml \
             RETURNING id, name, grid_toml, created_at"
        );
        let row = self.durably("adding a study", |c| {
            c.query_one(sql, &[&name, &grid_toml, &fingerprint])
        })?;
        Ok(study_from_row(&row))
    }

    fn study_fingerprint(&self, study_id: i64) -> anyhow::Result<Option<String>> {
        let row = self.with_client("reading a study", |c| {
            c.query_opt(
                "SELECT fingerprint FROM studies WHERE id = $1",
                &[&study_id],
            )
        })?;
        Ok(row.map(|r| r.get(0)))
    }

    fn add_trials(&mut self, study_id: i64, trials: &[TrialSpec]) -> anyhow::Result<usize> {
        let mut keys = Vec::with_capacity(trials.len());
        let mut params = Vec::with_capacity(trials.len());
        let mut settings = Vec::with_capacity(trials.len());
        for spec in trials {
            keys.push(spec.key.clone());
            params.push(serde_json::to_string(&spec.params)?);
            settings.push(serde_json::to_string(&spec.settings)?);
        }
        let added = self.durably("adding trials", |c| {
            c.execute(
                "INSERT INTO trials (study_id, trial_key, params_json, settings_json, state) \
                 SELECT $1, k, p, s, 'pending' FROM unnest($2::text[], $3::text[], $4::text[]) \
                 AS new(k, p, s) ON CONFLICT (study_id, trial_key) DO NOTHING",
                &[&study_id, &keys, &params, &settings],
            )
        })?;
        Ok(usize::try_from(added)?)
    }

    fn claim(
        &mut self,
        study_id: i64,
        keys: &[String],
        worker: &str,
    ) -> anyhow::Result<Vec<Claimed>> {
        let sql = format!(
            "WITH taken AS ( \
                 SELECT id FROM trials WHERE study_id = $1 AND trial_key = ANY($2) \
                 AND state = 'pending' FOR UPDATE SKIP LOCKED), \
             claimed AS ( \
                 UPDATE trials SET state = 'running', attempts = attempts + 1, worker = $3, \
                 started_at = {now}, lease_expires_at = now() + make_interval(secs => $4), \
                 {CLEARED_OUTCOME} \
                 FROM taken WHERE trials.id = taken.id RETURNING trials.*), \
             forgotten AS (DELETE FROM epochs WHERE trial_id IN (SELECT id FROM claimed)) \
             SELECT {TRIAL_COLUMNS}, attempts FROM claimed ORDER BY array_position($2, trial_key)",
            now = now_text!()
        );
        let lease = self.lease.as_secs_f64();
        let keys = keys.to_vec();
        let rows = self.durably("claiming trials", |c| {
            c.query(&sql, &[&study_id, &keys, &worker, &lease])
        })?;
        rows.iter()
            .map(|row| {
                let trial = trial_from_row(row).into_record()?;
                let lease = Lease {
                    trial_id: trial.id,
                    // `attempts`, selected after the trial columns.
                    attempt: row.get(row.len() - 1),
                };
                Ok(Claimed { trial, lease })
            })
            .collect()
    }

    fn heartbeat(&mut self, leases: &[Lease]) -> anyhow::Result<()> {
        let (ids, attempts) = lease_columns(leases);
        let lease = self.lease.as_secs_f64();
        let renewed = self.with_client("renewing leases", |c| {
            c.query(
                "UPDATE trials SET lease_expires_at = now() + make_interval(secs => $3) \
                 FROM unnest($1::bigint[], $2::bigint[]) AS held(id, attempt) \
                 WHERE trials.id = held.id AND trials.attempts = held.attempt \
                 AND trials.state = 'running' RETURNING trials.id",
                &[&ids, &attempts, &lease],
            )
        })?;
        let renewed: Vec<i64> = renewed.iter().map(|r| r.get(0)).collect();
        match leases.iter().find(|l| !renewed.contains(&l.trial_id)) {
            Some(lost) => Err(LeaseLost::of(lost).into()),
            None => Ok(()),
        }
    }

    /// The lease decides, by the server's clock: `stale_after` and `is_dead` (process ids,
    /// meaningless across hosts) are not used. `max_attempts` is kept with the study for the
    /// workers' own recovery while they wait ([`Backend::recover_expired_leases`]).
    fn recover_abandoned(
        &mut self,
        study_id: i64,
        _stale_after: Duration,
        max_attempts: u32,
        _is_dead: &dyn Fn(&str) -> bool,
    ) -> anyhow::Result<Recovered> {
        let max_attempts = i32::try_from(max_attempts)?;
        self.durably("recording the study's attempt limit", |c| {
            c.execute(
                "UPDATE studies SET max_attempts = $2 WHERE id = $1",
                &[&study_id, &max_attempts],
            )
        })?;
        self.recover_expired_leases(study_id)
    }

    fn recover_expired_leases(&mut self, study_id: i64) -> anyhow::Result<Recovered> {
        let sql = format!(
            "WITH expired AS ( \
                 SELECT trials.id, trials.attempts, trials.worker, studies.max_attempts \
                 FROM trials JOIN studies ON studies.id = trials.study_id \
                 WHERE trials.study_id = $1 AND trials.state = 'running' \
                 AND trials.lease_expires_at < now() FOR UPDATE OF trials SKIP LOCKED), \
             failed AS ( \
                 UPDATE trials SET state = 'failed', lease_expires_at = NULL, finished_at = {now}, \
                 error = format('its worker died or lost its lease %s times while running it \
                 (last worker %s); not retried', expired.attempts, expired.worker) \
                 FROM expired WHERE trials.id = expired.id \
                 AND expired.attempts >= expired.max_attempts RETURNING trials.id), \
             requeued AS ( \
                 UPDATE trials SET state = 'pending', worker = NULL, started_at = NULL, \
                 lease_expires_at = NULL FROM expired WHERE trials.id = expired.id \
                 AND expired.attempts < expired.max_attempts RETURNING trials.id), \
             forgotten AS (DELETE FROM epochs WHERE trial_id IN (SELECT id FROM requeued)) \
             SELECT (SELECT count(*) FROM requeued), (SELECT count(*) FROM failed)",
            now = now_text!()
        );
        let row = self.durably("recovering expired leases", |c| {
            c.query_one(&sql, &[&study_id])
        })?;
        Ok(Recovered {
            requeued: usize::try_from(row.get::<_, i64>(0))?,
            failed: usize::try_from(row.get::<_, i64>(1))?,
        })
    }

    fn lease_poll_interval(&self) -> Option<Duration> {
        Some((self.lease / 4).clamp(Duration::from_millis(200), Duration::from_secs(15)))
    }

    fn record_epoch(&mut self, lease: &Lease, metrics: &EpochMetrics) -> anyhow::Result<()> {
        let epoch = count_to_sql(metrics.epoch)?;
        let fold = count_to_sql(metrics.fold)?;
        let phase = metrics.phase.as_str();
        let changed = self.with_client("recording an epoch", |c| {
            c.execute(
                "INSERT INTO epochs (trial_id, phase, epoch, train_loss, train_accuracy, \
                 val_loss, val_accuracy, seconds, val_balanced_accuracy, val_f1, fold) \
                 SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12 FROM trials \
                 WHERE id = $1 AND attempts = $11 AND state = 'running' FOR SHARE \
                 ON CONFLICT (trial_id, fold, phase, epoch) DO UPDATE SET \
                 train_loss = excluded.train_loss, train_accuracy = excluded.train_accuracy, \
                 val_loss = excluded.val_loss, val_accuracy = excluded.val_accuracy, \
                 seconds = excluded.seconds, val_balanced_accuracy = excluded.val_balanced_accuracy, \
                 val_f1 = excluded.val_f1",
                &[
                    &lease.trial_id,
                    &phase,
                    &epoch,
                    &metrics.train_loss,
                    &metrics.train_accuracy,
                    &metrics.val_loss,
                    &metrics.val_accuracy,
                    &metrics.seconds,
                    &metrics.val_balanced_accuracy,
                    &metrics.val_f1,
                    &lease.attempt,
                    &fold,
                ],
            )
        })?;
        ensure_lease_held(changed, lease)
    }

    fn complete_trial(&mut self, lease: &Lease, outcome: &TrialOutcome) -> anyhow::Result<()> {
        let epochs = count_to_sql(outcome.epochs)?;
        let folds = count_to_sql(outcome.folds)?;
        let sql = concat!(
            "UPDATE trials SET state = 'complete', val_accuracy = $3, best_val_accuracy = $4, \
             val_loss = $5, epochs = $6, seconds = $7, balanced_accuracy = $8, f1 = $9, \
             best_objective = $10, folds = $11, objective_sd = $12, error = NULL, \
             lease_expires_at = NULL, finished_at = ",
            now_text!(),
            " WHERE id = $1 AND attempts = $2 AND state = 'running'"
        );
        let changed = self.durably("recording a result", |c| {
            c.execute(
                sql,
                &[
                    &lease.trial_id,
                    &lease.attempt,
                    &outcome.val_accuracy,
                    &outcome.best_val_accuracy,
                    &outcome.val_loss,
                    &epochs,
                    &outcome.seconds,
                    &outcome.balanced_accuracy,
                    &outcome.f1,
                    &outcome.best_objective,
                    &folds,
                    &outcome.objective_sd,
                ],
            )
        })?;
        ensure_lease_held(changed, lease)
    }

    fn fail_trial(&mut self, lease: &Lease, error: &str) -> anyhow::Result<()> {
        let sql = concat!(
            "UPDATE trials SET state = 'failed', error = $3, val_accuracy = NULL, \
             best_val_accuracy = NULL, val_loss = NULL, epochs = NULL, seconds = NULL, \
             balanced_accuracy = NULL, f1 = NULL, best_objective = NULL, folds = NULL, objective_sd = NULL, \
             lease_expires_at = NULL, finished_at = ",
            now_text!(),
            " WHERE id = $1 AND attempts = $2 AND state = 'running'"
        );
        let changed = self.durably("recording a failure", |c| {
            c.execute(sql, &[&lease.trial_id, &lease.attempt, &error])
        })?;
        ensure_lease_held(changed, lease)
    }

    fn release(&mut self, leases: &[Lease]) -> anyhow::Result<()> {
        let (ids, attempts) = lease_columns(leases);
        self.durably("releasing trials", |c| {
            c.execute(
                "WITH released AS ( \
                     UPDATE trials SET state = 'pending', worker = NULL, started_at = NULL, \
                     lease_expires_at = NULL FROM unnest($1::bigint[], $2::bigint[]) \
                     AS held(id, attempt) WHERE trials.id = held.id \
                     AND trials.attempts = held.attempt AND trials.state = 'running' \
                     RETURNING trials.id) \
                 DELETE FROM epochs WHERE trial_id IN (SELECT id FROM released)",
                &[&ids, &attempts],
            )
        })?;
        Ok(())
    }

    fn study(&self, name: &str) -> anyhow::Result<Option<StudyRecord>> {
        let row = self.with_client("reading a study", |c| {
            c.query_opt(
                "SELECT id, name, grid_toml, created_at FROM studies WHERE name = $1",
                &[&name],
            )
        })?;
        Ok(row.as_ref().map(study_from_row))
    }

    fn latest_study(&self) -> anyhow::Result<Option<StudyRecord>> {
        let row = self.with_client("reading the latest study", |c| {
            c.query_opt(
                "SELECT id, name, grid_toml, created_at FROM studies \
                 ORDER BY created_at DESC, id DESC LIMIT 1",
                &[],
            )
        })?;
        Ok(row.as_ref().map(study_from_row))
    }

    fn studies(&self) -> anyhow::Result<Vec<StudyRecord>> {
        let rows = self.with_client("reading the studies", |c| {
            c.query(
                "SELECT id, name, grid_toml, created_at FROM studies ORDER BY id",
                &[],
            )
        })?;
        Ok(rows.iter().map(study_from_row).collect())
    }

    fn trials(&self, study_id: i64) -> anyhow::Result<Vec<TrialRecord>> {
        let sql = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE study_id = $1 ORDER BY id");
        let rows = self.with_client("reading trials", |c| c.query(&sql, &[&study_id]))?;
        rows.iter()
            .map(|row| trial_from_row(row).into_record())
            .collect()
    }

    fn epochs(&self, trial_id: i64) -> anyhow::Result<Vec<EpochMetrics>> {
        let sql = format!(
            "SELECT {EPOCH_COLUMNS} FROM epochs WHERE trial_id = $1 ORDER BY {EPOCH_ORDER}"
        );
        let rows = self.with_client("reading epochs", |c| c.query(&sql, &[&trial_id]))?;
        rows.iter()
            .map(|row| epoch_from_row(row, 0).into_metrics(trial_id))
            .collect()
    }

    fn epochs_of_study(&self, study_id: i64) -> anyhow::Result<BTreeMap<i64, Vec<EpochMetrics>>> {
        let sql = format!(
            "SELECT trial_id, {EPOCH_COLUMNS} FROM epochs \
             WHERE trial_id IN (SELECT id FROM trials WHERE study_id = $1) \
             ORDER BY trial_id, {EPOCH_ORDER}"
        );
        let rows = self.with_client("reading epochs", |c| c.query(&sql, &[&study_id]))?;
        let mut by_trial: BTreeMap<i64, Vec<EpochMetrics>> = BTreeMap::new();
        for row in &rows {
            let trial_id: i64 = row.get(0);
            by_trial
                .entry(trial_id)
                .or_default()
                .push(epoch_from_row(row, 1).into_metrics(trial_id)?);
        }
        Ok(by_trial)
    }
}
