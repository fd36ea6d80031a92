//! `gridsearch plan GRID`: the trials and the shared work, without training.

use super::Exit;
use crate::cli::PlanArgs;
use crate::grid::Grid;
use crate::train::Plan;
use comfy_table::Table;

pub fn run(args: &PlanArgs) -> anyhow::Result<Exit> {
    let grid = Grid::load(&args.grid)?;
    let trials = grid.trials();
    let info = grid.model.backbone.info();
    let plan = Plan::new(&trials, info);
    let mut table = Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    let mut header = vec!["#".to_string(), "key".to_string()];
    header.extend(grid.axes.iter().map(|a| a.name.clone()));
    header.push("head phase".into());
    table.set_header(header);
    for (i, trial) in trials.iter().enumerate() {
        let mut row = vec![(i + 1).to_string(), trial.key.clone()];
        row.extend(grid.axes.iter().map(|a| trial.params[&a.name].to_string()));
        let group = plan
            .groups
            .iter()
            .position(|g| g.head_key == trial.settings.head_phase_key());
        row.push(group.map_or("-".into(), |g| (g + 1).to_string()));
        table.add_row(row);
    }
    crate::outln!(
        "study {} ({}), {} at {} px",
        grid.study_name,
        grid.path.display(),
        info.name(),
        grid.data.image_size
    );
    crate::outln!("{table}");
    crate::out!("{plan}");
    Ok(Exit::Ok)
}
