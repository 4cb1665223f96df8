//! `/v1/insights`: MRR and ARR, movements, renewals, billing issues and upsell
//! candidates, on a book whose every figure is worked out by hand below.

use serde_json::{Value, json};

use super::assert_problem;
use crate::helpers::TestApp;
use crate::on_both_backends_with;

on_both_backends_with!(crate::helpers::spawn_with_test_clock_alone:
    a_hand_computed_book_gives_its_insights,
    insights_refuse_bad_parameters_and_stay_in_their_tenant,
    unused_credit_is_a_billing_issue,
);

async fn ok(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, _, reply) = app.rest(method, path, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {reply}");
    reply
}

async fn today(app: &TestApp, day: &str) {
    ok(app, "POST", "/v1/test-clock", Some(json!({"today": day}))).await;
}

/// An account with one plan and one recurring item; returns (account, plan, item) IDs.
async fn subscriber(
    app: &TestApp,
    ext_id: &str,
    account: Value,
    plan: Value,
    item: Value,
) -> (i64, i64, i64) {
    let mut body = json!({"ext_id": ext_id, "account_name": format!("Account {ext_id}"),
        "account_type": 1, "account_status": 1, "email": "billing@acme.example", "currency": "USD"});
    crate::helpers::merge(&mut body, account);
    let account = ok(app, "POST", "/v1/accounts", Some(body)).await["id"]
        .as_i64()
        .unwrap();
    let plan = add_plan(app, account, &format!("{ext_id}-P"), plan).await;
    let item = add_item(app, plan, &format!("{ext_id}-I"), item).await;
    (account, plan, item)
}

