//! The storage traits. Each backend crate implements all of them; the contract
//! suite in `dynabill-store-contract` holds both backends to the same behaviour.

use async_trait::async_trait;
use dynabill_core::domain::{
    AccountId, InvoiceId, OneTimeItemId, PlanId, RecurringItemId, TaxRateId, TenantId,
};
use dynabill_core::tax::TaxRule;
use jiff::Timestamp;
use jiff::civil::Date;

use crate::model::{
    Account, AccountBill, AccountFields, AccountFilter, BillingAccount, Cancellation,
    ClaimedDelivery, CreditMove, DeliveryFilter, DeliveryNext, Event, EventFilter, Invoice,
    InvoiceFilter, InvoiceLineRecord, InvoiceUpdate, ItemChange, ItemFilter, ItemWrite,
    NewDelivery, OneTimeItem, OneTimeItemFields, OneTimeMark, Page, PageRequest, Plan, PlanFields,
    PlanFilter, PostInvoice, RecordKey, RecurringItem, RecurringItemFields, TaxRateRecord,
    WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEndpointFields,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The tenant already has a record of this entity with that `ExtID` (deleted ones count).
    #[error("ExtID already taken")]
    ExtIdTaken,
    /// The tenant already has an API user of that name.
    #[error("user name already taken")]
    UserNameTaken,
    /// Another tenant has that app key.
    #[error("app key already taken")]
    AppKeyTaken,
    /// The record changed (or vanished) since it was read.
    #[error("record changed since it was read")]
    Stale,
    /// The change is refused in the records' current state (error "5"); the message
    /// says why, for the caller.
    #[error("{0}")]
    NotAllowed(String),
    /// The database cannot be reached, or no connection came free in time.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A new tenant and its first API user, written together.
#[derive(Clone, Debug)]
pub struct NewTenant {
    pub app_key: String,
    pub name: String,
    pub currency: String,
    pub time_zone: String,
}

/// An API user's stored credential: never the token, only its SHA-256.
#[derive(Clone, Debug)]
pub struct NewApiUser {
    pub user_name: String,
    pub token_hash: [u8; 32],
}

/// A tenant as stored, before its currency, time zone and settings are parsed.
#[derive(Clone, Debug)]
pub struct StoredTenant {
    pub id: TenantId,
    pub app_key: String,
    pub name: String,
    pub currency: String,
    pub time_zone: String,
    pub auto_post: bool,
    pub invoice_prefix: String,
    pub bill_run_hour: i64,
    /// `ProrationPolicy` code.
    pub proration_policy: i64,
    /// 1 half-up, 2 half-even.
    pub rounding: i64,
    /// `TaxMode` code.
    pub tax_mode: i64,
    pub avatax_url: Option<String>,
    pub avatax_account_id: Option<String>,
    pub avatax_license_key: Option<String>,
    pub avatax_company_code: Option<String>,
    pub test_today: Option<Date>,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// `AppKeyTaken` when another tenant has the app key (and nothing is written).
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        user: &NewApiUser,
        now: Timestamp,
    ) -> StoreResult<StoredTenant>;
    /// `UserNameTaken` when the tenant has an API user of that name.
    async fn add_api_user(
        &self,
        tenant: TenantId,
        user: &NewApiUser,
        now: Timestamp,
    ) -> StoreResult<()>;
    async fn tenant_by_app_key(&self, app_key: &str) -> StoreResult<Option<StoredTenant>>;
    /// The tenant and the stored token hash of one of its users, in one lookup.
    async fn credential(
        &self,
        app_key: &str,
        user_name: &str,
    ) -> StoreResult<Option<(StoredTenant, [u8; 32])>>;
    async fn tenant_count(&self) -> StoreResult<i64>;
    /// Every tenant, oldest first.
    async fn list_tenants(&self) -> StoreResult<Vec<StoredTenant>>;
    /// Writes a tenant's settings and time zone (already validated).
    async fn update_tenant_settings(&self, tenant: TenantId, row: &StoredTenant)
    -> StoreResult<()>;
    /// Sets (or clears) the tenant's test-clock date, and forgets which day's
    /// scheduled run was taken (so the scheduler runs the new date).
    async fn set_test_today(&self, tenant: TenantId, today: Option<Date>) -> StoreResult<()>;
    /// Records that the scheduled bill run for `date` is taken, unless it already
    /// was (by this or another server): true for exactly one caller per date.
    async fn claim_scheduled_run(&self, tenant: TenantId, date: Date) -> StoreResult<bool>;
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Fails with `ExtIdTaken` when the tenant has an account with that `ExtID`.
    async fn insert_account(
        &self,
        tenant: TenantId,
        fields: &AccountFields,
        now: Timestamp,
    ) -> StoreResult<Account>;
    /// Writes `fields` if the account is still at `version`, else `Stale`.
    async fn update_account(
        &self,
        tenant: TenantId,
        id: AccountId,
        version: i64,
        fields: &AccountFields,
        now: Timestamp,
    ) -> StoreResult<Account>;
    /// Finds an account, deleted or not.
    async fn find_account(
        &self,
        tenant: TenantId,
        key: &RecordKey<AccountId>,
    ) -> StoreResult<Option<Account>>;
    async fn list_accounts(
        &self,
        tenant: TenantId,
        filter: &AccountFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Account>>;
    /// Up to `limit` live accounts whose `ExtID` is `text`, whose e-mail is
    /// `text` (any case), or whose name starts with `text` (any case), by name.
    async fn search_accounts(
        &self,
        tenant: TenantId,
        text: &str,
        limit: u32,
    ) -> StoreResult<Vec<Account>>;
    /// In one transaction: cancels the account's active plans from `cancel_date`
    /// (with their items, as [`PlanStore::cancel_plan`] does) and marks the account
    /// deleted, if it is still at `version`.
    async fn delete_account(
        &self,
        tenant: TenantId,
        id: AccountId,
        version: i64,
        cancel_date: Date,
        now: Timestamp,
    ) -> StoreResult<Account>;
}

#[async_trait]
pub trait PlanStore: Send + Sync {
    /// Fails with `Stale` unless `account` is a live (not deleted) account of the
    /// tenant, and with `ExtIdTaken` when the tenant has a plan with that `ExtID`.
    async fn insert_plan(
        &self,
        tenant: TenantId,
        account: AccountId,
        fields: &PlanFields,
        now: Timestamp,
    ) -> StoreResult<Plan>;
    async fn update_plan(
        &self,
        tenant: TenantId,
        id: PlanId,
        version: i64,
        fields: &PlanFields,
        now: Timestamp,
    ) -> StoreResult<Plan>;
    /// Finds a plan, deleted or not.
    async fn find_plan(
        &self,
        tenant: TenantId,
        key: &RecordKey<PlanId>,
    ) -> StoreResult<Option<Plan>>;
    /// Lists plans; `today` decides the derived `PlanStatus` the filter may name.
    async fn list_plans(
        &self,
        tenant: TenantId,
        filter: &PlanFilter,
        today: Date,
        page: PageRequest,
    ) -> StoreResult<Page<Plan>>;
    /// Cancels the plan from `cancellation.date` if it is still at `version`, and with
    /// it, in the same transaction, its items (the cascade rule):
    /// - every recurring item not deleted, not cancelled and not ended by then is
    ///   cancelled from the later of its start and that date, with the
    ///   cancellation's credit mode (deletes always credit), and a
    ///   `Cancellation` entry (dated so, recorded `now`) joins its history;
    /// - every pending one-time item (not invoiced, cancelled or deleted) charged on
    ///   or after `cancel_date` is cancelled.
    async fn cancel_plan(
        &self,
        tenant: TenantId,
        id: PlanId,
        version: i64,
        cancellation: Cancellation,
        now: Timestamp,
    ) -> StoreResult<Plan>;
    /// Marks the plan deleted (cancelling it and its items from `cancel_date`, as
    /// [`PlanStore::cancel_plan`] does, if still active).
    async fn delete_plan(
        &self,
        tenant: TenantId,
        id: PlanId,
        version: i64,
        cancel_date: Date,
        now: Timestamp,
    ) -> StoreResult<Plan>;
}

#[async_trait]
pub trait RecurringItemStore: Send + Sync {
    /// Inserts an item and its first history entry. `ExtIdTaken` when the tenant
    /// has a recurring item with that `ExtID`; `Stale` when the plan is not a live,
    /// uncancelled plan of this tenant (checked in the insert's transaction, so an
    /// item never lands on a plan cancelled meanwhile).
    async fn insert_recurring_item(
        &self,
        tenant: TenantId,
        plan: PlanId,
        fields: &RecurringItemFields,
        created: &ItemChange,
        now: Timestamp,
    ) -> StoreResult<RecurringItem>;
    /// In one transaction: the plan's new fields (if given, at its version: a
    /// renewal of the plan, which the store counts and its event says) and every
    /// item write (each at its version, appending its history entry). `Stale` (and
    /// nothing written) if any record changed meanwhile.
    async fn write_recurring_items(
        &self,
        tenant: TenantId,
        plan: Option<(PlanId, i64, &PlanFields)>,
        writes: &[ItemWrite],
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Finds an item (deleted or not) with its whole history.
    async fn find_recurring_item(
        &self,
        tenant: TenantId,
        key: &RecordKey<RecurringItemId>,
    ) -> StoreResult<Option<RecurringItem>>;
    async fn list_recurring_items(
        &self,
        tenant: TenantId,
        filter: &ItemFilter<RecurringItemId>,
        page: PageRequest,
    ) -> StoreResult<Page<RecurringItem>>;
}

#[async_trait]
pub trait OneTimeItemStore: Send + Sync {
    /// `ExtIdTaken` when the tenant has a one-time item with that `ExtID`; `Stale`
    /// when the plan is not a live plan of this tenant.
    async fn insert_one_time_item(
        &self,
        tenant: TenantId,
        plan: PlanId,
        fields: &OneTimeItemFields,
        now: Timestamp,
    ) -> StoreResult<OneTimeItem>;
    /// Writes the item if it is still at `version`, and marks it as `mark` says.
    async fn update_one_time_item(
        &self,
        tenant: TenantId,
        id: OneTimeItemId,
        version: i64,
        fields: &OneTimeItemFields,
        mark: OneTimeMark,
        now: Timestamp,
    ) -> StoreResult<OneTimeItem>;
    async fn find_one_time_item(
        &self,
        tenant: TenantId,
        key: &RecordKey<OneTimeItemId>,
    ) -> StoreResult<Option<OneTimeItem>>;
    async fn list_one_time_items(
        &self,
        tenant: TenantId,
        filter: &ItemFilter<OneTimeItemId>,
        page: PageRequest,
    ) -> StoreResult<Page<OneTimeItem>>;
}

#[async_trait]
pub trait BillingStore: Send + Sync {
    /// IDs of billable accounts (Active or Billing issues, not deleted) above
    /// `after`, in ID order, at most `limit`.
    async fn billable_accounts(
        &self,
        tenant: TenantId,
        after: Option<AccountId>,
        limit: u32,
    ) -> StoreResult<Vec<AccountId>>;
    /// What a bill run needs of these accounts, read consistently.
    async fn billing_snapshot(
        &self,
        tenant: TenantId,
        accounts: &[AccountId],
    ) -> StoreResult<Vec<BillingAccount>>;
    /// Commits the bills of several accounts in one transaction: for each, its
    /// invoices and lines, its ledger entries (the database refuses an entry already
    /// billed: `Stale`), its one-time items marked invoiced (`Stale` if one no longer
    /// is pending), its items' charged-through dates, its credit balance (`Stale` if
    /// it moved from `credit_balance_before`), and numbers for the invoices posted
    /// (`prefix` + the tenant's next gap-free sequence numbers, in bill order). All of
    /// it or nothing: on `Stale` nothing is written, and the caller commits the
    /// accounts one by one to find which one changed. Returns the new invoices' IDs,
    /// per bill, in the order of its `invoices`.
    async fn commit_bills(
        &self,
        tenant: TenantId,
        bills: &[AccountBill],
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<Vec<InvoiceId>>>;

    /// Commits one account's bill in one transaction (see [`Self::commit_bills`]).
    async fn commit_bill(
        &self,
        tenant: TenantId,
        bill: &AccountBill,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<InvoiceId>> {
        let mut ids = self
            .commit_bills(tenant, std::slice::from_ref(bill), prefix, now)
            .await?;
        Ok(ids.pop().unwrap_or_default())
    }
}

/// A bill run shared by processes: the row that several `dynabill bill-run`
/// processes (or schedulers) for one tenant and date join, and whose batches of
/// accounts they claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BillRunId(pub i64);

/// The times a bill run's claims are made with: now, and how long a claim lasts
/// without being renewed.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    pub now: Timestamp,
    pub length: std::time::Duration,
}

/// What a claim for a bill run's next batch found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The accounts `after < id <= last` are this owner's to bill (`accounts`,
    /// the billable ones among them, in ID order). `taken_over`: the batch was
    /// claimed before by an owner whose lease expired.
    Batch {
        after: AccountId,
        last: AccountId,
        accounts: Vec<AccountId>,
        taken_over: bool,
    },
    /// No account is left to claim, but other owners hold batches not done yet;
    /// the earliest of their leases ends at `until` (claim again then, to take it
    /// over if it was not renewed).
    Wait { until: Timestamp },
    /// No account is left to claim and no other owner holds a batch.
    Done,
}

/// What billing a claimed batch came to, recorded with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub accounts: u64,
    pub invoices: u64,
}

/// Bill runs shared by several processes: batches of accounts are claimed with a
/// lease in the database, renewed while their owner lives, and taken over by
/// another owner when it expires. The lease divides the work; correctness does not
/// rest on it (a piece is billed once whoever bills it: see [`BillingStore`]).
#[async_trait]
pub trait BillRunStore: Send + Sync {
    /// Joins the unfinished run of `tenant` for `date` if it is live (a
    /// participant renewed it within its lease); otherwise starts a new one (a dead
    /// one is marked abandoned first: the new run reads every account again).
    /// True in the second member when this call started the run.
    async fn open_bill_run(
        &self,
        tenant: TenantId,
        date: Date,
        lease: Lease,
    ) -> StoreResult<(BillRunId, bool)>;
    /// Joins the unfinished run of `tenant` for `date`, live or not; `None` if
    /// there is none.
    async fn join_bill_run(
        &self,
        tenant: TenantId,
        date: Date,
        lease: Lease,
    ) -> StoreResult<Option<BillRunId>>;
    /// Claims a batch for `owner`: first a batch whose owner's lease expired, else
    /// the next `size` billable accounts after the last batch claimed.
    async fn claim_batch(
        &self,
        tenant: TenantId,
        run: BillRunId,
        owner: &str,
        size: u32,
        lease: Lease,
    ) -> StoreResult<Claim>;
    /// Renews the run and every batch `owner` holds in it.
    async fn renew_bill_run_leases(
        &self,
        run: BillRunId,
        owner: &str,
        lease: Lease,
    ) -> StoreResult<()>;
    /// Records the batch starting after `after` as done, if `owner` still holds
    /// it; false if another owner took it over meanwhile.
    async fn finish_batch(
        &self,
        run: BillRunId,
        after: AccountId,
        owner: &str,
        outcome: BatchOutcome,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Marks the run finished if no batch of it is left undone; true if this call did.
    async fn finish_bill_run(&self, run: BillRunId, now: Timestamp) -> StoreResult<bool>;
}

#[async_trait]
pub trait InvoiceStore: Send + Sync {
    async fn find_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        with_lines: bool,
    ) -> StoreResult<Option<Invoice>>;
    async fn list_invoices(
        &self,
        tenant: TenantId,
        filter: &InvoiceFilter,
        page: PageRequest,
        with_lines: bool,
    ) -> StoreResult<Page<Invoice>>;
    /// The lines of the tenant's invoices in Pending Tax (of the one named, if
    /// any), a page of them in line ID order, each with its invoice (without its
    /// lines): the rows of 1007/119 and `GET /v1/tax/pending-lines`, paged and
    /// counted by line.
    async fn pending_tax_lines(
        &self,
        tenant: TenantId,
        invoice: Option<InvoiceId>,
        page: PageRequest,
    ) -> StoreResult<Page<(Invoice, InvoiceLineRecord)>>;
    /// Applies `update` if the invoice is still at `version`; a move to Posted takes
    /// the tenant's next invoice number (`prefix` + sequence) in the same transaction.
    async fn update_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        version: i64,
        update: &InvoiceUpdate,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Invoice>;
    /// Cancels the invoice (at `version`) with `reason`, in one transaction:
    /// restores the account's credit (`balance`, `Stale` if it moved) and, with
    /// `rebill`, returns its one-time items to Pending and, for each piece (item and
    /// period) it billed or adjusted, releases every ledger entry from its first one
    /// on (its own, settlements that made no line, entries on invoices cancelled
    /// since), so the next bill run bills them afresh, as if the invoice had never
    /// existed. `NotAllowed` (nothing written) while another live invoice holds a
    /// later entry of one of those pieces: it must be cancelled with rebill first.
    #[expect(
        clippy::too_many_arguments,
        reason = "one conditional write of its parts"
    )]
    async fn cancel_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        version: i64,
        reason: Option<&str>,
        rebill: bool,
        balance: CreditMove,
        now: Timestamp,
    ) -> StoreResult<Invoice>;
    /// Moves a Draft or Pending Tax invoice (at `version`) on, in one transaction:
    /// replaces every line's taxes with `post.line_taxes` (lines not named get
    /// none), writes the totals, moves the account's credit (`Stale` if it moved),
    /// clears any tax error, and, when the new status is Posted, takes the
    /// tenant's next invoice number.
    async fn post_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        version: i64,
        post: &PostInvoice,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Invoice>;
    /// Records a failed attempt to tax a Pending Tax invoice, and when to try again.
    async fn record_tax_error(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        error: &str,
        next_attempt: Timestamp,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Marks the tenant's Posted invoices whose due date is before `today` overdue
    /// as of `today` (each once: its `invoice.overdue` event). Returns how many.
    async fn mark_overdue(&self, tenant: TenantId, today: Date, now: Timestamp)
    -> StoreResult<u64>;
    /// Whether the account has any invoice that is not cancelled.
    async fn account_has_invoices(&self, tenant: TenantId, account: AccountId)
    -> StoreResult<bool>;
    /// Whether the account has an unpaid issued invoice (Pending Tax or Posted).
    async fn account_has_unpaid_invoices(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// A page of the tenant's events that `filter` selects, by sequence (a page's
    /// `after` is a sequence number).
    async fn list_events(
        &self,
        tenant: TenantId,
        filter: &EventFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Event>>;
    async fn find_event(&self, tenant: TenantId, id: &str) -> StoreResult<Option<Event>>;
    /// The newest `limit` events of these records (object type, ID), newest
    /// first, in one read (a record's timeline).
    async fn recent_events(
        &self,
        tenant: TenantId,
        records: &[(&str, i64)],
        limit: u32,
    ) -> StoreResult<Vec<Event>>;
}

/// The webhooks of tenants: their endpoints, and the deliveries of their events.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// A new endpoint, sent the events numbered after the tenant's last one.
    async fn insert_webhook_endpoint(
        &self,
        tenant: TenantId,
        fields: &WebhookEndpointFields,
        secret: &str,
        now: Timestamp,
    ) -> StoreResult<WebhookEndpoint>;
    /// The tenant's endpoints (not removed ones), oldest first.
    async fn list_webhook_endpoints(&self, tenant: TenantId) -> StoreResult<Vec<WebhookEndpoint>>;
    async fn find_webhook_endpoint(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> StoreResult<Option<WebhookEndpoint>>;
    /// Writes the endpoint's fields at `version` (`Stale` if it moved); enabling
    /// it clears why it was disabled.
    async fn update_webhook_endpoint(
        &self,
        tenant: TenantId,
        id: i64,
        version: i64,
        fields: &WebhookEndpointFields,
        now: Timestamp,
    ) -> StoreResult<WebhookEndpoint>;
    /// Removes the endpoint; its pending deliveries fail. False if there was none.
    async fn remove_webhook_endpoint(
        &self,
        tenant: TenantId,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// A new secret; the current one keeps signing until `previous_until`.
    async fn rotate_webhook_secret(
        &self,
        tenant: TenantId,
        id: i64,
        secret: &str,
        previous_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<WebhookEndpoint>>;
    /// Deliveries to send now to the endpoint (a test, a recovery).
    async fn insert_deliveries(
        &self,
        tenant: TenantId,
        endpoint: i64,
        deliveries: &[NewDelivery],
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Enabled endpoints of every tenant that have events to fan out.
    async fn endpoints_behind(&self) -> StoreResult<Vec<(TenantId, WebhookEndpoint)>>;
    /// In one transaction: the deliveries of the events after `from` up to `to`,
    /// and the endpoint's cursor moved from `from` to `to`. False (and nothing
    /// written) if another worker moved it first.
    async fn fan_out(
        &self,
        tenant: TenantId,
        endpoint: i64,
        from: i64,
        to: i64,
        deliveries: &[NewDelivery],
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// When the earliest pending delivery is due (`None`: nothing is pending): a
    /// read, so that an idle worker never takes SQLite's write lock.
    async fn next_delivery_due(&self) -> StoreResult<Option<Timestamp>>;
    /// Claims up to `limit` pending deliveries due by `now` (or, for the tenants
    /// listed, by their own cutoff: the test clock), not claimed by a live lease,
    /// for `owner` until `lease_until`.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        cutoffs: &[(TenantId, Timestamp)],
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Gives back `owner`'s claims on deliveries it did not send (no attempt).
    async fn release_deliveries(&self, ids: &[i64], owner: &str) -> StoreResult<()>;
    /// Records an attempt of a delivery `owner` holds, and what comes next: the
    /// delivery, and the endpoint's health. False if the lease was lost.
    async fn record_attempt(
        &self,
        delivery: &ClaimedDelivery,
        owner: &str,
        attempt: &WebhookAttempt,
        next: &DeliveryNext,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// A page of the tenant's deliveries, oldest first (a page's `after`
    /// is a delivery ID).
    async fn list_webhook_deliveries(
        &self,
        tenant: TenantId,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> StoreResult<Page<WebhookDelivery>>;
    /// One delivery with its attempts.
    async fn find_webhook_delivery(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> StoreResult<Option<WebhookDelivery>>;
    /// Makes the delivery pending and due now (its attempts so far are kept).
    async fn retry_webhook_delivery(
        &self,
        tenant: TenantId,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait TaxRateStore: Send + Sync {
    async fn add_tax_rate(&self, tenant: TenantId, rule: &TaxRule) -> StoreResult<TaxRateRecord>;
    /// The tenant's rules, oldest first.
    async fn list_tax_rates(&self, tenant: TenantId) -> StoreResult<Vec<TaxRateRecord>>;
    /// True if the rule existed.
    async fn remove_tax_rate(&self, tenant: TenantId, id: TaxRateId) -> StoreResult<bool>;
}

/// What became of a request carrying an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First sight of the key (or an expired one, or an abandoned claim of the
    /// same request): the caller runs the request.
    Claimed,
    /// The key was used with this same request: here is the response it got.
    Replay { status: u16, body: Vec<u8> },
    /// The key was used with a different request.
    Mismatch,
    /// The same request is being processed right now (its lease is held).
    InFlight,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Atomically claims `key` for a request with `request_hash`, held until
    /// `lease_until`. A record created before `expired_before` counts as absent
    /// and is replaced; a claim of the same request that was never completed and
    /// whose lease ran out before `now` (its server died) is taken over.
    async fn claim_idempotency_key(
        &self,
        tenant: TenantId,
        key: &str,
        request_hash: &[u8; 32],
        now: Timestamp,
        lease_until: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<IdempotencyClaim>;
    /// Extends the lease of a claim still running; false when it is no longer
    /// held (completed, released or purged).
    async fn renew_idempotency_claim(
        &self,
        tenant: TenantId,
        key: &str,
        lease_until: Timestamp,
    ) -> StoreResult<bool>;
    /// Stores the response of a claimed request, for replays.
    async fn complete_idempotency_key(
        &self,
        tenant: TenantId,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()>;
    /// Gives a claimed key up (the request failed in a way a retry may fix).
    async fn release_idempotency_key(&self, tenant: TenantId, key: &str) -> StoreResult<()>;
    /// Deletes records created before `before`; returns how many.
    async fn purge_idempotency_keys(&self, before: Timestamp) -> StoreResult<u64>;
}

/// Where a stored secret lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretPlace {
    /// A tenant's AvaTax license key.
    AvaTaxLicenseKey(TenantId),
    /// A webhook endpoint's signing secret.
    WebhookSecret(i64),
    /// A webhook endpoint's signing secret before its last rotation.
    WebhookPreviousSecret(i64),
    /// The key check: a known text sealed with the server's key.
    KeyCheck,
}

/// A secret as stored: sealed, or in plain text by a version before sealing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSecret {
    pub place: SecretPlace,
    pub value: String,
}

/// A stored secret to replace: `to` where `from` is still stored.
#[derive(Clone, Debug)]
pub struct SecretChange {
    pub place: SecretPlace,
    pub from: String,
    pub to: String,
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Every secret stored, of every tenant.
    async fn stored_secrets(&self) -> StoreResult<Vec<StoredSecret>>;
    /// Replaces each secret still stored as its `from` by its `to`, all in one
    /// transaction; returns how many were replaced (a secret changed meanwhile,
    /// by a rotation, is left as it is).
    async fn replace_secrets(&self, changes: &[SecretChange]) -> StoreResult<u64>;
    /// Stores the key check unless one is stored; true when this one was.
    async fn add_key_check(&self, sealed: &str) -> StoreResult<bool>;
}

/// Everything the application needs from a database.
#[async_trait]
pub trait Store:
    TenantStore
    + AccountStore
    + PlanStore
    + RecurringItemStore
    + OneTimeItemStore
    + BillingStore
    + BillRunStore
    + InvoiceStore
    + TaxRateStore
    + IdempotencyStore
    + EventStore
    + WebhookStore
    + SecretStore
{
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Whether several transactions can write at once (PostgreSQL; not SQLite's
    /// single writer).
    fn parallel_writes(&self) -> bool;
    /// A cheap round trip, for health checks.
    async fn ping(&self) -> StoreResult<()>;
    /// What metrics show of storage now: its pools and the webhook backlog.
    async fn gauges(&self) -> StoreResult<StoreGauges>;
    /// Waits for in-flight work and closes connections.
    async fn close(&self);
}

/// A connection pool's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolGauge {
    pub name: &'static str,
    /// Connections open (in use or idle).
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// What metrics show of storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreGauges {
    pub pools: Vec<PoolGauge>,
    /// Webhook deliveries waiting to be sent.
    pub webhook_backlog: i64,
    /// Connections taken from the pools so far (with their `BEGIN`, for a
    /// transaction), the microseconds spent waiting for them, and the takes that
    /// failed (no connection in time, or none to be made).
    pub acquired: u64,
    pub waited_us: u64,
    pub failed_acquires: u64,
}
