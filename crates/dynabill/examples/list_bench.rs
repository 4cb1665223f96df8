//! List benchmark: seeds N accounts, starts the real server and measures
//! list-accounts pages of 100 through `/api/dynamicapi` with concurrent clients.
//!
//! ```sh
//! cargo run --release --example list_bench -- --accounts 10000 [--database-url URL]
//!     [--clients 32] [--seconds 10] [--scenarios first,walk,create]
//! ```
//!
//! Accounts are seeded by a bulk path: one `INSERT … SELECT` per 100,000 rows
//! straight into `accounts` (the database's own triggers and indexes run as for any
//! insert; the use cases do not), so that a million accounts take seconds, not an
//! hour. PostgreSQL is not analyzed afterwards (`--analyze` does): lists must not
//! depend on statistics. The seed is then checkpointed (PostgreSQL `CHECKPOINT`,
//! SQLite `wal_checkpoint`), so that its writing is not measured.
//!
//! Scenarios, each a 2 s warm-up and a measured run of `--seconds`:
//! - `first`: every request is the first page (`PageSize=100`, no cursor);
//! - `walk`: each client starts at a random position of the book (a plain cursor,
//!   the form servers issued before cursors carried the count) and follows
//!   `NEXT_CURSOR`, page after page;
//! - `create`: every request creates an account (10/69) with a new `ExtID`.
//!
//! Prints one JSON line per scenario: requests/s, p50 and p99 in milliseconds.
//! The clients run in this process, on the same two cores as the server; they read
//! only the answer's status and cursor (the records are skipped, not built).

#![expect(clippy::float_arithmetic, reason = "timings and rates, never amounts")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dynabill::server::RunningServer;
use dynabill_app::{App, SystemClock};
use serde::Deserialize;
use serde_json::Value;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Rows per seeding statement.
const SEED_CHUNK: i64 = 100_000;

/// Inserts accounts `B<from+1>` … `B<to>` of `tenant` in one statement.
fn seed_statement(postgres: bool, tenant: i64, from: i64, to: i64, now: i64) -> String {
    let columns = "tenant_id, ext_id, name, account_type, status, email, due_date_method, \
                   due_date_days, invoice_grouping, currency, tax_exempt, credit_balance, \
                   created_at, updated_at";
    let values = format!(
        "{tenant}, 'B' || n, 'Account ' || n, 1, 1, 'billing@example.com', 1, 30, 1, 'USD', \
         false, 0, {now}, {now}"
    );
    if postgres {
        format!(
            "INSERT INTO accounts ({columns}) SELECT {values} \
             FROM generate_series({}, {to}) AS g (n)",
            from + 1
        )
    } else {
        format!(
            "INSERT INTO accounts ({columns}) WITH RECURSIVE g (n) AS \
             (SELECT {} UNION ALL SELECT n + 1 FROM g WHERE n < {to}) SELECT {values} FROM g",
            from + 1
        )
    }
}

async fn seed(url: &str, tenant: i64, accounts: i64) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now().as_microsecond();
    let postgres = url.starts_with("postgres");
    let mut from = 0;
    while from < accounts {
        let to = (from + SEED_CHUNK).min(accounts);
        let sql = seed_statement(postgres, tenant, from, to, now);
        if postgres {
            let pool = sqlx::PgPool::connect(url).await?;
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await?;
            pool.close().await;
        } else {
            let pool = sqlx::SqlitePool::connect(url).await?;
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await?;
            pool.close().await;
        }
        from = to;
    }
    // The seeded pages written out now, not by a checkpoint during the measurement.
    if postgres {
        let pool = sqlx::PgPool::connect(url).await?;
        if std::env::args().any(|a| a == "--analyze") {
            sqlx::query("ANALYZE accounts").execute(&pool).await?;
        }
        sqlx::query("CHECKPOINT").execute(&pool).await?;
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(url).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await?;
        pool.close().await;
    }
    Ok(())
}

