//! `gridsearch plan GRID`: the trials and the shared work, without training.

use super::Exit;
use crate::cli::PlanArgs;
use crate::data::load_dataset;
use crate::grid::Grid;
use crate::train::folds::cost_line;
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
    if let Some(folds) = grid.data.folds {
        crate::outln!("{}", cost_line(folds));
    }
    if plan.views_per_image() > 0 {
        let data = load_dataset(&grid.data, grid.seed)?;
        let images = data.train.len() + data.val.len();
        let views = plan.views_per_image() * data.train.len();
        crate::outln!(
            "the backbone pass: {images} images + {views} augmented views = {} inputs, {:.1}x \
             the pass without augmentation (once for the whole grid, and cached)",
            images + views,
            (images + views) as f64 / images.max(1) as f64
        );
    }
    Ok(Exit::Ok)
}
