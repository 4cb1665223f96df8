//! Tenants and their API users: creation, and the settings the use cases read.

use dynabill_core::calendar::ProrationPolicy;
use dynabill_core::money::{Currency, Rounding};
use jiff::tz::TimeZone;

use crate::App;
use crate::auth::{IssuedCredential, new_access_token, new_app_key, token_hash};
use crate::error::{AppError, Field};
use crate::model::{Tenant, TenantSettings};
use crate::secrets::SecretUse;
use crate::store::{NewApiUser, NewTenant, StoreError, StoredTenant};
use crate::tax_engine::{AvaTaxSettings, Secret};
use dynabill_core::domain::TaxMode;

/// The user name given to a tenant's first API user when none is chosen.
pub const DEFAULT_USER_NAME: &str = "api";

impl App {
    /// Parses a stored tenant's currency, time zone and settings, and opens its
    /// sealed AvaTax license key.
    pub(crate) fn tenant_from_row(&self, row: StoredTenant) -> Result<Tenant, AppError> {
        let license_key = row
            .avatax_license_key
            .as_deref()
            .map(|sealed| self.open_secret(SecretUse::AvaTaxLicenseKey, sealed))
            .transpose()?;
        tenant_from_row(row, license_key)
    }
}

fn tenant_from_row(row: StoredTenant, license_key: Option<String>) -> Result<Tenant, AppError> {
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
    let settings = TenantSettings {
        auto_post: row.auto_post,
        invoice_prefix: row.invoice_prefix,
        bill_run_hour: u8::try_from(row.bill_run_hour)
            .ok()
            .filter(|h| *h < 24)
            .ok_or_else(|| {
                anyhow::anyhow!("tenant {} has bill run hour {}", row.id, row.bill_run_hour)
            })?,
        proration_policy: ProrationPolicy::from_code(row.proration_policy).ok_or_else(|| {
            anyhow::anyhow!(
                "tenant {} has proration policy {}",
                row.id,
                row.proration_policy
            )
        })?,
        rounding: rounding_from_code(row.rounding)
            .ok_or_else(|| anyhow::anyhow!("tenant {} has rounding {}", row.id, row.rounding))?,
        tax_mode: TaxMode::from_code(row.tax_mode)
            .ok_or_else(|| anyhow::anyhow!("tenant {} has tax mode {}", row.id, row.tax_mode))?,
        avatax: match (
            &row.avatax_url,
            &row.avatax_account_id,
            license_key,
            &row.avatax_company_code,
        ) {
            (Some(url), Some(account), Some(key), Some(company)) => Some(AvaTaxSettings {
                base_url: url.clone(),
                account_id: account.clone(),
                license_key: Secret::new(key),
                company_code: company.clone(),
            }),
            _ => None,
        },
    };
    Ok(Tenant {
        id: row.id,
        app_key: row.app_key,
        name: row.name,
        currency,
        time_zone_name: row.time_zone,
        time_zone,
        settings,
        test_today: row.test_today,
        created_at: row.created_at,
    })
}

/// The stored code of a rounding mode: 1 half-up, 2 half-even.
pub fn rounding_code(rounding: Rounding) -> i64 {
    match rounding {
        Rounding::HalfUp => 1,
        Rounding::HalfEven => 2,
    }
}

pub fn rounding_from_code(code: i64) -> Option<Rounding> {
    match code {
        1 => Some(Rounding::HalfUp),
        2 => Some(Rounding::HalfEven),
        _ => None,
    }
}

