//! `gridsearch cache`: list the activation cache's entries, or remove the least recently used
//! (`--clear`, `--max-size`), leaving any a running process has in use.

use super::Exit;
use crate::cache::entries::{evict, list, Entry};
use crate::cli::CacheArgs;
use crate::error::InputError;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::path::Path;
use std::time::SystemTime;

pub fn run(args: &CacheArgs, db: &Path) -> anyhow::Result<Exit> {
    let dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| crate::cache::default_dir(&crate::store::local_folder(db)));
    let unreadable = |e: std::io::Error| InputError::new(format!("{}: {e}", dir.display()));
    let max_bytes = match (args.clear, args.max_size) {
        (true, _) => Some(0),
        (false, max) => max,
    };
    if let Some(max_bytes) = max_bytes {
        let evicted = evict(&dir, max_bytes).map_err(unreadable)?;
        let freed: u64 = evicted.removed.iter().map(|e| e.bytes).sum();
        crate::outln!(
            "removed {} entries ({}); {} left in {}",
            evicted.removed.len(),
            human_bytes(freed),
            human_bytes(evicted.bytes_left),
            dir.display()
        );
        for entry in &evicted.in_use {
            eprintln!(
                "kept {} {}: a running process has it in use",
                entry.pass,
                entry.recording.name()
            );
        }
        return Ok(Exit::Ok);
    }
    let entries = list(&dir).map_err(unreadable)?;
    crate::out!("{}", table(&entries, SystemTime::now()));
    let total: u64 = entries.iter().map(|e| e.bytes).sum();
    crate::outln!(
        "{} entries, {} in {}",
        entries.len(),
        human_bytes(total),
        dir.display()
    );
    Ok(Exit::Ok)
}

/// One row per entry, most recently used first.
fn table(entries: &[Entry], now: SystemTime) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header([
        "pass (backbone-weights-size-pixels)",
        "recording",
        "images",
        "bytes",
        "last used",
    ]);
    for e in entries.iter().rev() {
        let ago = now.duration_since(e.last_used).unwrap_or_default();
        table.add_row([
            e.pass.clone(),
            e.recording.name(),
            e.images.to_string(),
            human_bytes(e.bytes),
            format!("{} ago", human_duration(ago.as_secs())),
        ]);
    }
    format!("{table}\n")
}

/// Bytes in the largest unit that keeps a number of at least 1 (powers of 1024).
fn human_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", units[unit]),
    }
}

fn human_duration(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}
