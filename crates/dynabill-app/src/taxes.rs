//! Taxation (BILLING.md §7): the built-in rate table, posting an invoice (it
//! leaves Draft or Pending Tax, its taxes computed or given), the external tax
//! workflow (1007/1008), and AvaTax with its retries.

use std::collections::HashMap;

use dynabill_core::billing::apply_credit;
use dynabill_core::domain::{Country, InvoiceId, InvoiceStatus, TaxMode, TaxRateId};
use dynabill_core::money::Currency;
use dynabill_core::tax::{TaxRule, TaxableLine, applicable_rules, tax_amount};
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;

use crate::App;
use crate::error::{AppError, Field};
use crate::model::{
    Account, CreditMove, Invoice, InvoiceFilter, InvoiceLineRecord, LineTax, LineTaxUpdate, Page,
    PageRequest, PostInvoice, RecordKey, TaxRateRecord, Tenant,
};
use crate::races::{settle, until_done};
use crate::tax_engine::{TaxAddress, TaxDocument, TaxDocumentLine};

/// Tax amounts from an external tax service keep at most this many decimals (SPEC §5).
pub const EXTERNAL_TAX_SCALE: u32 = 5;

/// The taxes an external tax service sends for one line (1008/119).
#[derive(Clone, Debug, PartialEq)]
pub struct ExternalLineTaxes {
    pub line_id: i64,
    pub tax_code: Option<String>,
    pub taxes: Vec<(String, Decimal)>,
}

/// One row of 1007/119: a line of a Pending Tax invoice, with what a tax service needs.
#[derive(Clone, Debug)]
pub struct PendingTaxLine {
    pub invoice: Invoice,
    pub line: InvoiceLineRecord,
    pub account: Account,
}

/// The mode an account's invoices are taxed in: exempt accounts are never taxed.
pub fn effective_mode(tenant: &Tenant, account: &Account) -> TaxMode {
    if account.fields.tax_exempt {
        TaxMode::None
    } else {
        tenant.settings.tax_mode
    }
}

/// The built-in taxes of one line: one per applicable rule, rounded to the minor unit.
pub fn built_in_taxes(
    rules: &[TaxRule],
    account: &Account,
    line: &InvoiceLineRecord,
    currency: Currency,
    tenant: &Tenant,
) -> Vec<LineTax> {
    let f = &account.fields;
    let taxable = TaxableLine {
        country: f.country.map(Country::alpha2),
        state: f.state.as_deref(),
        tax_code: line.tax_code.as_deref(),
    };
    applicable_rules(rules, taxable)
        .into_iter()
        .map(|rule| LineTax {
            description: rule.name.clone(),
            amount: tax_amount(line.amount, rule.rate, currency, tenant.settings.rounding),
            rate: Some(rule.rate),
            jurisdiction: Some(match &rule.state {
                Some(state) => format!("{}-{}", rule.country, state.to_ascii_uppercase()),
                None => rule.country.clone(),
            }),
        })
        .collect()
}

/// How long to wait before the next AvaTax attempt: 1 minute, doubling, at most 6 hours.
fn backoff(attempts: i64) -> SignedDuration {
    let minutes = 1i64 << attempts.clamp(0, 9);
    SignedDuration::from_mins(minutes.min(360))
}

impl App {
    pub async fn add_tax_rate(
        &self,
        app_key: &str,
        rule: TaxRule,
    ) -> Result<TaxRateRecord, AppError> {
        let tenant = self.tenant_by_app_key(app_key).await?;
        let name = rule.name.trim();
        if name.is_empty() || name.len() > 255 {
            return Err(AppError::invalid(
                Field::TaxName,
                "must be 1 to 255 characters",
            ));
        }
        let country: Country = rule.country.parse().map_err(|_| {
            AppError::invalid(
                Field::Country,
                "must be an ISO 3166-1 alpha-2 code such as US",
            )
        })?;
        if rule.rate < Decimal::ZERO || rule.rate > Decimal::ONE_HUNDRED || rule.rate.scale() > 6 {
            return Err(AppError::invalid(
                Field::TaxRate,
                "must be a percentage from 0 to 100 with at most 6 decimals",
            ));
        }
        let clean = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let rule = TaxRule {
            name: name.to_owned(),
            country: country.alpha2().to_owned(),
            state: clean(rule.state).map(|s| s.to_ascii_uppercase()),
            tax_code: clean(rule.tax_code),
            rate: rule.rate.normalize(),
        };
        Ok(self.store().add_tax_rate(tenant.id, &rule).await?)
    }

