//! Progress bars for long work (hidden with --quiet or when stderr is not a terminal).

use crate::scheduler::{Progress, Work};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::{Mutex, PoisonError};

/// A bar of `len` steps labelled `label`.
pub fn bar(len: usize, label: &str, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{prefix:>10} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar
}

/// The library's progress, drawn as one bar per piece of work, cleared when it ends.
pub struct Bars {
    quiet: bool,
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn new(quiet: bool) -> Bars {
        Bars {
            quiet,
            current: Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bar) = current.as_ref() {
            f(bar);
        }
    }
}

fn label(work: Work) -> &'static str {
    match work {
        Work::Backbone => "backbone",
        Work::Trials => "trials",
    }
}

impl Progress for Bars {
    fn start(&self, work: Work, total: usize) {
        let new = bar(total, label(work), self.quiet);
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = current.replace(new) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: usize) {
        self.with_bar(|bar| bar.inc(n as u64));
    }

    fn message(&self, text: &str) {
        self.with_bar(|bar| bar.set_message(text.to_string()));
    }

    fn finish(&self) {
        let done = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(bar) = done {
            bar.finish_and_clear();
        }
    }
}
