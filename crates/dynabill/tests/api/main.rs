//! API tests: a real server on port 0, a fresh database per test, HTTP on the wire.
//! Every test runs against SQLite and against PostgreSQL.

mod helpers;

mod accounts;
mod bill_run_safety;
mod console;
mod console_browser;
mod envelope;
mod histories;
mod idempotency;
mod invoices;
mod items;
mod metrics;
mod one_time;
mod outages;
mod paging;
mod plans;
mod rest;
mod scenarios;
mod secrets;
mod taxes;
mod tenancy;
