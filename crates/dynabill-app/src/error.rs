//! The one error type of the use cases, and the vocabulary it names fields with.

use crate::store::StoreError;

/// A field a use case can blame. The HTTP crate maps each to its wire name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Id,
    ExtId,
    AccountName,
    AccountType,
    AccountStatus,
    Email,
    Currency,
    AccountId,
    AccountExtId,
    StartDate,
    EndDate,
    BillingDay,
    RenewalTermMonths,
    CancelDate,
    IdempotencyKey,
    PlanId,
    PlanExtId,
    ProductCode,
    ItemName,
    Quantity,
    UnitPrice,
    DiscountPercent,
    BillingPeriod,
    BillingPeriodCount,
    BillingTiming,
    ChargeDate,
    EffectiveDate,
    TenantName,
    InvoicePrefix,
    TaxMode,
    AvaTaxUrl,
    TaxRate,
    TaxName,
    Country,
    TaxAmount,
    InvoiceLineId,
    BillRunHour,
    InvoiceStatus,
    DueDate,
    PaidDate,
    TimeZone,
    UserName,
    Url,
    EventTypes,
    Since,
    /// Insights: the first month of a movements report.
    From,
    /// Insights: the renewals window.
    WithinDays,
}

/// The kinds of records a use case can fail to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    Account,
    Plan,
    RecurringItem,
    OneTimeItem,
    Invoice,
    Event,
    WebhookEndpoint,
    WebhookDelivery,
}

impl Entity {
    pub fn noun(self) -> &'static str {
        match self {
            Entity::Account => "account",
            Entity::Plan => "plan",
            Entity::RecurringItem => "recurring item",
            Entity::OneTimeItem => "one-time item",
            Entity::Invoice => "invoice",
            Entity::Event => "event",
            Entity::WebhookEndpoint => "webhook endpoint",
            Entity::WebhookDelivery => "webhook delivery",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A field required for this operation is absent (wire code "1").
    #[error("{field:?} is required {context}")]
    Missing { field: Field, context: &'static str },
    /// A field's value is of the wrong type or out of range (wire code "2").
    /// `reason` is a predicate completing the field's name: "must be after StartDate".
    #[error("{field:?} {reason}")]
    Invalid { field: Field, reason: String },
    /// The record named does not exist in this tenant (wire code "3").
    #[error("no {} with {field:?} {value:?}", entity.noun())]
    NotFound {
        entity: Entity,
        field: Field,
        value: String,
    },
    /// A uniqueness rule would break (wire code "4"). `reason` is a whole sentence.
    #[error("{reason}")]
    Duplicate { field: Field, reason: String },
    /// Not allowed in the record's current state (wire code "5"); a whole sentence.
    #[error("{0}")]
    NotAllowed(String),
    /// An `Idempotency-Key` reused with another request, or still in flight (wire code "7").
    #[error("{0}")]
    IdempotencyConflict(&'static str),
    /// The database cannot be reached or is overloaded.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn invalid(field: Field, reason: impl Into<String>) -> AppError {
        AppError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub fn not_found(entity: Entity, field: Field, value: impl ToString) -> AppError {
        AppError::NotFound {
            entity,
            field,
            value: value.to_string(),
        }
    }
}

impl From<dynabill_core::calendar::CalendarError> for AppError {
    /// Calendar errors reaching a use case are dates beyond the calendar's range,
    /// which the door's date limits should have stopped: unexpected.
    fn from(e: dynabill_core::calendar::CalendarError) -> AppError {
        AppError::Internal(anyhow::Error::new(e))
    }
}

impl From<StoreError> for AppError {
    /// Store errors whose meaning depends on the use case (a taken `ExtID`, a stale
    /// version) are handled there; what reaches this conversion is unexpected.
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::Unavailable(msg) => AppError::Unavailable(msg),
            StoreError::NotAllowed(msg) => AppError::NotAllowed(msg),
            other => AppError::Internal(anyhow::Error::new(other)),
        }
    }
}
