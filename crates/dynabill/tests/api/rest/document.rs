//! The OpenAPI document and the reference docs.

use crate::helpers::{Backend, spawn};

/// The committed copy of the document; `DYNABILL_BLESS=1` rewrites it.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let Some(app) = spawn(Backend::Sqlite).await else {
        return;
    };
    let served = app
        .client
        .get(format!("{}/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let served = served.text().await.unwrap();
    app.stop().await;
    if std::env::var_os("DYNABILL_BLESS").is_some() {
        std::fs::write(COMMITTED, format!("{served}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed.trim_end() == served,
        "docs/openapi.json differs from the served document; after checking the change, \
         run `DYNABILL_BLESS=1 cargo nextest run -E 'test(the_served_document_is_the_committed_one)'`"
    );
    let document: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    every_operation_is_described(&document);
}

fn every_operation_is_described(document: &serde_json::Value) {
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/dynamicapi"));
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{at} has no summary"
            );
            let responses = operation["responses"].as_object().unwrap();
            if path.starts_with("/v1/") {
                for status in ["401", "429", "500"] {
                    assert!(responses.contains_key(status), "{at} lacks {status}");
                }
            }
        }
    }
    for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        for (field, property) in properties {
            let described =
                |p: &serde_json::Value| p["description"].as_str().is_some_and(|s| !s.is_empty());
            let nullable_described = property["oneOf"]
                .as_array()
                .is_some_and(|options| options.iter().any(described));
            assert!(
                described(property) || nullable_described || property.get("items").is_some(),
                "{name}.{field} has no description"
            );
            assert!(
                property.get("example").is_some(),
                "{name}.{field} has no example"
            );
        }
    }
}

#[tokio::test]
async fn the_docs_page_is_served_by_the_binary() {
    let Some(app) = spawn(Backend::Sqlite).await else {
        return;
    };
    let page = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads nothing from elsewhere: {html}"
    );
    let script = app
        .client
        .get(format!("{}/docs/swagger-ui-bundle.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    let init = app
        .client
        .get(format!("{}/docs/swagger-initializer.js", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/v1/openapi.json"), "{init}");
    app.stop().await;
}

/// Chromium, as Debian installs it (`apt-get install chromium`), when it is on the PATH.
fn chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

#[tokio::test]
async fn the_docs_page_renders_the_operations_with_no_network() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("DYNABILL_TEST_REQUIRE_CHROMIUM").is_none(),
            "DYNABILL_TEST_REQUIRE_CHROMIUM is set but chromium is not on the PATH"
        );
        eprintln!("skipped: chromium not installed (apt-get install chromium)");
        return;
    };
    let Some(app) = spawn(Backend::Sqlite).await else {
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let browse = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // No name but the server's resolves, and anything that would go out
            // goes to a proxy that is not there: the page must make do with what
            // the binary serves.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=127.0.0.1",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{}/docs/", app.base))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(90), browse)
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium runs");
    app.stop().await;
    let dom = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chromium failed ({}): {log}",
        output.status
    );
    assert!(
        dom.contains("opblock") && dom.contains("List accounts"),
        "the page did not render the operations list\n--- DOM:\n{dom}\n--- chromium:\n{log}"
    );
}
