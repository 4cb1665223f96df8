//! dynabill-postgres
