//! `dynabill secrets rotate`: every stored secret sealed again with a new key.

use std::path::Path;

use clap::Subcommand;

use super::{DatabaseArgs, open_locked_app};
use crate::secret_key::{self, KeySource};

#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// Seal every stored secret (AvaTax license keys, webhook signing secrets)
    /// with a new key. With the key file: a new key is made and written there, the
    /// old one dropped once nothing needs it. With DYNABILL_SECRET_KEY: put a new
    /// key first in it (keys separated by commas), run this, then drop the old
    /// key. Servers started before read the secrets they sealed until restarted
    /// with the new key. Prints a JSON summary.
    Rotate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub(crate) async fn run(config_file: Option<&Path>, command: SecretsCommand) -> anyhow::Result<()> {
    let SecretsCommand::Rotate { database } = command;
    let (app, config) = open_locked_app(config_file, database).await?;
    let store = app.store().clone();
    let rotated = secret_key::rotate(app, &config.secret_key_file).await;
    store.close().await;
    let rotated = rotated?;
    let source = match &rotated.source {
        KeySource::Env => secret_key::KEY_ENV.to_owned(),
        KeySource::File(path) => path.display().to_string(),
    };
    println!(
        "{}",
        serde_json::json!({
            "Key": rotated.key,
            "KeySource": source,
            "Resealed": rotated.resealed,
        })
    );
    Ok(())
}
