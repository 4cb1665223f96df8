//! The `dynabill` command itself: subcommands, their output, and `serve`'s life cycle.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_dynabill");

fn dynabill(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("DYNABILL_DATABASE_URL")
        .env_remove("DYNABILL_LISTEN")
        .output()
        .expect("running dynabill")
}

/// Parses stdout as exactly one JSON object with the three credential fields.
fn credential(stdout: &[u8]) -> Value {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stdout must be exactly one JSON object: {text:?}"
    );
    let value: Value = serde_json::from_str(lines[0]).unwrap();
    let object = value.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["AccessToken", "AppKey", "UserName"]);
    value
}

#[test]
fn tenant_create_prints_one_json_credential_and_add_user_another() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let out = dynabill(
        &[
            "tenant",
            "create",
            "--name",
            "Acme",
            "--currency",
            "EUR",
            "--timezone",
            "Europe/Berlin",
            "--database-url",
            &url,
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tenant = credential(&out.stdout);
    assert_eq!(tenant["UserName"], "api");

    let app_key = tenant["AppKey"].as_str().unwrap();
    let out = dynabill(
        &[
            "tenant",
            "add-user",
            "--app-key",
            app_key,
            "--user",
            "erp",
            "--database-url",
            &url,
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user = credential(&out.stdout);
    assert_eq!(user["AppKey"], tenant["AppKey"]);
    assert_eq!(user["UserName"], "erp");
    assert_ne!(user["AccessToken"], tenant["AccessToken"]);

    let again = dynabill(
        &[
            "tenant",
            "add-user",
            "--app-key",
            app_key,
            "--user",
            "erp",
            "--database-url",
            &url,
        ],
        dir.path(),
    );
    assert!(
        !again.status.success(),
        "a user name is unique within its tenant"
    );
    let bad = dynabill(
        &[
            "tenant",
            "create",
            "--name",
            "X",
            "--timezone",
            "Mars/Olympus",
            "--database-url",
            &url,
        ],
        dir.path(),
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Mars/Olympus"));
}

#[test]
fn help_documents_every_flag_and_its_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dynabill(&["serve", "--help"], dir.path());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--database-url",
        "DYNABILL_DATABASE_URL",
        "--listen",
        "DYNABILL_LISTEN",
    ] {
        assert!(
            help.contains(needle),
            "serve --help should mention {needle}:\n{help}"
        );
    }
    let out = dynabill(&["tenant", "create", "--help"], dir.path());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--name",
        "--currency",
        "--timezone",
        "DYNABILL_DATABASE_URL",
    ] {
        assert!(
            help.contains(needle),
            "tenant create --help should mention {needle}:\n{help}"
        );
    }
}

#[test]
fn migrate_creates_the_default_sqlite_database_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dynabill(&["migrate"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("dynabill.db").exists());
    assert!(out.stdout.is_empty(), "logs go to stderr");
}

/// `serve` on an empty database: prints the first tenant's credentials once, logs
/// its address, answers requests, and exits 0 on SIGTERM.
/// A `dynabill serve` process listening on a free port, in `dir`.
struct Served {
    child: std::process::Child,
    address: String,
    stdout: BufReader<std::process::ChildStdout>,
    /// Its log lines, as they come (the ones before "listening on" are in `early`).
    log: std::sync::mpsc::Receiver<String>,
    early: Vec<String>,
}

impl Served {
    /// Starts `dynabill serve --listen 127.0.0.1:0 ARGS…` and waits for its
    /// "listening on" log line.
    fn start(dir: &std::path::Path, args: &[&str]) -> Served {
        Served::start_with(dir, args, &[])
    }

    fn start_with(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .env_remove("DYNABILL_DATABASE_URL")
            .env("DYNABILL_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut early = Vec::new();
        let address = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("a 'listening on' log line");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap()
                    .to_owned();
            }
            early.push(line);
        };
        Served {
            child,
            address,
            stdout,
            log: rx,
            early,
        }
    }

    /// The credential a first start prints.
    fn first_credential(&mut self) -> Value {
        let mut first = String::new();
        self.stdout.read_line(&mut first).unwrap();
        credential(first.as_bytes())
    }

    /// Stops the server with SIGTERM; its exit status and what else it printed.
    fn stop(self) -> std::process::Output {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let mut rest = self.stdout;
        let mut output = self.child.wait_with_output().unwrap();
        std::io::Read::read_to_end(&mut rest, &mut output.stdout).unwrap();
        output
    }
}

