//! Entry point: parse the command line, run the command, and exit as `error::classify` says.

use clap::Parser;
use gridsearch::cli::{Cli, Command};
use gridsearch::commands;
use gridsearch::error::classify;
use std::process::ExitCode;

// glibc's malloc maps every large temporary afresh; the page faults cost more than the kernels.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    gridsearch::allocator::configure();
    gridsearch::threads::configure();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => commands::run::run(args, &cli.db, cli.quiet),
        Command::Plan(args) => commands::plan::run(args),
        Command::Report(args) => commands::report::run(args, &cli.db),
        Command::Status(args) => commands::status::run(args, &cli.db),
        Command::Cache(args) => commands::cache::run(args, &cli.db),
        Command::Backbones => commands::backbones::run(),
        Command::Settings => commands::settings::run(),
        Command::Export(args) => commands::export::run(args, &cli.db),
        Command::Predict(args) => commands::predict::run(args),
        Command::Index(args) => commands::index::run(args, cli.quiet),
        Command::Similar(args) => commands::similar::run(args),
        Command::Serve(args) => commands::serve::run(args, cli.quiet),
    };
    let exit = match result {
        Ok(exit) => exit,
        Err(error) => {
            let (exit, line) = classify(&error, &cli.db);
            if let Some(line) = line {
                eprintln!("error: {line}");
            }
            exit
        }
    };
    ExitCode::from(exit as u8)
}
