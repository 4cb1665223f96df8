//! `dynabill webhook add | list | remove | rotate-secret`: a tenant's webhook
//! endpoints, as `/v1/webhook-endpoints` manages them.

use clap::Subcommand;
use dynabill_app::model::{WebhookEndpoint, WebhookEndpointFields};

use super::{DatabaseArgs, with_app};

#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Add an endpoint: the tenant's events from now on are POSTed to URL, signed.
    /// Prints it with its signing secret, which is never shown again.
    Add {
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        /// Where to POST events (`https://...`).
        #[arg(long)]
        url: String,
        /// Event types or families to send, comma-separated (e.g. `invoice.*,plan.renewed`) [default: every event]
        #[arg(long, value_delimiter = ',')]
        event_types: Option<Vec<String>>,
        #[arg(long)]
        description: Option<String>,
        /// Allow a loopback or private address (as `serve --allow-private-webhooks`).
        #[arg(long)]
        allow_private: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print the tenant's endpoints as JSON (without their secrets).
    List {
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Remove an endpoint by its ID (its pending deliveries fail).
    Remove {
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Give an endpoint a new secret (printed once); the old one also signs for 24 h.
    RotateSecret {
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub(crate) async fn run(
    config_file: Option<&std::path::Path>,
    command: WebhookCommand,
) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Add {
            app_key,
            url,
            event_types,
            description,
            allow_private,
            database,
        } => {
            let fields = WebhookEndpointFields {
                url,
                description,
                event_types,
                enabled: true,
            };
            let created = with_app(config_file, database, async |app| {
                let app = if allow_private {
                    app.clone().with_private_webhooks()
                } else {
                    app.clone()
                };
                let tenant = app.tenant_by_app_key(&app_key).await?;
                Ok(app.create_webhook_endpoint(&tenant, &fields).await?)
            })
            .await?;
            println!(
                "{}",
                endpoint_json(&created.endpoint, Some(&created.secret))
            );
        }
        WebhookCommand::List { app_key, database } => {
            let endpoints = with_app(config_file, database, async |app| {
                let tenant = app.tenant_by_app_key(&app_key).await?;
                Ok(app.list_webhook_endpoints(&tenant).await?)
            })
            .await?;
            let list: Vec<serde_json::Value> =
                endpoints.iter().map(|e| endpoint_json(e, None)).collect();
            println!("{}", serde_json::Value::Array(list));
        }
        WebhookCommand::Remove {
            app_key,
            id,
            database,
        } => {
            with_app(config_file, database, async |app| {
                let tenant = app.tenant_by_app_key(&app_key).await?;
                Ok(app.remove_webhook_endpoint(&tenant, id).await?)
            })
            .await?;
            println!("{}", serde_json::json!({ "Removed": id }));
        }
        WebhookCommand::RotateSecret {
            app_key,
            id,
            database,
        } => {
            let rotated = with_app(config_file, database, async |app| {
                let tenant = app.tenant_by_app_key(&app_key).await?;
                Ok(app.rotate_webhook_secret(&tenant, id).await?)
            })
            .await?;
            println!(
                "{}",
                endpoint_json(&rotated.endpoint, Some(&rotated.secret))
            );
        }
    }
    Ok(())
}

fn endpoint_json(e: &WebhookEndpoint, secret: Option<&str>) -> serde_json::Value {
    let mut json = serde_json::json!({
        "ID": e.id,
        "Url": e.url,
        "Description": e.description,
        "EventTypes": e.event_types,
        "Enabled": e.enabled,
        "DisabledReason": e.disabled_reason,
    });
    if let Some(secret) = secret {
        json["Secret"] = serde_json::Value::from(secret);
    }
    json
}
