//! Command-line types (clap derive); nothing else in the crate imports clap.

use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

/// Grid search for transfer-learning image classifiers, sharing all frozen work between trials.
#[derive(Debug, Parser)]
#[command(name = "gridsearch", version, about, long_about = None)]
pub struct Cli {
    /// The database that keeps every study, trial and epoch: a SQLite file on this machine, or
    /// a PostgreSQL URL (postgres://user@host[:port]/dbname; the password in the URL or in
    /// PGPASSWORD) that workers on many machines share.
    #[arg(long, global = true, default_value = "runs/gridsearch.db")]
    pub db: PathBuf,
    /// Print only results and errors (no progress bars).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every trial of one or more grid files that is not finished yet.
    Run(RunArgs),
    /// Print a grid's trials and the work they share, without training.
    Plan(PlanArgs),
    /// Rank a study's trials and show what each hyperparameter does.
    Report(ReportArgs),
    /// A study's progress: trials per state, elapsed and remaining time, best so far.
    Status(StatusArgs),
    /// The on-disk activation cache: list its entries, or remove the least recently used.
    Cache(CacheArgs),
    /// The backbones this build knows: blocks (unfreeze depths), image sizes, feature width.
    Backbones,
    /// The training settings a grid may fix in [train] or vary in [grid]: defaults, accepted
    /// values, the phase each changes.
    Settings,
    /// Write each study's best trial as a self-describing model folder.
    Export(ExportArgs),
    /// Every exported attribute of each image, with probabilities.
    Predict(PredictArgs),
    /// Embed every photo of a catalogue folder once, for `similar` and `serve`; a rerun embeds
    /// only new or changed photos.
    Index(IndexArgs),
    /// The catalogue photos most like an image (cosine similarity of their embeddings).
    Similar(SimilarArgs),
    /// A web page: upload a photo, see every exported attribute's probabilities and the
    /// catalogue photos most like it.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Grid files (TOML); all are validated before any work starts.
    #[arg(required = true)]
    pub grids: Vec<PathBuf>,
    /// Head groups trained at the same time (default: one per core).
    #[arg(long, short, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
    /// A trial whose process died this many times while running it is marked failed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// When a grid's data, model or fixed [train] settings differ from its study's, run it as a
    /// new study (`<name>-2`, ...) instead of refusing.
    #[arg(long)]
    pub new_study: bool,
    /// Keep the weights of each study's N best trials beside the database (for `export`).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub keep_checkpoints: usize,
    /// Where frozen activations are kept across runs and shared by the host's processes
    /// (default: `cache/` beside the database).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compute the frozen activations in memory only: read and write no cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    /// The cache folder (default: `cache/` beside the database).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Remove every entry (but those a running process has in use).
    #[arg(long, conflicts_with = "max_size")]
    pub clear: bool,
    /// Remove the least recently used entries until the cache holds at most SIZE bytes
    /// (suffixes K, M, G, T: powers of 1024).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
}

/// A size in bytes, with an optional K, M, G or T suffix (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let upper = text.trim().to_ascii_uppercase();
    let digits = upper.trim_end_matches(['K', 'M', 'G', 'T', 'B']);
    let shift = match upper[digits.len()..].trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{text:?} is not a size (e.g. 500M, 20G)")),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 500M, 20G)"))?;
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Grid file (TOML).
    pub grid: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Study name (default: the latest study in the database).
    #[arg(value_name = "STUDY")]
    pub study_name: Option<String>,
    /// Study name, as an option.
    #[arg(long, conflicts_with = "study_name")]
    pub study: Option<String>,
    /// Output format: table, md, csv or json.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Show only the N best trials in the ranked table (and their learning curves).
    #[arg(long)]
    pub top: Option<usize>,
    /// Also write the report as one self-contained HTML page with plots
    /// (default path: reports/<study>.html).
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    pub html: Option<Option<PathBuf>>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Study name (default: the latest study in the database).
    #[arg(value_name = "STUDY")]
    pub study_name: Option<String>,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Where exported models go, and where `predict` and `serve` read them.
