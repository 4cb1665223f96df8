//! Billing calendar: periods, grids, proration (being built).
