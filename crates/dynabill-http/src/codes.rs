//! The wire contract's codes in one table: every `[ours]` value of SPEC.md lives
//! here, so that changing one is a one-line edit.

use axum::http::{Method, StatusCode};

/// `METHOD_ERROR` codes (SPEC §2). Sent with `API_STATUS` 1 and HTTP 200.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodError {
    /// `api_code` or `entity_code` missing [DealHub].
    MissingCodes,
    /// A mandatory field is missing.
    Missing,
    /// A field has the wrong type or a value outside its allowed values.
    Invalid,
    /// The record named (or a parent it refers to) does not exist in this tenant.
    NotFound,
    /// A uniqueness rule would break.
    Duplicate,
    /// Not allowed in the record's current state.
    NotAllowed,
    /// This `api_code` is not supported for this `entity_code`.
    Unsupported,
    /// An `Idempotency-Key` was reused with a different request.
    IdempotencyConflict,
}

impl MethodError {
    pub fn code(self) -> &'static str {
        match self {
            MethodError::MissingCodes => "0",
            MethodError::Missing => "1",
            MethodError::Invalid => "2",
            MethodError::NotFound => "3",
            MethodError::Duplicate => "4",
            MethodError::NotAllowed => "5",
            MethodError::Unsupported => "6",
            MethodError::IdempotencyConflict => "7",
        }
    }
}

/// The description DealHub sends with `METHOD_ERROR` "0", verbatim.
pub const MISSING_CODES_DESCRIPTION: &str = "API_CODE & ENTITY_CODE Must Get Value";

/// `API_ERROR` codes: failures of the API itself, each with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiError {
    BadRequest,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Internal,
    Unavailable,
}

impl ApiError {
    pub fn status(self) -> StatusCode {
        match self {
            ApiError::BadRequest => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `API_ERROR` string: the HTTP status's digits.
    pub fn code(self) -> &'static str {
        match self {
            ApiError::BadRequest => "400",
            ApiError::Unauthorized => "401",
            ApiError::NotFound => "404",
            ApiError::MethodNotAllowed => "405",
            ApiError::PayloadTooLarge => "413",
            ApiError::UnsupportedMediaType => "415",
            ApiError::TooManyRequests => "429",
            ApiError::Internal => "500",
            ApiError::Unavailable => "503",
        }
    }
}

/// `entity_code` values (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityCode {
    Account,
    Plan,
    OneTimeItem,
    RecurringItem,
    Invoice,
}

impl EntityCode {
    pub fn from_code(code: i64) -> Option<EntityCode> {
        match code {
            69 => Some(EntityCode::Account),
            71 => Some(EntityCode::Plan),
            75 => Some(EntityCode::OneTimeItem),
            110 => Some(EntityCode::RecurringItem),
            119 => Some(EntityCode::Invoice),
            _ => None,
        }
    }
}

/// `api_code` values (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiCode {
    List,
    Upsert,
    Delete,
    Renew,
    Upsell,
    Cancel,
    ChangeDates,
    TaxLines,
    UpdateTax,
}

impl ApiCode {
    pub fn from_code(code: i64) -> Option<ApiCode> {
        match code {
            3 => Some(ApiCode::List),
            10 => Some(ApiCode::Upsert),
            11 => Some(ApiCode::Delete),
            12 => Some(ApiCode::Renew),
            13 => Some(ApiCode::Upsell),
            14 => Some(ApiCode::Cancel),
            15 => Some(ApiCode::ChangeDates),
            1007 => Some(ApiCode::TaxLines),
            1008 => Some(ApiCode::UpdateTax),
            _ => None,
        }
    }

    /// The HTTP method every operation of this code is called with.
    pub fn method(self) -> Method {
        match self {
            ApiCode::List | ApiCode::TaxLines => Method::GET,
            ApiCode::Upsert
            | ApiCode::Delete
            | ApiCode::Renew
            | ApiCode::Upsell
            | ApiCode::Cancel
            | ApiCode::ChangeDates
            | ApiCode::UpdateTax => Method::POST,
        }
    }
}

