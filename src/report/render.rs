//! Draws a built `Report` as text: terminal tables, GitHub markdown, CSV blocks, or JSON.

use super::cells::{summary_line, Section, Style};
use super::schema::Report;
use super::stat_sections::{effect_section, importance_section, seeds_section, two_way_section};
use super::trial_sections::{curves_section, failed_section, ranked_section};
use crate::error::InputError;
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use std::fmt;
use std::str::FromStr;

/// The output formats of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Boxed tables for the terminal.
    #[default]
    Table,
    /// GitHub-flavoured markdown tables under `##` headings.
    Md,
    /// Every section as a CSV block (`# title` line, header, rows), blocks separated by a blank line.
    Csv,
    /// The whole report as pretty-printed JSON.
    Json,
}

impl Format {
    /// Every format, in the order help texts list them.
    pub const ALL: [Format; 4] = [Format::Table, Format::Md, Format::Csv, Format::Json];

    /// The format's name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Md => "md",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    /// Reads a format name (`markdown` is accepted for `md`); None when unknown.
    pub fn parse(name: &str) -> Option<Format> {
        match name.trim().to_ascii_lowercase().as_str() {
            "table" => Some(Format::Table),
            "md" | "markdown" => Some(Format::Md),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

impl FromStr for Format {
    type Err = InputError;

    fn from_str(name: &str) -> Result<Format, InputError> {
        Format::parse(name).ok_or_else(|| {
            InputError::new(format!(
                "unknown report format '{name}' (expected table, md, csv or json)"
            ))
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Draws `report` in `format`; the text ends with a newline.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => render_table(report),
        Format::Md => render_markdown(report),
        Format::Csv => render_csv(report),
        Format::Json => render_json(report),
    }
}

/// Every section of the report, in reading order; empty analyses are left out.
fn sections(report: &Report, style: Style) -> Vec<Section> {
    let mut out = vec![ranked_section(report, style)];
    out.extend(
        report
            .effects
            .iter()
            .map(|e| effect_section(report, e, style)),
    );
    if let Some(importance) = &report.importance {
        out.push(importance_section(report, importance, style));
    }
    if let Some(table) = &report.interaction {
        out.push(two_way_section(table, style));
    }
    if let Some(seeds) = &report.seeds {
        out.push(seeds_section(report, seeds, style));
    }
    if report.curves.iter().any(|c| !c.points.is_empty()) {
        out.push(curves_section(report, style));
    }
    if !report.failed.is_empty() {
        out.push(failed_section(report));
    }
    out
}

fn render_table(report: &Report) -> String {
    let mut out = summary_line(report);
    out.push('\n');
    for section in sections(report, Style { precise: false }) {
        out.push('\n');
        out.push_str(&section.title);
        out.push('\n');
        if section.rows.is_empty() {
            out.push_str(&format!("({})\n", section.when_empty));
        } else {
            out.push_str(&terminal_table(&section).to_string());
            out.push('\n');
        }
        for note in &section.notes {
            out.push_str(note);
            out.push('\n');
        }
    }
    out
}

fn terminal_table(section: &Section) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header(section.header.clone());
    for row in &section.rows {
        table.add_row(row.clone());
    }
    for (index, &numeric) in section.numeric.iter().enumerate() {
        if let (true, Some(column)) = (numeric, table.column_mut(index)) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn render_markdown(report: &Report) -> String {
    let mut out = format!("# Study {}\n\n{}\n", report.study, summary_line(report));
    for section in sections(report, Style { precise: false }) {
        out.push_str(&format!("\n## {}\n\n", section.title));
        if section.rows.is_empty() {
            out.push_str(&format!("_{}_\n", section.when_empty));
        } else {
            out.push_str(&markdown_table(&section));
        }
        if !section.notes.is_empty() {
            out.push('\n');
            out.push_str(&section.notes.join("\n"));
            out.push('\n');
        }
    }
    out
}

fn markdown_table(section: &Section) -> String {
    let alignments: Vec<String> = section
        .numeric
        .iter()
        .map(|&numeric| if numeric { "---:" } else { "---" }.to_string())
        .collect();
    let mut out = markdown_row(&section.header);
    out.push_str(&markdown_row(&alignments));
    for row in &section.rows {
        out.push_str(&markdown_row(row));
    }
    out
}

fn markdown_row(cells: &[String]) -> String {
    let cells: Vec<String> = cells.iter().map(|c| markdown_escape(c)).collect();
    format!("| {} |\n", cells.join(" | "))
}

/// Keeps a cell inside its markdown table cell: pipes escaped, line breaks flattened.
fn markdown_escape(cell: &str) -> String {
    cell.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Every section as a CSV block: a `# title` line, `# note` lines, the header and the rows, numbers
/// at full precision and a missing axis value as an empty field; blocks are separated by a blank line.
fn render_csv(report: &Report) -> String {
    let blocks: Vec<String> = sections(report, Style { precise: true })
        .iter()
        .map(|section| {
            let mut out = format!("# {}\n", section.title);
            for note in &section.notes {
                out.push_str(&format!("# {note}\n"));
            }
            out.push_str(&csv_line(&section.header));
            for row in &section.rows {
                out.push_str(&csv_line(row));
            }
            out
        })
        .collect();
    blocks.join("\n")
}

fn csv_line(fields: &[String]) -> String {
    let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    format!("{}\n", fields.join(","))
}

/// Quotes a field when it holds a comma, quote or line break, doubling inner quotes (RFC 4180).
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn render_json(report: &Report) -> String {
    // Every map key in a Report is a String, so serialization cannot fail.
    let mut out = serde_json::to_string_pretty(report).expect("a Report always serializes");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::fixtures;
    use crate::report::{build, build_with_epochs};
    use crate::trial::ParamValue;

    fn report(top: Option<usize>) -> Report {
        build(&fixtures::study(), &fixtures::trials(), top)
    }

    #[test]
    fn parses_format_names() {
        assert_eq!(Format::parse("table"), Some(Format::Table));
        assert_eq!(Format::parse("MD"), Some(Format::Md));
        assert_eq!(Format::parse("markdown"), Some(Format::Md));
        assert_eq!("csv".parse::<Format>().ok(), Some(Format::Csv));
        assert_eq!(Format::parse("json"), Some(Format::Json));
        let err = "xml".parse::<Format>().expect_err("xml is unknown");
        assert!(err.to_string().contains("'xml'"));
        for format in Format::ALL {
            assert_eq!(Format::parse(format.as_str()), Some(format));
        }
    }

    #[test]
    fn csv_is_exact() {
        let expected = "\
# Ranked trials (top 2 of 5)
rank,trial,val_accuracy,best_val_accuracy,balanced_accuracy,f1,head_size,learning_rate,optimizer,epochs,seconds
1,2,0.9,0.95,0.85,0.09999999999999998,0,0.01,adam,4,20
1,4,0.9,0.92,0.85,0.09999999999999998,128,0.01,adam,4,8

# Effect of head_size on val_accuracy
# spread (best mean - worst mean): 0.06666666666666665
head_size,n,mean,sd,min,best
0,3,0.8666666666666667,0.05773502691896256,0.8,0.9
";
        let csv = render(&report(Some(2)), Format::Csv);
        assert!(csv.starts_with(expected), "{csv}");
        for block in [
            "\n\n# Importance: share of the variance of val_accuracy\n",
            "\n\n# Failed trials\n",
        ] {
            assert!(csv.contains(block), "missing {block:?} in\n{csv}");
        }
    }

    #[test]
    fn csv_quotes_fields_and_leaves_missing_values_empty() {
        let mut r = report(Some(1));
        r.axes.push("note".to_string());
        r.ranked[0]
            .params
            .insert("note".into(), ParamValue::Str("a,\"b\"".into()));
        r.axes.push("absent".to_string());
        let csv = render(&r, Format::Csv);
        let last = csv.lines().nth(2).expect("one data row");
        assert_eq!(
            last,
            "1,2,0.9,0.95,0.85,0.09999999999999998,0,0.01,adam,\"a,\"\"b\"\"\",,4,20"
        );
        assert_eq!(csv_field("x\ny"), "\"x\ny\"");
    }

    #[test]
    fn json_parses_back() {
        let r = report(Some(3));
        let text = render(&r, Format::Json);
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["study"], "flowers");
        assert_eq!(value["counts"]["complete"], 5);
        assert_eq!(value["counts"]["pending"], 1);
        assert_eq!(value["ranked_total"], 5);
        assert_eq!(value["axes"][2], "optimizer");
        let ranked = value["ranked"].as_array().expect("ranked array");
        assert_eq!(ranked.len(), 3);
        assert_eq!(ranked[2]["rank"], 1);
        assert_eq!(ranked[2]["trial"], 3);
        assert_eq!(ranked[0]["key"], "k2");
        assert_eq!(ranked[0]["params"]["learning_rate"], 0.01);
        assert_eq!(ranked[0]["params"]["head_size"], 0);
        assert_eq!(value["failed"][0]["error"], "out of memory");
        let lr = &value["effects"][1];
        assert_eq!(lr["axis"], "learning_rate");
        assert_eq!(lr["values"][2]["value"], 0.1);
        assert_eq!(lr["values"][2]["n"], 0);
        assert!(lr["values"][2]["mean_val_accuracy"].is_null());
        assert_eq!(value["schema_version"], 2);
        assert_eq!(value["importance"]["trials"], 5);
        assert_eq!(
            value["effects"][0]["values"][0]["sd_val_accuracy"]
                .as_f64()
                .map(|v| (v * 1e6).round()),
            Some(57735.0)
        );
        assert!(value["seeds"].is_null(), "no seed axis");
        let back: Report = serde_json::from_str(&text).expect("parses into Report");
        assert_eq!(back.ranked.len(), 3);
        assert_eq!(back.effects.len(), 3);
    }

    #[test]
    fn markdown_has_headings_and_rows() {
        let md = render(&report(None), Format::Md);
        assert!(md.starts_with("# Study flowers\n"));
        assert!(md.contains("study flowers: 8 trials (5 complete, 1 failed, 1 pending, 1 running)"));
        for heading in [
            "## Ranked trials\n",
            "## Effect of head_size on val_accuracy\n",
            "## Effect of learning_rate on val_accuracy\n",
            "## Effect of optimizer on val_accuracy\n",
            "## Importance: share of the variance of val_accuracy\n",
            "## Failed trials\n",
        ] {
            assert!(md.contains(heading), "missing {heading:?} in\n{md}");
        }
        assert!(md.contains(
            "| rank | trial | val_accuracy | best_val_accuracy | balanced_accuracy | f1 | head_size | learning_rate | optimizer | epochs | seconds |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |\n\
             | 1 | 2 | 0.9000 | 0.9500 | 0.8500 | 0.1000 | 0 | 0.01 | adam | 4 | 20.0 |\n"
        ));
        assert!(md.contains(
            "| 4 | 1 | 0.8000 | 0.8500 | 0.7500 | 0.2000 | 0 | 0.001 | adam | 4 | 12.5 |\n"
        ));
        assert!(md.contains("| 0.001 | 3 | 0.8000 | 0.1000 | 0.7000 | 0.9000 |\n"));
        assert!(md.contains("| 0.1 | 0 | - | - | - | - |\n"));
        assert!(md.contains("spread (best mean - worst mean): 0.1000\n"));
        assert!(md.contains("| 6 | 128 | 0.01 | sgd | out of memory |\n"));
    }

    #[test]
    fn every_format_names_the_kept_epoch() {
        let r = build_with_epochs(
            &fixtures::study(),
            &fixtures::trials(),
            &fixtures::epochs(),
            None,
        );
        let csv = render(&r, Format::Csv);
        assert!(csv.contains("\nrank,trial,val_accuracy,best_val_accuracy,balanced_accuracy,f1,head_size,learning_rate,optimizer,kept,epochs,seconds\n"), "{csv}");
        let rows: Vec<&str> = csv.lines().skip(2).take(3).collect();
        assert_eq!(
            rows,
            [
                "1,2,0.9,0.95,0.85,0.09999999999999998,0,0.01,adam,head 2,4,20",
                "1,4,0.9,0.92,0.85,0.09999999999999998,128,0.01,adam,finetune 1,4,8",
                "1,3,0.9,0.92,0.85,0.09999999999999998,0,0.001,sgd,,4,10",
            ]
        );
        let md = render(&r, Format::Md);
        assert!(
            md.contains("| optimizer | kept | epochs | seconds |\n"),
            "{md}"
        );
        assert!(md.contains("| --- | --- | ---: | ---: |\n"), "{md}");
        assert!(md.contains("| 0.01 | adam | head 2 | 4 | 20.0 |\n"), "{md}");
        assert!(md.contains("| 0.001 | sgd | - | 4 | 10.0 |\n"), "{md}");
        let table = render(&r, Format::Table);
        assert!(table.contains(" finetune 1 "), "{table}");
        let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
        assert_eq!(
            json["ranked"][0]["kept"],
            serde_json::json!({"phase": "head", "epoch": 2})
        );
        assert!(json["ranked"][2]["kept"].is_null());
        let html = crate::report::html::page(&r);
        assert!(
            html.contains("<td class=\"text\">finetune 1</td>"),
            "{html}"
        );
    }

    #[test]
    fn without_stored_epochs_there_is_no_kept_column() {
        let csv = render(&report(None), Format::Csv);
        assert!(!csv.contains("kept"), "{csv}");
        let html = crate::report::html::page(&report(None));
        assert!(!html.contains("<th>kept</th>"));
    }

    #[test]
    fn markdown_escapes_pipes() {
        assert_eq!(markdown_escape("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn table_has_summary_and_all_sections() {
        let text = render(&report(Some(2)), Format::Table);
        let first = text.lines().next().expect("a first line");
        assert_eq!(
            first,
            "study flowers: 8 trials (5 complete, 1 failed, 1 pending, 1 running)"
        );
        assert!(text.contains("Ranked trials (top 2 of 5)"));
        assert!(text.contains("Effect of optimizer"));
        assert!(text.contains("Failed trials"));
        assert!(text.contains("0.9500"));
        assert!(text.contains("20.0"));
        assert!(text.contains("out of memory"));
        assert!(!text.contains("12.5"), "top 2 hides trial 1:\n{text}");
        let ranked = text.split("Effect of").next().expect("a ranked section");
        let ranked_rows = ranked.lines().filter(|l| l.contains(" adam ")).count();
        assert_eq!(ranked_rows, 2, "two ranked rows");
    }

    #[test]
    fn table_without_trials_says_so() {
        let r = build(&fixtures::study(), &[], None);
        let text = render(&r, Format::Table);
        assert_eq!(
            text,
            "study flowers: 0 trials (0 complete, 0 failed, 0 pending, 0 running)\n\nRanked trials\n(no complete trials yet)\n"
        );
    }
}
