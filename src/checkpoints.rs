//! While a run goes, the weights of each study's best trials are kept beside the database, so
//! using the winner (`export`) never means training it again. Only the best `keep` stay.

use crate::inference::card::{ModelCard, TrialSummary};
use crate::inference::classifier::{class_probabilities, trained_tensors};
use crate::inference::{SavedModel, Validation};
use crate::model::{Head, TrainableTail};
use crate::ranking::best_first;
use crate::store::Store;
use crate::train::features::Activations;
use crate::trial::TrialRecord;
use candle_core::Tensor;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Rows per forward batch of the validation pass.
const BATCH: usize = 128;

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

/// A trained model in memory, as a trial leaves it.
pub struct TrainedModel<'a> {
    pub head: &'a Head,
    /// The fine-tuned blocks and the block whose recorded input they start from.
    pub tail: Option<(usize, &'a dyn TrainableTail)>,
}

impl CheckpointKeeper {
    /// After `trial` completed (its outcome stored): save its weights if it is among the
    /// study's best `keep`, then delete the files of trials no longer among them.
    pub fn offer(
        &self,
        store: &Store,
        trial: &TrialRecord,
        model: TrainedModel,
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
        card.unfreeze_depth = model.tail.map_or(0, |_| trial.settings.unfreeze_depth);
        card.head_hidden = trial.settings.head_size;
        card.trial = TrialSummary::from(*stored);
        let saved = SavedModel {
            card,
            tensors: trained_tensors(model.head, model.tail.map(|(_, t)| t))
                .into_iter()
                .collect(),
            validation: Some(validation_pass(&model, validation)?),
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

/// The model's probabilities on the validation split (no dropout), as the trial scored it.
fn validation_pass(model: &TrainedModel, val: &Activations) -> anyhow::Result<Validation> {
    let n = val.frozen.pooled.dim(0)?;
    let mut parts = Vec::new();
    for start in (0..n).step_by(BATCH) {
        let len = BATCH.min(n - start);
        let features = match model.tail {
            None => val.frozen.pooled.narrow(0, start, len)?,
            Some((boundary, tail)) => {
                let input = val.frozen.boundaries.get(&boundary).ok_or_else(|| {
                    anyhow::anyhow!("the backbone pass did not record block {boundary}")
                })?;
                tail.forward(&input.narrow(0, start, len)?)?
            }
        };
        parts.push(class_probabilities(model.head, &features)?);
    }
    Ok(Validation {
        files: val.files.clone(),
        labels: val
            .labels
            .to_vec1::<u32>()?
            .into_iter()
            .map(|l| l as usize)
            .collect(),
        probabilities: Tensor::cat(&parts, 0)?,
    })
}
