//! `gridsearch report [STUDY]`: ranked trials, effects, importance, seeds and curves, from the store only.

use super::Exit;
use crate::cli::ReportArgs;
use crate::error::InputError;
use crate::path_name::path_safe_name;
use crate::report::{build_with_epochs, html, render, Format};
use crate::store::{refuse_network_filesystem, shown_location, Store};
use crate::trial::StudyRecord;
use std::path::{Path, PathBuf};

pub fn run(args: &ReportArgs, db: &Path) -> anyhow::Result<Exit> {
    // From here on the URL is shown without its password.
    let db = &shown_location(db);
    refuse_network_filesystem(db, args.store.allow_network_fs)?;
    let format: Format = args.format.parse()?;
    let store = Store::open_read_only(db)?;
    let name = args.study.as_ref().or(args.study_name.as_ref());
    let study = find_study(&store, db, name.map(String::as_str))?;
    let trials = store.trials(study.id)?;
    let epochs = store.epochs_of_study(study.id)?;
    let report = build_with_epochs(&study, &trials, &epochs, args.top);
    match &args.html {
        Some(path) => {
            let path = path.clone().unwrap_or_else(|| default_page(&study));
            write_page(&path, &html::page(&report))?;
            crate::outln!("wrote {}", path.display());
        }
        None => crate::out!("{}", render(&report, format)),
    }
    Ok(Exit::Ok)
}

/// The named study, or the latest one; a missing one is an input error naming the database.
pub fn find_study(store: &Store, db: &Path, name: Option<&str>) -> anyhow::Result<StudyRecord> {
    let study = match name {
        Some(name) => store
            .study(name)?
            .ok_or_else(|| InputError::new(format!("{}: no study named `{name}`", db.display())))?,
        None => store
            .latest_study()?
            .ok_or_else(|| InputError::new(format!("{}: no studies yet", db.display())))?,
    };
    Ok(study)
}

/// `reports/<study>.html`, the study's name made path-safe (never outside `reports/`).
fn default_page(study: &StudyRecord) -> PathBuf {
    PathBuf::from("reports").join(format!("{}.html", path_safe_name(&study.name)))
}

fn write_page(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| InputError::new(format!("{}: {e}", parent.display())))?;
    }
    std::fs::write(path, text).map_err(|e| InputError::new(format!("{}: {e}", path.display())))?;
    Ok(())
}
