//! Builders and helpers the contract tests share: a fixed clock, tenants, records.

use dynabill_app::Store;
use dynabill_app::model::{
    Account, AccountBill, AccountFields, AccountFilter, Invoice, InvoiceFilter, InvoiceLineRecord,
    ItemChange, ItemChangeKind, ItemFilter, ItemWrite, NewInvoice, OneTimeItem, OneTimeItemFields,
    Page, PageRequest, Plan, PlanFields, PlanFilter, RecordKey, RecurringItem, RecurringItemFields,
};
use dynabill_app::store::{NewApiUser, NewTenant};
use dynabill_core::billing::{EntryKey, LedgerEntry, LineType};
use dynabill_core::calendar::BillingPeriod;
use dynabill_core::domain::{
    AccountId, AccountStatus, AccountType, BillingTiming, Country, DueDateMethod, InvoiceGrouping,
    InvoiceId, InvoiceStatus, OneTimeItemId, RecurringItemId, TenantId,
};
use dynabill_core::money::Currency;
use jiff::civil::{Date, date};
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use rust_decimal::dec;

/// The tests' "now": a fixed instant with a fractional second, to show that
/// stores keep microseconds.
pub(crate) const T0: Timestamp = Timestamp::constant(1_741_944_413, 589_793_000);

/// `T0` plus some minutes.
pub(crate) fn minutes(n: i64) -> Timestamp {
    T0 + SignedDuration::from_mins(n)
}

/// A page large enough to hold everything a test writes.
pub(crate) const EVERYTHING: PageRequest = PageRequest {
    size: 1000,
    after: None,
    counted: None,
};

pub(crate) fn new_tenant_with_user(app_key: &str, user: &str, hash: u8) -> (NewTenant, NewApiUser) {
    (
        NewTenant {
            app_key: app_key.to_owned(),
            name: format!("Tenant {app_key}"),
            currency: "EUR".to_owned(),
            time_zone: "Europe/Berlin".to_owned(),
        },
        NewApiUser {
            user_name: user.to_owned(),
            token_hash: [hash; 32],
        },
    )
}

pub(crate) async fn tenant(store: &dyn Store, app_key: &str) -> TenantId {
    let (tenant, user) = new_tenant_with_user(app_key, "api", 1);
    store
        .create_tenant(&tenant, &user, T0)
        .await
        .expect("creating a tenant")
        .id
}

/// An account with only the fields a caller must give.
pub(crate) fn account(ext_id: &str) -> AccountFields {
    AccountFields {
        ext_id: ext_id.to_owned(),
        name: format!("Account {ext_id}"),
        account_type: AccountType::Business,
        status: AccountStatus::Active,
        email: "billing@example.com".parse().expect("a valid e-mail"),
        ext_id2: None,
        invoice_name: None,
        phone: None,
        address: None,
        city: None,
        state: None,
        zip: None,
        country: None,
        account_manager: None,
        contact_person: None,
        due_date_method: DueDateMethod::NetDays,
        due_date_days: 14,
        invoice_grouping: InvoiceGrouping::PerAccount,
        currency: Currency::USD,
        tax_exempt: false,
        tax_exemption_number: None,
    }
}

/// An account with every field set, to awkward values where a store could slip:
/// quotes, non-ASCII, line breaks, an empty (but present) string, code 0.
pub(crate) fn full_account(ext_id: &str) -> AccountFields {
    AccountFields {
        ext_id: ext_id.to_owned(),
        name: "Müller & Söhne 'Ltd' \"Ω\" 🚀".to_owned(),
        account_type: AccountType::Private,
        status: AccountStatus::BillingIssues,
        email: "accounts+billing@sub.example.co.uk"
            .parse()
            .expect("a valid e-mail"),
        ext_id2: Some("crm-42".to_owned()),
        invoice_name: Some("Müller GmbH".to_owned()),
        phone: Some("+49 30 1234567".to_owned()),
        address: Some("Hauptstraße 1\nHinterhof, 2. OG".to_owned()),
        city: Some("Berlin".to_owned()),
        state: Some("BE".to_owned()),
        zip: Some(String::new()),
        country: Some(parse::<Country>("DE")),
        account_manager: Some("Jane Roe".to_owned()),
        contact_person: Some("Max Mustermann".to_owned()),
        due_date_method: DueDateMethod::EndOfMonthPlusDays,
        due_date_days: 45,
        invoice_grouping: InvoiceGrouping::PerPlan,
        currency: parse::<Currency>("CHF"),
        tax_exempt: true,
        tax_exemption_number: Some("DE-EX-0001".to_owned()),
    }
}

