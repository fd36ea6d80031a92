//! `gridsearch predict IMAGE...`: every exported attribute of each image, with probabilities.

use super::Exit;
use crate::cli::PredictArgs;
use crate::data::decode::DecodeError;
use crate::inference::model_set::ImageSource;
use crate::inference::{ModelSet, Prediction};
use comfy_table::Table;
use serde::Serialize;

#[derive(Serialize)]
struct ImageResult<'a> {
    image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    predictions: Option<&'a [Prediction]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(args: &PredictArgs) -> anyhow::Result<Exit> {
    let device = crate::model::select_device(args.device.device.as_deref())?;
    let models = ModelSet::load(&args.models, &device)?;
    let sources: Vec<ImageSource> = args.images.iter().map(|p| ImageSource::File(p)).collect();
    let results = models.predict(&sources, &device)?;
    let mut failed = 0;
    for (path, result) in args.images.iter().zip(&results) {
        if let Err(reason) = result {
            eprintln!("error: {}: not a readable image ({reason})", path.display());
            failed += 1;
        }
    }
    if args.json {
        let rows: Vec<ImageResult> = args
            .images
            .iter()
            .zip(&results)
            .map(|(path, result)| ImageResult {
                image: path.display().to_string(),
                predictions: result.as_deref().ok(),
                error: result.as_ref().err().map(ToString::to_string),
            })
            .collect();
        crate::outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        crate::out!("{}", table(&args.images, &results));
    }
    Ok(if failed > 0 { Exit::BadInput } else { Exit::Ok })
}

/// One row per image; one column per attribute with its most probable label.
fn table(
    images: &[std::path::PathBuf],
    results: &[Result<Vec<Prediction>, DecodeError>],
) -> String {
    let mut table = Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    let attributes: Vec<String> = results
        .iter()
        .find_map(|r| r.as_ref().ok())
        .map(|p| p.iter().map(|p| p.attribute.clone()).collect())
        .unwrap_or_default();
    let mut header = vec!["image".to_string()];
    header.extend(attributes);
    table.set_header(header);
    for (path, result) in images.iter().zip(results) {
        let Ok(predictions) = result else { continue };
        let mut row = vec![path.display().to_string()];
        row.extend(predictions.iter().map(|p| {
            let (label, probability) = p.top();
            format!("{label} {probability:.2}")
        }));
        table.add_row(row);
    }
    format!("{table}\n")
}
