//! Invoice use cases (entity 119): read, list, update (post a Draft, mark a Posted
//! invoice paid, edit a Draft's dates and notes), cancel (BILLING.md §6).

use dynabill_core::domain::{InvoiceId, InvoiceStatus, TaxMode};
use rust_decimal::Decimal;

use crate::App;
use crate::error::{AppError, Entity, Field};
use crate::model::{
    CreditMove, Invoice, InvoiceFilter, InvoiceUpdate, Page, PageRequest, RecordKey, Tenant,
};
use crate::races::{Attempt, settle, until_done};
use crate::store::StoreError;

fn not_allowed(message: String) -> AppError {
    AppError::NotAllowed(message)
}

fn status_name(status: InvoiceStatus) -> &'static str {
    match status {
        InvoiceStatus::Draft => "Draft",
        InvoiceStatus::PendingTax => "Pending Tax",
        InvoiceStatus::Posted => "Posted",
        InvoiceStatus::Paid => "Paid",
        InvoiceStatus::Cancelled => "Cancelled",
    }
}

/// Checks an update against the invoice's status; returns it with defaults filled.
fn checked_update(
    invoice: &Invoice,
    update: &InvoiceUpdate,
    today: jiff::civil::Date,
) -> Result<InvoiceUpdate, AppError> {
    let edits_draft_fields =
        update.due_date.is_some() || update.po_number.is_some() || update.memo.is_some();
    let current = invoice.status;
    if edits_draft_fields && !current.is_editable() {
        return Err(not_allowed(format!(
            "invoice {} is {}; DueDate, PONumber and Memo change only while Draft or Pending Tax",
            invoice.id,
            status_name(current)
        )));
    }
    let paying = update.paid_date.is_some() || update.payment_reference.is_some();
    let mut update = update.clone();
    match update.status {
        None if paying => {
            return Err(AppError::invalid(
                Field::InvoiceStatus,
                "must be 4 (Paid) to record PaidDate or PaymentReference",
            ));
        }
        None => {}
        Some(InvoiceStatus::Posted) => {
            if current != InvoiceStatus::Draft {
                return Err(not_allowed(format!(
                    "invoice {} is {}; only a Draft can be posted",
                    invoice.id,
                    status_name(current)
                )));
            }
            if paying {
                return Err(AppError::invalid(
                    Field::InvoiceStatus,
                    "must be 4 (Paid) to record PaidDate or PaymentReference",
                ));
            }
        }
        Some(InvoiceStatus::Paid) => {
            if current != InvoiceStatus::Posted {
                return Err(not_allowed(format!(
                    "invoice {} is {}; only a Posted invoice can be marked paid",
                    invoice.id,
                    status_name(current)
                )));
            }
            update.paid_date = Some(update.paid_date.unwrap_or(today));
        }
        Some(InvoiceStatus::Cancelled) => {
            return Err(not_allowed(format!(
                "invoices are cancelled with api_code 14, not by setting InvoiceStatus 5 (invoice {})",
                invoice.id
            )));
        }
        Some(other @ (InvoiceStatus::Draft | InvoiceStatus::PendingTax)) => {
            return Err(not_allowed(format!(
                "invoice {} cannot move from {} to {}",
                invoice.id,
                status_name(current),
                status_name(other)
            )));
        }
    }
    Ok(update)
}

impl App {
    /// Marks the tenant's Posted invoices past their due date overdue (once each,
    /// the first day they are: `invoice.overdue`). The scheduler calls it every
    /// tick. Returns how many it marked.
    pub async fn mark_overdue(&self, tenant: &Tenant) -> Result<u64, AppError> {
        let today = self.today(tenant);
        let now = self.clock().now();
        Ok(self.store().mark_overdue(tenant.id, today, now).await?)
    }

    pub async fn get_invoice(&self, tenant: &Tenant, id: InvoiceId) -> Result<Invoice, AppError> {
        self.store()
            .find_invoice(tenant.id, id, true)
            .await?
            .ok_or_else(|| AppError::not_found(Entity::Invoice, Field::Id, id))
    }

