//! How the cores are used: on the CPU, independent work side by side, each kernel on one
//! thread; on a GPU, one stream of work in large batches, the host threads only decoding.
//!
//! On a few cores, splitting every small GEMM of a training step across threads costs more in
//! synchronisation than it gains (measured: the department benchmark's trials took 117 s with
//! 2-thread kernels and one trial at a time, 63 s with 1-thread kernels and two trials at once).
//! So batches of the frozen pass and trials run in parallel, and the kernels run serially.
//!
//! A GPU is the opposite case: it is fed best by one thread submitting large batches in order
//! (several host threads sharing its one stream only interleave their launches), so there the
//! frozen pass runs its batches one after another, and one trial trains at a time unless
//! `--jobs` says otherwise. The rayon pool then only decodes images.

/// Size rayon's global pool to the cores and make candle's GEMMs single-threaded. Call first
/// thing in `main`, before any thread exists. A user's own RAYON_NUM_THREADS is left alone
/// (then kernels use that many threads, as candle does by default).
pub fn configure() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = available_cores();
    // Fails only when the global pool already exists, which `main` rules out.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build_global();
    // candle reads this variable at every matmul to choose its GEMM parallelism.
    std::env::set_var("RAYON_NUM_THREADS", "1");
}

/// The cores this process may use.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How work is spread on one kind of device (see the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Images per forward batch of a frozen pass.
    pub forward_batch: usize,
    /// Whether those batches run side by side on the rayon pool (else one after another).
    pub parallel_batches: bool,
    /// Head groups trained at the same time when `--jobs` is not given.
    pub default_jobs: usize,
}

/// The policy for the CPU (`on_gpu` false: unchanged from before devices existed) or a GPU.
pub fn policy(on_gpu: bool) -> Policy {
    if on_gpu {
        Policy {
            forward_batch: 128,
            parallel_batches: false,
            default_jobs: 1,
        }
    } else {
        Policy {
            forward_batch: 32,
            parallel_batches: true,
            default_jobs: available_cores(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fans_out_small_batches_and_gpu_runs_one_stream_of_large_ones() {
        let cpu = policy(false);
        assert_eq!((cpu.forward_batch, cpu.parallel_batches), (32, true));
        assert_eq!(cpu.default_jobs, available_cores());
        let gpu = policy(true);
        assert!(gpu.forward_batch > cpu.forward_batch && !gpu.parallel_batches);
        assert_eq!(gpu.default_jobs, 1);
    }
}
