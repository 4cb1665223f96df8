//! Tenants and their API users: creation, and the settings the use cases read.

use dynabill_core::money::Currency;
use jiff::tz::TimeZone;

use crate::App;
use crate::auth::{IssuedCredential, new_access_token, new_app_key, token_hash};
use crate::error::{AppError, Field};
use crate::model::Tenant;
use crate::store::{NewApiUser, NewTenant, StoreError, TenantRow};

/// The user name given to a tenant's first API user when none is chosen.
pub const DEFAULT_USER_NAME: &str = "api";

pub(crate) fn tenant_from_row(row: TenantRow) -> Result<Tenant, AppError> {
    let currency: Currency = row.currency.parse().map_err(|_| {
        anyhow::anyhow!(
            "tenant {} has an unknown currency {:?}",
            row.id,
            row.currency
        )
    })?;
    let time_zone = TimeZone::get(&row.time_zone).map_err(|_| {
        anyhow::anyhow!(
            "tenant {} has an unknown time zone {:?}",
            row.id,
            row.time_zone
        )
    })?;
    Ok(Tenant {
        id: row.id,
        app_key: row.app_key,
        name: row.name,
        currency,
        time_zone_name: row.time_zone,
        time_zone,
        created_at: row.created_at,
    })
}

fn validate_user_name(user_name: &str) -> Result<(), AppError> {
    let ok = !user_name.is_empty()
        && user_name.len() <= 255
        && user_name.chars().all(|c| c.is_ascii_graphic());
    if ok {
        return Ok(());
    }
    Err(AppError::invalid(
        Field::UserName,
        "must be 1 to 255 visible ASCII characters",
    ))
}

impl App {
    /// Creates a tenant and its first API user; the token is returned once.
    pub async fn create_tenant(
        &self,
        name: &str,
        currency: &str,
        time_zone: &str,
        user_name: &str,
    ) -> Result<IssuedCredential, AppError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 255 {
            return Err(AppError::invalid(
                Field::TenantName,
                "must be 1 to 255 characters",
            ));
        }
        let currency: Currency = currency
            .parse()
            .map_err(|_| AppError::invalid(Field::Currency, "must be an ISO 4217 code"))?;
        TimeZone::get(time_zone).map_err(|_| {
            AppError::invalid(
                Field::TimeZone,
                format!("{time_zone:?} is not an IANA time zone"),
            )
        })?;
        validate_user_name(user_name)?;
        let app_key = new_app_key()?;
        let access_token = new_access_token()?;
        let tenant = NewTenant {
            app_key: app_key.clone(),
            name: name.to_owned(),
            currency: currency.code().to_owned(),
            time_zone: time_zone.to_owned(),
        };
        let user = NewApiUser {
            user_name: user_name.to_owned(),
            token_hash: token_hash(&access_token),
        };
        self.store()
            .create_tenant(&tenant, &user, self.clock().now())
            .await?;
        Ok(IssuedCredential {
            app_key,
            user_name: user_name.to_owned(),
            access_token,
        })
    }

    /// Adds an API user to the tenant with `app_key`; the token is returned once.
    pub async fn add_api_user(
        &self,
        app_key: &str,
        user_name: &str,
    ) -> Result<IssuedCredential, AppError> {
        validate_user_name(user_name)?;
        let tenant = self.tenant_by_app_key(app_key).await?;
        let access_token = new_access_token()?;
        let user = NewApiUser {
            user_name: user_name.to_owned(),
            token_hash: token_hash(&access_token),
        };
        match self
            .store()
            .add_api_user(tenant.id, &user, self.clock().now())
            .await
        {
            Ok(()) => {}
            Err(StoreError::UserNameTaken) => {
                return Err(AppError::NotAllowed(format!(
                    "the tenant already has an API user named {user_name:?}"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(IssuedCredential {
            app_key: app_key.to_owned(),
            user_name: user_name.to_owned(),
            access_token,
        })
    }

    pub async fn tenant_by_app_key(&self, app_key: &str) -> Result<Tenant, AppError> {
        let row = self
            .store()
            .tenant_by_app_key(app_key)
            .await?
            .ok_or_else(|| AppError::NotAllowed(format!("no tenant has the AppKey {app_key:?}")))?;
        tenant_from_row(row)
    }

    pub async fn tenant_count(&self) -> Result<i64, AppError> {
        Ok(self.store().tenant_count().await?)
    }

    /// Today in the tenant's time zone: the default date of every dated call.
    pub fn today(&self, tenant: &Tenant) -> jiff::civil::Date {
        self.clock().today(&tenant.time_zone)
    }
}
