//! Domain types shared by every layer (being built).
