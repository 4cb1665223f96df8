//! Test harness: a real server on port 0 over a fresh database, and a client
//! that speaks the dynamic API to it.

use std::sync::Arc;

use dynabill::server::RunningServer;
use dynabill_app::{App, SystemClock};
use dynabill_store_contract::{fresh_postgres_schema, fresh_sqlite_url};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One API user's headers.
#[derive(Clone, Debug)]
pub struct Cred {
    pub app_key: String,
    pub user: String,
    pub token: String,
}

pub struct TestApp {
    pub base: String,
    /// The database URL the server uses (tests may reach under the API with it).
    pub database_url: String,
    /// The URL the server's store opened: `database_url`, or its route (a proxy,
    /// a role) in the outage tests.
    pub store_url: String,
    schema: Option<dynabill_store_contract::PostgresSchema>,
    pub app: App,
    pub client: reqwest::Client,
    /// The first tenant's credentials.
    pub cred: Cred,
    /// The key ring sealing the stored secrets, as `DYNABILL_SECRET_KEY` reads it.
    secret_key: String,
    server: Option<RunningServer>,
    scheduler: Option<dynabill::scheduler::Scheduler>,
    webhooks: Option<dynabill::webhooks::Worker>,
    _sqlite_dir: Option<tempfile::TempDir>,
}

/// Starts a server on a fresh database of `backend`; `None` when PostgreSQL is not
/// configured (the harness itself panics when CI requires it).
pub async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, dynabill_http::HttpOptions::default()).await
}

/// Like [`spawn`], with options for the HTTP surface.
pub async fn spawn_with(backend: Backend, options: dynabill_http::HttpOptions) -> Option<TestApp> {
    spawn_server(backend, options, Clock::Real).await
}

/// Like [`spawn`], with the test clock on and the scheduler running, as
/// `serve --test-clock` runs.
pub async fn spawn_with_test_clock(backend: Backend) -> Option<TestApp> {
    spawn_server(
        backend,
        dynabill_http::HttpOptions::default(),
        Clock::TestWithScheduler,
    )
    .await
}

/// Like [`spawn`], with the test clock on and no scheduler: bill runs happen only
/// when the test asks for them.
pub async fn spawn_with_test_clock_alone(backend: Backend) -> Option<TestApp> {
    spawn_server(backend, dynabill_http::HttpOptions::default(), Clock::Test).await
}

/// Like [`spawn_with_test_clock_alone`], with the HTTP options given.
pub async fn spawn_with_options_and_test_clock(
    backend: Backend,
    options: dynabill_http::HttpOptions,
) -> Option<TestApp> {
    spawn_server(backend, options, Clock::Test).await
}

/// Like [`spawn`], with the test clock on, no scheduler, and the webhook worker
/// running as `serve --allow-private-webhooks` runs it (receivers on loopback).
pub async fn spawn_with_webhooks(backend: Backend) -> Option<TestApp> {
    spawn_server(
        backend,
        dynabill_http::HttpOptions::default(),
        Clock::TestWithWebhooks,
    )
    .await
}

/// How a server reaches PostgreSQL, for the outage tests.
#[derive(Clone, Debug)]
pub enum PostgresRoute {
    /// Through a proxy at this address (the test cuts and restores it).
    Through(std::net::SocketAddr),
    /// As this role (made owner of the test's schema), whose connection slots
    /// the test may take.
    AsRole(String),
}

/// A server on a fresh PostgreSQL schema that reaches the database by `route`;
/// the test's own SQL (`execute_sql`, `query_count`) goes straight to it.
pub async fn spawn_postgres_routed(route: PostgresRoute) -> Option<TestApp> {
    spawn_routed(
        Backend::Postgres,
        dynabill_http::HttpOptions::default(),
        Clock::Real,
        Some(route),
    )
    .await
}

/// Which clock a test server follows (and what runs beside it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Clock {
    Real,
    Test,
    TestWithScheduler,
    TestWithWebhooks,
}

async fn spawn_server(
    backend: Backend,
    options: dynabill_http::HttpOptions,
    clock: Clock,
) -> Option<TestApp> {
    spawn_routed(backend, options, clock, None).await
}

