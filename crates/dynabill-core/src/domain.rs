//! Value types shared by every layer: identifiers, statuses, and parsed contact data.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                $name(id)
            }
        }
    )*};
}

id_type!(
    /// A tenant: one billing book, isolated from every other.
    TenantId,
    /// An account (69).
    AccountId,
    /// An account plan (71).
    PlanId,
    /// A recurring item (110).
    RecurringItemId,
    /// A one-time item (75).
    OneTimeItemId,
    /// An invoice (119).
    InvoiceId,
    /// A rule of a tenant's built-in tax rate table.
    TaxRateId,
);

/// Declares a wire-coded enumeration: each variant has the integer used on the wire.
/// `from_code` is the only way in, so an unknown code can never become a value.
macro_rules! coded_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn code(self) -> i64 {
                match self { $($name::$variant => $code),+ }
            }

            pub fn from_code(code: i64) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

coded_enum!(
    /// `AccountType`: who the customer is.
    AccountType { Business = 1, Private = 2 }
);
coded_enum!(
    /// `AccountStatus`: Inactive accounts are never billed.
    AccountStatus { Active = 1, Inactive = 2, BillingIssues = 3 }
);
coded_enum!(
    /// `DueDateMethod`: how an invoice's due date follows from its date.
    DueDateMethod { NetDays = 1, EndOfMonthPlusDays = 2 }
);
coded_enum!(
    /// `InvoiceGrouping`: one invoice per account per bill run, or one per plan.
    InvoiceGrouping { PerPlan = 0, PerAccount = 1 }
);
coded_enum!(
    /// `PlanStatus`: derived, never stored (BILLING.md §8 invariant 7).
    PlanStatus { Active = 1, Cancelled = 2, Expired = 3 }
);

coded_enum!(
    /// `BillingTiming`: whether a period is billed at its start or at its end.
    BillingTiming { InAdvance = 1, InArrears = 2 }
);
coded_enum!(
    /// `ItemStatus` of a recurring item: derived from its dates and the tenant's today.
    ItemStatus { Active = 1, Cancelled = 2, Expired = 3, Future = 4 }
);
coded_enum!(
    /// `ItemStatus` of a one-time item.
    OneTimeStatus { Pending = 1, Invoiced = 2, Cancelled = 3 }
);

coded_enum!(
    /// `InvoiceStatus`: Draft → Pending Tax → Posted → Paid; Cancelled from the first three.
    InvoiceStatus { Draft = 1, PendingTax = 2, Posted = 3, Paid = 4, Cancelled = 5 }
);

coded_enum!(
    /// `TaxMode` (tenant setting): how invoices are taxed (BILLING.md §7).
    TaxMode { None = 0, BuiltIn = 1, External = 2, Avalara = 3 }
);

impl InvoiceStatus {
    /// Whether `DueDate`, `PONumber` and `Memo` may still change (BILLING.md §6).
    pub fn is_editable(self) -> bool {
        match self {
            InvoiceStatus::Draft | InvoiceStatus::PendingTax => true,
            InvoiceStatus::Posted | InvoiceStatus::Paid | InvoiceStatus::Cancelled => false,
        }
    }

    /// Whether the invoice may be cancelled (voided).
    pub fn is_cancellable(self) -> bool {
        match self {
            InvoiceStatus::Draft | InvoiceStatus::PendingTax | InvoiceStatus::Posted => true,
            InvoiceStatus::Paid | InvoiceStatus::Cancelled => false,
        }
    }
}

impl ItemStatus {
    /// A recurring item's status on `today`. A cancellation, once recorded, wins
    /// (even one dated in the future: the item is on its way out). An item whose
    /// term has ended is expired unless its plan renews automatically (the bill run
    /// extends it). `end` is exclusive.
    pub fn on(
        cancelled: bool,
        start: Date,
        end: Option<Date>,
        auto_renew: bool,
        today: Date,
    ) -> ItemStatus {
        if cancelled {
            return ItemStatus::Cancelled;
        }
        if today < start {
            return ItemStatus::Future;
        }
        match end {
            Some(end) if !auto_renew && end <= today => ItemStatus::Expired,
            _ => ItemStatus::Active,
        }
    }
}

