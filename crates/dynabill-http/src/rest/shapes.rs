//! What the REST shapes share: value forms (money as decimal strings with the
//! currency's exponent, instants in RFC 3339), the patterns that say in the
//! schema what the parsers accept, and the macro that declares a resource's
//! create and update bodies from one list of fields.

use dynabill_core::money::Currency;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::wire::Amount;

// The schemas' patterns say what the parsers accept (attributes take literals
// only, so each field spells its pattern; docs/REST.md lists them):
// required text `^[^\u0000]*[^\s\u0000][^\u0000]*$` (something that is not
// white space, no NUL), optional text `^[^\u0000]*$`, dates `YYYY-MM-DD`
// between 1900 and 2999, quantities and prices `^[0-9]{1,12}(\.[0-9]{1,6})?$`.

/// Declares a code the REST face takes exactly as one of `$values` (the schema's
/// `enum`), refusing anything else at the schema check, so that the document and
/// the server agree on every value (the dynamic door's parser, which reads it
/// next, is more lenient: it takes `us` for `US`).
macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $expected:literal, $example:literal, $values:expr) => {
        $(#[$doc])*
        #[derive(Default)]
        pub struct $name;

        impl $name {
            fn values() -> &'static [String] {
                static VALUES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
                    let mut values: Vec<String> = $values;
                    values.sort();
                    values
                });
                &VALUES
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                if $name::values().binary_search(&text).is_ok() {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(concat!("must be ", $expected)))
                }
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("Must be ", $expected, ".")))
                    .enum_values(Some($name::values().iter().cloned()))
                    .examples([$example])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

code_type!(
    /// An ISO 3166-1 alpha-2 country code.
    CountryCode,
    "an ISO 3166-1 alpha-2 country code in upper case, such as US",
    "US",
    isocountry::CountryCode::iter()
        .map(|c| c.alpha2().to_owned())
        .collect()
);

code_type!(
    /// An ISO 4217 currency code (one with a minor unit).
    CurrencyCode,
    "an ISO 4217 currency code in upper case, such as USD",
    "USD",
    Currency::all().map(|c| c.code().to_owned()).collect()
);

code_type!(
    /// An IANA time zone.
    TimeZoneName,
    "an IANA time zone name, such as Europe/Berlin",
    "Europe/Berlin",
    jiff::tz::db().available().map(|n| n.to_string()).collect()
);

/// An amount in `currency`, rounded half-up to its minor unit: `"151.74"`.
pub fn money(value: Decimal, currency: Currency) -> String {
    Amount::in_currency(value, currency).0.to_string()
}

/// An amount as a person reads it: rounded to the currency's minor unit, digits
/// grouped by thousands, no code: `-1,234,567.89` (the console, the invoice PDF).
pub fn grouped_money(value: Decimal, currency: Currency) -> String {
    let plain = money(value, currency);
    let (sign, digits) = plain
        .strip_prefix('-')
        .map_or(("", plain.as_str()), |rest| ("-", rest));
    let (whole, fraction) = digits
        .split_once('.')
        .map_or((digits, None), |(w, f)| (w, Some(f)));
    let mut out = String::with_capacity(plain.len() + whole.len() / 3);
    out.push_str(sign);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(fraction) = fraction {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// A quantity, price or percentage without trailing zeros: `"2.5"`.
pub fn decimal(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A calendar date, `YYYY-MM-DD`.
pub fn day(date: jiff::civil::Date) -> String {
    date.to_string()
}

/// An instant in RFC 3339, UTC, microseconds.
pub fn stamp(ts: Timestamp) -> String {
    crate::wire::stamp(ts)
}

/// An instant in RFC 3339 or a day (`YYYY-MM-DD`, its midnight in the tenant's
/// time zone), as filters such as `updated_since` take it: a schema only, the
/// door's parser reads the value.
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub struct InstantOrDay(
    #[expect(dead_code, reason = "a schema: the door's parser reads the value")] String,
);

impl TryFrom<String> for InstantOrDay {
    type Error = &'static str;

    /// The shape its schema gives (RFC 3339 `date-time` or `full-date`); the
    /// door's parser then refuses a day that is not in the calendar.
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let bytes = text.as_bytes();
        let shaped = if bytes.len() == 10 {
            full_date(bytes)
        } else {
            bytes.len() > 10
                && full_date(&bytes[..10])
                && matches!(bytes[10], b'T' | b't')
                && time_with_offset(&bytes[11..])
        };
        if !shaped {
            return Err("must be an RFC 3339 date-time or a YYYY-MM-DD date");
        }
        Ok(InstantOrDay(text))
    }
}

/// `digits` ASCII digits.
fn digits(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
}

/// RFC 3339 `full-date`'s shape: `YYYY-MM-DD`.
fn full_date(b: &[u8]) -> bool {
    b.len() == 10
        && digits(&b[..4])
        && b[4] == b'-'
        && digits(&b[5..7])
        && b[7] == b'-'
        && digits(&b[8..])
}

/// RFC 3339 `full-time`'s shape: `HH:MM:SS`, a fraction, and `Z` or `±HH:MM`.
fn time_with_offset(b: &[u8]) -> bool {
    let hms = |t: &[u8]| t.len() >= 5 && digits(&t[..2]) && t[2] == b':' && digits(&t[3..5]);
    if b.len() < 9 || !hms(b) || b[5] != b':' || !digits(&b[6..8]) {
        return false;
    }
    let mut rest = &b[8..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let end = fraction
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return false;
        }
        rest = &fraction[end..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', offset @ ..] => offset.len() == 5 && hms(offset),
        _ => false,
    }
}

impl InstantOrDay {
    /// Its schema with `description` and `example`, for a field of a body
    /// (`#[schema(schema_with = ...)]`).
    #[expect(
        deprecated,
        reason = "every property of the document has an `example`, as the derived ones do"
    )]
    pub fn described(description: &str, example: &str) -> Schema {
        Self::any_of()
            .description(Some(description))
            .example(Some(example.into()))
            .into()
    }

    fn any_of() -> AnyOfBuilder {
        let text = |format| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(format)))
        };
        AnyOfBuilder::new()
            .item(text(KnownFormat::DateTime))
            .item(text(KnownFormat::Date))
    }
}

