//! dynabill: configuration, command-line subcommands and wiring. The billing
//! engine itself lives in the other crates; this one only connects them.

pub mod cli;
pub mod config;
pub mod scheduler;
pub mod secret_key;
pub mod server;
pub mod storage;
pub mod webhooks;

/// Installs the process-wide TLS crypto provider (ring) that HTTP clients built
/// without one of their own use. Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