async fn spawn_routed(
    backend: Backend,
    options: dynabill_http::HttpOptions,
    clock: Clock,
    route: Option<PostgresRoute>,
) -> Option<TestApp> {
    dynabill::install_crypto_provider();
    let (dir, schema, url) = match backend {
        Backend::Sqlite => {
            let (dir, url) = fresh_sqlite_url();
            (Some(dir), None, url)
        }
        Backend::Postgres => match fresh_postgres_schema().await {
            Some(schema) => {
                let url = schema.url().to_owned();
                (None, Some(schema), url)
            }
            None => {
                eprintln!("skipped: DYNABILL_TEST_POSTGRES_URL unset");
                return None;
            }
        },
    };
    let store_url = match (&route, &schema) {
        (Some(route), Some(schema)) => routed_url(route, schema).await,
        _ => url.clone(),
    };
    let store = dynabill::storage::open(&store_url)
        .await
        .expect("opening the test database");
    // AvaTax answers within 2 s here, so that a hanging fake server fails fast.
    let avatax = dynabill_avatax::AvaTaxClient::new(std::time::Duration::from_secs(2))
        .expect("an AvaTax client");
    let keyring = dynabill_app::secrets::Keyring::generate().expect("a key");
    let secret_key = keyring.to_text();
    let mut app = App::new(store, Arc::new(SystemClock))
        .with_tax_engine(Arc::new(avatax))
        .with_keyring(keyring);
    if clock != Clock::Real {
        app = app.with_test_clock();
    }
    if clock == Clock::TestWithWebhooks {
        app = app.with_private_webhooks();
    }
    let scheduler =
        (clock == Clock::TestWithScheduler).then(|| dynabill::scheduler::spawn(app.clone()));
    let webhooks = (clock == Clock::TestWithWebhooks).then(|| {
        let options = dynabill::webhooks::WorkerOptions {
            allow_private: true,
            ..dynabill::webhooks::WorkerOptions::default()
        };
        dynabill::webhooks::spawn(app.clone(), options).expect("starting the webhook worker")
    });
    let server = RunningServer::start(app.clone(), "127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("starting the server");
    let mut test = TestApp {
        base: server.url(),
        database_url: url,
        store_url,
        schema,
        app,
        client: reqwest::Client::new(),
        cred: Cred {
            app_key: String::new(),
            user: String::new(),
            token: String::new(),
        },
        secret_key,
        server: Some(server),
        scheduler,
        webhooks,
        _sqlite_dir: dir,
    };
    test.cred = test.new_tenant("first").await;
    Some(test)
}

/// The schema's URL as `route` reaches it.
async fn routed_url(
    route: &PostgresRoute,
    schema: &dynabill_store_contract::PostgresSchema,
) -> String {
    let mut url = reqwest::Url::parse(schema.url()).expect("a PostgreSQL URL");
    match route {
        PostgresRoute::Through(proxy) => {
            url.set_ip_host(proxy.ip()).expect("an IP host");
            url.set_port(Some(proxy.port())).expect("a port");
        }
        PostgresRoute::AsRole(role) => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(schema.url())
                .await
                .expect("connecting to PostgreSQL");
            let sql = format!("ALTER SCHEMA {} OWNER TO {role}", schema.name());
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("handing the schema to the role");
            url.set_username(role).expect("a user name");
        }
    }
    url.to_string()
}

