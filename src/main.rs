//! Entry point: parse the command line, run the command, map errors to exit codes.

use clap::Parser;
use gridsearch::cli::{Cli, Command};
use gridsearch::commands::{self, Exit};
use gridsearch::error::InputError;
use std::process::ExitCode;

// glibc's malloc maps every large temporary afresh; the page faults cost more than the kernels.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    gridsearch::threads::configure();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => commands::run::run(args, &cli.db, cli.quiet),
        Command::Plan(args) => commands::plan::run(args),
        Command::Report(args) => commands::report::run(args, &cli.db),
        Command::Status(args) => commands::status::run(args, &cli.db),
        Command::Backbones => commands::backbones::run(),
        Command::Export(args) => commands::export::run(args, &cli.db),
        Command::Predict(args) => commands::predict::run(args),
        Command::Index(args) => commands::index::run(args, cli.quiet),
        Command::Similar(args) => commands::similar::run(args),
        Command::Serve(args) => commands::serve::run(args, cli.quiet),
    };
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(error) => {
            if let Some(failure) = gridsearch::store::write_failure(&error) {
                eprintln!(
                    "error: {}: cannot write ({failure}): is the disk full? Everything stored \
                     before is kept: free space, then run the same command again",
                    cli.db.display()
                );
                ExitCode::from(Exit::BadInput as u8)
            } else if let Some(input) = error.downcast_ref::<InputError>() {
                eprintln!("error: {input}");
                ExitCode::from(Exit::BadInput as u8)
            } else {
                eprintln!("error: {error:#}");
                ExitCode::from(Exit::Failure as u8)
            }
        }
    }
}