pub const DEFAULT_MODELS: &str = "runs/models";

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Studies to export (default: every study with kept weights).
    #[arg(value_name = "STUDY")]
    pub studies: Vec<String>,
    /// Folder to write one model folder per study into.
    #[arg(long, default_value = DEFAULT_MODELS)]
    pub out: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Folder of exported models (or one model folder).
    #[arg(long, default_value = DEFAULT_MODELS)]
    pub models: PathBuf,
    /// Print JSON: every label's probability for every attribute.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// Where `index` writes the catalogue's embeddings and `similar` and `serve` read them.
pub const DEFAULT_INDEX: &str = "runs/index.safetensors";

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Catalogue folder (searched recursively for images).
    pub dir: PathBuf,
    /// Index file.
    #[arg(long, default_value = DEFAULT_INDEX)]
    pub index: PathBuf,
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// What an image's embedding is.
#[derive(Debug, Args)]
pub struct EmbeddingArgs {
    /// An exported model folder: embed with its fine-tuned penultimate layer instead of the
    /// frozen backbone's pooled features.
    #[arg(long, value_name = "FOLDER")]
    pub model: Option<PathBuf>,
    /// Backbone weights (when no --model).
    #[arg(long, default_value = "models/efficientnet_lite0.safetensors")]
    pub weights: PathBuf,
    /// Backbone name (when no --model).
    #[arg(long, default_value = "efficientnet-lite0")]
    pub backbone: String,
    /// Image size (when no --model; default: the backbone's own).
    #[arg(long)]
    pub image_size: Option<usize>,
}

#[derive(Debug, Args)]
pub struct SimilarArgs {
    /// The query image.
    #[arg(required_unless_present = "evaluate")]
    pub image: Option<PathBuf>,
    /// Index file written by `gridsearch index`.
    #[arg(long, default_value = DEFAULT_INDEX)]
    pub index: PathBuf,
    /// How many neighbours.
    #[arg(long, short, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub k: u16,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Instead of one query: for every catalogue photo, how often its k nearest other photos
    /// share its top-level folder (e.g. department), and how long one query takes.
    #[arg(long, conflicts_with = "image")]
    pub evaluate: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Debug, Args)]
#[command(after_help = crate::serve::limits_help())]
pub struct ServeArgs {
    /// Folder of exported models (or one model folder).
    #[arg(long, default_value = DEFAULT_MODELS)]
    pub models: PathBuf,
    /// Catalogue folder: show its photos most like each upload. It is indexed into --index first,
    /// embedded as --model or --weights/--backbone/--image-size say (as `gridsearch index DIR`
    /// does: only new or changed photos are embedded).
    #[arg(long, value_name = "DIR")]
    pub catalogue: Option<PathBuf>,
    /// Index file of the catalogue.
    #[arg(long, default_value = DEFAULT_INDEX)]
    pub index: PathBuf,
    /// Port to listen on (0: any free port; the line `listening on ...` says which).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on. Requests must name it (or localhost, 127.0.0.1, [::1]) as their
    /// Host, else 403; on 0.0.0.0 or :: any IP address is accepted as Host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Also answer requests whose Host is NAME (any port), e.g. the machine's DNS name or a
    /// proxy's; repeatable. Other names are refused so that no other web site's page can reach
    /// the server through DNS rebinding.
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,
    /// Requests handled at the same time; more are answered 503 at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_requests: u16,
    /// Largest upload accepted, in MiB.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_upload_mb: u16,
    /// How many similar catalogue photos to show.
    #[arg(long, short, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub k: u16,
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// How the --db store may be opened.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Use a SQLite --db on a network filesystem (NFS, SMB, FUSE...) all the same: only safe
    /// when no other machine opens the file (several machines: use a PostgreSQL URL).
    #[arg(long)]
    pub allow_network_fs: bool,
}

/// Where the tensors live.
#[derive(Debug, Args)]
pub struct DeviceArg {
    /// cpu, cuda or cuda:N (default: GRIDSEARCH_DEVICE if set, else the first GPU when built
    /// with `--features cuda` and one is present, else cpu).
    #[arg(long, value_name = "cpu|cuda|cuda:N")]
    pub device: Option<String>,
}