    pub async fn list_tax_rates(&self, app_key: &str) -> Result<Vec<TaxRateRecord>, AppError> {
        let tenant = self.tenant_by_app_key(app_key).await?;
        Ok(self.store().list_tax_rates(tenant.id).await?)
    }

    pub async fn remove_tax_rate(&self, app_key: &str, id: TaxRateId) -> Result<(), AppError> {
        let tenant = self.tenant_by_app_key(app_key).await?;
        if !self.store().remove_tax_rate(tenant.id, id).await? {
            return Err(AppError::NotAllowed(format!(
                "the tenant has no tax rate with ID {id}"
            )));
        }
        Ok(())
    }

    /// The tenant's rules, as the core matches them.
    pub(crate) async fn tax_rules(&self, tenant: &Tenant) -> Result<Vec<TaxRule>, AppError> {
        if tenant.settings.tax_mode != TaxMode::BuiltIn {
            return Ok(Vec::new());
        }
        Ok(self
            .store()
            .list_tax_rates(tenant.id)
            .await?
            .into_iter()
            .map(|r| r.rule)
            .collect())
    }

    /// Moves a Draft or Pending Tax invoice on with the given taxes: totals, the
    /// account's credit (used after tax), and `status` (Posted takes a number).
    /// Retries when the invoice or the credit balance changed meanwhile.
    pub(crate) async fn post_with(
        &self,
        tenant: &Tenant,
        id: InvoiceId,
        status: InvoiceStatus,
        taxes_of: impl Fn(&Invoice, &Account) -> Result<Vec<LineTaxUpdate>, AppError>,
    ) -> Result<Invoice, AppError> {
        let taxes_of = &taxes_of;
        until_done("invoice", move || async move {
            let invoice = self.get_invoice(tenant, id).await?;
            let account = self
                .get_account(tenant, &RecordKey::Id(invoice.account_id), true)
                .await?;
            let line_taxes = taxes_of(&invoice, &account)?;
            let rounding = tenant.settings.rounding;
            let tax_sum: Decimal = line_taxes
                .iter()
                .flat_map(|l| &l.taxes)
                .map(|t| t.amount)
                .sum();
            let tax_total = rounding.to_minor_unit(tax_sum, invoice.currency);
            let total = invoice.subtotal + tax_total;
            let balance = account.credit_balance;
            // Credit moves only when the invoice is issued, and only in the account's currency.
            let (credit_applied, credit_added, amount_due, balance_after) =
                if status == InvoiceStatus::Posted && invoice.currency == account.fields.currency {
                    let m = apply_credit(total, balance)
                        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
                    (
                        m.credit_applied,
                        m.credit_added,
                        m.amount_due,
                        m.balance_after,
                    )
                } else {
                    (
                        Decimal::ZERO,
                        Decimal::ZERO,
                        total.max(Decimal::ZERO),
                        balance,
                    )
                };
            let post = PostInvoice {
                status,
                line_taxes,
                tax_total,
                total,
                credit_applied: rounding.to_minor_unit(credit_applied, invoice.currency),
                credit_added: rounding.to_minor_unit(credit_added, invoice.currency),
                amount_due: rounding.to_minor_unit(amount_due, invoice.currency),
                balance: CreditMove {
                    before: balance,
                    after: balance_after,
                },
            };
            let prefix = &tenant.settings.invoice_prefix;
            settle(
                self.store()
                    .post_invoice(
                        tenant.id,
                        id,
                        invoice.version,
                        &post,
                        prefix,
                        self.clock().now(),
                    )
                    .await,
            )
        })
        .await
    }

    /// A Draft leaves Draft (10/119 with `InvoiceStatus` 3): posted with its
    /// built-in taxes, or sent to Pending Tax for an external service or AvaTax.
    pub(crate) async fn post_draft(
        &self,
        tenant: &Tenant,
        invoice: &Invoice,
    ) -> Result<Invoice, AppError> {
        let account = self
            .get_account(tenant, &RecordKey::Id(invoice.account_id), true)
            .await?;
        match effective_mode(tenant, &account) {
            TaxMode::None => {
                self.post_with(tenant, invoice.id, InvoiceStatus::Posted, |_, _| {
                    Ok(Vec::new())
                })
                .await
            }
            TaxMode::BuiltIn => {
                let rules = self.tax_rules(tenant).await?;
                self.post_with(
                    tenant,
                    invoice.id,
                    InvoiceStatus::Posted,
                    |invoice, account| {
                        Ok(invoice
                            .lines
                            .iter()
                            .map(|line| LineTaxUpdate {
                                line_id: line.id,
                                tax_code: None,
                                taxes: built_in_taxes(
                                    &rules,
                                    account,
                                    line,
                                    invoice.currency,
                                    tenant,
                                ),
                            })
                            .collect())
                    },
                )
                .await
            }
            TaxMode::External => {
                self.post_with(tenant, invoice.id, InvoiceStatus::PendingTax, |_, _| {
                    Ok(Vec::new())
                })
                .await
            }
            TaxMode::Avalara => {
                let pending = self
                    .post_with(tenant, invoice.id, InvoiceStatus::PendingTax, |_, _| {
                        Ok(Vec::new())
                    })
                    .await?;
                self.tax_with_avatax(tenant, pending.id).await
            }
        }
    }

