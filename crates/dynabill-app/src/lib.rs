//! dynabill-app