/// A plan with only the fields a caller must give (and the defaults the app fills in).
pub(crate) fn plan(ext_id: &str, start: Date) -> PlanFields {
    PlanFields {
        ext_id: ext_id.to_owned(),
        name: None,
        start_date: start,
        end_date: None,
        auto_renew: false,
        renewal_term_months: 12,
        billing_day: None,
        currency: Currency::USD,
        po_number: None,
        notes: None,
    }
}

pub(crate) fn parse<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    text.parse().expect("a valid test value")
}

pub(crate) async fn insert_account(store: &dyn Store, tenant: TenantId, ext_id: &str) -> Account {
    store
        .insert_account(tenant, &account(ext_id), T0)
        .await
        .expect("inserting an account")
}

pub(crate) async fn insert_plan(
    store: &dyn Store,
    tenant: TenantId,
    account: &Account,
    fields: PlanFields,
) -> Plan {
    store
        .insert_plan(tenant, account.id, &fields, T0)
        .await
        .expect("inserting a plan")
}

/// The IDs of every account matching `filter`, checking that `total` agrees.
pub(crate) async fn account_ids(
    store: &dyn Store,
    tenant: TenantId,
    filter: AccountFilter,
) -> Vec<i64> {
    let page = store
        .list_accounts(tenant, &filter, EVERYTHING)
        .await
        .expect("listing accounts");
    ids_of(&page, |a| a.id.0)
}

/// The IDs of every plan matching `filter` on `today`, checking that `total` agrees.
pub(crate) async fn plan_ids(
    store: &dyn Store,
    tenant: TenantId,
    filter: PlanFilter,
    today: Date,
) -> Vec<i64> {
    let page = store
        .list_plans(tenant, &filter, today, EVERYTHING)
        .await
        .expect("listing plans");
    ids_of(&page, |p| p.id.0)
}

fn ids_of<T>(page: &Page<T>, id: impl Fn(&T) -> i64) -> Vec<i64> {
    assert_eq!(page.next_after, None, "everything fits on one page");
    assert_eq!(
        page.total,
        page.items.len() as i64,
        "total counts what the filter matches"
    );
    page.items.iter().map(id).collect()
}

/// A recurring item with only the fields a caller must give (and the app's defaults).
pub(crate) fn item(ext_id: &str, start: Date) -> RecurringItemFields {
    RecurringItemFields {
        ext_id: ext_id.to_owned(),
        product_code: "SKU-1".to_owned(),
        name: format!("Item {ext_id}"),
        description: None,
        tax_code: None,
        billing_period: BillingPeriod::Monthly,
        period_count: 1,
        timing: BillingTiming::InAdvance,
        start_date: start,
        end_date: None,
    }
}

/// An item's first history entry, as the app writes it: its terms from its start.
pub(crate) fn created(fields: &RecurringItemFields, at: Timestamp) -> ItemChange {
    ItemChange {
        seq: 0,
        kind: ItemChangeKind::Created,
        effective_date: fields.start_date,
        quantity: Some(dec!(10)),
        unit_price: Some(dec!(0.5)),
        discount_percent: Some(Decimal::ZERO),
        start_date: fields.start_date,
        end_date: fields.end_date,
        prorate: None,
        credit: None,
        recorded_at: at,
    }
}

/// A history entry of `kind` that changes no terms, with the item's dates after it.
pub(crate) fn entry(
    kind: ItemChangeKind,
    effective: Date,
    fields: &RecurringItemFields,
    at: Timestamp,
) -> ItemChange {
    ItemChange {
        seq: 0,
        kind,
        effective_date: effective,
        quantity: None,
        unit_price: None,
        discount_percent: None,
        start_date: fields.start_date,
        end_date: fields.end_date,
        prorate: None,
        credit: None,
        recorded_at: at,
    }
}

