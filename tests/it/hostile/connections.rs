//! Hostile tests: connections.