impl TestApp {
    /// The `dynabill` command, with this server's secret key (as a second
    /// process on the same database needs it).
    pub fn dynabill_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dynabill"));
        command.env("DYNABILL_SECRET_KEY", self.secret_key.replace('\n', ","));
        command
    }

    pub fn endpoint(&self) -> String {
        format!("{}/api/dynamicapi", self.base)
    }

    pub async fn new_tenant(&self, name: &str) -> Cred {
        let issued = self
            .app
            .create_tenant(name, "USD", "UTC", "api")
            .await
            .expect("creating a tenant");
        Cred {
            app_key: issued.app_key,
            user: issued.user_name,
            token: issued.access_token,
        }
    }

    fn authed(&self, builder: reqwest::RequestBuilder, cred: &Cred) -> reqwest::RequestBuilder {
        builder
            .header("AppKey", &cred.app_key)
            .header("UserName", &cred.user)
            .header("AccessToken", &cred.token)
    }

    /// A GET with `query` (already encoded) as the first tenant.
    pub async fn get(&self, query: &str) -> (StatusCode, Value) {
        self.get_as(&self.cred, query).await
    }

    pub async fn get_as(&self, cred: &Cred, query: &str) -> (StatusCode, Value) {
        let request = self.authed(
            self.client.get(format!("{}?{query}", self.endpoint())),
            cred,
        );
        read(request.send().await.expect("GET")).await
    }

    /// A JSON POST as the first tenant.
    pub async fn post(&self, body: Value) -> (StatusCode, Value) {
        self.post_as(&self.cred, body).await
    }

    pub async fn post_as(&self, cred: &Cred, body: Value) -> (StatusCode, Value) {
        let request = self
            .authed(self.client.post(self.endpoint()), cred)
            .json(&body);
        read(request.send().await.expect("POST")).await
    }

    /// A POST with an `Idempotency-Key`.
    pub async fn post_idempotent(
        &self,
        cred: &Cred,
        key: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let request = self
            .authed(self.client.post(self.endpoint()), cred)
            .header("Idempotency-Key", key)
            .json(&body);
        read(request.send().await.expect("POST")).await
    }

    /// Any request built by the caller, authenticated as the first tenant.
    pub async fn send(
        &self,
        build: impl FnOnce(&reqwest::Client, String) -> reqwest::RequestBuilder,
    ) -> (StatusCode, Value) {
        let request = self.authed(build(&self.client, self.endpoint()), &self.cred);
        read(request.send().await.expect("request")).await
    }

    /// A REST call (`path` under the server, e.g. `/v1/accounts?limit=2`) as the
    /// first tenant: the status, the headers and the body (`null` when empty).
    pub async fn rest(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.rest_as(&self.cred, method, path, body, &[]).await
    }

    /// A REST call as `cred`, with extra headers.
    pub async fn rest_as(
        &self,
        cred: &Cred,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.authed(
            self.client.request(method, format!("{}{path}", self.base)),
            cred,
        );
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("a REST call");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("JSON from {path}: {e}: {bytes:?}"))
        };
        (status, headers, body)
    }

    /// Creates an account with the required fields plus `extra`; returns its ID.
    pub async fn create_account(&self, ext_id: &str, extra: Value) -> String {
        self.create_account_as(&self.cred, ext_id, extra).await
    }

    pub async fn create_account_as(&self, cred: &Cred, ext_id: &str, extra: Value) -> String {
        let mut body = json!({
            "api_code": 10, "entity_code": 69, "ExtID": ext_id, "AccountName": format!("Account {ext_id}"),
            "AccountType": 1, "AccountStatus": 1, "Email": "billing@example.com",
        });
        merge(&mut body, extra);
        let (_, reply) = self.post_as(cred, body).await;
        assert_ok(&reply);
        reply["ID"].as_str().expect("an ID").to_owned()
    }

    pub async fn create_plan(&self, ext_id: &str, account_ext_id: &str, extra: Value) -> String {
        let mut body = json!({"api_code": 10, "entity_code": 71, "ExtID": ext_id, "AccountExtID": account_ext_id});
        merge(&mut body, extra);
        let (_, reply) = self.post(body).await;
        assert_ok(&reply);
        reply["ID"].as_str().expect("an ID").to_owned()
    }

    /// The one record a get by `query` returns.
    pub async fn get_one(&self, query: &str) -> Value {
        let (_, reply) = self.get(query).await;
        assert_ok(&reply);
        assert_eq!(
            reply["DATA"].as_array().map(Vec::len),
            Some(1),
            "one record for {query}: {reply}"
        );
        reply["DATA"][0].clone()
    }

    pub async fn stop(mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.stop().await;
        }
        if let Some(webhooks) = self.webhooks.take() {
            webhooks.stop().await;
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("stopping the server");
        }
        self.app.store().close().await;
        if let Some(schema) = self.schema.take() {
            schema.drop_schema().await;
        }
    }

    /// Runs one SQL statement on the test database, under the API. Only for what
    /// no request can do yet (standing in for a bill run that has billed an item).
    pub async fn execute_sql(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if self.database_url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.database_url)
                .await
                .expect("opening SQLite");
            sqlx::query(sql).execute(&pool).await.expect("running SQL");
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(&self.database_url)
                .await
                .expect("connecting to PostgreSQL");
            sqlx::query(sql).execute(&pool).await.expect("running SQL");
            pool.close().await;
        }
    }

    /// Holds the database's writes back (SQLite's write lock; on PostgreSQL a lock
    /// that blocks inserts into `accounts`) until the hold is released: a request
    /// that writes waits meanwhile.
    pub async fn hold_writes(&self) -> WriteHold {
        use sqlx::Connection;
        if self.database_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .expect("opening SQLite");
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .expect("taking the write lock");
            WriteHold::Sqlite(conn)
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.database_url)
                .await
                .expect("connecting to PostgreSQL");
            sqlx::raw_sql("BEGIN; LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .expect("locking accounts");
            WriteHold::Postgres(conn)
        }
    }

    /// The samples `GET /metrics` shows: `name{labels}` → value as written.
    pub async fn scrape_metrics(&self) -> std::collections::BTreeMap<String, String> {
        let response = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = response.text().await.expect("the metrics");
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (key, value) = line.rsplit_once(' ').expect("a sample");
                (key.to_owned(), value.to_owned())
            })
            .collect()
    }

    /// The number a query of one BIGINT (a count) answers, read under the API.
    pub async fn query_count(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if self.database_url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.database_url)
                .await
                .expect("opening SQLite");
            let n = sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("running SQL");
            pool.close().await;
            n
        } else {
            let pool = sqlx::PgPool::connect(&self.database_url)
                .await
                .expect("connecting to PostgreSQL");
            let n = sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("running SQL");
            pool.close().await;
            n
        }
    }

    /// Marks a recurring item as billed through `date`, as a bill run would.
    pub async fn mark_recurring_billed(&self, ext_id: &str, through: &str) {
        let cast = if self.database_url.starts_with("sqlite:") {
            ""
        } else {
            "::date"
        };
        self.execute_sql(&format!(
            "UPDATE recurring_items SET charged_through = '{through}'{cast} WHERE ext_id = '{ext_id}'"
        ))
        .await;
    }

    /// Marks a one-time item as invoiced, as a bill run would.
    pub async fn mark_one_time_invoiced(&self, ext_id: &str) {
        let truth = if self.database_url.starts_with("sqlite:") {
            "1"
        } else {
            "TRUE"
        };
        self.execute_sql(&format!(
            "UPDATE one_time_items SET invoiced = {truth} WHERE ext_id = '{ext_id}'"
        ))
        .await;
    }
}

