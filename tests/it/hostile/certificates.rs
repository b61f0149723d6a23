//! Hostile tests: certificates.
