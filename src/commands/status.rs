//! `gridsearch status [STUDY]`: progress of a study, read-only, safe while another process runs it.

use super::report::find_study;
use super::Exit;
use crate::cli::StatusArgs;
use crate::report::status::{render, status};
use crate::store::{refuse_network_filesystem, shown_location, Store};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn run(args: &StatusArgs, db: &Path) -> anyhow::Result<Exit> {
    // From here on the URL is shown without its password.
    let db = &shown_location(db);
    refuse_network_filesystem(db, args.store.allow_network_fs)?;
    let store = Store::open_read_only(db)?;
    let study = find_study(&store, db, args.study_name.as_deref())?;
    let trials = store.trials(study.id)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let status = status(&study, &trials, now);
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        crate::out!("{}", render(&status));
    }
    Ok(Exit::Ok)
}
