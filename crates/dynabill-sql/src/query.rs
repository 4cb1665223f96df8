//! [`Query`]: a statement being built for backend `B`, which binds the shared
//! [`Value`]s with the casts `B` needs, and runs on `B`'s connections; and the
//! column lists the shared row types read.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt::Display;
use std::marker::PhantomData;
use std::sync::{OnceLock, RwLock};

use jiff::civil::Date;
use rust_decimal::Decimal;
use sqlx::QueryBuilder;

use crate::backend::{Backend, Conn, Row, Shape, SqlDb};
use crate::rows::RowOf;
use crate::values::{Value, date_text};

/// Columns stored as small integers in PostgreSQL and read as BIGINT.
const CODE_COLUMNS: [&str; 18] = [
    "account_type",
    "status",
    "due_date_method",
    "due_date_days",
    "invoice_grouping",
    "renewal_term_months",
    "billing_day",
    "billing_period",
    "period_count",
    "timing",
    "kind",
    "line_type",
    "bill_run_hour",
    "proration_policy",
    "rounding",
    "tax_mode",
    "tax_attempts",
    "response_status",
];

/// Columns stored as `DATE` in PostgreSQL and read and written as text.
pub(crate) const DATE_COLUMNS: [&str; 15] = [
    "start_date",
    "end_date",
    "cancel_date",
    "effective_date",
    "charge_date",
    "invoice_date",
    "due_date",
    "paid_date",
    "period_start",
    "period_end",
    "service_start",
    "service_end",
    "charged_through",
    "test_today",
    "last_scheduled_run",
];

/// Columns stored as `NUMERIC` in PostgreSQL and read and written as decimal text.
pub(crate) const AMOUNT_COLUMNS: [&str; 14] = [
    "quantity",
    "unit_price",
    "discount_percent",
    "subtotal",
    "tax_total",
    "total",
    "credit_applied",
    "credit_added",
    "amount_due",
    "fraction",
    "amount",
    "tax_amount",
    "credit_balance",
    "rate",
];

/// The shape of the column named `column` (the same name has the same type in
/// every table).
pub fn shape_of(column: &str) -> Shape {
    static SHAPES: OnceLock<HashMap<&'static str, Shape>> = OnceLock::new();
    let shapes = SHAPES.get_or_init(|| {
        let code = CODE_COLUMNS.iter().map(|c| (*c, Shape::Code));
        let date = DATE_COLUMNS.iter().map(|c| (*c, Shape::Date));
        let amount = AMOUNT_COLUMNS.iter().map(|c| (*c, Shape::Amount));
        code.chain(date).chain(amount).collect()
    });
    shapes.get(column).copied().unwrap_or(Shape::Plain)
}

