//! The edits of a live recurring item: upsell, cancel, change dates, delete.

use dynabill_core::calendar::ProrationMode;
use dynabill_core::domain::RecurringItemId;
use dynabill_core::items::end_of_current_period;
use jiff::civil::Date;

use crate::App;
use crate::error::{AppError, Field};
use crate::model::{Cancellation, ItemChangeKind, ItemWrite, RecordKey, RecurringItem, Tenant};
use crate::races::{Attempt, until_done};
use crate::store::StoreError;

use super::{
    CancelAt, Upsell, change, check_dates, not_allowed, require_live, require_never_invoiced, write,
};

impl App {
    /// Applies `edit` to the item named by `key` and writes the result, retrying
    /// when a concurrent writer changed the item first.
    pub(super) async fn edit_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        edit: impl Fn(&RecurringItem, Date, jiff::Timestamp) -> Result<ItemWrite, AppError>,
    ) -> Result<RecurringItem, AppError> {
        let edit = &edit;
        until_done("item", move || async move {
            let item = self.get_recurring_item(tenant, key, true).await?;
            let now = self.clock().now();
            let write = edit(&item, self.today(tenant), now)?;
            match self
                .store()
                .write_recurring_items(tenant.id, None, &[write], now)
                .await
            {
                Ok(()) => self
                    .get_recurring_item(tenant, &RecordKey::Id(item.id), true)
                    .await
                    .map(Attempt::Done),
                Err(StoreError::Stale) => Ok(Attempt::Lost),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Upsell (13/110).
    pub async fn upsell_recurring_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        upsell: Upsell,
    ) -> Result<RecurringItem, AppError> {
        self.apply_item_edit(tenant, key, &ItemEdit::Upsell(upsell))
            .await
    }

    /// Cancel (14/110).
    pub async fn cancel_recurring_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        at: CancelAt,
        credit: bool,
    ) -> Result<RecurringItem, AppError> {
        self.apply_item_edit(tenant, key, &ItemEdit::Cancel { at, credit })
            .await
    }

    /// Change dates (15/110): only before the first invoice.
    pub async fn change_recurring_item_dates(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        start: Option<Date>,
        end: Option<Option<Date>>,
    ) -> Result<RecurringItem, AppError> {
        self.apply_item_edit(tenant, key, &ItemEdit::Dates { start, end })
            .await
    }

    async fn apply_item_edit(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        edit: &ItemEdit,
    ) -> Result<RecurringItem, AppError> {
        edit.check()?;
        self.edit_item(tenant, key, |item, today, now| edit.write(item, today, now))
            .await
    }

    /// What the bill run for `date` would create for the item's account before
    /// and after `edit`, writing nothing: the edit is applied to the account's
    /// billing snapshot in memory, by the same rule as [`Self::edit_item`] writes it,
    /// and both bills are computed as the run computes them.
    pub async fn preview_item_edit(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        edit: &ItemEdit,
        date: Date,
    ) -> Result<EditPreview, AppError> {
        edit.check()?;
        let item = self.get_recurring_item(tenant, key, false).await?;
        let write = edit.write(&item, self.today(tenant), self.clock().now())?;
        let before = self.preview_bills(tenant, date, &[item.account_id]).await?;
        let after = self
            .preview_bills_with(tenant, date, &[item.account_id], &|account| {
                crate::billing::apply_item_write(&mut account.items, &write);
                Ok(())
            })
            .await?;
        Ok(EditPreview::new(date, before, after))
    }
}

/// A bill run's invoices for one account before and after an edit.
#[derive(Clone, Debug)]
pub struct EditPreview {
    /// The date of the bill run previewed.
    pub date: Date,
    pub before: Vec<crate::model::NewInvoice>,
    pub after: Vec<crate::model::NewInvoice>,
}

impl EditPreview {
    /// From the account's bills (one account's, or none) before and after.
    pub(crate) fn new(
        date: Date,
        before: Vec<crate::model::AccountBill>,
        after: Vec<crate::model::AccountBill>,
    ) -> EditPreview {
        let invoices = |bills: Vec<crate::model::AccountBill>| {
            bills
                .into_iter()
                .next()
                .map(|bill| bill.invoices)
                .unwrap_or_default()
        };
        EditPreview {
            date,
            before: invoices(before),
            after: invoices(after),
        }
    }
}

/// An edit of a live recurring item, as a value: applied by a use case, or
/// previewed without writing.
#[derive(Clone, Debug)]
pub enum ItemEdit {
    Upsell(Upsell),
    Cancel {
        at: CancelAt,
        credit: bool,
    },
    Dates {
        start: Option<Date>,
        end: Option<Option<Date>>,
    },
}

impl ItemEdit {
    /// What is wrong with the edit whatever the item.
    fn check(&self) -> Result<(), AppError> {
        match self {
            ItemEdit::Upsell(upsell)
                if upsell.quantity.is_none() && upsell.unit_price.is_none() =>
            {
                Err(AppError::Missing {
                    field: Field::Quantity,
                    context: "(or UnitPrice) to upsell an item",
                })
            }
            ItemEdit::Dates {
                start: None,
                end: None,
            } => Err(AppError::Missing {
                field: Field::StartDate,
                context: "(or EndDate) to change an item's dates",
            }),
            _ => Ok(()),
        }
    }

    /// The write that makes the edit to `item`.
    fn write(
        &self,
        item: &RecurringItem,
        today: Date,
        now: jiff::Timestamp,
    ) -> Result<ItemWrite, AppError> {
        match self {
            ItemEdit::Upsell(upsell) => upsell_write(item, upsell, today, now),
            ItemEdit::Cancel { at, credit } => {
                require_live(item, "cancelled")?;
                let date = match at {
                    CancelAt::Date(date) => date.unwrap_or(today),
                    CancelAt::EndOfBilledPeriod => end_of_current_period(
                        item.grid()?,
                        item.fields.start_date,
                        item.charged_through,
                        today,
                    )?,
                };
                cancellation_write(item, date, *credit, now)
            }
            ItemEdit::Dates { start, end } => dates_write(item, *start, *end, now),
        }
    }
}

fn upsell_write(
    item: &RecurringItem,
    upsell: &Upsell,
    today: Date,
    now: jiff::Timestamp,
) -> Result<ItemWrite, AppError> {
    require_live(item, "upsold")?;
    let requested = upsell.effective.unwrap_or(today);
    if requested < item.fields.start_date {
        return Err(not_allowed(format!(
            "EffectiveDate {requested} is before the item's StartDate {}",
            item.fields.start_date
        )));
    }
    let effective = upsell.mode.effective_date(item.grid()?, requested)?;
    if let Some(end) = item.fields.end_date
        && effective >= end
    {
        return Err(not_allowed(format!(
            "the change would take effect on {effective}, when the item has already ended ({end})"
        )));
    }
    let mut entry = change(ItemChangeKind::Upsell, effective, &item.fields, now);
    entry.quantity = upsell.quantity;
    entry.unit_price = upsell.unit_price;
    entry.prorate = Some(upsell.mode == ProrationMode::ByDay);
    Ok(write(item, item.fields.clone(), entry))
}

fn dates_write(
    item: &RecurringItem,
    start: Option<Date>,
    end: Option<Option<Date>>,
    now: jiff::Timestamp,
) -> Result<ItemWrite, AppError> {
    require_live(item, "given new dates")?;
    require_never_invoiced(
        item,
        "its dates cannot change; cancel (14) or renew (12) it instead",
    )?;
    let mut fields = item.fields.clone();
    if let Some(start) = start {
        fields.start_date = start;
    }
    if let Some(end) = end {
        fields.end_date = end;
    }
    check_dates(&fields)?;
    let entry = change(
        ItemChangeKind::DatesChanged,
        fields.start_date,
        &fields,
        now,
    );
    Ok(write(item, fields, entry))
}

impl App {
    /// Delete (11/110): only before the first invoice; the item is hidden, not erased.
    pub async fn delete_recurring_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
    ) -> Result<RecurringItem, AppError> {
        self.edit_item(tenant, key, |item, today, now| {
            if item.deleted_at.is_some() {
                return Err(not_allowed(format!(
                    "recurring item {:?} is already deleted",
                    item.fields.ext_id
                )));
            }
            require_never_invoiced(item, "it cannot be deleted; cancel it (14) instead")?;
            let mut w = write(
                item,
                item.fields.clone(),
                change(
                    ItemChangeKind::Deleted,
                    today.max(item.fields.start_date),
                    &item.fields,
                    now,
                ),
            );
            w.deleted = true;
            Ok(w)
        })
        .await
    }
}

pub(crate) fn cancellation_write(
    item: &RecurringItem,
    date: Date,
    credit: bool,
    now: jiff::Timestamp,
) -> Result<ItemWrite, AppError> {
    if date < item.fields.start_date {
        return Err(not_allowed(format!(
            "CancelDate {date} is before the item's StartDate {}",
            item.fields.start_date
        )));
    }
    if let Some(end) = item.fields.end_date
        && date > end
    {
        return Err(not_allowed(format!(
            "the item already ends on {end}, before CancelDate {date}"
        )));
    }
    let mut fields = item.fields.clone();
    fields.end_date = Some(date);
    let mut entry = change(ItemChangeKind::Cancellation, date, &fields, now);
    entry.credit = Some(credit);
    let mut w = write(item, fields, entry);
    w.cancellation = Some(Cancellation { date, credit });
    Ok(w)
}