/// The tenant's row ID (the bench seeds under the API).
async fn tenant_id(url: &str, app_key: &str) -> anyhow::Result<i64> {
    let sql = "SELECT id FROM tenants WHERE app_key = $1";
    let id: (i64,) = if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await?;
        let id = sqlx::query_as(sql).bind(app_key).fetch_one(&pool).await?;
        pool.close().await;
        id
    } else {
        let pool = sqlx::SqlitePool::connect(url).await?;
        let id = sqlx::query_as(sql).bind(app_key).fetch_one(&pool).await?;
        pool.close().await;
        id
    };
    Ok(id.0)
}

/// The lowest account ID of the tenant (IDs of the seeded accounts are consecutive).
async fn first_account(client: &Client) -> anyhow::Result<i64> {
    let reply = client
        .get_all("api_code=3&entity_code=69&PageSize=1")
        .await?;
    let id = reply["DATA"][0]["ID"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no account listed: {reply}"))?;
    Ok(id.parse()?)
}

/// The fields of an answer the clients read; the rest (the page's records) is
/// skipped, not built, so that the clients spend little of the cores they share
/// with the server.
#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Answer {
    method_status: i64,
    next_cursor: Option<String>,
    #[serde(default)]
    total_count: Option<i64>,
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    endpoint: String,
    app_key: String,
    user: String,
    token: String,
}

impl Client {
    fn authed(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        builder
            .header("AppKey", &self.app_key)
            .header("UserName", &self.user)
            .header("AccessToken", &self.token)
    }

    async fn read(&self, builder: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let bytes = self.authed(builder).send().await?.bytes().await?;
        let answer: Answer = serde_json::from_slice(&bytes)?;
        if answer.method_status != 1 {
            anyhow::bail!("a failed answer: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(answer)
    }

    async fn get(&self, query: &str) -> anyhow::Result<Answer> {
        self.read(self.http.get(format!("{}?{query}", self.endpoint)))
            .await
    }

    /// The whole answer, for the few reads of the setup.
    async fn get_all(&self, query: &str) -> anyhow::Result<Value> {
        let url = format!("{}?{query}", self.endpoint);
        Ok(self.authed(self.http.get(url)).send().await?.json().await?)
    }

    async fn post(&self, body: &Value) -> anyhow::Result<Answer> {
        self.read(self.http.post(&self.endpoint).json(body)).await
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    First,
    Walk,
    Create,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::First => "first",
            Scenario::Walk => "walk",
            Scenario::Create => "create",
        }
    }
}

/// The plain cursor servers issued before cursors carried the count: still accepted.
fn plain_cursor(after: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("k1.{after}"))
}

/// A small deterministic generator for the clients' starting positions.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

struct Setup {
    client: Client,
    accounts: i64,
    first_id: i64,
    clients: usize,
}

/// What a run measured: the latency of each answered request, and how many failed.
#[derive(Default)]
struct Measured {
    latencies: Vec<Duration>,
    failed: u64,
    first_error: Option<String>,
}

