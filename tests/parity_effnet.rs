//! EfficientNet-Lite0 on candle matches PyTorch's pooled features and logits on real photos.

mod common;

use candle_core::Device;
use common::max_abs_diff;
use gridsearch::model::efficientnet_lite::EfficientNetLite0;
use std::path::Path;

#[test]
fn pooled_features_and_logits_match_pytorch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = EfficientNetLite0::load(
        &root.join("models/efficientnet_lite0.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let golden = candle_core::safetensors::load(
        root.join("tests/fixtures/effnet_lite0_parity.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let features = model.features(&golden["input"]).unwrap();
    let diff = max_abs_diff(&features, &golden["features"]);
    assert!(diff <= 1e-3, "features differ from PyTorch by {diff}");
    let logits = model.imagenet_logits(&features).unwrap().unwrap();
    let diff = max_abs_diff(&logits, &golden["logits"]);
    assert!(diff <= 1e-3, "logits differ from PyTorch by {diff}");
    // The photos are boot, boot, sandal, shoe: ImageNet's cowboy boot (514), sandal (774), Loafer (630).
    let top1: Vec<u32> = logits.argmax(1).unwrap().to_vec1().unwrap();
    assert_eq!(top1, vec![514, 514, 774, 630]);
}
