//! Picks the storage backend from the database URL's scheme.

use std::sync::Arc;

use anyhow::{Context, bail};
use dynabill_app::Store;
use dynabill_postgres::PgStore;
use dynabill_sqlite::SqliteStore;

/// Connects to `url` (`sqlite:` or `postgres:`) and applies pending migrations.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(
            SqliteStore::connect(url)
                .await
                .with_context(|| format!("opening {url}"))?,
        )
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Arc::new(
            PgStore::connect(url)
                .await
                .context("connecting to PostgreSQL")?,
        )
    } else {
        bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://...");
    };
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}
