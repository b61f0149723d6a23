//! The dossier as the API and the console serve it: assembled on demand from
//! the running node's configuration and database, one assembly at a time per
//! language (it reads every vendor, device and account and may start
//! Graphviz), bounded in time, and kept for a few seconds so that a page and
//! the schema it shows come from the same assembly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{assemble, Dossier};
use crate::config::Settings;
use crate::ops::Lang;
use crate::secrets::AtRest;
use crate::store::{Store, StoreError};

/// How long an assembled dossier is served before it is assembled again.
const FRESH_FOR: Duration = Duration::from_secs(10);
/// An assembly taking longer than this is given up (a database that hangs):
/// within the API's request deadline, so the answer says why.
const ASSEMBLY_DEADLINE: Duration = Duration::from_secs(20);

/// Why the dossier could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServedError {
    #[error("the security dossier took more than {} s to assemble", ASSEMBLY_DEADLINE.as_secs())]
    TimedOut,
    #[error(transparent)]
    Store(StoreError),
    /// Anything else (a certificate unreadable, Graphviz's output…).
    #[error("{0:#}")]
    Other(anyhow::Error),
}

type Latest = tokio::sync::Mutex<Option<(Instant, Arc<Dossier>)>>;

/// The running node's dossier source.
pub struct Served {
    /// The configuration as read from its file: secrets still sealed, so the
    /// dossier reports how they are kept.
    settings: Settings,
    at_rest: AtRest,
    /// Per language: an English reader does not wait for a French assembly.
    en: Latest,
    fr: Latest,
}

impl Served {
    pub fn new(settings: Settings, at_rest: AtRest) -> Self {
        Self {
            settings,
            at_rest,
            en: Latest::default(),
            fr: Latest::default(),
        }
    }

    /// The dossier in `lang`, assembled now unless one was within [`FRESH_FOR`].
    pub async fn current(&self, store: &dyn Store, lang: Lang) -> Result<Arc<Dossier>, ServedError> {
        // Held through the assembly: concurrent requests wait for one assembly
        // rather than start their own.
        let mut latest = match lang {
            Lang::En => self.en.lock().await,
            Lang::Fr => self.fr.lock().await,
        };
        if let Some((at, d)) = latest.as_ref() {
            if at.elapsed() < FRESH_FOR {
                return Ok(d.clone());
            }
        }
        let assembled = tokio::time::timeout(ASSEMBLY_DEADLINE, assemble(&self.settings, &self.at_rest, store, lang))
            .await
            .map_err(|_| ServedError::TimedOut)?
            .map_err(|e| match e.downcast::<StoreError>() {
                Ok(store) => ServedError::Store(store),
                Err(other) => ServedError::Other(other),
            })?;
        let d = Arc::new(assembled);
        *latest = Some((Instant::now(), d.clone()));
        Ok(d)
    }
}
