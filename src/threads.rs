//! How the cores are used: independent work side by side, each kernel on one thread.
//!
//! On a few cores, splitting every small GEMM of a training step across threads costs more in
//! synchronisation than it gains (measured: the department benchmark's trials took 117 s with
//! 2-thread kernels and one trial at a time, 63 s with 1-thread kernels and two trials at once).
//! So batches of the frozen pass and trials run in parallel, and the kernels run serially.

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