    pub async fn list_invoices(
        &self,
        tenant: &Tenant,
        filter: &InvoiceFilter,
        page: PageRequest,
        with_lines: bool,
    ) -> Result<Page<Invoice>, AppError> {
        Ok(self
            .store()
            .list_invoices(tenant.id, filter, page, with_lines)
            .await?)
    }

    /// Update (10/119).
    pub async fn update_invoice(
        &self,
        tenant: &Tenant,
        id: InvoiceId,
        update: InvoiceUpdate,
    ) -> Result<Invoice, AppError> {
        let update = &update;
        until_done("invoice", move || async move {
            let invoice = self.get_invoice(tenant, id).await?;
            let update = checked_update(&invoice, update, self.today(tenant))?;
            if update == InvoiceUpdate::default() {
                return Ok(Attempt::Done(invoice));
            }
            if let Some(due) = update.due_date
                && due < invoice.invoice_date
            {
                return Err(AppError::invalid(
                    Field::DueDate,
                    format!(
                        "must not be before the InvoiceDate ({})",
                        invoice.invoice_date
                    ),
                ));
            }
            if update.status == Some(InvoiceStatus::Posted) {
                // Leaving Draft: the edits first, then the posting (which computes tax).
                let edits = InvoiceUpdate {
                    status: None,
                    ..update.clone()
                };
                let edited = if edits == InvoiceUpdate::default() {
                    invoice
                } else {
                    let now = self.clock().now();
                    match self
                        .store()
                        .update_invoice(tenant.id, invoice.id, invoice.version, &edits, "", now)
                        .await
                    {
                        Ok(edited) => edited,
                        Err(StoreError::Stale) => return Ok(Attempt::Lost),
                        Err(e) => return Err(e.into()),
                    }
                };
                return self.post_draft(tenant, &edited).await.map(Attempt::Done);
            }
            let prefix = &tenant.settings.invoice_prefix;
            settle(
                self.store()
                    .update_invoice(
                        tenant.id,
                        invoice.id,
                        invoice.version,
                        &update,
                        prefix,
                        self.clock().now(),
                    )
                    .await,
            )
        })
        .await
    }

    /// Cancel (14/119): voids a Draft, Pending Tax or Posted invoice; its credit
    /// movements are reversed; with `rebill`, what it billed is billable again.
    pub async fn cancel_invoice(
        &self,
        tenant: &Tenant,
        id: InvoiceId,
        reason: Option<String>,
        rebill: bool,
    ) -> Result<Invoice, AppError> {
        let reason = &reason;
        until_done("invoice", move || async move {
            let invoice = self.get_invoice(tenant, id).await?;
            if !invoice.status.is_cancellable() {
                return Err(not_allowed(format!(
                    "invoice {} is {}; only Draft, Pending Tax or Posted invoices can be cancelled",
                    invoice.id,
                    status_name(invoice.status)
                )));
            }
            // A posted invoice taxed by AvaTax is voided there first; if AvaTax cannot
            // be reached, the cancellation waits (nothing is half done).
            if invoice.status == InvoiceStatus::Posted
                && tenant.settings.tax_mode == TaxMode::Avalara
                && let (Some(engine), Some(settings)) = (self.tax_engine(), &tenant.settings.avatax)
                && invoice.lines.iter().any(|l| !l.taxes.is_empty())
            {
                let code = format!("dynabill-{}-{}", tenant.id, invoice.id);
                engine
                    .void_transaction(settings, &code)
                    .await
                    .map_err(|e| {
                        AppError::Unavailable(format!("AvaTax could not void the transaction: {e}"))
                    })?;
            }
            let account = self
                .get_account(tenant, &RecordKey::Id(invoice.account_id), true)
                .await?;
            let before = account.credit_balance;
            let after = before + invoice.credit_applied - invoice.credit_added;
            if after < Decimal::ZERO {
                return Err(not_allowed(format!(
                    "the credit invoice {} added ({}) has already been used by later invoices; it cannot be cancelled",
                    invoice.id, invoice.credit_added
                )));
            }
            let now = self.clock().now();
            settle(
                self.store()
                    .cancel_invoice(
                        tenant.id,
                        invoice.id,
                        invoice.version,
                        reason.as_deref(),
                        rebill,
                        CreditMove { before, after },
                        now,
                    )
                    .await,
            )
        })
        .await
    }
}
