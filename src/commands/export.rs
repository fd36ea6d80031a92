//! `gridsearch export [STUDY...] --out DIR`: each study's best kept checkpoint as a model folder,
//! `DIR/<study>` with the study's name made path-safe (never outside DIR).

use super::Exit;
use crate::cli::ExportArgs;
use crate::error::InputError;
use crate::inference::card::TrialSummary;
use crate::inference::checkpoints::{file_of, study_dir};
use crate::inference::SavedModel;
use crate::path_name::path_safe_name;
use crate::ranking::best_first;
use crate::store::{refuse_network_filesystem, shown_location, Store};
use crate::trial::{StudyRecord, Vocabulary};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn run(args: &ExportArgs, db: &Path) -> anyhow::Result<Exit> {
    // From here on the URL is shown without its password.
    let db = &shown_location(db);
    refuse_network_filesystem(db, args.store.allow_network_fs)?;
    let store = Store::open_read_only(db)?;
    let studies = chosen_studies(&store, db, &args.studies)?;
    let device = crate::model::default_device()?;
    let mut digests: HashMap<PathBuf, String> = HashMap::new();
    let mut exported = 0;
    let folders = export_folders(&studies, &args.out, db)?;
    for (study, folder) in studies.iter().zip(&folders) {
        let Some((trial, file)) = best_checkpoint(&store, db, study)? else {
            let message = format!(
                "{}: study `{}` has no kept checkpoint (its trials ran before checkpoints were \
                 kept, or with --keep-checkpoints 0): run its grid again with --new-study",
                db.display(),
                study.name
            );
            if args.studies.is_empty() {
                eprintln!("warning: {message}");
                continue;
            }
            return Err(InputError::new(message).into());
        };
        let mut saved = SavedModel::read_file(&file, &device)?;
        let backbone = saved.card.backbone_weights.clone();
        let digest = match digests.get(&backbone) {
            Some(d) => d.clone(),
            None => {
                let d = sha256_of(&backbone)?;
                digests.insert(backbone.clone(), d.clone());
                d
            }
        };
        saved.card.backbone_sha256 = Some(digest);
        // The stored trial as it is now, and (cross-validated) the fold the weights are of.
        saved.card.trial = TrialSummary {
            fold: saved.card.trial.fold,
            ..trial
        };
        saved.write_folder(folder, &backbone)?;
        let summary = &saved.card.trial;
        let outcome = &summary.outcome;
        match (summary.fold, outcome.objective_sd) {
            (Some(fold), Some(sd)) => crate::outln!(
                "{}: trial {} (val accuracy {:.4}, balanced {:.4}: means over {} folds, {} sd \
                 {sd:.4}), the model of fold {} with its validation photos -> {}",
                study.name,
                summary.id,
                outcome.val_accuracy,
                outcome.balanced_accuracy,
                outcome.folds,
                summary.settings.objective.as_str(),
                fold + 1,
                folder.display()
            ),
            _ => crate::outln!(
                "{}: trial {} (val accuracy {:.4}, balanced {:.4}) -> {}",
                study.name,
                summary.id,
                outcome.val_accuracy,
                outcome.balanced_accuracy,
                folder.display()
            ),
        }
        exported += 1;
    }
    if exported == 0 {
        return Err(InputError::new(format!("{}: nothing to export", db.display())).into());
    }
    Ok(Exit::Ok)
}

/// Each study's folder under `out`, its name made path-safe; two studies that would share
/// one are refused before anything is written.
fn export_folders(studies: &[StudyRecord], out: &Path, db: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut seen: HashMap<PathBuf, &str> = HashMap::new();
    let mut folders = Vec::with_capacity(studies.len());
    for study in studies {
        let folder = out.join(path_safe_name(&study.name));
        if let Some(other) = seen.insert(folder.clone(), &study.name) {
            return Err(InputError::new(format!(
                "{}: studies `{other}` and `{}` would both export to {}: export them one at a \
                 time, each with its own --out",
                db.display(),
                study.name,
                folder.display()
            ))
            .into());
        }
        folders.push(folder);
    }
    Ok(folders)
}

/// The studies named, or every study in the database.
fn chosen_studies(store: &Store, db: &Path, names: &[String]) -> anyhow::Result<Vec<StudyRecord>> {
    if names.is_empty() {
        return store.studies();
    }
    names
        .iter()
        .map(|name| {
            store.study(name)?.ok_or_else(|| {
                InputError::new(format!("{}: no study named `{name}`", db.display())).into()
            })
        })
        .collect()
}

/// The best-ranked trial of `study` whose checkpoint file is kept, with that file.
fn best_checkpoint(
    store: &Store,
    db: &Path,
    study: &StudyRecord,
) -> anyhow::Result<Option<(TrialSummary, PathBuf)>> {
    let trials = store.trials(study.id)?;
    let dir = study_dir(db, &study.name);
    for (rank, trial) in best_first(&trials).into_iter().enumerate() {
        let file = file_of(&dir, &trial.key);
        if !file.is_file() {
            continue;
        }
        if rank > 0 {
            eprintln!(
                "warning: study {}: the best trial's weights are not kept; exporting rank {}",
                study.name,
                rank + 1
            );
        }
        let summary = TrialSummary::from(trial);
        return Ok(Some((summary, file)));
    }
    Ok(None)
}

fn sha256_of(path: &Path) -> anyhow::Result<String> {
    let digest = crate::digest::sha256_of(path).map_err(|e| {
        InputError::new(format!(
            "{}: the backbone weights are gone ({e})",
            path.display()
        ))
    })?;
    Ok(digest)
}