pub(crate) async fn insert_item(
    store: &dyn Store,
    tenant: TenantId,
    plan: &Plan,
    fields: RecurringItemFields,
) -> RecurringItem {
    let first = created(&fields, T0);
    store
        .insert_recurring_item(tenant, plan.id, &fields, &first, T0)
        .await
        .expect("inserting a recurring item")
}

/// A write of `item` (read as it is) with new fields and a history entry, keeping
/// its cancellation and deletion, as the use cases build them.
pub(crate) fn write(
    item: &RecurringItem,
    fields: RecurringItemFields,
    change: ItemChange,
) -> ItemWrite {
    ItemWrite {
        id: item.id,
        version: item.version,
        fields,
        cancellation: item.cancellation,
        change,
        deleted: item.deleted_at.is_some(),
    }
}

pub(crate) async fn find_item(
    store: &dyn Store,
    tenant: TenantId,
    id: RecurringItemId,
) -> RecurringItem {
    store
        .find_recurring_item(tenant, &RecordKey::Id(id))
        .await
        .expect("finding a recurring item")
        .expect("the recurring item exists")
}

/// A one-time item with only the fields a caller must give.
pub(crate) fn one_time(ext_id: &str, charge: Date) -> OneTimeItemFields {
    OneTimeItemFields {
        ext_id: ext_id.to_owned(),
        product_code: "SETUP".to_owned(),
        name: format!("One-time {ext_id}"),
        description: None,
        quantity: dec!(1),
        unit_price: dec!(99.95),
        charge_date: charge,
        tax_code: None,
    }
}

pub(crate) async fn insert_one_time(
    store: &dyn Store,
    tenant: TenantId,
    plan: &Plan,
    fields: OneTimeItemFields,
) -> OneTimeItem {
    store
        .insert_one_time_item(tenant, plan.id, &fields, T0)
        .await
        .expect("inserting a one-time item")
}

pub(crate) async fn find_one_time(
    store: &dyn Store,
    tenant: TenantId,
    id: OneTimeItemId,
) -> OneTimeItem {
    store
        .find_one_time_item(tenant, &RecordKey::Id(id))
        .await
        .expect("finding a one-time item")
        .expect("the one-time item exists")
}

/// The IDs of every recurring item matching `filter`, checking that `total` agrees.
pub(crate) async fn item_ids(
    store: &dyn Store,
    tenant: TenantId,
    filter: ItemFilter<RecurringItemId>,
) -> Vec<i64> {
    let page = store
        .list_recurring_items(tenant, &filter, EVERYTHING)
        .await
        .expect("listing recurring items");
    ids_of(&page, |i| i.id.0)
}

/// The IDs of every one-time item matching `filter`, checking that `total` agrees.
pub(crate) async fn one_time_ids(
    store: &dyn Store,
    tenant: TenantId,
    filter: ItemFilter<OneTimeItemId>,
) -> Vec<i64> {
    let page = store
        .list_one_time_items(tenant, &filter, EVERYTHING)
        .await
        .expect("listing one-time items");
    ids_of(&page, |i| i.id.0)
}

/// Everything, deleted or not.
pub(crate) fn all_items<I>() -> ItemFilter<I> {
    ItemFilter {
        include_deleted: true,
        ..ItemFilter::default()
    }
}

/// An item's history without its storage positions (`seq` 0, as entries not stored
/// yet have), to compare with the entries written; checks first that the stored
/// positions are positive and grow in history order.
pub(crate) fn unsequenced(changes: &[ItemChange]) -> Vec<ItemChange> {
    let stored: Vec<i64> = changes.iter().map(|c| c.seq).filter(|&s| s != 0).collect();
    assert!(
        stored.iter().all(|&s| s > 0) && stored.windows(2).all(|w| w[0] < w[1]),
        "history seqs must be positive and increasing: {stored:?}"
    );
    changes
        .iter()
        .map(|c| ItemChange {
            seq: 0,
            ..c.clone()
        })
        .collect()
}

/// An amount's text as stored and read back: the exact digits, no added scale.
pub(crate) fn text(amount: Option<Decimal>) -> Option<String> {
    amount.map(|d| d.to_string())
}

