//! Typed, layered configuration: defaults, then an optional TOML file, then
//! `DYNABILL_*` environment variables and command-line flags (clap reads both).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://dynabill.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_SECRET_KEY_FILE: &str = "dynabill.key";

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Config {
    /// `sqlite://PATH` (created if missing) or `postgres://...`.
    pub database_url: String,
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Requests per second each tenant may make (bursts of twice that); `None` for no limit.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// Where `GET /metrics` is served when not on `listen`.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// The file holding the key ring that seals stored secrets, created (mode
    /// 0600) on first start when `DYNABILL_SECRET_KEY` is not set.
    pub secret_key_file: PathBuf,
    /// A TOML file with the invoice PDF's words and looks (docs/CONSOLE.md);
    /// `None` for the default.
    #[serde(default)]
    pub invoice_template: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            listen: DEFAULT_LISTEN
                .parse()
                .expect("the default listen address is valid"),
            rate_limit: None,
            metrics_listen: None,
            secret_key_file: PathBuf::from(DEFAULT_SECRET_KEY_FILE),
            invoice_template: None,
        }
    }
}

/// Values given on the command line or in the environment; `None` leaves the
/// layer below in force.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_template: Option<PathBuf>,
}

impl Config {
    /// Defaults, then `file` if given, then the overrides; validated.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(
                path.exists(),
                "config file {} does not exist",
                path.display()
            );
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = figment
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("reading the configuration")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let url = &self.database_url;
        let known = ["sqlite:", "postgres:", "postgresql:"]
            .iter()
            .any(|s| url.starts_with(s));
        anyhow::ensure!(
            known,
            "database_url {url:?} must start with sqlite: or postgres:"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dynabill.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\ndatabase_url = \"sqlite://file.db\"\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&path),
            Overrides {
                database_url: Some("sqlite://flag.db".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.database_url, "sqlite://flag.db");
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        let defaults = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(defaults.database_url, DEFAULT_DATABASE_URL);
    }

    #[test]
    fn an_unknown_database_scheme_is_refused_at_start_up() {
        let err = Config::load(
            None,
            Overrides {
                database_url: Some("mysql://x".into()),
                ..Overrides::default()
            },
        );
        assert!(err.is_err());
    }
}
