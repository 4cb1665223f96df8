//! PostgreSQL going away: stopped (a proxy in front of it cut: existing
//! connections reset, new ones refused), or every connection slot the server may
//! use taken by other clients. The server answers 503 within a bounded time,
//! never answers a write it did not commit, and recovers by itself once the
//! database is back; a bill run cut by an outage exits non-zero and a rerun bills
//! the rest, once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{PostgresRoute, TestApp, assert_ok, spawn_postgres_routed};

/// The longest an answer may take while the database is away: the 3 s a request
/// waits for a connection, and slack for a loaded machine.
const BOUNDED: Duration = Duration::from_secs(8);

/// A TCP proxy in front of PostgreSQL that a test can cut and restore.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    /// Milliseconds each chunk waits before it is passed on.
    delay_ms: Arc<AtomicU64>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start() -> Proxy {
        let server = std::env::var("DYNABILL_TEST_POSTGRES_URL").expect("PostgreSQL");
        let url = reqwest::Url::parse(&server).unwrap();
        let host = url.host_str().unwrap().to_owned();
        let upstream = tokio::net::lookup_host((host.as_str(), url.port().unwrap_or(5432)))
            .await
            .unwrap()
            .next()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            upstream,
            delay_ms: Arc::default(),
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, delay, tasks) = (self.upstream, self.delay_ms.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let delay = delay.clone();
                let pipe = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pass(client_read, server_write, delay.clone()),
                        pass(server_read, client_write, delay)
                    );
                });
                tasks.lock().unwrap().push(pipe);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// The database "stops": open connections are reset, new ones refused.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// The database is back, at the same address.
    async fn restore(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay_ms: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

fn postgres_configured() -> bool {
    let set = std::env::var("DYNABILL_TEST_POSTGRES_URL").is_ok_and(|u| !u.trim().is_empty());
    assert!(
        set || std::env::var("DYNABILL_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "PostgreSQL is required"
    );
    set
}

fn account(ext_id: &str) -> Value {
    json!({"api_code": 10, "entity_code": 69, "ExtID": ext_id, "AccountName": ext_id,
        "AccountType": 1, "AccountStatus": 1, "Email": "o@example.com"})
}

/// Asserts the envelope of an API error 503, answered within [`BOUNDED`].
#[track_caller]
fn assert_unavailable(status: StatusCode, reply: &Value, took: Duration) {
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["API_STATUS"], 0, "{reply}");
    assert_eq!(reply["API_ERROR"], "503", "{reply}");
    assert!(took < BOUNDED, "answered after {took:?}");
}

/// Sends `request` until it is answered 200, for at most 20 s.
async fn until_served<F: Future<Output = (StatusCode, Value)>>(request: impl Fn() -> F) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, reply) = request().await;
        if status == 200 {
            return reply;
        }
        assert!(Instant::now() < deadline, "not recovered: {status} {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What every outage test checks while the database is away and once it is back.
async fn answers_503_then_recovers(
    app: &TestApp,
    away: impl AsyncFnOnce(),
    back: impl AsyncFnOnce(),
) {
    app.post(account("BEFORE")).await;
    away().await;
    // More requests than the pool had connections: the later ones wait for a new
    // connection that cannot be made.
    for _ in 0..5 {
        let started = Instant::now();
        let (status, reply) = app.get("api_code=3&entity_code=69").await;
        assert_unavailable(status, &reply, started.elapsed());
    }
    let started = Instant::now();
    let (status, reply) = app.post(account("DURING")).await;
    assert_unavailable(status, &reply, started.elapsed());
    let started = Instant::now();
    let (status, headers, problem) = app.rest("GET", "/v1/accounts", None).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(headers["retry-after"], "3", "when to try again");
    assert_eq!(problem["code"], "unavailable", "{problem}");
    assert!(started.elapsed() < BOUNDED);

    back().await;
    let page = until_served(|| app.get("api_code=3&entity_code=69")).await;
    let ext_ids: Vec<&str> = page["DATA"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ExtID"].as_str().unwrap())
        .collect();
    assert_eq!(ext_ids, ["BEFORE"], "the write answered 503 did not happen");
    let (_, reply) = app.post(account("AFTER")).await;
    assert_ok(&reply);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_is_answered_503_and_the_server_recovers_without_a_restart() {
    if !postgres_configured() {
        return;
    }
    let proxy = Proxy::start().await;
    let app = spawn_postgres_routed(PostgresRoute::Through(proxy.addr))
        .await
        .unwrap();
    answers_503_then_recovers(&app, async || proxy.cut(), async || proxy.restore().await).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_slot_taken_is_answered_503_and_the_server_recovers() {
    if !postgres_configured() {
        return;
    }
    let role = format!("dynabill_slots_{:08x}", getrandom::u32().unwrap());
    let admin = std::env::var("DYNABILL_TEST_POSTGRES_URL").unwrap();
    let sql = |statement: String| {
        let admin = admin.clone();
        async move {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    };
    sql(format!("CREATE ROLE {role} LOGIN")).await;
    let app = spawn_postgres_routed(PostgresRoute::AsRole(role.clone()))
        .await
        .unwrap();
    // Other clients of the same role take the two connections the role may have,
    // and the server's own connections go (as when the database restarts).
    let mut role_url = reqwest::Url::parse(&admin).unwrap();
    role_url.set_username(&role).unwrap();
    let held: Arc<Mutex<Vec<sqlx::PgConnection>>> = Arc::default();
    let hold = async || {
        let mut pids = Vec::new();
        for _ in 0..2 {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(role_url.as_str())
                .await
                .unwrap();
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            pids.push(pid.to_string());
            held.lock().unwrap().push(conn);
        }
        sql(format!("ALTER ROLE {role} CONNECTION LIMIT 2")).await;
        sql(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = '{role}' AND pid NOT IN ({})",
            pids.join(", ")
        ))
        .await;
    };
    let release = async || {
        sql(format!("ALTER ROLE {role} CONNECTION LIMIT -1")).await;
    };
    answers_503_then_recovers(&app, hold, release).await;
    app.stop().await;
    held.lock().unwrap().clear();
    sql(format!("DROP ROLE {role}")).await;
}

/// A bill run whose database goes away midway exits non-zero, saying what to
/// do; run again once the database is back, it bills the rest: every account
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bill_run_cut_by_an_outage_exits_non_zero_and_a_rerun_bills_the_rest_once() {
    if !postgres_configured() {
        return;
    }
    const ACCOUNTS: i64 = 120;
    let proxy = Proxy::start().await;
    let app = spawn_postgres_routed(PostgresRoute::Through(proxy.addr))
        .await
        .unwrap();
    for n in 0..ACCOUNTS {
        let (account, plan, item) = (format!("B-{n}"), format!("B-{n}-P"), format!("B-{n}-I"));
        app.create_account(&account, json!({})).await;
        app.create_plan(&plan, &account, json!({"StartDate": "2024-01-01"}))
            .await;
        let (_, reply) = app
            .post(
                json!({"api_code": 10, "entity_code": 110, "ExtID": item, "PlanExtID": plan,
                "ProductCode": "SKU", "ItemName": "Seat", "Quantity": 1, "UnitPrice": "10.00",
                "BillingPeriod": 1}),
            )
            .await;
        assert_ok(&reply);
    }
    let bill_run = || {
        app.dynabill_command()
            .args([
                "bill-run",
                "--date",
                "2024-01-01",
                "--app-key",
                &app.cred.app_key,
            ])
            .args(["--database-url", &app.store_url])
            .args(["--batch-size", "5", "--lease-seconds", "2"])
            .env("DYNABILL_LOG", "off")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let invoices = || app.query_count("SELECT COUNT(*) FROM invoices");

    // A slow link, so that the run is cut midway.
    proxy.delay_ms.store(3, Ordering::Relaxed);
    let first = bill_run();
    let deadline = Instant::now() + Duration::from_secs(60);
    while invoices().await < 10 {
        assert!(Instant::now() < deadline, "the bill run billed nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.cut();
    let cut_at = Instant::now();
    let output = tokio::task::spawn_blocking(move || first.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        cut_at.elapsed() < Duration::from_secs(30),
        "the cut run stops promptly, not after {:?}",
        cut_at.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the cut run fails: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(stderr.contains("running it again"), "{stderr}");
    assert!(stderr.contains("unavailable"), "{stderr}");
    let billed_before = invoices().await;
    assert!(
        (10..ACCOUNTS).contains(&billed_before),
        "cut midway: {billed_before} of {ACCOUNTS}"
    );

    proxy.delay_ms.store(0, Ordering::Relaxed);
    proxy.restore().await;
    let second = bill_run();
    let output = tokio::task::spawn_blocking(move || second.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["Invoices"], ACCOUNTS - billed_before, "{summary}");
    assert_eq!(invoices().await, ACCOUNTS);
    assert_eq!(
        app.query_count("SELECT COUNT(DISTINCT account_id) FROM invoices")
            .await,
        ACCOUNTS,
        "every account billed once"
    );
    app.stop().await;
}