/// One account's billable things: a plan from 2025-01-01 with a monthly recurring
/// item and a pending one-time item.
#[derive(Clone, Debug)]
pub(crate) struct Book {
    pub tenant: TenantId,
    pub account: Account,
    pub plan: Plan,
    pub item: RecurringItem,
    pub one_time: OneTimeItem,
}

/// A [`Book`] for a new account `ext_id` of `tenant`; the item and one-time item
/// are named after it.
pub(crate) async fn book(store: &dyn Store, tenant: TenantId, ext_id: &str) -> Book {
    let account = insert_account(store, tenant, ext_id).await;
    let plan = insert_plan(
        store,
        tenant,
        &account,
        plan(&format!("{ext_id}-plan"), date(2025, 1, 1)),
    )
    .await;
    let item = insert_item(
        store,
        tenant,
        &plan,
        item(&format!("{ext_id}-item"), date(2025, 1, 1)),
    )
    .await;
    let one_time = insert_one_time(
        store,
        tenant,
        &plan,
        one_time(&format!("{ext_id}-once"), date(2025, 1, 15)),
    )
    .await;
    Book {
        tenant,
        account,
        plan,
        item,
        one_time,
    }
}

/// A line billing `item` for `[start, end)` at its first terms (10 × 0.5).
pub(crate) fn recurring_line(item: &RecurringItem, start: Date, end: Date) -> InvoiceLineRecord {
    InvoiceLineRecord {
        id: 0,
        line_type: LineType::Recurring,
        recurring_item_id: Some(item.id),
        one_time_item_id: None,
        item_ext_id: item.fields.ext_id.clone(),
        product_code: item.fields.product_code.clone(),
        description: format!("{} {start}..{end}", item.fields.name),
        quantity: dec!(10),
        unit_price: dec!(0.5),
        discount_percent: dec!(0),
        fraction: Some(dec!(1.000000000)),
        amount: dec!(5.00),
        service_start: start,
        service_end: end,
        period: Some((start, end)),
        tax_code: None,
        tax_amount: dec!(0.00),
        taxes: Vec::new(),
    }
}

/// A line billing the one-time `item` on its charge date.
pub(crate) fn one_time_line(item: &OneTimeItem) -> InvoiceLineRecord {
    let day = item.fields.charge_date;
    InvoiceLineRecord {
        id: 0,
        line_type: LineType::OneTime,
        recurring_item_id: None,
        one_time_item_id: Some(item.id),
        item_ext_id: item.fields.ext_id.clone(),
        product_code: item.fields.product_code.clone(),
        description: item.fields.name.clone(),
        quantity: item.fields.quantity,
        unit_price: item.fields.unit_price,
        discount_percent: dec!(0),
        fraction: None,
        amount: item.fields.quantity * item.fields.unit_price,
        service_start: day,
        service_end: day.tomorrow().expect("a date with a next day"),
        period: None,
        tax_code: None,
        tax_amount: dec!(0.00),
        taxes: Vec::new(),
    }
}

/// An invoice of `lines` dated `day`, due 14 days later, totalled from its lines.
pub(crate) fn new_invoice(
    status: InvoiceStatus,
    day: Date,
    lines: Vec<InvoiceLineRecord>,
) -> NewInvoice {
    let subtotal: Decimal = lines.iter().map(|l| l.amount).sum();
    NewInvoice {
        plan_id: None,
        status,
        invoice_date: day,
        due_date: day + jiff::Span::new().days(14),
        currency: Currency::USD,
        subtotal,
        tax_total: dec!(0.00),
        total: subtotal,
        credit_applied: dec!(0.00),
        credit_added: dec!(0.00),
        amount_due: subtotal,
        po_number: None,
        lines,
    }
}

/// The base ledger entry of `item`'s piece `[start, end)`.
pub(crate) fn base(item: &RecurringItem, start: Date, end: Date) -> LedgerEntry {
    LedgerEntry {
        item: item.id,
        period_start: start,
        period_end: end,
        entry: EntryKey::Base,
        base_seq: item.changes.last().map_or(0, |c| c.seq),
    }
}