/// A change of tenant settings (`dynabill tenant set`); `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct SettingsChange {
    pub auto_post: Option<bool>,
    pub invoice_prefix: Option<String>,
    pub bill_run_hour: Option<u8>,
    pub proration_policy: Option<ProrationPolicy>,
    pub rounding: Option<Rounding>,
    pub time_zone: Option<String>,
    pub tax_mode: Option<TaxMode>,
    pub avatax_url: Option<String>,
    pub avatax_account_id: Option<String>,
    /// Stored as a secret: never printed back.
    pub avatax_license_key: Option<String>,
    pub avatax_company_code: Option<String>,
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
        self.tenant_from_row(row)
    }

    pub async fn tenant_count(&self) -> Result<i64, AppError> {
        Ok(self.store().tenant_count().await?)
    }

    /// Today in the tenant's time zone: the default date of every dated call. With
    /// the test clock on, a tenant's set test date wins.
    pub fn today(&self, tenant: &Tenant) -> jiff::civil::Date {
        if self.test_clock()
            && let Some(today) = tenant.test_today
        {
            return today;
        }
        self.clock().today(&tenant.time_zone)
    }

    /// Every tenant.
    pub async fn tenants(&self) -> Result<Vec<Tenant>, AppError> {
        let rows = self.store().list_tenants().await?;
        rows.into_iter()
            .map(|row| self.tenant_from_row(row))
            .collect()
    }

    /// Changes a tenant's settings; returns the tenant as it now is.
    pub async fn update_tenant_settings(
        &self,
        app_key: &str,
        change: SettingsChange,
    ) -> Result<Tenant, AppError> {
        let tenant = self.tenant_by_app_key(app_key).await?;
        let mut row = self
            .store()
            .tenant_by_app_key(app_key)
            .await?
            .ok_or_else(|| AppError::NotAllowed(format!("no tenant has the AppKey {app_key:?}")))?;
        if let Some(zone) = change.time_zone {
            TimeZone::get(&zone).map_err(|_| {
                AppError::invalid(
                    Field::TimeZone,
                    format!("{zone:?} is not an IANA time zone"),
                )
            })?;
            row.time_zone = zone;
        }
        if let Some(prefix) = change.invoice_prefix {
            let ok = prefix.len() <= 32 && prefix.chars().all(|c| c.is_ascii_graphic());
            if !ok {
                return Err(AppError::invalid(
                    Field::InvoicePrefix,
                    "must be at most 32 visible ASCII characters",
                ));
            }
            row.invoice_prefix = prefix;
        }
        if let Some(hour) = change.bill_run_hour {
            if hour > 23 {
                return Err(AppError::invalid(
                    Field::BillRunHour,
                    "must be an hour from 0 to 23",
                ));
            }
            row.bill_run_hour = i64::from(hour);
        }
        if let Some(url) = change.avatax_url {
            let ok = url.starts_with("https://") || url.starts_with("http://");
            if !ok {
                return Err(AppError::invalid(
                    Field::AvaTaxUrl,
                    "must be an http(s) URL",
                ));
            }
            row.avatax_url = Some(url.trim_end_matches('/').to_owned());
        }
        let sealed_key = change
            .avatax_license_key
            .map(|key| self.seal_secret(SecretUse::AvaTaxLicenseKey, &key))
            .transpose()?;
        for (value, slot) in [
            (change.avatax_account_id, &mut row.avatax_account_id),
            (sealed_key, &mut row.avatax_license_key),
            (change.avatax_company_code, &mut row.avatax_company_code),
        ] {
            if let Some(value) = value {
                *slot = Some(value);
            }
        }
        if let Some(mode) = change.tax_mode {
            row.tax_mode = mode.code();
        }
        let complete = row.avatax_url.is_some()
            && row.avatax_account_id.is_some()
            && row.avatax_license_key.is_some()
            && row.avatax_company_code.is_some();
        if row.tax_mode == TaxMode::Avalara.code() && !complete {
            return Err(AppError::invalid(
                Field::TaxMode,
                "3 (Avalara) needs the AvaTax URL, account ID, license key and company code",
            ));
        }
        row.auto_post = change.auto_post.unwrap_or(tenant.settings.auto_post);
        row.proration_policy = change
            .proration_policy
            .unwrap_or(tenant.settings.proration_policy)
            .code();
        row.rounding = rounding_code(change.rounding.unwrap_or(tenant.settings.rounding));
        self.store().update_tenant_settings(tenant.id, &row).await?;
        self.credentials().forget_tenant(tenant.id);
        self.tenant_by_app_key(app_key).await
    }

    /// Sets (or clears) a tenant's test-clock date. Refused unless the test clock is on.
    pub async fn set_test_today(
        &self,
        tenant: &Tenant,
        today: Option<jiff::civil::Date>,
    ) -> Result<(), AppError> {
        if !self.test_clock() {
            return Err(AppError::NotAllowed(
                "the test clock is off; start the server with --test-clock to use it".into(),
            ));
        }
        self.store().set_test_today(tenant.id, today).await?;
        self.credentials().forget_tenant(tenant.id);
        Ok(())
    }
}
