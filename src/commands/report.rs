//! `gridsearch report [STUDY]`: ranked trials and per-hyperparameter effects, from the store only.

use super::Exit;
use crate::cli::ReportArgs;
use crate::error::InputError;
use crate::report::{build, render, Format};
use crate::store::Store;
use std::path::Path;

pub fn run(args: &ReportArgs, db: &Path) -> anyhow::Result<Exit> {
    let format: Format = args.format.parse()?;
    let store = Store::open_read_only(db)?;
    let name = args.study.as_ref().or(args.study_name.as_ref());
    let study = match name {
        Some(name) => store
            .study(name)?
            .ok_or_else(|| InputError::new(format!("{}: no study named `{name}`", db.display())))?,
        None => store
            .latest_study()?
            .ok_or_else(|| InputError::new(format!("{}: no studies yet", db.display())))?,
    };
    let trials = store.trials(study.id)?;
    print!("{}", render(&build(&study, &trials, args.top), format));
    Ok(Exit::Ok)
}
