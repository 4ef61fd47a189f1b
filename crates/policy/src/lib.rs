//! Cedar policy engine (being written).
