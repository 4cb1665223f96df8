//! `dynabill backup --to PATH`: a consistent online copy of the embedded SQLite
//! database, taken while `serve` runs.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;

use super::DatabaseArgs;
use crate::config::Config;

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// Where the copy is written: a new file (never overwritten), a SQLite
    /// database that `serve --database-url sqlite://PATH` opens as it is.
    #[arg(long)]
    to: PathBuf,
    #[command(flatten)]
    database: DatabaseArgs,
}

pub(crate) async fn run(config_file: Option<&Path>, args: BackupArgs) -> anyhow::Result<()> {
    let config = Config::load(config_file, args.database.overrides())?;
    let url = &config.database_url;
    if !url.starts_with("sqlite:") {
        bail!(
            "`dynabill backup` copies the embedded SQLite database; for PostgreSQL use its own \
             tools (pg_dump, or a base backup with WAL archiving), as the README says"
        );
    }
    dynabill_sqlite::backup(url, &args.to).await?;
    let bytes = std::fs::metadata(&args.to).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({ "BackupOf": url, "To": args.to.display().to_string(), "Bytes": bytes })
    );
    Ok(())
}
