//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the
//! existing files, but on stable Rust it cannot ask to watch the directory.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
