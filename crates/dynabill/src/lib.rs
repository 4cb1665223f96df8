//! dynabill: configuration, command-line subcommands and wiring. The billing
//! engine itself lives in the other crates; this one only connects them.

pub mod cli;
pub mod config;
pub mod scheduler;
pub mod server;
pub mod storage;