async fn add_plan(app: &TestApp, account: i64, ext_id: &str, extra: Value) -> i64 {
    let mut body = json!({"ext_id": ext_id});
    crate::helpers::merge(&mut body, extra);
    ok(
        app,
        "POST",
        &format!("/v1/accounts/{account}/plans"),
        Some(body),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

async fn add_item(app: &TestApp, plan: i64, ext_id: &str, extra: Value) -> i64 {
    let mut body = json!({"ext_id": ext_id, "product_code": "SEAT", "item_name": "Seats",
        "billing_period": 1});
    crate::helpers::merge(&mut body, extra);
    ok(
        app,
        "POST",
        &format!("/v1/plans/{plan}/recurring-items"),
        Some(body),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

/// Marks every Posted invoice of `account` paid.
async fn pay_all(app: &TestApp, account: i64) {
    let page = ok(
        app,
        "GET",
        &format!("/v1/invoices?account_id={account}&invoice_status=3"),
        None,
    )
    .await;
    let invoices = page["data"].as_array().unwrap();
    assert!(!invoices.is_empty(), "account {account} has nothing to pay");
    for invoice in invoices {
        let id = invoice["id"].as_i64().unwrap();
        ok(
            app,
            "POST",
            &format!("/v1/invoices/{id}/pay"),
            Some(json!({"paid_date": "2026-01-10"})),
        )
        .await;
    }
}

fn by_currency<'a>(list: &'a Value, currency: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == currency)
        .unwrap_or_else(|| panic!("no {currency} in {list}"))
}

fn movement(c: &Value, kind: &str) -> (String, u64) {
    (
        c[kind]["amount"].as_str().unwrap().to_owned(),
        c[kind]["accounts"].as_u64().unwrap(),
    )
}

/// The book (today moves from 2026-01-01 to 2026-03-15; USD unless said):
///
/// - A: 10 seats at 49.50 a month from 2025-12-01 (495); 12 seats from
///   2026-02-15 (594).
/// - B: 300 a quarter from 2026-01-01 (100 a month); cancelled from 2026-03-01,
///   its January invoice (300.00, due 2026-01-31) never paid.
/// - C (EUR): 1,200 a year at 25% off from 2026-02-10: 1200 × 0.75 ÷ 12 = 75.
/// - D: 100 a month from 2026-04-01 (dated ahead).
/// - E: Inactive, 999 a month: never counts.
/// - F: 50 a month at 30% off (35) since 2025-01-05, on a plan ending
///   2026-04-05 that does not renew.
/// - G: Billing issues (status 3), 2 × 5 a month (10) from 2026-01-01, down to
///   1 × 5 (5) from 2026-02-20.
/// - R: 20 a month from 2026-01-01 on a plan ending 2026-02-01; 30 a month from
///   2026-03-01 on a second plan.
///
/// Every invoice of the 2026-01-01 bill run is paid except B's.
async fn a_hand_computed_book_gives_its_insights(app: &TestApp) {
    today(app, "2026-01-01").await;
    let (a, _, a_item) = subscriber(
        app,
        "A",
        json!({}),
        json!({"start_date": "2025-12-01"}),
        json!({"quantity": "10", "unit_price": "49.50"}),
    )
    .await;
    let (b, _, b_item) = subscriber(
        app,
        "B",
        json!({}),
        json!({"start_date": "2026-01-01"}),
        json!({"product_code": "SUITE", "unit_price": "300", "quantity": "1", "billing_period": 2}),
    )
    .await;
    let (c, _, _) = subscriber(
        app,
        "C",
        json!({"currency": "EUR"}),
        json!({"start_date": "2026-02-10", "currency": "EUR"}),
        json!({"unit_price": "1200", "quantity": "1", "discount_percent": "25", "billing_period": 4}),
    )
    .await;
    let (d, _, _) = subscriber(
        app,
        "D",
        json!({}),
        json!({"start_date": "2026-04-01"}),
        json!({"unit_price": "100", "quantity": "1"}),
    )
    .await;
    subscriber(
        app,
        "E",
        json!({"account_status": 2}),
        json!({"start_date": "2026-01-01"}),
        json!({"unit_price": "999", "quantity": "1"}),
    )
    .await;
    let (f, f_plan, _) = subscriber(
        app,
        "F",
        json!({}),
        json!({"start_date": "2025-01-05", "end_date": "2026-04-05", "auto_renew": false}),
        json!({"unit_price": "50", "quantity": "1", "discount_percent": "30"}),
    )
    .await;
    let (g, _, g_item) = subscriber(
        app,
        "G",
        json!({"account_status": 3}),
        json!({"start_date": "2026-01-01"}),
        json!({"unit_price": "5", "quantity": "2"}),
    )
    .await;
    let (r, _, _) = subscriber(
        app,
        "R",
        json!({}),
        json!({"start_date": "2026-01-01", "end_date": "2026-02-01", "auto_renew": false}),
        json!({"unit_price": "20", "quantity": "1"}),
    )
    .await;
    let r_plan = add_plan(app, r, "R-P2", json!({"start_date": "2026-03-01"})).await;
    add_item(
        app,
        r_plan,
        "R-I2",
        json!({"unit_price": "30", "quantity": "1"}),
    )
    .await;

    let run = ok(
        app,
        "POST",
        "/v1/bill-runs",
        Some(json!({"date": "2026-01-01"})),
    )
    .await;
    assert_eq!(run["invoices"], 5, "A, B, F, G, R and nothing else: {run}");
    for paid in [a, f, g, r] {
        pay_all(app, paid).await;
    }

    today(app, "2026-02-01").await;
    ok(
        app,
        "POST",
        &format!("/v1/recurring-items/{a_item}/upsell"),
        Some(json!({"quantity": "12", "effective_date": "2026-02-15"})),
    )
    .await;
    ok(
        app,
        "POST",
        &format!("/v1/recurring-items/{g_item}/upsell"),
        Some(json!({"quantity": "1", "effective_date": "2026-02-20"})),
    )
    .await;
    ok(
        app,
        "POST",
        &format!("/v1/recurring-items/{b_item}/cancel"),
        Some(json!({"cancel_date": "2026-03-01", "credit_mode": 0})),
    )
    .await;
    today(app, "2026-03-15").await;

    // MRR today. USD: A 594 + F 35 + G 5 + R 30 = 664 (B cancelled, D not
    // started, E inactive); ARR 12 × 664 = 7968. F's 35 ends with its plan on
    // 2026-04-05: committed churn. EUR: C 75, ARR 900.
    let mrr = ok(app, "GET", "/v1/insights/mrr", None).await;
    assert_eq!(mrr["date"], "2026-03-15");
    assert_eq!(
        by_currency(&mrr["currencies"], "USD"),
        &json!({"currency": "USD", "mrr": "664.00", "mrr_exact": "664", "arr": "7968.00",
            "active_accounts": 4, "active_items": 4, "committed_churn": "35.00"})
    );
    assert_eq!(
        by_currency(&mrr["currencies"], "EUR"),
        &json!({"currency": "EUR", "mrr": "75.00", "mrr_exact": "75", "arr": "900.00",
            "active_accounts": 1, "active_items": 1, "committed_churn": "0.00"})
    );
    assert!(mrr.get("items").is_none(), "{mrr}");

    // On 2026-01-15: A 495 + B 100 + F 35 + G 10 + R 20 = 660.
    let earlier = ok(
        app,
        "GET",
        "/v1/insights/mrr?date=2026-01-15&currency=USD",
        None,
    )
    .await;
    assert_eq!(earlier["currencies"].as_array().unwrap().len(), 1);
    assert_eq!(earlier["currencies"][0]["mrr"], "660.00");
    assert_eq!(earlier["currencies"][0]["active_items"], 5);

    // One account, with the items that make it.
    let of_f = ok(
        app,
        "GET",
        &format!("/v1/insights/mrr?account_id={f}"),
        None,
    )
    .await;
    assert_eq!(of_f["currencies"][0]["mrr"], "35.00");
    let items = of_f["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{of_f}");
    assert_eq!(items[0]["ext_id"], "F-I");
    assert_eq!(items[0]["mrr"], "35.00");
    assert_eq!(items[0]["ends"], "2026-04-05");

    // Movements, January to April (today is 2026-03-15):
    // - January (2025-12-31 → 2026-01-31): start A 495 + F 35 = 530; new B 100 +
    //   G 10 + R 20 = 130 (3 accounts); end 660.
    // - February (→ 2026-02-28): expansion A 99; contraction G 5; churn R 20; end
    //   660 + 99 − 5 − 20 = 734. EUR: new C 75.
    // - March (→ today): churn B 100; reactivation R 30; end 734 − 100 + 30 = 664.
    // - April: nothing has happened yet: 664 → 664.
    // - Committed (today → 2026-04-30): new D 100, churn F 35: 664 → 729.
    let report = ok(
        app,
        "GET",
        "/v1/insights/mrr-movements?from=2026-01&to=2026-04&detail=1",
        None,
    )
    .await;
    assert_eq!(report["from"], "2026-01");
    assert_eq!(report["to"], "2026-04");
    let months = report["months"].as_array().unwrap();
    assert_eq!(months.len(), 4);
    let jan = by_currency(&months[0]["currencies"], "USD");
    assert_eq!(months[0]["start_day"], "2025-12-31");
    assert_eq!(months[0]["end_day"], "2026-01-31");
    assert_eq!(jan["start"], "530.00");
    assert_eq!(movement(jan, "new"), ("130.00".into(), 3));
    assert_eq!(jan["end"], "660.00");
    let feb = by_currency(&months[1]["currencies"], "USD");
    assert_eq!(movement(feb, "expansion"), ("99.00".into(), 1));
    assert_eq!(movement(feb, "contraction"), ("5.00".into(), 1));
    assert_eq!(movement(feb, "churn"), ("20.00".into(), 1));
    assert_eq!(movement(feb, "new"), ("0.00".into(), 0));
    assert_eq!(feb["end"], "734.00");
    let feb_eur = by_currency(&months[1]["currencies"], "EUR");
    assert_eq!(movement(feb_eur, "new"), ("75.00".into(), 1));
    assert_eq!(feb_eur["accounts"][0]["account_id"], c);
    let mar = by_currency(&months[2]["currencies"], "USD");
    assert_eq!(months[2]["end_day"], "2026-03-15");
    assert_eq!(movement(mar, "churn"), ("100.00".into(), 1));
    assert_eq!(movement(mar, "reactivation"), ("30.00".into(), 1));
    assert_eq!(mar["end"], "664.00");
    let mar_accounts: Vec<(i64, &str)> = mar["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["account_id"].as_i64().unwrap(),
                m["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(mar_accounts, [(b, "churn"), (r, "reactivation")]);
    let apr = by_currency(&months[3]["currencies"], "USD");
    assert_eq!(
        (apr["start"].clone(), apr["end"].clone()),
        (json!("664.00"), json!("664.00"))
    );
    let committed = by_currency(&report["committed"]["currencies"], "USD");
    assert_eq!(report["committed"]["start_day"], "2026-03-15");
    assert_eq!(report["committed"]["end_day"], "2026-04-30");
    assert_eq!(movement(committed, "new"), ("100.00".into(), 1));
    assert_eq!(committed["accounts"][0]["account_id"], d);
    assert_eq!(movement(committed, "churn"), ("35.00".into(), 1));
    assert_eq!(committed["end"], "729.00");
    // The invariant, on the exact figures of every month and currency.
    for month in months {
        for c in month["currencies"].as_array().unwrap() {
            let n = |k: &str| {
                c["exact"][k]
                    .as_str()
                    .unwrap()
                    .parse::<rust_decimal::Decimal>()
                    .unwrap()
            };
            assert_eq!(
                n("start") + n("new") + n("reactivation") + n("expansion")
                    - n("contraction")
                    - n("churn"),
                n("end"),
                "{c}"
            );
        }
    }
    // Without detail, no accounts.
    let plain = ok(
        app,
        "GET",
        "/v1/insights/mrr-movements?from=2026-02&to=2026-02",
        None,
    )
    .await;
    assert!(
        plain["months"][0]["currencies"][0]
            .get("accounts")
            .is_none()
    );
    assert_eq!(plain["committed"], Value::Null);

    // Renewals: F's plan ends 2026-04-05, 21 days from today: inside a 21-day
    // window, outside a 20-day one.
    let renewals = ok(app, "GET", "/v1/insights/renewals?within_days=21", None).await;
    assert_eq!(renewals["total"], 1, "{renewals}");
    assert_eq!(
        renewals["data"][0],
        json!({"account_id": f, "account_ext_id": "F", "account_name": "Account F",
            "plan_id": f_plan, "plan_ext_id": "F-P", "plan_name": null, "currency": "USD",
            "end_date": "2026-04-05", "days_left": 21, "auto_renew": false,
            "mrr": "35.00", "arr": "420.00", "account_unpaid": "0.00"})
    );
    let narrower = ok(app, "GET", "/v1/insights/renewals?within_days=20", None).await;
    assert_eq!(narrower["total"], 0, "{narrower}");

    // Billing issues: B's 300.00 has been overdue since 2026-01-31 (43 days:
    // the 31-60 bucket); G is in status 3.
    let issues = ok(app, "GET", "/v1/insights/billing-issues", None).await;
    assert_eq!(issues["total"], 2, "{issues}");
    assert_eq!(issues["data"][0]["account_id"], b);
    assert_eq!(
        issues["data"][0]["reasons"],
        json!([{"code": "overdue", "invoices": 1, "amounts": [{"currency": "USD", "amount": "300.00"}],
            "oldest_days_overdue": 43, "aging_bucket": "31-60"}])
    );
    assert_eq!(issues["data"][1]["account_id"], g);
    assert_eq!(
        issues["data"][1]["reasons"],
        json!([{"code": "status_billing_issues"}])
    );

    // Upsell candidates (B and G have billing issues; D and E have nothing in force):
    // F 30 (renewal in 21 days) + 20 (monthly for 14 months) + 15 (30% off,
    // ending 2026-04-05) + 10 (one product) = 75; A 25 (495 → 594 since
    // 2025-12-15) + 10 = 35; C and R 10 each (one product), C first by ID.
    let candidates = ok(app, "GET", "/v1/insights/upsell-candidates", None).await;
    assert_eq!(candidates["total"], 4, "{candidates}");
    let ranked: Vec<(i64, u64)> = candidates["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["account_id"].as_i64().unwrap(),
                c["score"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranked, [(f, 75), (a, 35), (c, 10), (r, 10)]);
    let f_signals: Vec<&str> = candidates["data"][0]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        f_signals,
        [
            "renewal_soon",
            "monthly_for_a_year",
            "discount_ending",
            "single_product"
        ]
    );
    assert_eq!(
        candidates["data"][1]["signals"][0]["evidence"],
        "MRR rose from 495.00 to 594.00 USD in the last 90 days"
    );
    let limited = ok(app, "GET", "/v1/insights/upsell-candidates?limit=1", None).await;
    assert_eq!(limited["total"], 4);
    assert_eq!(limited["data"].as_array().unwrap().len(), 1);
}

async fn insights_refuse_bad_parameters_and_stay_in_their_tenant(app: &TestApp) {
    today(app, "2026-03-15").await;
    let (account, _, _) = subscriber(
        app,
        "A",
        json!({}),
        json!({"start_date": "2026-01-01"}),
        json!({"quantity": "3", "unit_price": "10"}),
    )
    .await;
    for (query, field) in [
        ("/v1/insights/mrr-movements?from=2026-13", "from"),
        ("/v1/insights/mrr-movements?from=2026-04&to=2026-03", "from"),
        ("/v1/insights/mrr-movements?from=2000-01&to=2026-03", "from"),
        ("/v1/insights/renewals?within_days=5000", "within_days"),
        ("/v1/insights/billing-issues?limit=0", "limit"),
        ("/v1/insights/mrr?date=2026-02-30", "date"),
        ("/v1/insights/mrr?currency=XYZ", "currency"),
        ("/v1/insights/mrr?colour=red", "colour"),
    ] {
        let reply = app.rest("GET", query, None).await;
        assert_problem(&reply, 422, "invalid_field", Some(field));
    }
    // What .ci/fuzz-hooks.py recognises of the two refusals no schema can state.
    for (query, detail) in [
        ("from=2026-04&to=2026-03", "from must not be after to"),
        (
            "from=2000-01&to=2026-03",
            "from must be at most 120 months before to",
        ),
    ] {
        let (_, _, problem) = app
            .rest("GET", &format!("/v1/insights/mrr-movements?{query}"), None)
            .await;
        assert!(
            problem["detail"].as_str().unwrap().starts_with(detail),
            "{problem}"
        );
    }
    let reply = app
        .rest("GET", "/v1/insights/mrr?account_id=999999", None)
        .await;
    assert_problem(&reply, 404, "not_found", None);

    let mine = ok(app, "GET", "/v1/insights/mrr", None).await;
    assert_eq!(mine["currencies"][0]["mrr"], "30.00");
    let other = app.new_tenant("other").await;
    let (status, _, theirs) = app
        .rest_as(&other, "GET", "/v1/insights/mrr", None, &[])
        .await;
    assert_eq!(status, 200);
    assert_eq!(theirs["currencies"], json!([]), "{theirs}");
    let reply = app
        .rest_as(
            &other,
            "GET",
            &format!("/v1/insights/mrr?account_id={account}"),
            None,
            &[],
        )
        .await;
    assert_problem(&reply, 404, "not_found", None);
    for path in [
        "/v1/insights/renewals?within_days=3650",
        "/v1/insights/billing-issues",
        "/v1/insights/upsell-candidates",
    ] {
        let (status, _, list) = app.rest_as(&other, "GET", path, None, &[]).await;
        assert_eq!(status, 200);
        assert_eq!(list["total"], 0, "{path}: {list}");
    }
}

/// H pays 300.00 for a quarter from 2026-01-01, then cancels from 2026-02-01 with
/// credit: the unused 59 of the quarter's 90 days, 300 × 59 ÷ 90 = 196.67, become
/// its credit balance.
async fn unused_credit_is_a_billing_issue(app: &TestApp) {
    today(app, "2026-01-01").await;
    let (h, _, item) = subscriber(
        app,
        "H",
        json!({}),
        json!({"start_date": "2026-01-01"}),
        json!({"unit_price": "300", "quantity": "1", "billing_period": 2}),
    )
    .await;
    ok(
        app,
        "POST",
        "/v1/bill-runs",
        Some(json!({"date": "2026-01-01"})),
    )
    .await;
    pay_all(app, h).await;
    today(app, "2026-02-01").await;
    ok(
        app,
        "POST",
        &format!("/v1/recurring-items/{item}/cancel"),
        Some(json!({"cancel_date": "2026-02-01", "credit_mode": 1})),
    )
    .await;
    ok(
        app,
        "POST",
        "/v1/bill-runs",
        Some(json!({"date": "2026-02-01"})),
    )
    .await;
    let account = ok(app, "GET", &format!("/v1/accounts/{h}"), None).await;
    assert_eq!(account["credit_balance"], "196.67", "{account}");
    let issues = ok(app, "GET", "/v1/insights/billing-issues", None).await;
    assert_eq!(issues["total"], 1, "{issues}");
    assert_eq!(issues["data"][0]["account_id"], h);
    assert_eq!(
        issues["data"][0]["reasons"],
        json!([{"code": "credit_balance", "amounts": [{"currency": "USD", "amount": "196.67"}]}])
    );
    // Billing issues keep an account out of the upsell candidates.
    let candidates = ok(app, "GET", "/v1/insights/upsell-candidates", None).await;
    assert_eq!(candidates["total"], 0, "{candidates}");
}
