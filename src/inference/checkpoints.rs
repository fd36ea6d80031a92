//! While a run goes, the weights of each study's best trials are kept beside the database, so
//! using the winner (`export`) never means training it again. Only the best `keep` stay.

use super::card::{ModelCard, TrialSummary};
use super::saved::{SavedModel, Validation};
use crate::model::Classifier;
use crate::path_name::path_safe_name;
use crate::ranking::best_first;
use crate::store::Store;
use crate::train::features::Activations;
use crate::trial::TrialRecord;
use std::path::{Path, PathBuf};

/// Where a study's checkpoints live: `<local folder>/checkpoints/<study>/<trial key>.safetensors`
/// (the SQLite file's folder, or `runs/` for a server: `store::local_folder`).
pub fn study_dir(db: &Path, study: &str) -> PathBuf {
    crate::store::local_folder(db)
        .join("checkpoints")
        .join(path_safe_name(study))
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
    /// study's best `keep`, then delete the files of trials no longer among them. A
    /// cross-validated trial offers the model of its best `fold`, with that fold's `validation`.
    pub fn offer(
        &self,
        store: &Store,
        trial: &TrialRecord,
        model: &Classifier,
        validation: &Activations,
        fold: Option<usize>,
    ) -> anyhow::Result<()> {
        if self.keep == 0 {
            return Ok(());
        }
        let trials = store.trials(trial.study_id)?;
        let best = best_first(&trials);
        if let Some(stored) = best.iter().take(self.keep).find(|t| t.id == trial.id) {
            let mut card = self.card.clone();
            card.unfreeze_depth = model
                .tail
                .as_ref()
                .map_or(0, |_| trial.settings.unfreeze_depth);
            card.head_hidden = trial.settings.head_size;
            card.trial = TrialSummary {
                fold,
                ..TrialSummary::from(*stored)
            };
            let saved = SavedModel {
                card,
                tensors: model.tensors().into_iter().collect(),
                validation: Some(validation_pass(model, validation)?),
            };
            saved.write_file(&file_of(&self.dir, &trial.key))?;
        }
        // From a fresh read: a worker beside this one may have completed a better trial since.
        self.prune(&store.trials(trial.study_id)?);
        Ok(())
    }

    /// Deletes the files of scored trials outside the best `keep`. A trial that is not scored
    /// yet keeps its file: its worker may be writing it, and a scored trial outside the best
    /// can never come back into them, so every worker's prune is safe whenever it runs.
    fn prune(&self, trials: &[TrialRecord]) {
        for outside in best_first(trials).into_iter().skip(self.keep) {
            // Another worker may have pruned it first, or it was never kept.
            let _ = std::fs::remove_file(file_of(&self.dir, &outside.key));
        }
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
        probabilities: {
            let input = val.frozen.input_for(model)?;
            model.probabilities_of(input.len(), &|start, len| input.narrow(start, len))?
        },
    })
}
