//! Request parameters: names matched case-insensitively, values parsed into domain
//! types with errors that name the field (SPEC §1, §4, §5).

use std::collections::BTreeMap;
use std::str::FromStr;

use jiff::civil::{Date, date};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::error::DoorError;
use crate::fields::{API_CODE, ENTITY_CODE};

/// Dates the API accepts (SPEC §5).
const FIRST_DATE: Date = date(1900, 1, 1);
const LAST_DATE: Date = date(2999, 12, 31);
/// Amounts must stay below this magnitude (SPEC §5).
const DECIMAL_LIMIT: i64 = 1_000_000_000_000;

/// A request's parameters, from its query string and, for a POST, its JSON body.
#[derive(Debug, Default)]
pub struct Params {
    /// Lower-cased name → value.
    values: BTreeMap<String, Value>,
}

impl Params {
    /// Reads a query string. Values are JSON strings: typed getters parse them.
    pub fn from_query(query: &str) -> Result<Params, DoorError> {
        let mut params = Params::default();
        for (name, value) in query_pairs(query)? {
            params.insert(&name, Value::String(value))?;
        }
        Ok(params)
    }

    /// Adds a POST body's fields. `api_code` and `entity_code` may appear in both
    /// query and body only with the same value; other body fields win over the query.
    pub fn add_body(&mut self, body: Map<String, Value>) -> Result<(), DoorError> {
        let mut from_body = Params::default();
        for (name, value) in body {
            from_body.insert(&name, value)?;
        }
        for code in [API_CODE, ENTITY_CODE] {
            if let (Some(q), Some(b)) = (
                self.int(code).ok().flatten(),
                from_body.int(code).ok().flatten(),
            ) && q != b
            {
                return Err(DoorError::invalid(
                    code,
                    format!("is {q} in the query string but {b} in the body"),
                ));
            }
        }
        self.values.extend(from_body.values);
        Ok(())
    }

    /// Reads the REST face's parameters (query or body, already checked against
    /// their schema): `snake_case` names become the dynamic door's (`ext_id` is
    /// `ExtID`, `account_name` is `AccountName`), so that one parser serves both.
    pub fn from_rest(fields: Map<String, Value>) -> Params {
        let values = fields
            .into_iter()
            .map(|(name, value)| (name.replace('_', "").to_ascii_lowercase(), value))
            .collect();
        Params { values }
    }

    /// Sets a parameter, replacing any value it had (a REST path's parent ID).
    pub fn set(&mut self, name: &str, value: Value) {
        self.values.insert(name.to_ascii_lowercase(), value);
    }

    fn insert(&mut self, name: &str, value: Value) -> Result<(), DoorError> {
        let key = name.to_ascii_lowercase();
        if self.values.insert(key, value).is_some() {
            return Err(DoorError::invalid(
                name,
                "is given more than once (names are case-insensitive)",
            ));
        }
        Ok(())
    }