/// The SQL text `build` makes for backend `B`, made once per process under `key`
/// and kept (the select lists: a fixed handful per backend, asked for by every
/// query).
pub(crate) fn kept<B: Backend>(key: &'static str, build: impl FnOnce() -> String) -> &'static str {
    type Texts = RwLock<HashMap<(TypeId, &'static str), &'static str>>;
    static TEXTS: OnceLock<Texts> = OnceLock::new();
    let texts = TEXTS.get_or_init(Texts::default);
    let id = (TypeId::of::<B>(), key);
    if let Some(text) = texts.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return text;
    }
    let text: &'static str = Box::leak(build().into_boxed_str());
    texts
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(id)
        .or_insert(text)
}

/// A select list for backend `B`: each entry (`t.column`, `t.column AS alias`, or
/// `(subquery) AS alias`) read in the shape the shared row types expect.
pub fn select_list<B: Backend>(entries: &[&str]) -> String {
    let mut list = String::new();
    for (n, entry) in entries.iter().enumerate() {
        if n > 0 {
            list.push_str(", ");
        }
        let (source, alias) = match entry.rsplit_once(" AS ") {
            Some((source, alias)) => (source, Some(alias)),
            None => (*entry, None),
        };
        let column = source.rsplit('.').next().unwrap_or(source);
        let cast = if source.starts_with('(') {
            ""
        } else {
            B::read_cast(shape_of(column))
        };
        if cast.is_empty() {
            list.push_str(entry);
        } else {
            list.push_str(&format!("{source}{cast} AS {}", alias.unwrap_or(column)));
        }
    }
    list
}

/// The columns a row type reads: its keys, its writable columns (in the order
/// its values are given), and the columns it reads besides.
pub(crate) fn row_columns(
    keys: &[&'static str],
    writable: &[&'static str],
    rest: &[&'static str],
) -> Vec<&'static str> {
    [keys, writable, rest].concat()
}

/// A statement for backend `B`.
pub struct Query<B: Backend> {
    qb: QueryBuilder<B::Db>,
    persistent: bool,
    backend: PhantomData<fn() -> B>,
}

impl<B: Backend> Query<B> {
    pub fn new(sql: impl Into<String>) -> Self {
        Query {
            qb: QueryBuilder::new(sql),
            persistent: true,
            backend: PhantomData,
        }
    }

    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        self.qb.push(sql);
        self
    }

    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        B::Db::bind(&mut self.qb, value.into());
        self
    }

    pub fn bind_date(&mut self, date: Date) -> &mut Self {
        self.bind(date_text(date)).push(B::write_cast(Shape::Date))
    }

    pub fn bind_opt_date(&mut self, date: Option<Date>) -> &mut Self {
        self.bind(date.map(date_text))
            .push(B::write_cast(Shape::Date))
    }

    /// Binds an amount as its decimal text (as it is, with its scale).
    pub fn bind_amount(&mut self, amount: Decimal) -> &mut Self {
        self.bind(amount.to_string())
            .push(B::write_cast(Shape::Amount))
    }

    /// Binds `value` for the column named `column`, cast as its shape needs.
    pub fn bind_for(&mut self, column: &str, value: Value) -> &mut Self {
        self.bind(value).push(B::write_cast(shape_of(column)))
    }

    /// Appends `, c1, c2, ...`.
    pub fn columns(&mut self, columns: &[&str]) -> &mut Self {
        for column in columns {
            self.push(", ").push(column);
        }
        self
    }

    /// Appends `, v1, v2, ...` for paired columns and values.
    pub fn values(&mut self, columns: &[&str], values: Vec<Value>) -> &mut Self {
        debug_assert_eq!(columns.len(), values.len());
        for (column, value) in columns.iter().zip(values) {
            self.push(", ").bind_for(column, value);
        }
        self
    }

    /// Appends `, c1 = v1, c2 = v2, ...` for paired columns and values.
    pub fn assignments(&mut self, columns: &[&str], values: Vec<Value>) -> &mut Self {
        debug_assert_eq!(columns.len(), values.len());
        for (column, value) in columns.iter().zip(values) {
            self.push(", ")
                .push(column)
                .push(" = ")
                .bind_for(column, value);
        }
        self
    }

    /// Appends ` AND column IN (ids)` (`ids` short, maybe empty).
    pub fn and_in(&mut self, column: &str, ids: &[i64]) -> &mut Self {
        B::push_in(&mut self.qb, column, ids);
        self
    }

    /// Appends ` AND column IN (ids)` for a batch read together (`ids` not empty).
    pub fn and_batch(&mut self, column: &str, ids: &[i64]) -> &mut Self {
        B::push_batch(&mut self.qb, column, ids);
        self
    }

    /// Appends the table `v (id, other)` of `pairs`.
    pub fn pairs(&mut self, pairs: &[(i64, i64)]) -> &mut Self {
        B::push_pairs(&mut self.qb, pairs);
        self
    }

    /// Marks a statement a bill run sends once per batch (see
    /// [`Backend::PREPARE_BATCH_STATEMENTS`]).
    pub fn per_batch(&mut self) -> &mut Self {
        self.persistent = B::PREPARE_BATCH_STATEMENTS;
        self
    }

    /// Runs the statement to completion and returns its rows.
    pub async fn fetch_rows(mut self, conn: &mut Conn<B>) -> Result<Vec<Row<B>>, sqlx::Error> {
        B::Db::fetch_all(conn, &mut self.qb, self.persistent).await
    }

    /// Runs the statement to completion and decodes its rows as they arrive.
    pub async fn fetch_all<T: Send>(mut self, conn: &mut Conn<B>) -> Result<Vec<T>, sqlx::Error>
    where
        Row<B>: RowOf<T>,
    {
        B::Db::fetch_decoded(conn, &mut self.qb, self.persistent, RowOf::<T>::decode).await
    }

    /// The first row, if any. The statement still runs to completion (a write
    /// must, and SQLite's `RETURNING` returns rows as it writes them).
    pub async fn fetch_optional<T: Send>(self, conn: &mut Conn<B>) -> Result<Option<T>, sqlx::Error>
    where
        Row<B>: RowOf<T>,
    {
        Ok(self.fetch_all(conn).await?.into_iter().next())
    }

    pub async fn fetch_one<T: Send>(self, conn: &mut Conn<B>) -> Result<T, sqlx::Error>
    where
        Row<B>: RowOf<T>,
    {
        self.fetch_optional(conn)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Runs the statement and returns how many rows it changed.
    pub async fn execute(mut self, conn: &mut Conn<B>) -> Result<u64, sqlx::Error> {
        let done = B::Db::execute(conn, &mut self.qb, self.persistent).await?;
        Ok(B::rows_affected(&done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column the shared rows read or the shared writes name.
    fn columns() -> impl Iterator<Item = &'static str> {
        crate::accounts::account_columns()
            .into_iter()
            .chain(crate::billing::LEDGER_WRITABLE)
            .chain(crate::tenants::TENANT_COLUMNS)
            .chain(crate::plans::plan_row_columns())
            .chain(crate::items::item_row_columns())
            .chain(crate::items::change_columns())
            .chain(crate::one_time::one_time_row_columns())
            .chain(crate::invoices::invoice_row_columns())
            .chain(crate::invoices::line_columns())
            .chain(["last_scheduled_run", "rate"])
    }

    #[test]
    fn every_date_column_has_the_date_shape() {
        for column in columns() {
            if column.ends_with("_date")
                || column.ends_with("_start")
                || column.ends_with("_end")
                || column == "test_today"
                || column == "charged_through"
                || column == "last_scheduled_run"
            {
                assert_eq!(shape_of(column), Shape::Date, "{column}");
            }
        }
    }

    #[test]
    fn every_amount_column_has_the_amount_shape() {
        let amounts = [
            "subtotal",
            "tax_total",
            "total",
            "credit_applied",
            "credit_added",
            "amount_due",
            "amount",
            "tax_amount",
            "fraction",
            "quantity",
            "unit_price",
            "discount_percent",
            "credit_balance",
            "rate",
        ];
        for column in columns() {
            if amounts.contains(&column) {
                assert_eq!(shape_of(column), Shape::Amount, "{column}");
            }
        }
    }

    #[test]
    fn every_shaped_column_is_a_column_of_the_schema() {
        for column in CODE_COLUMNS
            .iter()
            .chain(&DATE_COLUMNS)
            .chain(&AMOUNT_COLUMNS)
        {
            assert!(
                columns().any(|c| c == *column) || *column == "response_status",
                "{column} is no column the shared queries name"
            );
        }
    }
}