/// A bill of `account` that leaves its credit balance as it is.
pub(crate) fn bill(
    account: &Account,
    invoices: Vec<NewInvoice>,
    ledger: Vec<(Option<usize>, LedgerEntry)>,
    one_time: Vec<(OneTimeItemId, usize)>,
) -> AccountBill {
    AccountBill {
        account: account.id,
        credit_balance_before: account.credit_balance,
        credit_balance_after: account.credit_balance,
        invoices,
        ledger,
        one_time,
    }
}

/// The book's January bill: one invoice (of `status`) billing the item's January
/// and the one-time item.
pub(crate) fn january_bill(book: &Book, status: InvoiceStatus) -> AccountBill {
    let (start, end) = (date(2025, 1, 1), date(2025, 2, 1));
    let lines = vec![
        recurring_line(&book.item, start, end),
        one_time_line(&book.one_time),
    ];
    bill(
        &book.account,
        vec![new_invoice(status, start, lines)],
        vec![(Some(0), base(&book.item, start, end))],
        vec![(book.one_time.id, 0)],
    )
}

/// A bill of `account` with one invoice (of `status`, dated `day`) billing `item`'s
/// piece `[start, end)`.
pub(crate) fn piece_bill(
    account: &Account,
    item: &RecurringItem,
    status: InvoiceStatus,
    (start, end): (Date, Date),
) -> AccountBill {
    bill(
        account,
        vec![new_invoice(
            status,
            start,
            vec![recurring_line(item, start, end)],
        )],
        vec![(Some(0), base(item, start, end))],
        Vec::new(),
    )
}

pub(crate) async fn find_invoice(store: &dyn Store, tenant: TenantId, id: InvoiceId) -> Invoice {
    store
        .find_invoice(tenant, id, true)
        .await
        .expect("finding an invoice")
        .expect("the invoice exists")
}

pub(crate) async fn find_account(store: &dyn Store, tenant: TenantId, id: AccountId) -> Account {
    store
        .find_account(tenant, &RecordKey::Id(id))
        .await
        .expect("finding an account")
        .expect("the account exists")
}

/// The IDs of every invoice matching `filter`, checking that `total` agrees.
pub(crate) async fn invoice_ids(
    store: &dyn Store,
    tenant: TenantId,
    filter: InvoiceFilter,
) -> Vec<i64> {
    let page = store
        .list_invoices(tenant, &filter, EVERYTHING, false)
        .await
        .expect("listing invoices");
    ids_of(&page, |i| i.id.0)
}

/// The unreleased ledger of `account`, as a bill run reads it, sorted.
pub(crate) async fn ledger_of(
    store: &dyn Store,
    tenant: TenantId,
    account: AccountId,
) -> Vec<LedgerEntry> {
    let mut snapshot = store
        .billing_snapshot(tenant, &[account])
        .await
        .expect("reading a billing snapshot");
    let mut ledger = snapshot
        .pop()
        .expect("the account is in its snapshot")
        .ledger;
    ledger.sort_by_key(|e| (e.item, e.period_start, e.entry));
    ledger
}

/// Puts `amount` of credit on the book's account with a posted credit note (which
/// takes the tenant's next invoice number).
pub(crate) async fn credit(store: &dyn Store, bk: &Book, amount: Decimal) {
    let (start, end) = (date(2024, 12, 1), date(2025, 1, 1));
    let mut note = new_invoice(
        InvoiceStatus::Posted,
        start,
        vec![InvoiceLineRecord {
            line_type: LineType::CancellationCredit,
            amount: -amount,
            ..recurring_line(&bk.item, start, end)
        }],
    );
    note.credit_added = amount;
    note.amount_due = dec!(0.00);
    let account = find_account(store, bk.tenant, bk.account.id).await;
    let crediting = AccountBill {
        credit_balance_after: account.credit_balance + amount,
        ..bill(&account, vec![note], Vec::new(), Vec::new())
    };
    store
        .commit_bill(bk.tenant, &crediting, "INV-", minutes(1))
        .await
        .expect("committing a credit note");
}

/// A plan cancellation from `date` that credits billed days past it (`CreditMode` 1).
pub fn credited(date: Date) -> dynabill_app::model::Cancellation {
    dynabill_app::model::Cancellation { date, credit: true }
}