impl AccountStatus {
    /// Whether a bill run bills this account (BILLING.md §6).
    pub fn is_billable(self) -> bool {
        match self {
            AccountStatus::Active | AccountStatus::BillingIssues => true,
            AccountStatus::Inactive => false,
        }
    }
}

impl PlanStatus {
    /// A plan's status on `today`: cancelled wins; a committed term that has ended
    /// without auto-renewal is expired. `end` is exclusive, like every span here.
    pub fn on(cancelled: bool, end: Option<Date>, auto_renew: bool, today: Date) -> PlanStatus {
        if cancelled {
            return PlanStatus::Cancelled;
        }
        match end {
            Some(end) if !auto_renew && end <= today => PlanStatus::Expired,
            _ => PlanStatus::Active,
        }
    }
}

/// A billing contact e-mail address, checked against RFC 5322's address syntax
/// and required to have a dotted domain (no `root@localhost` on an invoice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid e-mail address")]
pub struct InvalidEmail;

impl FromStr for Email {
    type Err = InvalidEmail;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let parsed = email_address::EmailAddress::from_str(s).map_err(|_| InvalidEmail)?;
        let domain = parsed.domain();
        let dotted = domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.');
        if !dotted || s.len() > 254 || s.contains(char::is_whitespace) {
            return Err(InvalidEmail);
        }
        Ok(Email(s.to_owned()))
    }
}

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address with its local part masked, for logs: `j***@example.com`.
    pub fn masked(&self) -> String {
        match self.0.split_once('@') {
            Some((local, domain)) => {
                let first = local.chars().next().unwrap_or('*');
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        }
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Country(isocountry::CountryCode);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an ISO 3166-1 alpha-2 country code")]
pub struct UnknownCountry;

impl FromStr for Country {
    type Err = UnknownCountry;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 2 {
            return Err(UnknownCountry);
        }
        isocountry::CountryCode::for_alpha2_caseless(s)
            .map(Country)
            .map_err(|_| UnknownCountry)
    }
}

impl Country {
    pub fn alpha2(self) -> &'static str {
        self.0.alpha2()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn wire_codes_round_trip_and_unknown_codes_are_refused() {
        for status in AccountStatus::ALL {
            assert_eq!(AccountStatus::from_code(status.code()), Some(*status));
        }
        assert_eq!(AccountStatus::from_code(0), None);
        assert_eq!(
            InvoiceGrouping::from_code(0),
            Some(InvoiceGrouping::PerPlan)
        );
        assert_eq!(AccountType::from_code(3), None);
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!("billing@example.com".parse::<Email>().is_ok());
        assert!("a.b+tag@sub.example.co.uk".parse::<Email>().is_ok());
        for bad in [
            "",
            "no-at-sign",
            "@example.com",
            "x@",
            "x@localhost",
            "a b@example.com",
            "x@.com",
        ] {
            assert!(bad.parse::<Email>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn masked_email_keeps_only_the_first_letter_and_domain() {
        let e: Email = "jane@example.com".parse().unwrap();
        assert_eq!(e.masked(), "j***@example.com");
    }

    #[test]
    fn countries_are_alpha2_case_insensitively() {
        assert_eq!("us".parse::<Country>().unwrap().alpha2(), "US");
        assert_eq!("DE".parse::<Country>().unwrap().alpha2(), "DE");
        assert!("USA".parse::<Country>().is_err());
        assert!("XX".parse::<Country>().is_err());
    }

    #[test]
    fn plan_status_follows_today() {
        let end = Some(date(2025, 1, 1));
        assert_eq!(
            PlanStatus::on(false, end, false, date(2024, 12, 31)),
            PlanStatus::Active
        );
        assert_eq!(
            PlanStatus::on(false, end, false, date(2025, 1, 1)),
            PlanStatus::Expired
        );
        assert_eq!(
            PlanStatus::on(false, end, true, date(2025, 6, 1)),
            PlanStatus::Active
        );
        assert_eq!(
            PlanStatus::on(true, None, false, date(2025, 6, 1)),
            PlanStatus::Cancelled
        );
        assert_eq!(
            PlanStatus::on(false, None, false, date(2999, 1, 1)),
            PlanStatus::Active
        );
    }
}
