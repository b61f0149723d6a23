//! Portier's integration tests: one binary, shared helpers in `common`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::type_complexity
)]

mod common;

mod console;

mod api;
mod browser;
mod check;
mod cli;
mod cli_api;
mod cluster;
mod console_audit_admin;
mod console_security;
mod console_support;
mod console_vendor;
mod controls;
mod dossier;
mod evidence;
mod gateway;
mod gateway_buffers;
mod hostile;
mod identity;
mod journal_batches;
mod ldap;
mod metrics;
mod processes;
mod queries;
mod release;
mod retention;
mod sbom;
mod secrets;
mod store;
mod tokens;
