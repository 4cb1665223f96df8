//! Exact money: currencies with their ISO 4217 minor unit, and named rounding.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// An ISO 4217 currency the engine can bill in (one with a defined minor unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an ISO 4217 currency code with a minor unit: {0:?}")]
pub struct UnknownCurrency(pub String);

impl Currency {
    pub const USD: Currency = Currency(iso_currency::Currency::USD);

    /// The three-letter code, upper case.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Decimal places of the currency's minor unit (2 for USD, 0 for JPY, 3 for KWD).
    pub fn minor_unit(self) -> u32 {
        // Codes without a minor unit (gold, SDRs, "no currency") are refused by `FromStr`.
        u32::from(self.0.exponent().unwrap_or(2))
    }
}

impl Currency {
    /// Every currency amounts can be kept in (those with a minor unit), by code.
    pub fn all() -> impl Iterator<Item = Currency> {
        use iso_currency::IntoEnumIterator;
        iso_currency::Currency::iter()
            .filter(|c| c.exponent().is_some())
            .map(Currency)
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        match iso_currency::Currency::from_code(&upper) {
            Some(c) if c.exponent().is_some() => Ok(Currency(c)),
            _ => Err(UnknownCurrency(s.to_owned())),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How amounts are rounded to a currency's minor unit (tenant setting `Rounding`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Ties away from zero: 0.125 -> 0.13, -0.125 -> -0.13.
    #[default]
    HalfUp,
    /// Ties to the even neighbour (banker's rounding): 0.125 -> 0.12.
    HalfEven,
}

impl Rounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
        }
    }

    /// Rounds `amount` to `scale` decimal places under this mode.
    pub fn round(self, amount: Decimal, scale: u32) -> Decimal {
        amount.round_dp_with_strategy(scale, self.strategy())
    }

    /// Rounds `amount` to the minor unit of `currency` under this mode, and writes
    /// it with exactly that many decimals (`25` in USD is `25.00`), so amounts are
    /// stored and summed in one canonical form.
    pub fn to_minor_unit(self, amount: Decimal, currency: Currency) -> Decimal {
        let mut rounded = self.round(amount, currency.minor_unit());
        rounded.rescale(currency.minor_unit());
        rounded
    }
}

/// Proration fractions are rounded to this many places, half-up (BILLING.md §2).
pub const FRACTION_SCALE: u32 = 9;

/// Rounds a proration fraction to 9 decimal places, half-up, as BILLING.md §2 fixes.
pub fn round_fraction(fraction: Decimal) -> Decimal {
    fraction.round_dp_with_strategy(FRACTION_SCALE, RoundingStrategy::MidpointAwayFromZero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    #[test]
    fn currencies_know_their_minor_unit() {
        assert_eq!("usd".parse::<Currency>().unwrap().minor_unit(), 2);
        assert_eq!("JPY".parse::<Currency>().unwrap().minor_unit(), 0);
        assert_eq!("KWD".parse::<Currency>().unwrap().minor_unit(), 3);
    }

    #[test]
    fn codes_without_a_minor_unit_or_unknown_are_refused() {
        assert!("XAU".parse::<Currency>().is_err());
        assert!("ABC".parse::<Currency>().is_err());
        assert!("".parse::<Currency>().is_err());
    }

    #[test]
    fn rounding_modes_differ_only_on_ties() {
        assert_eq!(Rounding::HalfUp.round(dec!(0.125), 2), dec!(0.13));
        assert_eq!(Rounding::HalfEven.round(dec!(0.125), 2), dec!(0.12));
        assert_eq!(Rounding::HalfUp.round(dec!(-0.125), 2), dec!(-0.13));
        assert_eq!(Rounding::HalfEven.round(dec!(0.135), 2), dec!(0.14));
    }

    #[test]
    fn fractions_round_to_nine_places_half_up() {
        assert_eq!(round_fraction(dec!(17) / dec!(31)), dec!(0.548387097));
    }
}
