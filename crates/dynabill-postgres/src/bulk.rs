//! Many rows in one `INSERT … SELECT … FROM UNNEST(…)`: one array parameter per
//! column, whatever the number of rows. A multi-row `VALUES` list binds one
//! parameter per value, and PostgreSQL parses, binds and plans each of them; a bill
//! run's batch writes tens of thousands.

use dynabill_sql::{Backend, Value, shape_of};
use sqlx::postgres::PgQueryResult;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::PgBackend;

/// The values of one column, in row order.
enum Column {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Column {
    fn of(first: &Value, rows: usize) -> Self {
        match first {
            Value::Text(_) | Value::OptText(_) => Column::Text(Vec::with_capacity(rows)),
            Value::Int(_) | Value::OptInt(_) => Column::Int(Vec::with_capacity(rows)),
            Value::Bool(_) | Value::OptBool(_) => Column::Bool(Vec::with_capacity(rows)),
            Value::Bytes(_) => Column::Bytes(Vec::with_capacity(rows)),
        }
    }

    /// Appends `value`; false if it is not of this column's kind.
    fn push(&mut self, value: Value) -> bool {
        match (self, value) {
            (Column::Text(c), Value::Text(s)) => c.push(Some(s)),
            (Column::Text(c), Value::OptText(s)) => c.push(s),
            (Column::Int(c), Value::Int(i)) => c.push(Some(i)),
            (Column::Int(c), Value::OptInt(i)) => c.push(i),
            (Column::Bool(c), Value::Bool(b)) => c.push(Some(b)),
            (Column::Bool(c), Value::OptBool(b)) => c.push(b),
            (Column::Bytes(c), Value::Bytes(b)) => c.push(Some(b)),
            _ => return false,
        }
        true
    }

    fn array_type(&self) -> &'static str {
        match self {
            Column::Text(_) => "::text[]",
            Column::Int(_) => "::int8[]",
            Column::Bool(_) => "::bool[]",
            Column::Bytes(_) => "::bytea[]",
        }
    }
}

/// Inserts `rows` (each a value per column of `columns`, in order) into `table`.
/// `overriding` adds `OVERRIDING SYSTEM VALUE`, for rows that bring their own
/// identity. Date and amount columns travel as text and are cast to their types.
pub(crate) async fn insert_rows(
    conn: &mut PgConnection,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
    overriding: bool,
) -> Result<PgQueryResult, sqlx::Error> {
    let Some(first) = rows.first() else {
        return Ok(PgQueryResult::default());
    };
    let misshapen = || sqlx::Error::Protocol(format!("rows for {table} do not match its columns"));
    let count = rows.len();
    let mut arrays: Vec<Column> = first.iter().map(|v| Column::of(v, count)).collect();
    for row in rows {
        if row.len() != columns.len() {
            return Err(misshapen());
        }
        for (array, value) in arrays.iter_mut().zip(row) {
            if !array.push(value) {
                return Err(misshapen());
            }
        }
    }

    let mut qb = QueryBuilder::<Postgres>::new("INSERT INTO ");
    qb.push(table).push(" (").push(columns.join(", ")).push(")");
    if overriding {
        qb.push(" OVERRIDING SYSTEM VALUE");
    }
    qb.push(" SELECT ");
    for (n, column) in columns.iter().enumerate() {
        if n > 0 {
            qb.push(", ");
        }
        qb.push(format!("v.c{n}"))
            .push(PgBackend::write_cast(shape_of(column)));
    }
    qb.push(" FROM UNNEST(");
    let mut aliases = Vec::with_capacity(arrays.len());
    for (n, array) in arrays.into_iter().enumerate() {
        if n > 0 {
            qb.push(", ");
        }
        let cast = array.array_type();
        match array {
            Column::Text(values) => qb.push_bind(values),
            Column::Int(values) => qb.push_bind(values),
            Column::Bool(values) => qb.push_bind(values),
            Column::Bytes(values) => qb.push_bind(values),
        };
        qb.push(cast);
        aliases.push(format!("c{n}"));
    }
    qb.push(") AS v (").push(aliases.join(", ")).push(")");
    // Not kept prepared: see the module documentation of `billing`.
    qb.build().persistent(false).execute(conn).await
}
