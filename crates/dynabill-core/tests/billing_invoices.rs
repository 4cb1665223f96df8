//! One-time items and invoice assembly: due dates, grouping, totals and the credit balance
//! (BILLING.md §3, §5).

use dynabill_core::billing::{
    BillingError, InvoiceLine, InvoiceTotals, LineSource, LineType, OneTimeCharge, apply_credit,
    bill_one_time, due_date, group_lines,
};
use dynabill_core::calendar::{Pricing, ProrationPolicy, Span, Terms};
use dynabill_core::domain::{DueDateMethod, InvoiceGrouping, OneTimeItemId, PlanId};
use dynabill_core::money::{Currency, Rounding};
use jiff::civil::Date;
use rust_decimal::{Decimal, dec};

fn d(text: &str) -> Date {
    text.parse().expect("test dates are ISO dates")
}

fn pricing(currency: &str) -> Pricing {
    Pricing {
        policy: ProrationPolicy::ActualDays,
        currency: currency.parse().expect("known currency"),
        rounding: Rounding::HalfUp,
    }
}

fn charge(quantity: Decimal, unit_price: Decimal, charge_date: &str) -> OneTimeCharge {
    OneTimeCharge {
        id: OneTimeItemId(11),
        plan: PlanId(1),
        quantity,
        unit_price,
        charge_date: d(charge_date),
    }
}

/// A one-time line of `amount` on `plan` in `currency`, as a stand-in for any billed line.
fn line(plan: i64, currency: &str, amount: Decimal) -> InvoiceLine {
    let day = Span::new(d("2024-05-01"), d("2024-05-02")).unwrap();
    InvoiceLine {
        line_type: LineType::OneTime,
        source: LineSource::OneTime {
            item: OneTimeItemId(plan * 100),
        },
        plan: PlanId(plan),
        currency: currency.parse().unwrap(),
        service: day,
        period: day,
        terms: Terms::new(Decimal::ONE, amount),
        fraction: Decimal::ONE,
        amount,
    }
}

#[test]
fn a_one_time_item_is_billed_whole_on_the_first_run_from_its_charge_date() {
    let item = charge(dec!(3), dec!(19.995), "2024-05-20");
    assert_eq!(
        bill_one_time(&item, d("2024-05-19"), pricing("USD")).unwrap(),
        None
    );
    let line = bill_one_time(&item, d("2024-06-30"), pricing("USD"))
        .unwrap()
        .expect("due once the charge date has come");
    assert_eq!(line.line_type.code(), 2);
    assert_eq!(line.amount, dec!(59.99), "3 × 19.995 = 59.985, half-up");
    assert_eq!(line.fraction, Decimal::ONE, "never prorated");
    assert_eq!(line.service.start(), d("2024-05-20"));
    assert_eq!(
        line.service.last_day(),
        Some(d("2024-05-20")),
        "prints as its charge date"
    );
    assert_eq!(
        line.source,
        LineSource::OneTime {
            item: OneTimeItemId(11)
        }
    );
}

#[test]
fn a_one_time_credit_is_a_negative_line_rounded_to_the_currency() {
    let item = charge(dec!(1), dec!(-1234.5), "2024-05-20");
    let line = bill_one_time(&item, d("2024-05-20"), pricing("JPY"))
        .unwrap()
        .unwrap();
    assert_eq!(
        line.amount,
        dec!(-1235),
        "JPY has no minor unit; ties away from zero"
    );
}

#[test]
fn due_dates_follow_the_accounts_method() {
    let cases = [
        (
            "Net 30 from mid-January",
            "2024-01-15",
            DueDateMethod::NetDays,
            30,
            "2024-02-14",
        ),
        (
            "Net 0 is the invoice date",
            "2024-01-15",
            DueDateMethod::NetDays,
            0,
            "2024-01-15",
        ),
        (
            "End of Month + 0 in a leap February",
            "2024-02-10",
            DueDateMethod::EndOfMonthPlusDays,
            0,
            "2024-02-29",
        ),
        (
            "End of Month + 10",
            "2024-02-10",
            DueDateMethod::EndOfMonthPlusDays,
            10,
            "2024-03-10",
        ),
        (
            "End of Month + 15 across the year",
            "2023-12-05",
            DueDateMethod::EndOfMonthPlusDays,
            15,
            "2024-01-15",
        ),
    ];
    for (name, invoice_date, method, days, expected) in cases {
        assert_eq!(
            due_date(d(invoice_date), method, days).unwrap(),
            d(expected),
            "{name}"
        );
    }
}

