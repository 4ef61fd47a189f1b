//! The scenarios every store backend must pass (being written).
