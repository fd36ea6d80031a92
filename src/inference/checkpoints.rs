//! While a run goes, the weights of each study's best trials are kept beside the database, so
//! using the winner (`export`) never means training it again. Only the best `keep` stay.

use super::card::{ModelCard, TrialSummary};
use super::saved::{SavedModel, Validation};
use crate::model::Classifier;
use crate::ranking::best_first;
use crate::store::Store;
use crate::train::features::Activations;
use crate::trial::TrialRecord;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where a study's checkpoints live: `<database folder>/checkpoints/<study>/<trial key>.safetensors`.
pub fn study_dir(db: &Path, study: &str) -> PathBuf {
    let safe: String = study
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    db.parent()
        .unwrap_or(Path::new("."))
        .join("checkpoints")
        .join(safe)
}

pub fn file_of(dir: &Path, trial_key: &str) -> PathBuf {
    dir.join(format!("{trial_key}.safetensors"))
}

/// What every checkpoint of one study shares.
pub struct CheckpointKeeper {
    pub dir: PathBuf,
    /// How many of the best trials keep their weights (0: none).
    pub keep: usize,
    /// The study's card with a placeholder trial.
    pub card: ModelCard,
}

impl CheckpointKeeper {
    /// After `trial` completed (its outcome stored): save its weights if it is among the
    /// study's best `keep`, then delete the files of trials no longer among them.
    pub fn offer(
        &self,
        store: &Store,
        trial: &TrialRecord,
        model: &Classifier,
        validation: &Activations,
    ) -> anyhow::Result<()> {
        if self.keep == 0 {
            return Ok(());
        }
        let trials = store.trials(trial.study_id)?;
        let best: Vec<&TrialRecord> = best_first(&trials).into_iter().take(self.keep).collect();
        let Some(stored) = best.iter().find(|t| t.id == trial.id) else {
            return self.prune(&best);
        };
        let mut card = self.card.clone();
        card.unfreeze_depth = model
            .tail
            .as_ref()
            .map_or(0, |_| trial.settings.unfreeze_depth);
        card.head_hidden = trial.settings.head_size;
        card.trial = TrialSummary::from(*stored);
        let saved = SavedModel {
            card,
            tensors: model.tensors().into_iter().collect(),
            validation: Some(validation_pass(model, validation)?),
        };
        saved.write_file(&file_of(&self.dir, &trial.key))?;
        self.prune(&best)
    }

    fn prune(&self, best: &[&TrialRecord]) -> anyhow::Result<()> {
        let keep: HashSet<PathBuf> = best.iter().map(|t| file_of(&self.dir, &t.key)).collect();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let ours = path.extension().is_some_and(|e| e == "safetensors");
            if ours && !keep.contains(&path) {
                // Another worker may have pruned it first.
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }
}

/// The classifier's probabilities on the validation split (no dropout), as the trial scored it.
fn validation_pass(model: &Classifier, val: &Activations) -> anyhow::Result<Validation> {
    Ok(Validation {
        files: val.files.clone(),
        labels: val
            .labels
            .to_vec1::<u32>()?
            .into_iter()
            .map(|l| l as usize)
            .collect(),
        probabilities: model.probabilities(&val.frozen)?,
    })
}
