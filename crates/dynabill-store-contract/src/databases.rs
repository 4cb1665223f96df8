//! Fresh, isolated databases for one test each: a SQLite file in a temporary
//! directory, or a PostgreSQL schema of its own.

use std::sync::Arc;

use dynabill_app::Store;
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

/// The PostgreSQL server tests run against, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_URL_VAR: &str = "DYNABILL_TEST_POSTGRES_URL";
/// Set to `1` (as CI does) to make a missing or unreachable PostgreSQL a failure, not a skip.
pub const REQUIRE_POSTGRES_VAR: &str = "DYNABILL_TEST_REQUIRE_POSTGRES";

/// A URL to a new SQLite file in a new temporary directory; the directory (and the
/// database) disappears when the returned `TempDir` is dropped.
pub fn fresh_sqlite_url() -> (TempDir, String) {
    let dir = tempfile::tempdir().expect("creating a temporary directory for SQLite");
    let url = format!("sqlite://{}", dir.path().join("dynabill.db").display());
    (dir, url)
}

/// A new, empty PostgreSQL schema that every connection made from [`url`](Self::url) uses.
#[derive(Debug)]
pub struct PostgresSchema {
    server_url: String,
    name: String,
    url: String,
}

impl PostgresSchema {
    /// A connection URL whose sessions put this schema first on their `search_path`,
    /// so migrations create their tables in it and queries find them there.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the schema and everything in it. Close the connections using it first.
    pub async fn drop_schema(self) {
        let mut conn = connect(&self.server_url).await;
        let sql = format!("DROP SCHEMA {} CASCADE", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("dropping test schema {}: {e}", self.name));
        let _ = conn.close().await;
    }
}

/// A URL to a fresh PostgreSQL schema, or `None` when `DYNABILL_TEST_POSTGRES_URL`
/// is unset. Panics when PostgreSQL was asked for (the URL is set, or
/// `DYNABILL_TEST_REQUIRE_POSTGRES=1`) but cannot be used: a CI run must never
/// pass by skipping PostgreSQL. The schema is left behind; use
/// [`fresh_postgres_schema`] to drop it afterwards.
pub async fn fresh_postgres_url() -> Option<String> {
    fresh_postgres_schema().await.map(|schema| schema.url)
}

/// Like [`fresh_postgres_url`], keeping what is needed to drop the schema.
pub async fn fresh_postgres_schema() -> Option<PostgresSchema> {
    let required = std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v.trim() == "1");
    let server_url = match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => {
            assert!(
                !required,
                "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is unset: \
                 the PostgreSQL tests must not be skipped"
            );
            return None;
        }
    };
    let random = getrandom::u64().expect("reading OS randomness for a schema name");
    let name = format!("t_{random:016x}");
    let mut conn = connect(&server_url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating test schema {name}: {e}"));
    let _ = conn.close().await;
    let url = with_search_path(&server_url, &name);
    Some(PostgresSchema {
        server_url,
        name,
        url,
    })
}

async fn connect(server_url: &str) -> PgConnection {
    // The URL may hold a password: the message names the variable, not its value.
    PgConnection::connect(server_url)
        .await
        .unwrap_or_else(|e| panic!("cannot use PostgreSQL at {POSTGRES_URL_VAR}: {e}"))
}

/// Adds the libpq `options` parameter `-c search_path=<schema>` (percent-encoded),
/// which sqlx passes to the server at connection start-up. Only the schema is on
/// the path, so nothing can silently land in (or be read from) `public`.
fn with_search_path(server_url: &str, schema: &str) -> String {
    let separator = if server_url.contains('?') { '&' } else { '?' };
    format!("{server_url}{separator}options=-c%20search_path%3D{schema}")
}

/// A migrated store for one contract test, and what to clean up after it.
pub struct TestStore {
    store: Arc<dyn Store>,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteDir(TempDir),
    PostgresSchema(PostgresSchema),
}

impl TestStore {
    pub fn sqlite(store: Arc<dyn Store>, dir: TempDir) -> TestStore {
        TestStore {
            store,
            cleanup: Cleanup::SqliteDir(dir),
        }
    }

    pub fn postgres(store: Arc<dyn Store>, schema: PostgresSchema) -> TestStore {
        TestStore {
            store,
            cleanup: Cleanup::PostgresSchema(schema),
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Closes the store and removes its database. Only reached when the test passed,
    /// so a failing PostgreSQL test leaves its schema behind to look at.
    pub async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::SqliteDir(dir) => drop(dir),
            Cleanup::PostgresSchema(schema) => schema.drop_schema().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_path_option_is_appended_as_a_query_parameter() {
        assert_eq!(
            with_search_path("postgres://u@h:5432/db", "t_00ff"),
            "postgres://u@h:5432/db?options=-c%20search_path%3Dt_00ff"
        );
        assert_eq!(
            with_search_path("postgres://u@h/db?sslmode=disable", "t_1"),
            "postgres://u@h/db?sslmode=disable&options=-c%20search_path%3Dt_1"
        );
    }
}