/// The operations this server performs, one per supported code pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    ListAccounts,
    UpsertAccount,
    DeleteAccount,
    ListPlans,
    UpsertPlan,
    DeletePlan,
    CancelPlan,
    RenewPlan,
    ListRecurringItems,
    UpsertRecurringItem,
    DeleteRecurringItem,
    RenewRecurringItem,
    UpsellRecurringItem,
    CancelRecurringItem,
    ChangeRecurringItemDates,
    ListOneTimeItems,
    UpsertOneTimeItem,
    DeleteOneTimeItem,
    ListInvoices,
    UpdateInvoice,
    CancelInvoice,
    ListPendingTaxLines,
    UpdateInvoiceTax,
}

/// What a code pair means here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A pair of the contract, served by this operation.
    Served(ApiCode, Operation),
    /// Not a pair of the contract.
    Unknown,
}

/// The routing table: SPEC §3's pairs, each served or not yet built.
pub fn route(api_code: i64, entity_code: i64) -> Route {
    use ApiCode as A;
    use EntityCode as E;
    use Operation as O;
    let (Some(api), Some(entity)) = (
        ApiCode::from_code(api_code),
        EntityCode::from_code(entity_code),
    ) else {
        return Route::Unknown;
    };
    let served = |op| Route::Served(api, op);
    match (api, entity) {
        (A::List, E::Account) => served(O::ListAccounts),
        (A::Upsert, E::Account) => served(O::UpsertAccount),
        (A::Delete, E::Account) => served(O::DeleteAccount),
        (A::List, E::Plan) => served(O::ListPlans),
        (A::Upsert, E::Plan) => served(O::UpsertPlan),
        (A::Delete, E::Plan) => served(O::DeletePlan),
        (A::Cancel, E::Plan) => served(O::CancelPlan),
        (A::Renew, E::Plan) => served(O::RenewPlan),
        (A::List, E::RecurringItem) => served(O::ListRecurringItems),
        (A::Upsert, E::RecurringItem) => served(O::UpsertRecurringItem),
        (A::Delete, E::RecurringItem) => served(O::DeleteRecurringItem),
        (A::Renew, E::RecurringItem) => served(O::RenewRecurringItem),
        (A::Upsell, E::RecurringItem) => served(O::UpsellRecurringItem),
        (A::Cancel, E::RecurringItem) => served(O::CancelRecurringItem),
        (A::ChangeDates, E::RecurringItem) => served(O::ChangeRecurringItemDates),
        (A::List, E::OneTimeItem) => served(O::ListOneTimeItems),
        (A::Upsert, E::OneTimeItem) => served(O::UpsertOneTimeItem),
        (A::Delete, E::OneTimeItem) => served(O::DeleteOneTimeItem),
        (A::List, E::Invoice) => served(O::ListInvoices),
        (A::Upsert, E::Invoice) => served(O::UpdateInvoice),
        (A::Cancel, E::Invoice) => served(O::CancelInvoice),
        (A::TaxLines, E::Invoice) => served(O::ListPendingTaxLines),
        (A::UpdateTax, E::Invoice) => served(O::UpdateInvoiceTax),
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_of_the_contract_is_recognised() {
        let pairs: &[(i64, &[i64])] = &[
            (3, &[69, 71, 75, 110, 119]),
            (10, &[69, 71, 75, 110, 119]),
            (11, &[69, 71, 75, 110]),
            (12, &[110, 71]),
            (13, &[110]),
            (14, &[110, 71, 119]),
            (15, &[110]),
            (1007, &[119]),
            (1008, &[119]),
        ];
        for (api, entities) in pairs {
            for entity in *entities {
                assert_ne!(route(*api, *entity), Route::Unknown, "{api}/{entity}");
            }
        }
        assert_eq!(route(11, 119), Route::Unknown);
        assert_eq!(route(13, 69), Route::Unknown);
        assert_eq!(route(4, 69), Route::Unknown);
        assert_eq!(route(3, 70), Route::Unknown);
    }
}
