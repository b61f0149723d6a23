//! Hostile tests: input.
