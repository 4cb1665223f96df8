//! dynabill-store-contract