#[test]
fn per_account_grouping_gives_one_invoice_per_currency() {
    let lines = vec![
        line(1, "USD", dec!(10)),
        line(2, "EUR", dec!(20)),
        line(2, "USD", dec!(30)),
    ];
    let groups = group_lines(lines, InvoiceGrouping::PerAccount);
    let shape: Vec<(&str, Option<PlanId>, Vec<Decimal>)> = groups
        .iter()
        .map(|g| {
            (
                g.currency.code(),
                g.plan,
                g.lines.iter().map(|l| l.amount).collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("EUR", None, vec![dec!(20)]),
            ("USD", None, vec![dec!(10), dec!(30)]),
        ]
    );
}

#[test]
fn per_plan_grouping_gives_one_invoice_per_plan_and_currency() {
    let lines = vec![
        line(2, "USD", dec!(10)),
        line(1, "USD", dec!(20)),
        line(2, "USD", dec!(30)),
        line(1, "EUR", dec!(40)),
    ];
    let groups = group_lines(lines, InvoiceGrouping::PerPlan);
    let shape: Vec<(&str, Option<PlanId>, Vec<Decimal>)> = groups
        .iter()
        .map(|g| {
            (
                g.currency.code(),
                g.plan,
                g.lines.iter().map(|l| l.amount).collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("EUR", Some(PlanId(1)), vec![dec!(40)]),
            ("USD", Some(PlanId(1)), vec![dec!(20)]),
            ("USD", Some(PlanId(2)), vec![dec!(10), dec!(30)]),
        ]
    );
    assert!(
        group_lines(Vec::new(), InvoiceGrouping::PerPlan).is_empty(),
        "no lines, no invoice"
    );
}

#[test]
fn totals_add_the_lines_and_the_rounded_tax() {
    let lines = [line(1, "USD", dec!(54.84)), line(1, "USD", dec!(-20.00))];
    let totals = InvoiceTotals::new(
        &lines,
        &[dec!(1.23456), dec!(2.00004)],
        Currency::USD,
        Rounding::HalfUp,
    )
    .unwrap();
    assert_eq!(totals.subtotal, dec!(34.84));
    assert_eq!(totals.tax_total, dec!(3.23), "3.2346 rounded to cents");
    assert_eq!(totals.total, dec!(38.07));

    let untaxed = InvoiceTotals::new(&lines, &[], Currency::USD, Rounding::HalfUp).unwrap();
    assert_eq!(untaxed.total, dec!(34.84));
}

#[test]
fn totals_refuse_a_line_in_another_currency() {
    let lines = [line(1, "USD", dec!(1)), line(1, "EUR", dec!(1))];
    assert_eq!(
        InvoiceTotals::new(&lines, &[], Currency::USD, Rounding::HalfUp),
        Err(BillingError::MixedCurrency {
            expected: "USD",
            found: "EUR"
        })
    );
}

#[test]
fn credit_from_a_negative_invoice_is_consumed_by_later_invoices() {
    let first = apply_credit(dec!(-50.00), dec!(0)).unwrap();
    assert_eq!(first.credit_added, dec!(50.00));
    assert_eq!(first.amount_due, dec!(0));
    assert_eq!(first.balance_after, dec!(50.00));

    let second = apply_credit(dec!(30.00), first.balance_after).unwrap();
    assert_eq!(second.credit_applied, dec!(30.00));
    assert_eq!(second.amount_due, dec!(0));
    assert_eq!(second.balance_after, dec!(20.00));

    let third = apply_credit(dec!(100.00), second.balance_after).unwrap();
    assert_eq!(third.credit_applied, dec!(20.00));
    assert_eq!(third.amount_due, dec!(80.00));
    assert_eq!(third.balance_after, dec!(0));

    let zero = apply_credit(dec!(0), dec!(5)).unwrap();
    assert_eq!(
        (
            zero.credit_added,
            zero.credit_applied,
            zero.amount_due,
            zero.balance_after
        ),
        (dec!(0), dec!(0), dec!(0), dec!(5)),
        "a zero total moves nothing"
    );
}

#[test]
fn a_negative_credit_balance_is_refused() {
    assert_eq!(
        apply_credit(dec!(10), dec!(-1)),
        Err(BillingError::NegativeCreditBalance { balance: dec!(-1) })
    );
}
