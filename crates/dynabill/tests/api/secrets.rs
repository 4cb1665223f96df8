//! Secrets at rest: what the API is given as a secret (an AvaTax license key, a
//! webhook signing secret) is stored sealed, never as its plain text, on both
//! backends, and still works (the settings read back, a rotation signs).

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(secrets_given_to_the_api_are_never_stored_in_plain_text);

async fn secrets_given_to_the_api_are_never_stored_in_plain_text(app: &TestApp) {
    const LICENSE: &str = "LICENSE-c0ffee-5ea1ed";
    let (status, _, settings) = app
        .rest(
            "PATCH",
            "/v1/settings",
            Some(json!({
                "avatax_url": "https://sandbox-rest.avatax.com",
                "avatax_account_id": "1100",
                "avatax_license_key": LICENSE,
                "avatax_company_code": "ACME",
            })),
        )
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["avatax_license_key_set"], true);
    assert!(!settings.to_string().contains(LICENSE));

    let (status, _, created) = app
        .rest(
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": "https://hooks.example.com/billing"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (status, _, rotated) = app
        .rest(
            "POST",
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let secret = |v: &Value| v["secret"].as_str().unwrap().to_owned();
    let plain = [LICENSE.to_owned(), secret(&created), secret(&rotated)];
    // The secrets' random part too, without its `whsec_` prefix.
    let plain: Vec<String> = plain
        .iter()
        .flat_map(|p| [p.clone(), p.trim_start_matches("whsec_").to_owned()])
        .collect();

    let found_in_database = if app.database_url.starts_with("sqlite:") {
        let path = app.database_url.trim_start_matches("sqlite://");
        let path = path.split('?').next().unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
            bytes.extend(wal);
        }
        plain
            .iter()
            .filter(|p| bytes.windows(p.len()).any(|w| w == p.as_bytes()))
            .cloned()
            .collect::<Vec<_>>()
    } else {
        let mut found = Vec::new();
        for p in &plain {
            let rows = app
                .query_count(&format!(
                    "SELECT COUNT(*) FROM (SELECT t::text AS r FROM tenants t \
                     UNION ALL SELECT w::text FROM webhook_endpoints w \
                     UNION ALL SELECT e::text FROM events e) x WHERE strpos(r, '{p}') > 0"
                ))
                .await;
            if rows > 0 {
                found.push(p.clone());
            }
        }
        found
    };
    assert!(
        found_in_database.is_empty(),
        "stored in plain text: {found_in_database:?}"
    );
    assert_eq!(
        app.query_count(
            "SELECT COUNT(*) FROM webhook_endpoints WHERE secret LIKE 'sealed:v1:%' \
             AND previous_secret LIKE 'sealed:v1:%'"
        )
        .await,
        1
    );
    assert_eq!(
        app.query_count("SELECT COUNT(*) FROM tenants WHERE avatax_license_key LIKE 'sealed:v1:%'")
            .await,
        1
    );
    // Sealed, they still open: the settings read back.
    let (status, _, read) = app.rest("GET", "/v1/settings", None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["avatax_license_key_set"], true);
}