/// Writes held back by [`TestApp::hold_writes`].
pub enum WriteHold {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteHold {
    /// Lets the writes waiting on the hold go on.
    pub async fn release(self) {
        match self {
            WriteHold::Sqlite(mut conn) => {
                sqlx::raw_sql("COMMIT")
                    .execute(&mut conn)
                    .await
                    .expect("COMMIT");
            }
            WriteHold::Postgres(mut conn) => {
                sqlx::raw_sql("COMMIT")
                    .execute(&mut conn)
                    .await
                    .expect("COMMIT");
            }
        }
    }
}

/// A whole-number sample of a scrape (a count); 0 when absent.
pub fn count(samples: &std::collections::BTreeMap<String, String>, key: &str) -> i64 {
    samples
        .get(key)
        .map_or(0, |v| v.parse().unwrap_or_else(|_| panic!("{key} = {v}")))
}

pub fn merge(body: &mut Value, extra: Value) {
    if let (Some(target), Value::Object(extra)) = (body.as_object_mut(), extra) {
        target.extend(extra);
    }
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("reading the body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {text}"));
    (status, value)
}

/// Asserts a successful envelope.
#[track_caller]
pub fn assert_ok(reply: &Value) {
    assert_eq!(reply["API_STATUS"], json!(1), "API_STATUS in {reply}");
    assert_eq!(reply["METHOD_STATUS"], json!(1), "METHOD_STATUS in {reply}");
    assert!(reply["METHOD_ERROR"].is_null(), "{reply}");
}

/// Asserts a method-level failure with `code` whose description mentions `mentions`.
#[track_caller]
pub fn assert_method_error(status: StatusCode, reply: &Value, code: &str, mentions: &str) {
    assert_eq!(
        status,
        StatusCode::OK,
        "method errors answer HTTP 200: {reply}"
    );
    assert_eq!(reply["API_STATUS"], json!(1), "{reply}");
    assert_eq!(reply["METHOD_STATUS"], json!(0), "{reply}");
    assert_eq!(reply["METHOD_ERROR"], json!(code), "{reply}");
    assert!(reply["API_ERROR"].is_null(), "{reply}");
    assert!(reply["ID"].is_null() && reply["ExtID"].is_null(), "{reply}");
    let description = reply["METHOD_ERROR_DESCRIPTION"].as_str().unwrap_or("");
    assert!(
        description.contains(mentions),
        "description {description:?} should mention {mentions:?}"
    );
}

/// Asserts an API-level failure.
#[track_caller]
pub fn assert_api_error(status: StatusCode, reply: &Value, http: u16) {
    assert_eq!(status.as_u16(), http, "{reply}");
    assert_eq!(reply["API_STATUS"], json!(0), "{reply}");
    assert_eq!(reply["METHOD_STATUS"], json!(0), "{reply}");
    assert_eq!(reply["API_ERROR"], json!(http.to_string()), "{reply}");
    assert!(reply["METHOD_ERROR"].is_null(), "{reply}");
    assert!(
        reply["METHOD_ERROR_DESCRIPTION"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{reply}"
    );
}

/// Runs each named test against SQLite and against PostgreSQL.
/// Like [`on_both_backends`], with servers started by `$spawn`.
#[macro_export]
macro_rules! on_both_backends_with {
    ($spawn:path: $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = $spawn($crate::helpers::Backend::Sqlite).await {
                    super::$name(&app).await;
                    app.stop().await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $spawn($crate::helpers::Backend::Postgres).await {
                    super::$name(&app).await;
                    app.stop().await;
                }
            }
        }
    )*};
}

#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = $crate::helpers::spawn($crate::helpers::Backend::Sqlite).await {
                    super::$name(&app).await;
                    app.stop().await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::spawn($crate::helpers::Backend::Postgres).await {
                    super::$name(&app).await;
                    app.stop().await;
                }
            }
        }
    )*};
}
