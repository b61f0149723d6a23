//! Hostile tests: control.
