//! The `dynabill` command: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    dynabill::cli::main(dynabill::cli::Cli::parse())
}
