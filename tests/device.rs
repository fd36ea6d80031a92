//! The models on the device `GRIDSEARCH_DEVICE` names (unset: the default device, the CPU in a
//! CPU build): PyTorch parity of pooled features and logits, and a fine-tuning step whose
//! gradients match the CPU's. `bench/gpu.sh` runs these on a GPU; in CI they run on the CPU.

mod common;

use candle_core::{Device, Tensor};
use common::{max_abs_diff, repo};
use gridsearch::model::efficientnet_lite::EfficientNetLite0;
use gridsearch::model::inception_v3::InceptionV3;
use gridsearch::model::{describe_device, select_device, Backbone};
use std::collections::BTreeSet;

fn device() -> Device {
    let device = select_device(None).expect("GRIDSEARCH_DEVICE names a usable device");
    eprintln!("device under test: {}", describe_device(&device));
    device
}

#[test]
fn effnet_features_and_logits_match_pytorch_on_the_device() {
    let device = device();
    let model = EfficientNetLite0::load(
        &repo().join("models/efficientnet_lite0.safetensors"),
        &device,
    )
    .unwrap();
    let golden = candle_core::safetensors::load(
        repo().join("tests/fixtures/effnet_lite0_parity.safetensors"),
        &device,
    )
    .unwrap();
    let features = model.features(&golden["input"]).unwrap();
    assert!(features.device().same_device(&device));
    let diff = max_abs_diff(&features, &golden["features"]);
    eprintln!("effnet pooled features vs PyTorch: max abs diff {diff:e}");
    assert!(diff <= 1e-3, "features differ from PyTorch by {diff}");
    let logits = model.imagenet_logits(&features).unwrap().unwrap();
    let diff = max_abs_diff(&logits, &golden["logits"]);
    assert!(diff <= 1e-3, "logits differ from PyTorch by {diff}");
}

/// Gradients of sum(tail(boundary) * r) for every variable of a 2-block trainable tail.
fn tail_gradients(model: &EfficientNetLite0, input: &Tensor) -> Vec<Tensor> {
    let info = model.info();
    let boundary = info.boundary_of(2);
    let recorded = model
        .forward_recording(input, &BTreeSet::from([boundary]))
        .unwrap();
    let tail = Backbone::trainable_tail(model, 2).unwrap();
    let pooled = tail.forward(&recorded.boundaries[&boundary]).unwrap();
    let r = Tensor::arange(0f32, pooled.elem_count() as f32, pooled.device())
        .unwrap()
        .reshape(pooled.shape())
        .unwrap()
        .affine(1e-3, -0.5)
        .unwrap();
    let grads = pooled
        .mul(&r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    tail.vars()
        .iter()
        .map(|v| {
            grads
                .get(v.as_tensor())
                .expect("every variable has a gradient")
                .clone()
        })
        .collect()
}

#[test]
fn fine_tuning_gradients_on_the_device_match_the_cpu() {
    let device = device();
    let weights = repo().join("models/efficientnet_lite0.safetensors");
    let golden = candle_core::safetensors::load(
        repo().join("tests/fixtures/effnet_lite0_parity.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let input = &golden["input"];
    let cpu = tail_gradients(
        &EfficientNetLite0::load(&weights, &Device::Cpu).unwrap(),
        input,
    );
    let on_device = tail_gradients(
        &EfficientNetLite0::load(&weights, &device).unwrap(),
        &input.to_device(&device).unwrap(),
    );
    assert_eq!(cpu.len(), on_device.len());
    let mut worst = 0f32;
    for (i, (c, d)) in cpu.iter().zip(&on_device).enumerate() {
        let scale = max_abs_diff(c, &c.zeros_like().unwrap()).max(1.0);
        let diff = max_abs_diff(d, c);
        worst = worst.max(diff / scale);
        assert!(
            diff <= 1e-3 * scale,
            "variable {i}: gradient differs by {diff} (scale {scale})"
        );
    }
    eprintln!("fine-tuning gradients, device vs CPU: worst relative diff {worst:e}");
}

#[test]
fn inception_features_match_torchvision_on_the_device() {
    let dir = repo().join("../shared/fixtures/inception_v3");
    if !dir.is_dir() {
        let message =
            "SKIPPED: InceptionV3 on the device: ../shared/fixtures/inception_v3 not found";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("{message}");
        return;
    }
    let device = device();
    let model =
        InceptionV3::load(&dir.join("inception_v3_random_f16.safetensors"), &device).unwrap();
    let inputs = candle_core::safetensors::load(dir.join("inputs.safetensors"), &device).unwrap();
    let golden = candle_core::safetensors::load(dir.join("outputs.safetensors"), &device).unwrap();
    let features = model.features(&inputs["input"]).unwrap();
    // Random weights make large activations: the bound is relative, as in parity_inception.rs.
    let golden = &golden["features"];
    let scale = max_abs_diff(golden, &golden.zeros_like().unwrap()).max(1.0);
    let diff = max_abs_diff(&features, golden);
    eprintln!(
        "inception pooled features vs torchvision: relative diff {:e}",
        diff / scale
    );
    assert!(
        diff <= 1e-3 * scale,
        "features differ from torchvision by {diff} (scale {scale})"
    );
}
