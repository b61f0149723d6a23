//! The security dossier of the running deployment (docs/dossier.md).

use std::sync::Arc;

use crate::dossier::{Dossier, Served, ServedError};
use crate::ops::{Actor, Lang, Ops, OpsError, OpsResult};
use crate::rights::Function;

impl Ops {
    /// The security dossier in `lang` (`en` or `fr`, exactly: a path names a
    /// language, not a preference), from `served` (admin, security, auditor).
    /// A database that cannot be read (or does not answer in time) is an
    /// outage; anything else that stops the assembly is our failure, logged.
    pub async fn dossier(&self, who: &Actor, served: &Served, lang: &str) -> OpsResult<Arc<Dossier>> {
        who.may(Function::ReadDossier)?;
        let lang = match lang {
            "en" => Lang::En,
            "fr" => Lang::Fr,
            _ => return Err(OpsError::not_found("dossier language (en or fr)")),
        };
        served.current(self.store.as_ref(), lang).await.map_err(|e| match e {
            ServedError::Store(e) => e.into(),
            ServedError::TimedOut => OpsError::unavailable(format!("{e}; try again later")),
            ServedError::Other(e) => {
                // Logged in full here; the caller is told it is not their mistake.
                tracing::error!(error = format!("{e:#}"), "security dossier not assembled");
                OpsError::Internal("the security dossier could not be assembled".into())
            }
        })
    }
}
