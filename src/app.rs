//! Wiring: the store, the journal, the admission cache, the live registry and
//! the gateway listener, started together and stopped together.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admission::AdmissionCache;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::gateway::{tls, Gateway, GatewayDeps, Registry};
use crate::store::{self, Journal, Store};

/// A running Portier node.
pub struct App {
    /// Where technicians connect.
    pub gateway_addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    shutdown: CancellationToken,
    gateway: JoinHandle<()>,
    journal: JoinHandle<()>,
}

impl App {
    /// Opens and migrates the store, closes sessions a previous run left open,
    /// binds the gateway and starts serving.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = store::connect(&settings.database.url)
            .await
            .context("opening the database")?;
        store.migrate().await.context("applying migrations")?;
        let orphans = store
            .close_orphan_sessions(&settings.gateway.node, clock.now())
            .await
            .context("closing sessions left open by the previous run")?;
        if orphans > 0 {
            tracing::warn!(
                orphans,
                "sessions left open by the previous run closed as gateway_restart"
            );
        }

        let g = &settings.gateway;
        let versions = tls::versions(&g.tls_versions)?;
        let server_tls = tls::gateway_server_config(
            tls::load_certs(&g.cert)?,
            tls::load_key(&g.key)?,
            tls::load_certs(&g.vendor_ca)?,
            &versions,
        )
        .context("gateway TLS configuration")?;

        let (journal, journal_task) = Journal::start(store.clone());
        let registry = Arc::new(Registry::default());
        let deps = GatewayDeps {
            cache: Arc::new(AdmissionCache::new(
                store.clone(),
                settings.policy_settings(),
                clock.clone(),
            )),
            journal: journal.clone(),
            registry: registry.clone(),
            clock: clock.clone(),
        };
        // Load once now, so a database that cannot serve admission fails the start.
        deps.cache.snapshot().await.context("loading the admission state")?;
        let gateway = Gateway::bind(g.listen, server_tls, settings.gateway_settings(), deps)
            .await
            .with_context(|| format!("binding the gateway on {}", g.listen))?;
        let gateway_addr = gateway.local_addr()?;

        let event = crate::audit::AuditEvent::new(
            clock.now(),
            "system",
            "node.started",
            &settings.gateway.node,
            "success",
            serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "gateway": gateway_addr.to_string(), "database": redact_url(&settings.database.url) }),
        );
        journal
            .write(crate::store::JournalEntry::Audit(event))
            .await
            .context("recording the start")?;
        drop(journal);

        let shutdown = CancellationToken::new();
        let gateway = tokio::spawn(gateway.run(shutdown.clone()));
        Ok(Self {
            gateway_addr,
            store,
            registry,
            shutdown,
            gateway,
            journal: journal_task,
        })
    }

    /// Stops accepting, cuts the tunnels and waits for their records.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.gateway.await;
        let _ = self.journal.await;
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.stop().await;
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A database URL without its password, for logs and the audit trail.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = url.get(scheme + 3..at).unwrap_or("");
            let user = creds.split(':').next().unwrap_or("");
            format!(
                "{}{}:***{}",
                url.get(..scheme + 3).unwrap_or(""),
                user,
                url.get(at..).unwrap_or("")
            )
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(super::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("sqlite:///x.db"), "sqlite:///x.db");
    }
}
