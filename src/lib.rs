//! Portier: a telemaintenance access broker for hospitals.
//!
//! Vendors' technicians reach medical devices through a TLS gateway that admits a
//! tunnel only from the vendor's declared networks, during an approved window,
//! records every session before the first byte flows, and cuts it at the end.

pub mod admission;
pub mod api;
pub mod app;
pub mod audit;
pub mod budget;
pub mod check;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod conn_limit;
pub mod console;
pub mod credentials;
pub mod directory;
pub mod domain;
pub mod dossier;
pub mod events;
pub mod export;
pub mod fd_budget;
pub mod flows;
pub mod gateway;
pub mod guard;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod ops;
pub mod pki;
pub mod policy;
pub mod redact;
pub mod rights;
pub mod sbom;
pub mod scheduler;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod token;
