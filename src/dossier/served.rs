//! The dossier as the API and the console serve it: assembled on demand from
//! the running node's configuration and database, one assembly at a time (it
//! reads every vendor, device and account and may start Graphviz), and kept
//! for a few seconds so that a page and the schema it shows come from the same
//! assembly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{assemble, Dossier};
use crate::config::Settings;
use crate::ops::Lang;
use crate::secrets::AtRest;
use crate::store::Store;

/// How long an assembled dossier is served before it is assembled again.
const FRESH_FOR: Duration = Duration::from_secs(10);

/// The running node's dossier source.
pub struct Served {
    /// The configuration as read from its file: secrets still sealed, so the
    /// dossier reports how they are kept.
    settings: Settings,
    at_rest: AtRest,
    latest: tokio::sync::Mutex<Vec<(Lang, Instant, Arc<Dossier>)>>,
}

impl Served {
    pub fn new(settings: Settings, at_rest: AtRest) -> Self {
        Self {
            settings,
            at_rest,
            latest: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// The dossier in `lang`, assembled now unless one was within [`FRESH_FOR`].
    pub async fn current(&self, store: &dyn Store, lang: Lang) -> anyhow::Result<Arc<Dossier>> {
        // Held through the assembly: concurrent requests wait for one assembly
        // rather than starting their own.
        let mut latest = self.latest.lock().await;
        if let Some((_, at, d)) = latest.iter().find(|(l, _, _)| *l == lang) {
            if at.elapsed() < FRESH_FOR {
                return Ok(d.clone());
            }
        }
        let d = Arc::new(assemble(&self.settings, &self.at_rest, store, lang).await?);
        latest.retain(|(l, _, _)| *l != lang);
        latest.push((lang, Instant::now(), d.clone()));
        Ok(d)
    }
}
