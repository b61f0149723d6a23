//! Why a use case refused or failed. The API maps each kind to one status
//! (src/api/error.rs); the CLI prints the message.

use crate::store::StoreError;

/// A refused or failed change.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The input is invalid whatever the state (400).
    #[error("{0}")]
    Invalid(String),
    /// Who is asking could not be established (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The actor may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such object (or not visible to the actor) (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The current state forbids it (409).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but refers to something that cannot be used (422).
    #[error("{0}")]
    Unprocessable(String),
    /// Not stored: the database cannot take it now (503). What could be done
    /// without it (a cut) is done, and the change is retried.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A failure of our own, logged where it happened; the message says what
    /// could not be done, without the details (500).
    #[error("{0}")]
    Internal(String),
}

/// Result of a use case.
pub type OpsResult<T> = Result<T, OpsError>;

impl OpsError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(what.to_owned())
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::Unprocessable(message.into())
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(message.into())
    }

    /// A store error on looking up an object the input refers to: only
    /// `NotFound` is the caller's mistake (answered with `missing()`); an outage
    /// stays an outage.
    pub fn unless_found(e: StoreError, missing: impl FnOnce() -> Self) -> Self {
        match e {
            StoreError::NotFound(_) => missing(),
            other => other.into(),
        }
    }
}

impl From<crate::domain::BadText> for OpsError {
    fn from(e: crate::domain::BadText) -> Self {
        Self::Invalid(e.to_string())
    }
}
