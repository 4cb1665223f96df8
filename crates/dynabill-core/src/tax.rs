//! Built-in tax rates (BILLING.md §7, `TaxMode` 1): which rules apply to a line,
//! and the tax each one charges.

use rust_decimal::Decimal;

use crate::money::{Currency, Rounding};

/// One rule of a tenant's rate table: `rate` percent of `name` tax for lines whose
/// account is in `country` (and `state`, when set) and whose tax code is
/// `tax_code` (when set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaxRule {
    pub name: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub state: Option<String>,
    pub tax_code: Option<String>,
    /// Percent, e.g. 7.25.
    pub rate: Decimal,
}

/// Where a line is taxed and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaxableLine<'a> {
    pub country: Option<&'a str>,
    pub state: Option<&'a str>,
    pub tax_code: Option<&'a str>,
}

impl TaxRule {
    /// How specific the rule is, if it matches the line at all: country + state +
    /// tax code (4), then country + state (3), then country + tax code (2), then
    /// country (1).
    fn specificity(&self, line: TaxableLine<'_>) -> Option<u8> {
        let same = |rule: &str, line: Option<&str>| {
            line.is_some_and(|l| l.trim().eq_ignore_ascii_case(rule.trim()))
        };
        if !same(&self.country, line.country) {
            return None;
        }
        if let Some(state) = &self.state
            && !same(state, line.state)
        {
            return None;
        }
        if let Some(code) = &self.tax_code
            && !same(code, line.tax_code)
        {
            return None;
        }
        Some(match (self.state.is_some(), self.tax_code.is_some()) {
            (true, true) => 4,
            (true, false) => 3,
            (false, true) => 2,
            (false, false) => 1,
        })
    }
}

/// The rules that apply to a line: for each tax name, its most specific matching
/// rule. In the order of the table, for stable output.
pub fn applicable_rules<'a>(rules: &'a [TaxRule], line: TaxableLine<'_>) -> Vec<&'a TaxRule> {
    let mut chosen: Vec<(&TaxRule, u8)> = Vec::new();
    for rule in rules {
        let Some(specificity) = rule.specificity(line) else {
            continue;
        };
        match chosen
            .iter_mut()
            .find(|(c, _)| c.name.eq_ignore_ascii_case(&rule.name))
        {
            Some(entry) if entry.1 < specificity => *entry = (rule, specificity),
            Some(_) => {}
            None => chosen.push((rule, specificity)),
        }
    }
    chosen.into_iter().map(|(rule, _)| rule).collect()
}

/// `amount × rate / 100`, rounded to the currency's minor unit. A credit (negative
/// amount) gets a negative tax.
pub fn tax_amount(
    amount: Decimal,
    rate: Decimal,
    currency: Currency,
    rounding: Rounding,
) -> Decimal {
    rounding.to_minor_unit(amount * rate / Decimal::ONE_HUNDRED, currency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    fn rule(name: &str, state: Option<&str>, code: Option<&str>, rate: Decimal) -> TaxRule {
        TaxRule {
            name: name.into(),
            country: "US".into(),
            state: state.map(Into::into),
            tax_code: code.map(Into::into),
            rate,
        }
    }

    fn line<'a>(state: Option<&'a str>, code: Option<&'a str>) -> TaxableLine<'a> {
        TaxableLine {
            country: Some("us"),
            state,
            tax_code: code,
        }
    }

    #[test]
    fn the_most_specific_rule_of_each_tax_name_applies() {
        let rules = vec![
            rule("STATE SALES TAX", None, None, dec!(5)),
            rule("STATE SALES TAX", Some("CA"), None, dec!(7.25)),
            rule("STATE SALES TAX", Some("CA"), Some("SAAS"), dec!(0)),
            rule("STATE SALES TAX", None, Some("FOOD"), dec!(1)),
            rule("CITY TAX", Some("CA"), None, dec!(1.5)),
        ];
        let names_rates = |l| {
            applicable_rules(&rules, l)
                .into_iter()
                .map(|r| (r.name.clone(), r.rate))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names_rates(line(Some("ca"), None)),
            [
                ("STATE SALES TAX".to_owned(), dec!(7.25)),
                ("CITY TAX".to_owned(), dec!(1.5))
            ]
        );
        assert_eq!(
            names_rates(line(Some("CA"), Some("SAAS")))[0].1,
            dec!(0),
            "country + state + tax code wins"
        );
        assert_eq!(
            names_rates(line(Some("NY"), Some("FOOD"))),
            [("STATE SALES TAX".to_owned(), dec!(1))],
            "country + tax code beats country"
        );
        assert_eq!(
            names_rates(line(Some("NY"), None)),
            [("STATE SALES TAX".to_owned(), dec!(5))]
        );
        assert!(
            applicable_rules(
                &rules,
                TaxableLine {
                    country: Some("DE"),
                    state: None,
                    tax_code: None
                }
            )
            .is_empty()
        );
        assert!(
            applicable_rules(
                &rules,
                TaxableLine {
                    country: None,
                    state: None,
                    tax_code: None
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn tax_is_rounded_per_line_and_negative_for_credits() {
        let usd = Currency::USD;
        assert_eq!(
            tax_amount(dec!(54.84), dec!(7.25), usd, Rounding::HalfUp),
            dec!(3.98)
        );
        assert_eq!(
            tax_amount(dec!(-70.97), dec!(7.25), usd, Rounding::HalfUp),
            dec!(-5.15)
        );
        assert_eq!(
            tax_amount(dec!(10.00), dec!(0.125), usd, Rounding::HalfUp),
            dec!(0.01)
        );
        assert_eq!(
            tax_amount(dec!(10.00), dec!(0.125), usd, Rounding::HalfEven),
            dec!(0.01)
        );
        assert_eq!(
            tax_amount(dec!(100.00), dec!(7.25), usd, Rounding::HalfUp).to_string(),
            "7.25"
        );
    }
}