impl utoipa::PartialSchema for InstantOrDay {
    fn schema() -> RefOr<Schema> {
        Self::any_of().into()
    }
}

impl utoipa::ToSchema for InstantOrDay {}

/// Declares a resource's create body (`$new`: the `required` fields must be
/// sent) and its update body (`$changes`: every field optional; `create_only`
/// fields are not in it) from one list of fields, so the two cannot disagree.
/// Both refuse unknown fields. They are schemas: they check a body's shape, and
/// the dynamic door's parser for the entity reads its values.
macro_rules! bodies {
    (
        $(#[$new_meta:meta])* new $new:ident;
        $(#[$changes_meta:meta])* changes $changes:ident;
        required { $( $(#[$r_meta:meta])* $r_field:ident : $r_ty:ty ),* $(,)? }
        create_only { $( $(#[$c_meta:meta])* $c_field:ident : $c_ty:ty ),* $(,)? }
        optional { $( $(#[$o_meta:meta])* $o_field:ident : $o_ty:ty ),* $(,)? }
    ) => {
        $(#[$new_meta])*
        #[derive(serde::Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        #[expect(dead_code, reason = "a schema: it checks the body; the door's parser reads the values")]
        pub struct $new {
            $( $(#[$r_meta])* $r_field: $r_ty, )*
            $( $(#[$c_meta])* #[serde(default)] $c_field: $c_ty, )*
            $( $(#[$o_meta])* #[serde(default)] $o_field: $o_ty, )*
        }

        $(#[$changes_meta])*
        #[derive(serde::Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        #[expect(dead_code, reason = "a schema: it checks the body; the door's parser reads the values")]
        pub struct $changes {
            $( $(#[$r_meta])* #[serde(default)] $r_field: $r_ty, )*
            $( $(#[$o_meta])* #[serde(default)] $o_field: $o_ty, )*
        }
    };
}

pub(crate) use bodies;

#[cfg(test)]
mod tests {
    use super::InstantOrDay;

    #[test]
    fn instants_and_days_are_refused_unless_shaped_as_rfc_3339() {
        for good in [
            "2026-01-01",
            "2026-01-01T09:30:00Z",
            "2026-01-01t09:30:00.123456z",
            "2026-01-01T09:30:00+05:30",
            "2026-01-01T09:30:00-00:00",
        ] {
            assert!(InstantOrDay::try_from(good.to_owned()).is_ok(), "{good}");
        }
        for bad in [
            "",
            " ",
            "0",
            "2026-1-01",
            "2026-01-01 09:30:00Z",
            "2026-01-01T09:30:00",
            "2026-01-01T09:30Z",
            "2026-01-01T09:30:00.Z",
            "2026-01-01T09:30:00+0530",
            "2026-01-01T09:30:00Z[UTC]",
            "２０２６-01-01",
        ] {
            assert!(InstantOrDay::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }
}
