//! Hostile tests: faults.
