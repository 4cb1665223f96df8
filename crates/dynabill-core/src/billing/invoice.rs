//! Turning lines into invoices: grouping, due date, totals and the credit balance (§3, §5).

use std::collections::BTreeMap;

use jiff::civil::Date;
use rust_decimal::Decimal;

use super::BillingError;
use super::line::InvoiceLine;
use crate::calendar::CalendarError;
use crate::domain::{DueDateMethod, InvoiceGrouping, PlanId};
use crate::money::{Currency, Rounding};

/// `DueDate`: `invoice_date + days` (Net+), or the last day of its month `+ days` (End of Month+).
pub fn due_date(
    invoice_date: Date,
    method: DueDateMethod,
    days: u32,
) -> Result<Date, BillingError> {
    let from = match method {
        DueDateMethod::NetDays => invoice_date,
        DueDateMethod::EndOfMonthPlusDays => invoice_date.last_of_month(),
    };
    from.checked_add(jiff::Span::new().days(i64::from(days)))
        .map_err(|_| BillingError::Calendar(CalendarError::DateOutOfRange))
}

/// The lines of one invoice: one currency, and one plan under per-plan grouping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceGroup {
    pub currency: Currency,
    /// The plan, under `InvoiceGrouping` 0; `None` under per-account grouping.
    pub plan: Option<PlanId>,
    pub lines: Vec<InvoiceLine>,
}

/// Splits a run's lines of one account into invoices: one per currency (`InvoiceGrouping` 1),
/// or one per currency and plan (0). No lines, no invoice. Groups come in currency-code then
/// plan order; lines keep their order.
pub fn group_lines(lines: Vec<InvoiceLine>, grouping: InvoiceGrouping) -> Vec<InvoiceGroup> {
    let mut groups: BTreeMap<(&'static str, Option<PlanId>), InvoiceGroup> = BTreeMap::new();
    for line in lines {
        let plan = match grouping {
            InvoiceGrouping::PerPlan => Some(line.plan),
            InvoiceGrouping::PerAccount => None,
        };
        groups
            .entry((line.currency.code(), plan))
            .or_insert_with(|| InvoiceGroup {
                currency: line.currency,
                plan,
                lines: Vec::new(),
            })
            .lines
            .push(line);
    }
    groups.into_values().collect()
}

/// An invoice's totals: `Subtotal = Σ line amounts`, `TaxTotal = round(Σ tax line amounts)`,
/// `Total = Subtotal + TaxTotal` (BILLING.md §8 invariant 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InvoiceTotals {
    pub subtotal: Decimal,
    pub tax_total: Decimal,
    pub total: Decimal,
}

impl InvoiceTotals {
    /// Totals of `lines`, all in `currency`, and of the tax lines' amounts (which may carry more
    /// places than the minor unit; their sum is rounded to it under `rounding`).
    pub fn new(
        lines: &[InvoiceLine],
        tax_line_amounts: &[Decimal],
        currency: Currency,
        rounding: Rounding,
    ) -> Result<Self, BillingError> {
        if let Some(line) = lines.iter().find(|line| line.currency != currency) {
            return Err(BillingError::MixedCurrency {
                expected: currency.code(),
                found: line.currency.code(),
            });
        }
        let subtotal = checked_sum(lines.iter().map(|line| line.amount))?;
        let tax_total =
            rounding.to_minor_unit(checked_sum(tax_line_amounts.iter().copied())?, currency);
        let total = subtotal
            .checked_add(tax_total)
            .ok_or(BillingError::AmountOverflow)?;
        Ok(Self {
            subtotal,
            tax_total,
            total,
        })
    }
}

fn checked_sum(mut amounts: impl Iterator<Item = Decimal>) -> Result<Decimal, BillingError> {
    amounts.try_fold(Decimal::ZERO, |sum, amount| {
        sum.checked_add(amount).ok_or(BillingError::AmountOverflow)
    })
}

/// How an invoice moves the account's credit balance (BILLING.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CreditMovement {
    /// `CreditAdded`: a negative total, moved to the balance.
    pub credit_added: Decimal,
    /// `CreditApplied`: the balance consumed by a positive total.
    pub credit_applied: Decimal,
    /// `AmountDue = Total - CreditApplied`, never negative.
    pub amount_due: Decimal,
    /// The account's `CreditBalance` once the invoice is issued.
    pub balance_after: Decimal,
}

/// Applies an invoice's `total` (after tax) to the account's credit `balance`: a negative
/// total becomes credit and nothing is due; a positive one consumes the balance first.
pub fn apply_credit(total: Decimal, balance: Decimal) -> Result<CreditMovement, BillingError> {
    if balance.is_sign_negative() && !balance.is_zero() {
        return Err(BillingError::NegativeCreditBalance { balance });
    }
    let zero = Decimal::ZERO;
    if total < zero {
        let credit_added = -total;
        return Ok(CreditMovement {
            credit_added,
            credit_applied: zero,
            amount_due: zero,
            balance_after: balance
                .checked_add(credit_added)
                .ok_or(BillingError::AmountOverflow)?,
        });
    }
    let credit_applied = balance.min(total);
    Ok(CreditMovement {
        credit_added: zero,
        credit_applied,
        amount_due: total - credit_applied,
        balance_after: balance - credit_applied,
    })
}