    /// 1008/119: an external tax service's taxes for a Pending Tax invoice. Lines
    /// named get exactly these taxes, the others none; the invoice is posted.
    pub async fn update_invoice_tax(
        &self,
        tenant: &Tenant,
        id: InvoiceId,
        lines: Vec<ExternalLineTaxes>,
    ) -> Result<Invoice, AppError> {
        let invoice = self.get_invoice(tenant, id).await?;
        if invoice.status != InvoiceStatus::PendingTax {
            return Err(AppError::NotAllowed(format!(
                "invoice {id} is not waiting for tax (InvoiceStatus {}); only Pending Tax invoices take tax information",
                invoice.status.code()
            )));
        }
        for line in &lines {
            if !invoice.lines.iter().any(|l| l.id == line.line_id) {
                return Err(AppError::NotFound {
                    entity: crate::error::Entity::Invoice,
                    field: Field::InvoiceLineId,
                    value: format!("{} on invoice {id}", line.line_id),
                });
            }
            if let Some((_, amount)) = line
                .taxes
                .iter()
                .find(|(_, a)| a.scale() > EXTERNAL_TAX_SCALE)
            {
                return Err(AppError::invalid(
                    Field::TaxAmount,
                    format!("must have at most {EXTERNAL_TAX_SCALE} decimal places, got {amount}"),
                ));
            }
        }
        // A line named twice gets the taxes of both entries.
        let mut merged: Vec<LineTaxUpdate> = Vec::new();
        for line in lines {
            let taxes = line.taxes.into_iter().map(|(description, amount)| LineTax {
                description,
                amount,
                rate: None,
                jurisdiction: None,
            });
            match merged.iter_mut().find(|m| m.line_id == line.line_id) {
                Some(m) => {
                    m.taxes.extend(taxes);
                    if line.tax_code.is_some() {
                        m.tax_code = line.tax_code;
                    }
                }
                None => merged.push(LineTaxUpdate {
                    line_id: line.line_id,
                    tax_code: line.tax_code,
                    taxes: taxes.collect(),
                }),
            }
        }
        self.post_with(tenant, invoice.id, InvoiceStatus::Posted, |current, _| {
            if current.status != InvoiceStatus::PendingTax {
                return Err(AppError::NotAllowed(format!(
                    "invoice {id} is no longer waiting for tax"
                )));
            }
            Ok(merged.clone())
        })
        .await
    }

