//! ARCHITECTURE.md stays true to the tree: its codemap names every crate of the
//! workspace and every storage trait a backend implements.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `## Codemap` section of ARCHITECTURE.md.
fn codemap() -> String {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md"))
        .expect("reading ARCHITECTURE.md at the repository's root");
    let start = text.find("## Codemap").expect("a Codemap section");
    let rest = &text[start + "## Codemap".len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The folder names of the crates under `crates/`.
fn crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("crates"))
        .expect("listing crates/")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The storage traits `dynabill-app` declares (`pub trait …Store`).
fn storage_traits() -> Vec<String> {
    let store = std::fs::read_to_string(root().join("crates/dynabill-app/src/store.rs"))
        .expect("reading dynabill-app's store.rs");
    store
        .split("pub trait ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| name.ends_with("Store"))
        .collect()
}

#[test]
fn the_codemap_names_every_crate_of_the_workspace() {
    let codemap = codemap();
    let crates = crates();
    assert!(crates.len() >= 9, "found only {crates:?}");
    let missing: Vec<&String> = crates
        .iter()
        .filter(|name| !codemap.contains(&format!("`crates/{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's codemap misses {missing:?}"
    );
}

#[test]
fn the_codemap_names_every_storage_trait() {
    let codemap = codemap();
    let traits = storage_traits();
    assert!(traits.len() >= 10, "found only {traits:?}");
    let missing: Vec<&String> = traits
        .iter()
        .filter(|name| !codemap.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's codemap misses {missing:?}"
    );
}
