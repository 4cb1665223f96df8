//! The test harness's promise: a fresh-schema URL keeps everything a store does
//! inside that schema, so tests sharing one database never see each other.

use dynabill_app::Store;
use dynabill_app::store::{NewApiUser, NewTenant, TenantStore};
use dynabill_postgres::PgStore;
use dynabill_store_contract::fresh_postgres_schema;
use jiff::Timestamp;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn migrations_and_writes_stay_inside_the_fresh_schema() {
    let (Some(one), Some(two)) = (fresh_postgres_schema().await, fresh_postgres_schema().await)
    else {
        println!("skipped: DYNABILL_TEST_POSTGRES_URL unset");
        return;
    };
    let first = PgStore::connect(one.url()).await.unwrap();
    first.migrate().await.unwrap();
    let second = PgStore::connect(two.url()).await.unwrap();
    second.migrate().await.unwrap();

    let mut conn = PgConnection::connect(one.url()).await.unwrap();
    let current: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(current, one.name());
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT table_schema::text FROM information_schema.tables
         WHERE table_name = 'accounts' AND table_schema IN ($1, $2) ORDER BY 1",
    )
    .bind(one.name())
    .bind(two.name())
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut expected = vec![one.name().to_owned(), two.name().to_owned()];
    expected.sort();
    assert_eq!(schemas, expected, "each schema got its own tables");
    conn.close().await.unwrap();

    let tenant = NewTenant {
        app_key: "app-1".to_owned(),
        name: "Acme".to_owned(),
        currency: "EUR".to_owned(),
        time_zone: "UTC".to_owned(),
    };
    let user = NewApiUser {
        user_name: "api".to_owned(),
        token_hash: [0; 32],
    };
    first
        .create_tenant(&tenant, &user, Timestamp::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(first.tenant_count().await.unwrap(), 1);
    assert_eq!(second.tenant_count().await.unwrap(), 0);

    first.close().await;
    second.close().await;
    one.drop_schema().await;
    two.drop_schema().await;
}
