//! InceptionV3 on candle matches torchvision (seeded random weights) block by block and at the end.

use candle_core::{Device, Tensor};
use gridsearch::model::inception_v3::InceptionV3;
use gridsearch::model::Backbone;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

/// Allowed max abs difference, relative to the largest magnitude of the reference.
const TOLERANCE: f32 = 1e-4;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
    d.to_scalar().unwrap()
}

fn check(name: &str, ours: &Tensor, golden: &Tensor) {
    assert_eq!(ours.dims(), golden.dims(), "{name}: shape");
    let diff = max_abs_diff(ours, golden);
    let scale: f32 = golden
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    eprintln!(
        "{name}: max abs diff {diff:e} (max |x| {scale:.3}, relative {:e})",
        diff / scale
    );
    assert!(
        diff <= TOLERANCE * scale.max(1.0),
        "{name} differs from torchvision by {diff} (max |x| {scale})"
    );
}

/// The fixture folder, or None (with a loud message) when it is absent outside CI.
fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/inception_v3");
    if dir.is_dir() {
        return Some(dir);
    }
    let message = "SKIPPED: InceptionV3 parity: ../shared/fixtures/inception_v3 not found";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("\n!!!!!!!!!!!!!!!!\n{message}\n!!!!!!!!!!!!!!!!\n");
    None
}

struct Fixture {
    model: InceptionV3,
    input: Tensor,
    golden: HashMap<String, Tensor>,
}

fn load(dir: &std::path::Path) -> Fixture {
    let cpu = &Device::Cpu;
    let model = InceptionV3::load(&dir.join("inception_v3_random_f16.safetensors"), cpu).unwrap();
    let mut inputs = candle_core::safetensors::load(dir.join("inputs.safetensors"), cpu).unwrap();
    let golden = candle_core::safetensors::load(dir.join("outputs.safetensors"), cpu).unwrap();
    let input = inputs.remove("input").unwrap();
    Fixture {
        model,
        input,
        golden,
    }
}

#[test]
fn blocks_features_logits_and_tail_match_torchvision() {
    let Some(dir) = fixtures() else { return };
    let f = load(&dir);
    // Boundary 3 is the input of Mixed_6a (output of Mixed_5d), 8 that of Mixed_7a (Mixed_6e).
    let boundaries = BTreeSet::from([3, 8, 9]);
    let rec = f.model.forward_recording(&f.input, &boundaries).unwrap();
    check("mixed_5d", &rec.boundaries[&3], &f.golden["mixed_5d"]);
    check("mixed_6e", &rec.boundaries[&8], &f.golden["mixed_6e"]);
    check("features", &rec.pooled, &f.golden["features"]);
    let logits = f.model.imagenet_logits(&rec.pooled).unwrap().unwrap();
    check("logits", &logits, &f.golden["logits"]);

    // A trainable tail of depth 2 starts at boundary 9 and must reproduce the frozen pass.
    let tail = f.model.trainable_tail(2).unwrap();
    assert!(!tail.vars().is_empty());
    let pooled = tail.forward(&rec.boundaries[&9]).unwrap();
    let diff = max_abs_diff(&pooled, &rec.pooled);
    assert!(diff <= 1e-5, "tail differs from the frozen pass by {diff}");
}
