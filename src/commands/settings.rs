//! `gridsearch settings`: every training setting a grid may fix in `[train]` or vary in `[grid]`.

use super::Exit;
use crate::trial::{list_choices, Affects, Range, Setting, TrainSettings, SETTINGS};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

pub fn run() -> anyhow::Result<Exit> {
    crate::outln!("{}", render(SETTINGS));
    Ok(Exit::Ok)
}

/// One row per setting: its name, default, accepted values, the phase it changes and its meaning.
pub fn render(settings: &[Setting]) -> String {
    let defaults = TrainSettings::default();
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header(["setting", "default", "accepts", "changes", "meaning"]);
    for s in settings {
        let changes = match s.affects {
            Affects::HeadPhase => "both phases",
            Affects::FinetuneOnly => "fine-tune only",
        };
        let name = if s.in_train_table {
            s.name.to_string()
        } else {
            format!("{} ([study] or [grid])", s.name)
        };
        table.add_row([
            name,
            (s.get)(&defaults).to_string(),
            accepts(s.range),
            changes.to_string(),
            s.doc.to_string(),
        ]);
    }
    table.to_string()
}

fn accepts(range: Range) -> String {
    match range {
        Range::Positive => "number > 0".to_string(),
        Range::NonNegative => "number >= 0".to_string(),
        Range::Fraction => "number in [0, 1)".to_string(),
        Range::Share => "number in (0, 1]".to_string(),
        Range::Flag => "true or false".to_string(),
        Range::Count { min, max } if max >= i64::MAX as u64 => format!("whole number >= {min}"),
        Range::Count { min, max } => format!("whole number {min}..={max}"),
        Range::Blocks => "0..=the backbone's blocks".to_string(),
        Range::Choice(names) => list_choices(names),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_setting_with_its_default_and_range() {
        let text = render(SETTINGS);
        let row = |name: &str| {
            let first_cell = format!("│ {name} ");
            let rows: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&first_cell))
                .collect();
            assert_eq!(rows.len(), 1, "{name}:\n{text}");
            rows[0].to_string()
        };
        for s in SETTINGS {
            row(s.name);
        }
        assert!(row("learning_rate").contains("0.001"));
        assert!(row("unfreeze_depth").contains("fine-tune only"));
        assert!(row("head_size").contains("0..=65536"));
        assert!(row("optimizer").contains("adam, adamw or sgd"));
        assert!(row("seed ([study] or [grid])").contains("whole number >= 0"));
    }
}
