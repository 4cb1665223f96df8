//! dynabill-sqlite