/// Runs `scenario` with every client for `duration`.
async fn run(
    setup: &Setup,
    scenario: Scenario,
    duration: Duration,
    tag: &str,
) -> anyhow::Result<Measured> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..setup.clients {
        let client = setup.client.clone();
        let stop = stop.clone();
        let (accounts, first_id) = (setup.accounts, setup.first_id);
        let tag = format!("{tag}-{worker}");
        tasks.spawn(async move {
            let mut measured = Measured::default();
            let mut random = 0x9E37_79B9_7F4A_7C15_u64 ^ (worker as u64 + 1);
            let mut cursor: Option<String> = None;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answered = match scenario {
                    Scenario::First => client
                        .get("api_code=3&entity_code=69&PageSize=100")
                        .await
                        .map(drop),
                    Scenario::Walk => {
                        let at = cursor.take().unwrap_or_else(|| {
                            let offset = next_random(&mut random) % accounts.max(1) as u64;
                            plain_cursor(first_id + offset as i64)
                        });
                        let reply = client
                            .get(&format!(
                                "api_code=3&entity_code=69&PageSize=100&Cursor={at}"
                            ))
                            .await;
                        reply.map(|reply| cursor = reply.next_cursor)
                    }
                    Scenario::Create => {
                        n += 1;
                        client
                            .post(&serde_json::json!({
                                "api_code": 10, "entity_code": 69,
                                "ExtID": format!("C{tag}-{n}"), "AccountName": "Bench",
                                "AccountType": 1, "AccountStatus": 1,
                                "Email": "billing@example.com",
                            }))
                            .await
                            .map(drop)
                    }
                };
                match answered {
                    Ok(()) => measured.latencies.push(started.elapsed()),
                    Err(e) => {
                        measured.failed += 1;
                        measured.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            anyhow::Ok(measured)
        });
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Measured::default();
    while let Some(done) = tasks.join_next().await {
        let one = done??;
        all.latencies.extend(one.latencies);
        all.failed += one.failed;
        if all.first_error.is_none() {
            all.first_error = one.first_error;
        }
    }
    Ok(all)
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dynabill::install_crypto_provider();
    let accounts: i64 = arg("--accounts").map_or(Ok(10_000), |a| a.parse())?;
    let clients: usize = arg("--clients").map_or(Ok(32), |a| a.parse())?;
    let seconds: u64 = arg("--seconds").map_or(Ok(10), |a| a.parse())?;
    let scenarios: Vec<Scenario> = arg("--scenarios")
        .unwrap_or_else(|| "first,walk,create".into())
        .split(',')
        .map(|s| match s {
            "first" => Ok(Scenario::First),
            "walk" => Ok(Scenario::Walk),
            "create" => Ok(Scenario::Create),
            other => Err(anyhow::anyhow!("unknown scenario {other:?}")),
        })
        .collect::<Result<_, _>>()?;
    let dir = tempfile::tempdir()?;
    let url = arg("--database-url")
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let backend = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };

    let store = dynabill::storage::open(&url).await?;
    let app = App::new(store, Arc::new(SystemClock));
    let issued = app.create_tenant("bench", "USD", "UTC", "api").await?;
    let seeding = Instant::now();
    seed(&url, tenant_id(&url, &issued.app_key).await?, accounts).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();

    let server = RunningServer::start(
        app.clone(),
        "127.0.0.1:0".parse()?,
        dynabill_http::HttpOptions::default(),
    )
    .await?;
    let client = Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()?,
        endpoint: format!("{}/api/dynamicapi", server.url()),
        app_key: issued.app_key.clone(),
        user: issued.user_name.clone(),
        token: issued.access_token.clone(),
    };
    let total = client
        .get("api_code=3&entity_code=69&PageSize=100")
        .await?
        .total_count;
    if total != Some(accounts) {
        anyhow::bail!("seeded {accounts} accounts but the list counts {total:?}");
    }
    let setup = Setup {
        first_id: first_account(&client).await?,
        client,
        accounts,
        clients,
    };
    eprintln!("{backend}: {accounts} accounts seeded in {seed_seconds:.1} s; {clients} clients");
    for scenario in scenarios {
        let name = scenario.name();
        run(
            &setup,
            scenario,
            Duration::from_secs(2),
            &format!("w{name}"),
        )
        .await?;
        let measured = Duration::from_secs(seconds);
        let run = run(&setup, scenario, measured, &format!("m{name}")).await?;
        if let Some(error) = &run.first_error {
            eprintln!("{name}: {} failed requests, the first: {error}", run.failed);
        }
        let mut latencies = run.latencies;
        latencies.sort();
        let at = |q: f64| {
            let n = latencies.len().saturating_sub(1) as f64;
            latencies.get((n * q) as usize).copied().unwrap_or_default()
        };
        let report = serde_json::json!({
            "backend": backend,
            "accounts": accounts,
            "scenario": name,
            "clients": clients,
            "requests": latencies.len(),
            "failed": run.failed,
            "requests_per_second": (latencies.len() as f64 / measured.as_secs_f64()).round(),
            "p50_ms": millis(at(0.50)),
            "p99_ms": millis(at(0.99)),
            "seed_seconds": (seed_seconds * 10.0).round() / 10.0,
        });
        println!("{report}");
    }
    server.shutdown().await?;
    app.store().close().await;
    Ok(())
}
