//! Builders and helpers the contract tests share: a fixed clock, tenants, records.

use dynabill_app::Store;
use dynabill_app::model::{
    Account, AccountFields, AccountFilter, ItemChange, ItemChangeKind, ItemFilter, ItemWrite,
    OneTimeItem, OneTimeItemFields, Page, PageRequest, Plan, PlanFields, PlanFilter, RecordKey,
    RecurringItem, RecurringItemFields,
};
use dynabill_app::store::{NewApiUser, NewTenant};
use dynabill_core::calendar::BillingPeriod;
use dynabill_core::domain::{
    AccountStatus, AccountType, BillingTiming, Country, DueDateMethod, InvoiceGrouping,
    OneTimeItemId, RecurringItemId, TenantId,
};
use dynabill_core::money::Currency;
use jiff::civil::Date;
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
        .find_recurring_item(tenant, &RecordKey::Id(id.0))
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
        .find_one_time_item(tenant, &RecordKey::Id(id.0))
        .await
        .expect("finding a one-time item")
        .expect("the one-time item exists")
}

/// The IDs of every recurring item matching `filter`, checking that `total` agrees.
pub(crate) async fn item_ids(store: &dyn Store, tenant: TenantId, filter: ItemFilter) -> Vec<i64> {
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
    filter: ItemFilter,
) -> Vec<i64> {
    let page = store
        .list_one_time_items(tenant, &filter, EVERYTHING)
        .await
        .expect("listing one-time items");
    ids_of(&page, |i| i.id.0)
}

/// Everything, deleted or not.
pub(crate) fn all_items() -> ItemFilter {
    ItemFilter {
        include_deleted: true,
        ..ItemFilter::default()
    }
}

/// An amount's text as stored and read back: the exact digits, no added scale.
pub(crate) fn text(amount: Option<Decimal>) -> Option<String> {
    amount.map(|d| d.to_string())
}
