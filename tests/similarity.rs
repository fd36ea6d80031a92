//! `index` and `similar` on a small real catalogue: neighbours, reuse of stored embeddings,
//! a fine-tuned model's embedding, and the leave-one-out retrieval figure.

mod common;

use common::{copy_catalogue, gridsearch, ok, repo, run_and_export};
use gridsearch::similarity::CatalogueIndex;
use std::path::Path;

fn similar(db: &Path, index: &Path, image: &Path, k: &str) -> serde_json::Value {
    let args = [
        "similar",
        "--json",
        "--k",
        k,
        "--index",
        index.to_str().unwrap(),
        image.to_str().unwrap(),
    ];
    serde_json::from_str(&ok(&gridsearch(db, &args))).unwrap()
}

#[test]
fn neighbours_reuse_and_the_retrieval_figure() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let cat = copy_catalogue(&dir.path().join("catalogue"), 8);
    let index = dir.path().join("runs/index.safetensors");
    let index_args = [
        "index",
        cat.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--image-size",
        "96",
    ];
    ok(&gridsearch(&db, &index_args));
    let stored = CatalogueIndex::load(&index, &candle_core::Device::Cpu).unwrap();
    assert_eq!(stored.entries.len(), 24);
    assert_eq!(stored.embeddings.dims(), [24, 1280]);

    // A catalogue photo's nearest photo is itself; neighbours come best first.
    let query = cat.join(&stored.entries[3].path);
    let found = similar(&db, &index, &query, "4");
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 4);
    assert_eq!(found[0]["path"], stored.entries[3].path.to_str().unwrap());
    assert!((found[0]["similarity"].as_f64().unwrap() - 1.0).abs() < 1e-4);
    let scores: Vec<f64> = found
        .iter()
        .map(|n| n["similarity"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // Real features put photos of a department near each other (chance would be 7/23).
    let evaluation = [
        "similar",
        "--evaluate",
        "--json",
        "--index",
        index.to_str().unwrap(),
    ];
    let figure: serde_json::Value =
        serde_json::from_str(&ok(&gridsearch(&db, &evaluation))).unwrap();
    assert_eq!(figure["queries"], 24);
    assert!(
        figure["same_folder_rate"].as_f64().unwrap() > 0.6,
        "{figure}"
    );

    // A rerun embeds only what changed: one new photo, one removed.
    let new_photo = repo().join("data/footwear/boot/boot_1927.jpg");
    std::fs::copy(&new_photo, cat.join("boot/new.jpg")).unwrap();
    std::fs::remove_file(cat.join(&stored.entries[0].path)).unwrap();
    let out = gridsearch(&db, &index_args);
    ok(&out);
    let updated = CatalogueIndex::load(&index, &candle_core::Device::Cpu).unwrap();
    assert_eq!(updated.entries.len(), 24);
    let row_of = |i: &CatalogueIndex, p: &Path| i.entries.iter().position(|e| e.path == p).unwrap();
    for entry in &stored.entries[1..] {
        let (a, b) = (row_of(&stored, &entry.path), row_of(&updated, &entry.path));
        let old: Vec<f32> = stored.embeddings.get(a).unwrap().to_vec1().unwrap();
        let new: Vec<f32> = updated.embeddings.get(b).unwrap().to_vec1().unwrap();
        assert_eq!(old, new, "{} was embedded again", entry.path.display());
    }
    let after = similar(&db, &index, &new_photo, "1");
    assert_eq!(after[0]["path"], "boot/new.jpg");
}

#[test]
fn a_fine_tuned_model_embeds_with_its_penultimate_layer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let models = run_and_export(
        dir.path(),
        &db,
        "emb",
        (8, 4),
        "head_size = [24]\nunfreeze_depth = [1]",
    );
    let cat = copy_catalogue(&dir.path().join("catalogue"), 3);
    let index = dir.path().join("model.index");
    let model = models.join("emb");
    ok(&gridsearch(
        &db,
        &[
            "index",
            cat.to_str().unwrap(),
            "--index",
            index.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
        ],
    ));
    let stored = CatalogueIndex::load(&index, &candle_core::Device::Cpu).unwrap();
    assert_eq!(
        stored.embeddings.dims(),
        [9, 24],
        "the head's 24 hidden units"
    );
    let norms: Vec<f32> = stored
        .embeddings
        .sqr()
        .unwrap()
        .sum(1)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(
        norms.iter().all(|n| (n - 1.0).abs() < 1e-4 || *n == 0.0),
        "{norms:?}"
    );
    let query = cat.join(&stored.entries[5].path);
    let found = similar(&db, &index, &query, "2");
    assert_eq!(found[0]["path"], stored.entries[5].path.to_str().unwrap());
}
