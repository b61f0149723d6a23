//! The security dossier of the running deployment (docs/dossier.md).

use std::sync::Arc;

use crate::dossier::{Dossier, Served};
use crate::ops::{Actor, Lang, Ops, OpsError, OpsResult};
use crate::rights::Function;

impl Ops {
    /// The security dossier in `lang` (`en` or `fr`, exactly: a path names a
    /// language, not a preference), from `served` (admin, security, auditor).
    /// A dossier that cannot be assembled (database unreachable, a certificate
    /// unreadable) is an outage, answered with why.
    pub async fn dossier(&self, who: &Actor, served: &Served, lang: &str) -> OpsResult<Arc<Dossier>> {
        who.may(Function::ReadDossier)?;
        let lang = match lang {
            "en" => Lang::En,
            "fr" => Lang::Fr,
            _ => return Err(OpsError::not_found("dossier language (en or fr)")),
        };
        served.current(self.store.as_ref(), lang).await.map_err(|e| {
            tracing::error!(error = format!("{e:#}"), "security dossier not assembled");
            OpsError::unavailable(format!("the security dossier could not be assembled: {e:#}"))
        })
    }
}
