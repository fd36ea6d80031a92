//! Which device the tensors live on: `--device cpu|cuda|cuda:N`, or the default (the first GPU
//! when built with `--features cuda` and one is present, else the CPU).

use crate::error::InputError;
use candle_core::Device;

/// Environment variable read where no `--device` is given (and by the device tests).
pub const DEVICE_ENV: &str = "GRIDSEARCH_DEVICE";

/// A device as the user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    /// A CUDA GPU by ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
}

impl DeviceChoice {
    /// Parses `cpu`, `cuda` or `cuda:N`; the error is one line naming `--device`.
    pub fn parse(text: &str) -> Result<DeviceChoice, InputError> {
        let bad = || {
            InputError::new(format!(
                "--device {text}: unknown device (expected cpu, cuda or cuda:N)"
            ))
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(bad),
        }
    }
}

/// The device `--device` asks for; None: `GRIDSEARCH_DEVICE` if set, else [`default_device`].
/// Asking for CUDA in a build without it, or where no such GPU can be opened, is an
/// [`InputError`] (exit 2) that names the option.
pub fn select_device(option: Option<&str>) -> anyhow::Result<Device> {
    let from_env = std::env::var(DEVICE_ENV).ok().filter(|v| !v.is_empty());
    let (text, name) = match (option, &from_env) {
        (Some(text), _) => (text, "--device"),
        (None, Some(text)) => (text.as_str(), DEVICE_ENV),
        (None, None) => return Ok(default_device()?),
    };
    let choice = DeviceChoice::parse(text)
        .map_err(|e| InputError::new(e.0.replacen("--device", name, 1)))?;
    open(choice).map_err(|reason| InputError::new(format!("{name} {text}: {reason}")).into())
}

/// The first CUDA GPU when built with `--features cuda` and one can be opened, else the CPU.
/// (A `Result` for its callers' sake; it does not fail.)
pub fn default_device() -> candle_core::Result<Device> {
    if cfg!(feature = "cuda") {
        if let Ok(device) = open(DeviceChoice::Cuda(0)) {
            return Ok(device);
        }
    }
    Ok(Device::Cpu)
}

/// Opens the chosen device, or says why not in a few words.
fn open(choice: DeviceChoice) -> Result<Device, String> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda(_) if !cfg!(feature = "cuda") => Err(
            "this build has no CUDA (build with `cargo build --release --features cuda`)".into(),
        ),
        DeviceChoice::Cuda(ordinal) => {
            Device::new_cuda(ordinal).map_err(|e| format!("no CUDA GPU {ordinal} here ({e})"))
        }
    }
}

/// How the device is named to the user: `cpu`, `cuda:0`.
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_cuda_and_an_ordinal() {
        assert_eq!(DeviceChoice::parse("cpu").unwrap(), DeviceChoice::Cpu);
        assert_eq!(DeviceChoice::parse("CUDA").unwrap(), DeviceChoice::Cuda(0));
        assert_eq!(
            DeviceChoice::parse("cuda:3").unwrap(),
            DeviceChoice::Cuda(3)
        );
        for bad in ["tpu", "cuda:", "cuda:x", "cuda:-1", ""] {
            let error = DeviceChoice::parse(bad).unwrap_err().to_string();
            assert!(error.starts_with(&format!("--device {bad}: ")), "{error}");
        }
    }

    #[test]
    fn cpu_is_always_there_and_named() {
        let device = select_device(Some("cpu")).unwrap();
        assert!(device.is_cpu());
        assert_eq!(describe(&device), "cpu");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_in_a_cpu_build_is_a_bad_input_naming_the_option() {
        let error = select_device(Some("cuda:1")).unwrap_err();
        let input = error.downcast_ref::<InputError>().expect("an InputError");
        assert!(
            input
                .0
                .starts_with("--device cuda:1: this build has no CUDA"),
            "{input}"
        );
        assert!(default_device().unwrap().is_cpu());
    }
}