#[test]
fn serve_bootstraps_a_tenant_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(dir.path(), &[]);
    let cred = served.first_credential();
    let address = served.address.clone();

    dynabill::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let health = reqwest::get(format!("http://{address}/healthz"))
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let reply: Value = reqwest::Client::new()
            .get(format!(
                "http://{address}/api/dynamicapi?api_code=3&entity_code=69"
            ))
            .header("AppKey", cred["AppKey"].as_str().unwrap())
            .header("UserName", cred["UserName"].as_str().unwrap())
            .header("AccessToken", cred["AccessToken"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(reply["METHOD_STATUS"], 1, "{reply}");
    });

    let status = served.stop().status;
    assert!(status.success(), "serve exits 0 on SIGTERM, got {status}");
    assert!(
        dir.path().join("dynabill.db").exists(),
        "the default database is dynabill.db in the working directory"
    );

    // A second start on the same database creates no second tenant.
    let out = Command::new(BIN)
        .args(["tenant", "create", "--name", "probe"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let output = Served::start(dir.path(), &[]).stop();
    assert!(
        output.stdout.is_empty(),
        "credentials are printed only once, on the first start"
    );
}

#[test]
fn tenant_set_changes_settings_and_show_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let out = dynabill(
        &["tenant", "create", "--name", "Acme", "--database-url", &url],
        dir.path(),
    );
    let key = credential(&out.stdout)["AppKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let show = |args: &[&str]| -> Value {
        let out = dynabill(args, dir.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let defaults = show(&["tenant", "show", "--app-key", &key, "--database-url", &url]);
    assert_eq!(defaults["AutoPost"], 1);
    assert_eq!(defaults["InvoicePrefix"], "INV-");
    assert_eq!(defaults["BillRunHour"], 2);
    assert_eq!(defaults["ProrationPolicy"], 1);
    assert_eq!(defaults["Rounding"], "half-up");
    let changed = show(&[
        "tenant",
        "set",
        "--app-key",
        &key,
        "--auto-post",
        "0",
        "--invoice-prefix",
        "ACME-",
        "--bill-run-hour",
        "5",
        "--proration-policy",
        "2",
        "--rounding",
        "half-even",
        "--timezone",
        "Europe/Paris",
        "--database-url",
        &url,
    ]);
    assert_eq!(changed["AutoPost"], 0);
    assert_eq!(changed["InvoicePrefix"], "ACME-");
    assert_eq!(changed["BillRunHour"], 5);
    assert_eq!(changed["ProrationPolicy"], 2);
    assert_eq!(changed["Rounding"], "half-even");
    assert_eq!(changed["TimeZone"], "Europe/Paris");
    assert_eq!(
        show(&["tenant", "show", "--app-key", &key, "--database-url", &url]),
        changed
    );
    for bad in [
        ["--bill-run-hour", "24"],
        ["--timezone", "Nowhere/City"],
        ["--rounding", "down"],
    ] {
        let out = dynabill(
            &[
                "tenant",
                "set",
                "--app-key",
                &key,
                bad[0],
                bad[1],
                "--database-url",
                &url,
            ],
            dir.path(),
        );
        assert!(!out.status.success(), "{bad:?} should be refused");
    }
    let out = dynabill(
        &["bill-run", "--date", "2024-01-01", "--database-url", &url],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["Tenants"], 1);
    assert_eq!(summary["Invoices"], 0);
}

#[test]
fn tax_rates_are_added_listed_and_removed_and_the_avatax_key_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let out = dynabill(
        &["tenant", "create", "--name", "Acme", "--database-url", &url],
        dir.path(),
    );
    let key = credential(&out.stdout)["AppKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.extend(["--database-url", &url]);
        let out = dynabill(&all, dir.path());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let added = run(&[
        "tax-rate",
        "add",
        "--app-key",
        &key,
        "--name",
        "STATE SALES TAX",
        "--country",
        "us",
        "--state",
        "ca",
        "--rate",
        "7.25",
    ]);
    assert_eq!(
        (
            added["Country"].clone(),
            added["State"].clone(),
            added["Rate"].clone()
        ),
        (json!("US"), json!("CA"), json!("7.25"))
    );
    run(&[
        "tax-rate",
        "add",
        "--app-key",
        &key,
        "--name",
        "CITY TAX",
        "--country",
        "US",
        "--tax-code",
        "00123",
        "--rate",
        "1.5",
    ]);
    let listed = run(&["tax-rate", "list", "--app-key", &key]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[1]["TaxCode"], json!("00123"));
    let id = added["ID"].to_string();
    run(&["tax-rate", "remove", "--app-key", &key, "--id", &id]);
    assert_eq!(
        run(&["tax-rate", "list", "--app-key", &key])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let again = dynabill(
        &[
            "tax-rate",
            "remove",
            "--app-key",
            &key,
            "--id",
            &id,
            "--database-url",
            &url,
        ],
        dir.path(),
    );
    assert!(!again.status.success(), "removing twice fails");
    for bad in [["--country", "USA"], ["--rate", "101"]] {
        let mut args = vec![
            "tax-rate",
            "add",
            "--app-key",
            &key,
            "--name",
            "X",
            "--country",
            "US",
            "--rate",
            "1",
            "--database-url",
            &url,
        ];
        args.extend(bad);
        assert!(
            !dynabill(&args, dir.path()).status.success(),
            "{bad:?} should be refused"
        );
    }
    // Mode 3 needs every AvaTax setting; the key is stored but never printed.
    let incomplete = dynabill(
        &[
            "tenant",
            "set",
            "--app-key",
            &key,
            "--tax-mode",
            "3",
            "--database-url",
            &url,
        ],
        dir.path(),
    );
    assert!(!incomplete.status.success());
    let shown = run(&[
        "tenant",
        "set",
        "--app-key",
        &key,
        "--tax-mode",
        "3",
        "--avatax-url",
        "https://sandbox-rest.avatax.com",
        "--avatax-account-id",
        "1100",
        "--avatax-license-key",
        "SUPER-SECRET",
        "--avatax-company-code",
        "ACME",
    ]);
    assert_eq!(shown["TaxMode"], json!(3));
    assert_eq!(shown["AvaTaxLicenseKey"], json!("***"));
    assert!(!shown.to_string().contains("SUPER-SECRET"));
}

#[test]
fn webhook_endpoints_are_added_listed_rotated_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let out = dynabill(
        &["tenant", "create", "--name", "Acme", "--database-url", &url],
        dir.path(),
    );
    let key = credential(&out.stdout)["AppKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = |args: &[&str]| -> std::process::Output {
        let mut all = args.to_vec();
        all.extend(["--app-key", &key, "--database-url", &url]);
        dynabill(&all, dir.path())
    };
    let json = |out: std::process::Output| -> Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let added = json(run(&[
        "webhook",
        "add",
        "--url",
        "https://crm.example.com/hooks",
        "--event-types",
        "invoice.*,plan.renewed",
    ]));
    assert_eq!(added["EventTypes"], json!(["invoice.*", "plan.renewed"]));
    let secret = added["Secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    // A private address is refused, unless allowed.
    let refused = run(&["webhook", "add", "--url", "http://127.0.0.1:9000/h"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("private"));
    json(run(&[
        "webhook",
        "add",
        "--url",
        "http://127.0.0.1:9000/h",
        "--allow-private",
    ]));
    let listed = json(run(&["webhook", "list"]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(listed[0].get("Secret").is_none(), "{listed}");
    let id = added["ID"].to_string();
    let rotated = json(run(&["webhook", "rotate-secret", "--id", &id]));
    assert_ne!(rotated["Secret"].as_str().unwrap(), secret);
    json(run(&["webhook", "remove", "--id", &id]));
    assert_eq!(json(run(&["webhook", "list"])).as_array().unwrap().len(), 1);
    assert!(!run(&["webhook", "remove", "--id", &id]).status.success());
}

/// Seeds, through the use cases, an account with a plan from 2026-01-01 and two
/// monthly items of one product: 3 × 40.00 at 25% off (90) and 1 × 10.00 (10).
fn seed_two_items(url: &str, app_key: &str) {
    use dynabill_app::model::{AccountPatch, PlanPatch, RecordKey, RecurringItemPatch};
    use dynabill_core::calendar::BillingPeriod;
    use dynabill_core::domain::{AccountStatus, AccountType};
    use rust_decimal::Decimal;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = dynabill::storage::open(url).await.unwrap();
        let app = dynabill_app::App::new(store, std::sync::Arc::new(dynabill_app::SystemClock));
        let tenant = app.tenant_by_app_key(app_key).await.unwrap();
        app.upsert_account(
            &tenant,
            None,
            AccountPatch {
                ext_id: Some("A1".into()),
                name: Some("Acme, Inc.".into()),
                account_type: Some(AccountType::Business),
                status: Some(AccountStatus::Active),
                email: Some("billing@acme.example".parse().unwrap()),
                ..AccountPatch::default()
            },
        )
        .await
        .unwrap();
        app.upsert_plan(
            &tenant,
            None,
            PlanPatch {
                ext_id: Some("P1".into()),
                account: Some(RecordKey::ExtId("A1".into())),
                start_date: Some(jiff::civil::date(2026, 1, 1)),
                ..PlanPatch::default()
            },
        )
        .await
        .unwrap();
        for (ext_id, quantity, price, discount) in [("I1", 3, 40, 25), ("I2", 1, 10, 0)] {
            app.upsert_recurring_item(
                &tenant,
                None,
                RecurringItemPatch {
                    ext_id: Some(ext_id.into()),
                    plan: Some(RecordKey::ExtId("P1".into())),
                    product_code: Some("SEAT".into()),
                    name: Some(ext_id.into()),
                    quantity: Some(Decimal::from(quantity)),
                    unit_price: Some(Decimal::from(price)),
                    discount_percent: Some(Decimal::from(discount)),
                    billing_period: Some(BillingPeriod::Monthly),
                    ..RecurringItemPatch::default()
                },
            )
            .await
            .unwrap();
        }
        app.store().close().await;
    });
}

#[test]
fn insights_print_the_rest_figures_as_json_csv_or_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let out = dynabill(
        &["tenant", "create", "--name", "Acme", "--database-url", &url],
        dir.path(),
    );
    let key = credential(&out.stdout)["AppKey"]
        .as_str()
        .unwrap()
        .to_owned();
    seed_two_items(&url, &key);
    let run = |args: &[&str]| -> String {
        let mut all = vec!["insights"];
        all.extend(args);
        all.extend(["--app-key", &key, "--database-url", &url]);
        let out = dynabill(&all, dir.path());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    // 90 + 10 = 100 a month, 1,200 a year.
    let json: Value = serde_json::from_str(&run(&["mrr", "--date", "2026-02-10"])).unwrap();
    assert_eq!(
        json,
        json!({"date": "2026-02-10", "currencies": [{"currency": "USD", "mrr": "100.00",
            "mrr_exact": "100", "arr": "1200.00", "active_accounts": 1, "active_items": 2,
            "committed_churn": "0.00"}]})
    );
    assert_eq!(
        run(&["mrr", "--date", "2026-02-10", "--format", "csv"]),
        "currency,mrr,arr,active_accounts,active_items,committed_churn\n\
         USD,100.00,1200.00,1,2,0.00\n"
    );
    let table = run(&["mrr", "--date", "2026-02-10", "--format", "table"]);
    assert!(
        table.contains("currency") && table.contains("1200.00"),
        "{table}"
    );
    // Before the plan starts there is no MRR.
    let before: Value = serde_json::from_str(&run(&["mrr", "--date", "2025-12-31"])).unwrap();
    assert_eq!(before["currencies"], json!([]));

    // January: new 100; February: nothing moved.
    let csv = run(&[
        "movements",
        "--from",
        "2026-01",
        "--to",
        "2026-02",
        "--format",
        "csv",
    ]);
    assert_eq!(
        csv,
        "month,currency,start,new,reactivation,expansion,contraction,churn,end\n\
         2026-01,USD,0.00,100.00,0.00,0.00,0.00,0.00,100.00\n\
         2026-02,USD,100.00,0.00,0.00,0.00,0.00,0.00,100.00\n"
    );
    // One product: a signal. The account's name has a comma: CSV quotes it.
    let upsell = run(&["upsell", "--format", "csv"]);
    assert!(
        upsell.contains("A1,\"Acme, Inc.\",10,single_product\n"),
        "{upsell}"
    );

    let bad = dynabill(
        &[
            "insights",
            "movements",
            "--from",
            "2026-13",
            "--app-key",
            &key,
            "--database-url",
            &url,
        ],
        dir.path(),
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not a month YYYY-MM"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn backup_copies_the_database_while_serve_writes_and_the_copy_serves_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(dir.path(), &[]);
    let cred = served.first_credential();
    let base = format!("http://{}", served.address);
    dynabill::install_crypto_provider();
    let client = reqwest::Client::new();
    let create = |ext_id: String| {
        let request = client
            .post(format!("{base}/v1/accounts"))
            .header("AppKey", cred["AppKey"].as_str().unwrap())
            .header("UserName", cred["UserName"].as_str().unwrap())
            .header("AccessToken", cred["AccessToken"].as_str().unwrap())
            .json(
                &json!({"ext_id": ext_id, "account_name": "Backed up", "account_type": 1,
                "account_status": 1, "email": "b@example.com"}),
            );
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201);
        }
    };
    let ext_ids = |accounts: &Value| -> Vec<String> {
        accounts["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["ext_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (backup, written) = runtime.block_on(async {
        for n in 0..20 {
            create(format!("BEFORE-{n}")).await;
        }
        // Writes go on while the backup is taken.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writing = {
            let stop = stop.clone();
            async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    create(format!("DURING-{n}")).await;
                    n += 1;
                }
                n
            }
        };
        let dir = dir.path().to_owned();
        let backing_up =
            tokio::task::spawn_blocking(move || dynabill(&["backup", "--to", "copy.db"], &dir));
        let (written, backup) = tokio::join!(writing, async {
            let out = backing_up.await.unwrap();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            out
        });
        (backup, written)
    });
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let summary: Value = serde_json::from_slice(&backup.stdout).unwrap();
    assert_eq!(summary["To"], "copy.db");
    assert!(summary["Bytes"].as_u64().unwrap() > 0, "{summary}");
    assert!(served.stop().status.success());

    // The copy is a whole database: SQLite finds it sound, and a server on it
    // answers with the accounts it held when copied, the first twenty at least.
    let copy = dir.path().join("copy.db");
    let (integrity, copied) = runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", copy.display()))
            .await
            .unwrap();
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .unwrap();
        let copied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        (integrity, copied)
    });
    assert_eq!(integrity, "ok");
    assert!(
        (20..=20 + written).contains(&copied),
        "{copied} accounts copied of {} written",
        20 + written
    );
    let restored = Served::start(dir.path(), &["--database-url", "sqlite://copy.db"]);
    let base = format!("http://{}", restored.address);
    let listed: Value = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/v1/accounts?limit=1000"))
            .header("AppKey", cred["AppKey"].as_str().unwrap())
            .header("UserName", cred["UserName"].as_str().unwrap())
            .header("AccessToken", cred["AccessToken"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let restored_ids = ext_ids(&listed);
    assert_eq!(restored_ids.len() as i64, copied);
    assert!(restored_ids.contains(&"BEFORE-19".to_owned()), "{listed}");
    assert!(restored.stop().status.success());

    // Never over a file, and never of PostgreSQL.
    let again = dynabill(&["backup", "--to", "copy.db"], dir.path());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let postgres = dynabill(
        &[
            "backup",
            "--to",
            "pg.db",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
        ],
        dir.path(),
    );
    assert!(!postgres.status.success());
    assert!(String::from_utf8_lossy(&postgres.stderr).contains("pg_dump"));
    assert!(!dir.path().join("pg.db").exists());
}

/// Secrets at rest through the commands: the key file made on first use (mode
/// 0600), an AvaTax license key sealed in the database file, a start refused
/// without the key or with another one, a rotation, and a license key stored in
/// plain text by an earlier version sealed at the next start.
#[test]
fn secrets_are_sealed_with_the_key_file_refused_without_it_and_rotated() {
    const LICENSE: &str = "LICENSE-7f3a9c1e";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let url = format!("sqlite://{}", db.display());
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .args(["--database-url", &url])
            .current_dir(dir.path())
            .env_remove("DYNABILL_SECRET_KEY");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let created = run(&["tenant", "create", "--name", "Sealed"], &[]);
    assert!(created.status.success());
    let app_key = credential(&created.stdout)["AppKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_file = dir.path().join("dynabill.key");
    assert!(key_file.exists(), "the first use makes the key file");
    // From the first use on, another key is refused, even with no secret stored.
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let refused = run(
        &["tenant", "show", "--app-key", &app_key],
        &[("DYNABILL_SECRET_KEY", other)],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("wrong key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads the key file");
    }
    let set = run(
        &[
            "tenant",
            "set",
            "--app-key",
            &app_key,
            "--avatax-url",
            "https://sandbox-rest.avatax.com",
            "--avatax-account-id",
            "1100",
            "--avatax-license-key",
            LICENSE,
            "--avatax-company-code",
            "ACME",
        ],
        &[],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let show = |env: &[(&str, &str)]| run(&["tenant", "show", "--app-key", &app_key], env);
    let shown = show(&[]);
    assert!(shown.status.success());
    assert!(!String::from_utf8_lossy(&shown.stdout).contains(LICENSE));
    let stored = || {
        let mut bytes = std::fs::read(&db).unwrap();
        if let Ok(wal) = std::fs::read(dir.path().join("s.db-wal")) {
            bytes.extend(wal);
        }
        bytes
    };
    let contains = |haystack: &[u8], needle: &str| {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    assert!(!contains(&stored(), LICENSE), "never stored in plain text");
    assert!(contains(&stored(), "sealed:v1:"));

    // Without the key, or with another key, nothing starts.
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    std::fs::rename(&key_file, dir.path().join("aside.key")).unwrap();
    let refused = show(&[]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("no key was given"), "{message}");
    assert!(!key_file.exists(), "no new key over sealed secrets");
    let refused = show(&[("DYNABILL_SECRET_KEY", other)]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("wrong key"));
    let by_env = show(&[("DYNABILL_SECRET_KEY", key_text.trim())]);
    assert!(
        by_env.status.success(),
        "the key in the environment opens them"
    );
    std::fs::rename(dir.path().join("aside.key"), &key_file).unwrap();

    // A rotation: a new key in the file, the old one no longer opens them.
    let rotated = run(&["secrets", "rotate"], &[]);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let summary: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    assert_eq!(
        summary["Resealed"], 2,
        "the license key and the key check: {summary}"
    );
    let new_text = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_text, key_text);
    assert_eq!(new_text.lines().count(), 1, "the old key is dropped");
    assert!(show(&[]).status.success());
    assert!(
        !show(&[("DYNABILL_SECRET_KEY", key_text.trim())])
            .status
            .success()
    );
    assert!(!contains(&stored(), LICENSE));

    // A license key an earlier version stored in plain text is sealed at the next start.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("UPDATE tenants SET avatax_license_key = ?1")
            .bind(LICENSE)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    assert!(show(&[]).status.success());
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let stored: String = sqlx::query_scalar("SELECT avatax_license_key FROM tenants")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        assert!(stored.starts_with("sealed:v1:"), "{stored}");
    });
}

/// `--metrics-listen` moves `/metrics` off the main listener, and
/// `DYNABILL_LOG_FORMAT=json` writes the access log as JSON lines carrying the
/// request's span: its request ID, tenant, operation, status and latency.
#[test]
fn metrics_move_to_their_own_listener_and_the_access_log_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start_with(
        dir.path(),
        &["--metrics-listen", "127.0.0.1:0"],
        &[("DYNABILL_LOG_FORMAT", "json")],
    );
    let cred = served.first_credential();
    let metrics_at = served
        .early
        .iter()
        .find_map(|line| {
            let line: Value = serde_json::from_str(line).ok()?;
            let message = line["fields"]["message"].as_str()?;
            let rest = message.strip_prefix("metrics on http://")?;
            Some(rest.trim_end_matches("/metrics").to_owned())
        })
        .expect("a 'metrics on' log line");
    dynabill::install_crypto_provider();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let request_id = runtime.block_on(async {
        let client = reqwest::Client::new();
        let main = client
            .get(format!("http://{}/metrics", served.address))
            .send()
            .await
            .unwrap();
        assert_eq!(main.status(), 404, "not on the main listener");
        let answered = client
            .get(format!(
                "http://{}/api/dynamicapi?api_code=3&entity_code=69",
                served.address
            ))
            .header("AppKey", cred["AppKey"].as_str().unwrap())
            .header("UserName", cred["UserName"].as_str().unwrap())
            .header("AccessToken", cred["AccessToken"].as_str().unwrap())
            .header("X-Request-Id", "trace-me-1")
            .send()
            .await
            .unwrap();
        assert_eq!(answered.status(), 200);
        let metrics = client
            .get(format!("http://{metrics_at}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(metrics.status(), 200);
        let text = metrics.text().await.unwrap();
        assert!(
            text.contains(
                "dynabill_http_requests_total{door=\"dynamic\",operation=\"3/69\",status=\"200\"} 1"
            ),
            "{text}"
        );
        "trace-me-1"
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let access = loop {
        let line = served
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("an access log line");
        let Ok(line) = serde_json::from_str::<Value>(&line) else {
            panic!("a log line that is not JSON: {line}");
        };
        if line["target"] == "dynabill::access" && line["span"]["request_id"] == request_id {
            break line;
        }
    };
    assert_eq!(access["level"], "INFO", "{access}");
    assert_eq!(access["fields"]["status"], 200, "{access}");
    assert_eq!(access["fields"]["operation"], "3/69", "{access}");
    assert_eq!(access["fields"]["door"], "dynamic", "{access}");
    assert!(access["fields"]["tenant"].is_number(), "{access}");
    assert!(access["fields"]["latency_us"].is_number(), "{access}");
    assert!(served.stop().status.success());
}