    /// 1007/119: the lines of the tenant's Pending Tax invoices (or of one), paged by invoice.
    pub async fn pending_tax_lines(
        &self,
        tenant: &Tenant,
        invoice: Option<InvoiceId>,
        page: PageRequest,
    ) -> Result<Page<PendingTaxLine>, AppError> {
        if let Some(id) = invoice {
            self.get_invoice(tenant, id).await?;
        }
        let lines = self
            .store()
            .pending_tax_lines(tenant.id, invoice, page)
            .await?;
        let mut accounts: HashMap<i64, Account> = HashMap::new();
        let mut rows = Vec::with_capacity(lines.items.len());
        for (invoice, line) in lines.items {
            let account = match accounts.entry(invoice.account_id.0) {
                std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let key = RecordKey::Id(invoice.account_id);
                    slot.insert(self.get_account(tenant, &key, true).await?)
                }
            };
            rows.push(PendingTaxLine {
                invoice,
                line,
                account: account.clone(),
            });
        }
        Ok(Page {
            items: rows,
            total: lines.total,
            next_after: lines.next_after,
        })
    }

    /// Asks AvaTax for the taxes of a Pending Tax invoice and posts it with them. If
    /// AvaTax cannot be reached or refuses, the invoice stays in Pending Tax with
    /// the error recorded and a next attempt scheduled; nothing is posted untaxed.
    pub async fn tax_with_avatax(
        &self,
        tenant: &Tenant,
        id: InvoiceId,
    ) -> Result<Invoice, AppError> {
        let invoice = self.get_invoice(tenant, id).await?;
        if invoice.status != InvoiceStatus::PendingTax {
            return Ok(invoice);
        }
        let account = self
            .get_account(tenant, &RecordKey::Id(invoice.account_id), true)
            .await?;
        if account.fields.tax_exempt {
            return self
                .post_with(tenant, id, InvoiceStatus::Posted, |_, _| Ok(Vec::new()))
                .await;
        }
        let outcome = match (self.tax_engine(), &tenant.settings.avatax) {
            (Some(engine), Some(settings)) => {
                let document = tax_document(tenant, &invoice, &account);
                engine
                    .create_transaction(settings, &document, true)
                    .await
                    .map_err(|e| e.to_string())
            }
            (None, _) => Err("no tax engine is configured on this server".to_owned()),
            (_, None) => Err("the tenant's AvaTax settings are incomplete".to_owned()),
        };
        self.telemetry().tax_attempt(tenant.id, outcome.is_ok());
        match outcome {
            Ok(answers) => {
                let by_line: HashMap<String, Vec<LineTax>> = answers
                    .into_iter()
                    .map(|a| {
                        let taxes = a
                            .details
                            .into_iter()
                            .map(|d| LineTax {
                                description: d.description,
                                amount: d.amount,
                                // AvaTax sends rates as fractions; rates here are percent.
                                rate: d.rate.map(|r| (r * Decimal::ONE_HUNDRED).normalize()),
                                jurisdiction: d.jurisdiction,
                            })
                            .collect();
                        (a.number, taxes)
                    })
                    .collect();
                self.post_with(tenant, id, InvoiceStatus::Posted, |invoice, _| {
                    Ok(invoice
                        .lines
                        .iter()
                        .map(|l| LineTaxUpdate {
                            line_id: l.id,
                            tax_code: None,
                            taxes: by_line.get(&l.id.to_string()).cloned().unwrap_or_default(),
                        })
                        .collect())
                })
                .await
            }
            Err(error) => {
                let now = self.clock().now();
                let next: Timestamp = now + backoff(invoice.tax_attempts);
                tracing::warn!(invoice = %id, error = %error, "AvaTax: invoice stays in Pending Tax");
                // Kept printable: PostgreSQL text refuses NUL bytes.
                let error = error.replace('\0', "");
                self.store()
                    .record_tax_error(tenant.id, id, &error, next, now)
                    .await?;
                self.get_invoice(tenant, id).await
            }
        }
    }

    /// Retries AvaTax for the tenant's Pending Tax invoices: those due for another
    /// attempt, or all of them with `all`. Returns (attempted, posted).
    pub async fn retry_taxes(&self, tenant: &Tenant, all: bool) -> Result<(u64, u64), AppError> {
        if tenant.settings.tax_mode != TaxMode::Avalara {
            return Ok((0, 0));
        }
        let now = self.clock().now();
        let filter = InvoiceFilter {
            statuses: vec![InvoiceStatus::PendingTax],
            ..InvoiceFilter::default()
        };
        let (mut attempted, mut posted) = (0, 0);
        let mut request = PageRequest::first(500);
        loop {
            let page = self.list_invoices(tenant, &filter, request, false).await?;
            for invoice in &page.items {
                if !all && invoice.next_tax_attempt.is_some_and(|next| next > now) {
                    continue;
                }
                attempted += 1;
                if self.tax_with_avatax(tenant, invoice.id).await?.status == InvoiceStatus::Posted {
                    posted += 1;
                }
            }
            match request.next(&page) {
                Some(next) => request = next,
                None => return Ok((attempted, posted)),
            }
        }
    }
}

fn tax_document(tenant: &Tenant, invoice: &Invoice, account: &Account) -> TaxDocument {
    let f = &account.fields;
    TaxDocument {
        code: format!("dynabill-{}-{}", tenant.id, invoice.id),
        date: invoice.invoice_date,
        customer_code: f.ext_id.clone(),
        currency: invoice.currency.code().to_owned(),
        address: TaxAddress {
            line1: f.address.clone(),
            city: f.city.clone(),
            region: f.state.clone(),
            postal_code: f.zip.clone(),
            country: f.country.map(|c| c.alpha2().to_owned()),
        },
        exemption_number: f.tax_exemption_number.clone(),
        lines: invoice
            .lines
            .iter()
            .map(|l| TaxDocumentLine {
                number: l.id.to_string(),
                quantity: l.quantity,
                amount: l.amount,
                item_code: l.product_code.clone(),
                tax_code: l.tax_code.clone(),
                description: l.description.clone(),
            })
            .collect(),
    }
}
