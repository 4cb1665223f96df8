//! The server's secret key ring: where it comes from (`DYNABILL_SECRET_KEY`, else
//! the key file, created with mode 0600 on first start), the check every start
//! makes before serving (every stored secret opens with it, or the process
//! refuses to start), and `dynabill secrets rotate`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use dynabill_app::App;
use dynabill_app::secrets::Keyring;

/// The environment variable holding the key ring (keys in base64, separated by
/// commas; the first seals). When set, the key file is not read.
pub const KEY_ENV: &str = "DYNABILL_SECRET_KEY";

/// Where a key ring was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => f.write_str(KEY_ENV),
            KeySource::File(path) => write!(f, "the key file {}", path.display()),
        }
    }
}

/// The key ring of `DYNABILL_SECRET_KEY`, else of the key file if it exists.
fn read_ring(key_file: &Path) -> anyhow::Result<Option<(Keyring, KeySource)>> {
    if let Ok(text) = std::env::var(KEY_ENV) {
        let ring = Keyring::parse(&text).with_context(|| format!("reading {KEY_ENV}"))?;
        return Ok(Some((ring, KeySource::Env)));
    }
    match std::fs::read_to_string(key_file) {
        Ok(text) => {
            let ring = Keyring::parse(&text)
                .with_context(|| format!("reading the key file {}", key_file.display()))?;
            Ok(Some((ring, KeySource::File(key_file.to_owned()))))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading the key file {}", key_file.display())),
    }
}

/// Gives `app` its key ring, after checking that every stored secret opens with
/// it; with no key and nothing sealed yet, creates the key file. Refuses (an
/// error that stops the process) when secrets are stored sealed and the key is
/// missing or is not theirs: never plain text instead.
pub async fn unlock(app: App, key_file: &Path) -> anyhow::Result<App> {
    let stored = app.stored_secrets().await?;
    let (ring, source) = match read_ring(key_file)? {
        Some(found) => found,
        None if !stored.sealed_with().is_empty() => bail!(
            "the database's secrets are sealed with key {}, but no key was given: set \
             {KEY_ENV} or put the key file at {}; the server does not start without it",
            stored
                .sealed_with()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", "),
            key_file.display()
        ),
        None => {
            let ring = Keyring::generate()?;
            write_key_file(key_file, &ring, true)?;
            tracing::info!(
                path = %key_file.display(),
                key = ring.sealing_key_id(),
                "created the secret key file (mode 0600): keep it safe and with your backups; \
                 the stored secrets cannot be read without it"
            );
            (ring, KeySource::File(key_file.to_owned()))
        }
    };
    let held = ring.key_ids();
    let missing: Vec<&str> = stored
        .sealed_with()
        .into_iter()
        .filter(|id| !held.contains(id))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the database's secrets were sealed with key {}, which {source} (key {}) does not \
             hold: the wrong key? The server does not start with it",
            missing.join(", "),
            held.join(", ")
        );
    }
    let app = app.with_keyring(ring);
    let sealed = app
        .check_and_seal_secrets(stored)
        .await
        .context("opening the stored secrets")?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "sealed the secrets an earlier version stored in plain text"
        );
    }
    Ok(app)
}

/// What `dynabill secrets rotate` did.
#[derive(Debug)]
pub struct Rotation {
    pub source: KeySource,
    pub key: String,
    pub resealed: u64,
}

/// Seals every stored secret with a new key. With the key file: a new key is
/// written first beside the old one (the file then opens everything, whatever
/// happens next), the secrets are sealed again with it in one transaction, and
/// the old key is dropped from the file. With `DYNABILL_SECRET_KEY`, whose
/// value this process cannot change: the secrets are sealed again with the
/// ring's first key (put the new key first, run this, then drop the old one).
pub async fn rotate(app: App, key_file: &Path) -> anyhow::Result<Rotation> {
    let (current, source) = read_ring(key_file)?.with_context(|| {
        format!(
            "no key to rotate: neither {KEY_ENV} nor the key file {} exists",
            key_file.display()
        )
    })?;
    let app = unlock(app, key_file).await?;
    match source {
        KeySource::Env => {
            let resealed = app.reseal_secrets().await?;
            Ok(Rotation {
                key: current.sealing_key_id().to_owned(),
                source,
                resealed,
            })
        }
        KeySource::File(_) => {
            let new = Keyring::generate()?;
            let both = current.led_by(&new);
            write_key_file(key_file, &both, false)?;
            let resealed = app.with_keyring(both).reseal_secrets().await?;
            write_key_file(key_file, &new, false)?;
            Ok(Rotation {
                key: new.sealing_key_id().to_owned(),
                source,
                resealed,
            })
        }
    }
}

/// Writes a key file with mode 0600: a new one (never over an existing file),
/// or in place of the old one, atomically (a temporary file renamed).
fn write_key_file(path: &Path, ring: &Keyring, new: bool) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let target = if new {
        path.to_owned()
    } else {
        PathBuf::from(temporary)
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    if !new {
        let _ = std::fs::remove_file(&target);
    }
    let mut file = options
        .open(&target)
        .with_context(|| format!("creating the key file {}", target.display()))?;
    file.write_all(ring.to_text().as_bytes())?;
    file.sync_all()?;
    if !new {
        std::fs::rename(&target, path)
            .with_context(|| format!("replacing the key file {}", path.display()))?;
    }
    Ok(())
}