    /// The raw value of a parameter, if sent.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(&name.to_ascii_lowercase())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A canonical form of every parameter, for idempotency fingerprints.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(&self.values).unwrap_or_default()
    }

    /// An integer, sent as a JSON number or a numeric string.
    /// A record's ID: a whole number, as the ID type `I` of its entity.
    pub fn id<I: From<i64>>(&self, name: &str) -> Result<Option<I>, DoorError> {
        Ok(self.int(name)?.map(I::from))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, DoorError> {
        let Some(value) = self.present(name) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| DoorError::invalid(name, "must be a whole number"))
    }

    /// An integer within `range`.
    pub fn int_in(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, DoorError> {
        let Some(n) = self.int(name)? else {
            return Ok(None);
        };
        if !range.contains(&n) {
            return Err(DoorError::invalid(
                name,
                format!(
                    "must be between {} and {}, got {n}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(Some(n))
    }

    /// An enumeration sent as its integer code; `allowed` lists the codes for the error.
    pub fn coded<T>(
        &self,
        name: &str,
        from_code: fn(i64) -> Option<T>,
        allowed: &str,
    ) -> Result<Option<T>, DoorError> {
        let Some(code) = self
            .int(name)
            .map_err(|_| DoorError::invalid(name, format!("must be {allowed}")))?
        else {
            return Ok(None);
        };
        from_code(code)
            .map(Some)
            .ok_or_else(|| DoorError::invalid(name, format!("must be {allowed}, got {code}")))
    }

    /// A 0/1 flag (also `true`/`false`, as JSON booleans or as text).
    pub fn flag(&self, name: &str) -> Result<Option<bool>, DoorError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => match self.int(name) {
                Ok(Some(0)) => Ok(Some(false)),
                Ok(Some(1)) => Ok(Some(true)),
                _ => Err(DoorError::invalid(name, "must be 0 or 1")),
            },
        }
    }

    /// A required-when-present string: absent is `None`; empty or null is an error.
    pub fn text(&self, name: &str, max: usize) -> Result<Option<String>, DoorError> {
        match self.optional_text(name, max)? {
            None => Ok(None),
            Some(Some(s)) => Ok(Some(s)),
            Some(None) => Err(DoorError::invalid(name, "must not be empty")),
        }
    }

    /// An optional string field of a partial update: absent is `None` (keep);
    /// null or empty is `Some(None)` (clear); anything else is the new value.
    /// Numbers are taken as their text, since callers often send numeric keys.
    pub fn optional_text(
        &self,
        name: &str,
        max: usize,
    ) -> Result<Option<Option<String>>, DoorError> {
        let text = match self.get(name) {
            None => return Ok(None),
            Some(Value::Null) => return Ok(Some(None)),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(DoorError::invalid(name, "must be a string")),
        };
        if text.trim().is_empty() {
            return Ok(Some(None));
        }
        if text.chars().count() > max {
            return Err(DoorError::invalid(
                name,
                format!("must be at most {max} characters"),
            ));
        }
        if text.chars().any(|c| c == '\0') {
            return Err(DoorError::invalid(name, "must not contain NUL characters"));
        }
        Ok(Some(Some(text)))
    }

    /// A value parsed from text by `parse`, with `what` describing the expected form.
    pub fn parsed<T>(
        &self,
        name: &str,
        max: usize,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<Option<T>>, DoorError> {
        match self.optional_text(name, max)? {
            None => Ok(None),
            Some(None) => Ok(Some(None)),
            Some(Some(text)) => parse(&text)
                .map(|v| Some(Some(v)))
                .ok_or_else(|| DoorError::invalid(name, format!("must be {what}, got {text:?}"))),
        }
    }

    /// A calendar date `YYYY-MM-DD` between 1900-01-01 and 2999-12-31.
    pub fn date(&self, name: &str) -> Result<Option<Option<Date>>, DoorError> {
        let Some(text) = self
            .optional_text(name, 10)
            .map_err(|_| invalid_date(name))?
        else {
            return Ok(None);
        };
        let Some(text) = text else {
            return Ok(Some(None));
        };
        let well_formed =
            text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
        let date = well_formed
            .then(|| Date::from_str(&text).ok())
            .flatten()
            .ok_or_else(|| invalid_date(name))?;
        if !(FIRST_DATE..=LAST_DATE).contains(&date) {
            return Err(DoorError::invalid(
                name,
                "must be between 1900-01-01 and 2999-12-31",
            ));
        }
        Ok(Some(Some(date)))
    }

    /// A date that, when sent, must not be empty.
    pub fn required_date(&self, name: &str) -> Result<Option<Date>, DoorError> {
        match self.date(name)? {
            None => Ok(None),
            Some(Some(d)) => Ok(Some(d)),
            Some(None) => Err(DoorError::invalid(name, "must not be empty")),
        }
    }

    /// An exact decimal (number or numeric string), below 10^12 in magnitude with
    /// at most `max_scale` decimal places.
    pub fn decimal(&self, name: &str, max_scale: u32) -> Result<Option<Decimal>, DoorError> {
        let Some(value) = self.present(name) else {
            return Ok(None);
        };
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_owned(),
            _ => return Err(DoorError::invalid(name, "must be a number")),
        };
        let parsed = Decimal::from_str_exact(&text)
            .or_else(|_| Decimal::from_scientific(&text))
            .map_err(|_| {
                DoorError::invalid(name, format!("must be a decimal number, got {text:?}"))
            })?
            .normalize();
        if parsed.abs() >= Decimal::from(DECIMAL_LIMIT) {
            return Err(DoorError::invalid(name, "must be below 10^12 in magnitude"));
        }
        if parsed.scale() > max_scale {
            return Err(DoorError::invalid(
                name,
                format!("must have at most {max_scale} decimal places"),
            ));
        }
        Ok(Some(parsed))
    }

    /// A value that is present and not null.
    fn present(&self, name: &str) -> Option<&Value> {
        self.get(name).filter(|v| !v.is_null())
    }
}

/// A query string's names and values, decoded strictly.
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, DoorError> {
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(name), Some(value)) = (form_decode(name), form_decode(value)) else {
            return Err(DoorError::bad_request(format!(
                "the query string cannot be read: {pair:?} is not valid percent-encoded UTF-8"
            )));
        };
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// Decodes one `application/x-www-form-urlencoded` component strictly: a malformed
/// escape or invalid UTF-8 is refused rather than silently replaced.
fn form_decode(component: &str) -> Option<String> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn invalid_date(name: &str) -> DoorError {
    DoorError::invalid(name, "must be a date written YYYY-MM-DD")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Params {
        let mut p = Params::default();
        p.add_body(v.as_object().unwrap().clone()).unwrap();
        p
    }

    #[test]
    fn names_match_whatever_their_case() {
        let p = Params::from_query("API_CODE=3&extid=A1").unwrap();
        assert_eq!(p.int("api_code").unwrap(), Some(3));
        assert_eq!(p.text("ExtID", 255).unwrap().as_deref(), Some("A1"));
    }

    #[test]
    fn query_strings_decode_strictly() {
        let p = Params::from_query("Name=a+b%26c&Empty=&Flag").unwrap();
        assert_eq!(p.text("name", 255).unwrap().as_deref(), Some("a b&c"));
        assert!(p.has("empty") && p.has("flag"));
        assert!(Params::from_query("a=%ZZ").is_err());
        assert!(Params::from_query("a=%FF").is_err());
        assert!(Params::from_query("a=%4").is_err());
    }

    #[test]
    fn codes_may_be_numbers_or_numeric_strings_but_not_fractions() {
        assert_eq!(
            body(json!({"api_code": "10"})).int("API_CODE").unwrap(),
            Some(10)
        );
        assert_eq!(
            body(json!({"api_code": 10})).int("API_CODE").unwrap(),
            Some(10)
        );
        assert!(body(json!({"api_code": 3.5})).int("API_CODE").is_err());
        assert!(body(json!({"api_code": "ten"})).int("API_CODE").is_err());
    }

    #[test]
    fn a_name_given_twice_in_different_cases_is_refused() {
        let mut p = Params::default();
        let err = p.add_body(
            json!({"ExtID": "a", "EXTID": "b"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert!(err.is_err());
    }

    #[test]
    fn decimals_are_exact_and_bounded() {
        let p = body(json!({"a": 0.1, "b": "12.345678", "c": 1e12, "d": "1.1234567"}));
        assert_eq!(p.decimal("a", 6).unwrap(), Some(Decimal::new(1, 1)));
        assert_eq!(p.decimal("b", 6).unwrap(), Some(Decimal::new(12345678, 6)));
        assert!(p.decimal("c", 6).is_err());
        assert!(p.decimal("d", 6).is_err());
    }

    #[test]
    fn dates_must_be_iso_and_in_range() {
        let p =
            body(json!({"a": "2024-02-29", "b": "2023-02-29", "c": "1899-12-31", "d": "2024-2-1"}));
        assert_eq!(p.required_date("a").unwrap(), Some(date(2024, 2, 29)));
        assert!(p.date("b").is_err());
        assert!(p.date("c").is_err());
        assert!(p.date("d").is_err());
    }
}
