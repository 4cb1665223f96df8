//! dynabill-http
