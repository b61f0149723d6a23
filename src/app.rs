//! Wiring: the store, the journal, the admission cache, the live registry, the
//! gateway listener and the admin API, started together and stopped together.

use crate::events::Event;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admission::AdmissionCache;
use crate::api::{self, ApiState, TechnicianPki};
use crate::audit::AuditEvent;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::conn_limit::ConnLimiter;
use crate::fd_budget;
use crate::flows::NodeFlows;
use crate::gateway::{tls, Gateway, GatewayDeps, Registry};
use crate::metrics::{CertificateExpiry, Metrics};
use crate::node::{self, NodeBeat};
use crate::notify::{self, Sinks};
use crate::pki::CertAuthority;
use crate::scheduler::Scheduler;
use crate::store::{self, Journal, JournalEntry, JournalSettings, NodeClaim, NodeIdentity, Store};

/// A running Portier node.
pub struct App {
    /// Where technicians connect.
    pub gateway_addr: SocketAddr,
    /// The admin API (HTTPS).
    pub api_addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    /// This node's metrics (what `/metrics` serves).
    pub metrics: Metrics,
    clock: SharedClock,
    identity: NodeIdentity,
    shutdown: CancellationToken,
    gateway: JoinHandle<()>,
    api: JoinHandle<()>,
    journal: JoinHandle<()>,
    scheduler: JoinHandle<()>,
    outbox: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
    feed: JoinHandle<()>,
    stopped: bool,
}

impl App {
    /// Opens and migrates the store, claims the node name (refused while another
    /// live process holds it), closes sessions a previous run left open, binds the
    /// gateway and the API and starts serving.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        Self::start_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`App::start`] with a chosen clock (tests put time where they need it).
    pub async fn start_with_clock(settings: &Settings, clock: SharedClock) -> anyhow::Result<Self> {
        // Secrets at rest first: a wrong or missing master key stops the start
        // here, naming what does not decrypt, before anything is opened.
        let at_rest = crate::secrets::AtRest::locate(&settings.secrets).context("finding the master key")?;
        // The dossier reports how secrets are kept: it reads them sealed.
        let dossier = Arc::new(crate::dossier::Served::new(settings.clone(), at_rest.clone()));
        let outer_settings = settings;
        let settings = &crate::secrets::unseal_settings(settings, &at_rest)?;
        let g = &settings.gateway;
        let a = &settings.api;
        let server = crate::secrets::envelope::KeyRole::TlsServer;
        let gateway_key = tls::key_from_pem(&at_rest.read_key_file(&g.key, server)?, &g.key)?;
        let api_key = tls::key_from_pem(&at_rest.read_key_file(&a.key, server)?, &a.key)?;
        let signer = load_vendor_ca_signer(&g.vendor_ca, &g.vendor_ca_key, &at_rest)?;
        if at_rest.key().is_some() {
            for path in crate::secrets::rotate::key_paths(settings) {
                if crate::secrets::key_file::state(&path)? == crate::secrets::key_file::KeyFileState::Clear {
                    tracing::warn!(path = %path.display(), "private key stored in clear although a master key is configured: `portier secrets rotate` encrypts it");
                }
            }
            // Named from the settings as written (not unsealed): what is in clear there.
            for field in crate::secrets::clear_config_secrets(outer_settings) {
                tracing::warn!(
                    field = %field,
                    "configuration secret stored in clear although a master key is configured: encrypt it with `portier secrets encrypt --field {field}` and paste the result"
                );
            }
            // Named from the settings as written: which values are `enc:v1:`.
            for what in crate::secrets::legacy_secrets(outer_settings) {
                tracing::warn!(
                    secret = %what,
                    "secret encrypted in the legacy format (v1, not bound to its purpose): `portier secrets rotate` upgrades it"
                );
            }
        }
        match at_rest.key() {
            Some(k) => {
                tracing::info!(master_key = %k.id(), source = %k.source(), "secrets at rest encrypted under the master key")
            }
            None => tracing::warn!(
                "no master key configured: private keys and other secrets are stored in clear (docs/secrets.md)"
            ),
        }
        let store = store::connect(&settings.database.url)
            .await
            .context("opening the database")?;
        store.migrate().await.context("applying migrations")?;
        let totp = crate::secrets::totp::reseal(store.as_ref(), &at_rest.keys(), at_rest.key(), false).await?;
        if totp.rewritten > 0 {
            tracing::warn!(
                count = totp.rewritten,
                "TOTP secrets stored in clear encrypted under the master key"
            );
        }
        let beat_settings = settings.heartbeat_settings();
        let identity = node::identity(&settings.gateway.node, &clock);
        let stale_before = identity.started_at
            - chrono::Duration::from_std(beat_settings.stale_after).context("database.node_stale_secs")?;
        let previous = match store
            .claim_node(&identity, stale_before)
            .await
            .context("claiming the node name")?
        {
            NodeClaim::Claimed { previous_last_seen } => previous_last_seen,
            NodeClaim::InUse {
                pid, host, last_seen, ..
            } => anyhow::bail!(
                "node name {:?} is in use by another running Portier (pid {pid} on {host}, alive at {last_seen}) on this database: \
                 give each process its own name with gateway.node in the configuration (or PORTIER_GATEWAY_NODE), or stop the other one; \
                 a crashed process frees the name {} s after its last heartbeat (database.node_stale_secs)",
                identity.name,
                beat_settings.stale_after.as_secs()
            ),
        };
        // A crashed run's sessions ended, as far as anyone can know, at its last heartbeat.
        let orphans = store
            .close_orphan_sessions(&settings.gateway.node, previous.unwrap_or(identity.started_at))
            .await
            .context("closing sessions left open by the previous run")?;
        if orphans > 0 {
            tracing::warn!(
                orphans,
                last_heartbeat = ?previous,
                "sessions left open by the previous run closed as gateway_restart"
            );
        }

        // Before anything holds connections: the gateway's descriptors must not
        // be at the mercy of the API's (see fd_budget).
        let budget = fd_budget::prepare(settings.fd_wanted()).context("file-descriptor budget")?;
        let mut gateway_settings = settings.gateway_settings();
        gateway_settings.max_connections = budget.gateway_connections;
        gateway_settings.max_connections_per_source = fd_budget::per_source_within(
            "gateway.max_connections_per_source",
            g.max_connections_per_source,
            budget.gateway_connections,
        );
        let vendor_roots = tls::load_certs(&g.vendor_ca)?;
        let gateway_chain = tls::load_certs(&g.cert)?;
        let metrics = Metrics::new(CertificateExpiry {
            gateway: gateway_chain.first().and_then(|c| not_after(c.as_ref())),
            vendor_ca: vendor_roots.iter().filter_map(|c| not_after(c.as_ref())).min(),
        });
        let gateway_tls = tls::gateway_server_config(
            gateway_chain,
            gateway_key,
            vendor_roots.clone(),
            &tls::versions(&g.tls_versions)?,
        )
        .context("gateway TLS configuration")?;
        let api_tls = tls::plain_server_config(tls::load_certs(&a.cert)?, api_key, &tls::versions(&a.tls_versions)?)
            .context("API TLS configuration")?;

        let journal_settings = JournalSettings {
            metrics: metrics.clone(),
            ..settings.journal_settings()
        };
        let (journal, journal_task) = Journal::start_with(store.clone(), journal_settings);
        let delivery = notify::DeliverySettings {
            metrics: metrics.clone(),
            ..settings.delivery_settings()
        };
        let (notifier, outbox) = notify::start(
            Sinks {
                webhooks: settings.notify.webhooks.clone(),
                syslog: settings.notify.syslog.clone(),
            },
            delivery,
            store.clone(),
            journal.clone(),
            clock.clone(),
            &identity.name,
        );
        let registry = Arc::new(Registry::default());
        let cache = Arc::new(AdmissionCache::following(
            store.clone(),
            registry.clone(),
            clock.clone(),
            settings.feed_settings(),
        ));
        // Load once now, so a database that cannot serve admission fails the start.
        cache.snapshot().await.context("loading the admission state")?;
        let deps = GatewayDeps {
            cache: cache.clone(),
            journal: journal.clone(),
            registry: registry.clone(),
            clock: clock.clone(),
            notifier: notifier.clone(),
            metrics: metrics.clone(),
        };
        let scheduler = Scheduler {
            store: store.clone(),
            registry: registry.clone(),
            notifier: notifier.clone(),
            clock: clock.clone(),
            ending_soon: settings
                .notify
                .ending_soon_minutes
                .iter()
                .map(|m| chrono::Duration::minutes(i64::from(*m)))
                .collect(),
            report_due: chrono::Duration::hours(i64::from(settings.policy.report_due_hours)),
            anchor_every: (settings.audit.anchor_minutes > 0)
                .then(|| std::time::Duration::from_secs(60 * u64::from(settings.audit.anchor_minutes))),
            node: g.node.clone(),
            node_stale: settings.api_limits().node_stale,
            console_idle: settings.api_limits().console_idle,
            console_absolute: settings.api_limits().console_absolute,
        };
        let api_limits = Arc::new(ConnLimiter::new(
            "api",
            &g.node,
            budget.api_connections,
            fd_budget::per_source_within(
                "api.max_connections_per_source",
                a.max_connections_per_source,
                budget.api_connections,
            ),
            journal.clone(),
            clock.clone(),
        ));
        let gateway = Gateway::bind(g.listen, gateway_tls, gateway_settings, deps)
            .await
            .with_context(|| format!("binding the gateway on {}", g.listen))?;
        let gateway_addr = gateway.local_addr()?;
        let api_listener = TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("binding the API on {}", a.listen))?;
        let api_addr = api_listener.local_addr()?;
        let guard = cache.guard().clone();
        let feed = cache.feed().clone();
        let guard_deps = crate::guard::GuardDeps {
            store: store.clone(),
            registry: registry.clone(),
            notifier: notifier.clone(),
            lockdown_file: Some(g.lockdown_file.clone()),
            node: g.node.clone(),
        };
        // A lockdown file present at start holds before the first tunnel.
        guard.follow_file(&g.lockdown_file, &guard_deps);
        let ops = crate::ops::Ops {
            store: store.clone(),
            registry: registry.clone(),
            cache: cache.clone(),
            clock: clock.clone(),
            rules: crate::ops::Rules {
                at_rest: at_rest.clone(),
                ..settings.api_limits()
            },
        };
        let api_state = ApiState {
            ops,
            store: store.clone(),
            registry: registry.clone(),
            cache,
            journal: journal.clone(),
            clock: clock.clone(),
            pki: Arc::new(TechnicianPki {
                signer,
                verifier: tls::client_verifier(vendor_roots)?,
            }),
            limits: settings.api_limits(),
            notifier,
            node: Arc::new(NodeFlows {
                gateway: gateway_addr,
                gateway_tls_versions: g.tls_versions.clone(),
                api: api_addr,
                database: redact_url(&settings.database.url),
                webhooks: settings.notify.webhooks.iter().map(|w| redact_url(&w.url)).collect(),
                syslog: settings.notify.syslog.clone(),
                proxy_protocol_from: g.proxy_protocol_from.clone(),
            }),
            console: Arc::new(crate::console::ConsoleSettings {
                tz: settings.console.tz(),
            }),
            metrics: metrics.clone(),
            dossier,
        };

        let event = AuditEvent::new(
            clock.now(),
            "system",
            Event::NodeStarted,
            &settings.gateway.node,
            "success",
            serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "gateway": gateway_addr.to_string(),
                "api": api_addr.to_string(),
                "database": redact_url(&settings.database.url),
                "config_sha256": config_digest(settings),
            }),
        );
        journal
            .write(JournalEntry::Audit(event))
            .await
            .context("recording the start")?;

        let shutdown = CancellationToken::new();
        let gateway = tokio::spawn(gateway.run(shutdown.clone()));
        let api = tokio::spawn(api::serve(
            api_listener,
            api_tls,
            api::router(api_state),
            settings.api_conn_settings(),
            api_limits,
            shutdown.clone(),
        ));
        let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));
        let outbox = tokio::spawn(outbox.run(shutdown.clone()));
        // Every node follows the changes committed through any node (docs/cluster.md).
        let feed = tokio::spawn(feed.run(shutdown.clone()));
        let heartbeat = tokio::spawn(
            NodeBeat {
                store: store.clone(),
                registry: registry.clone(),
                clock: clock.clone(),
                node: identity.clone(),
                settings: beat_settings,
            }
            .run(shutdown.clone()),
        );
        tokio::spawn(guard.run(guard_deps, shutdown.clone()));
        Ok(Self {
            gateway_addr,
            api_addr,
            store,
            registry,
            metrics,
            clock,
            identity,
            shutdown,
            gateway,
            api,
            journal: journal_task,
            scheduler,
            outbox,
            heartbeat,
            feed,
            stopped: false,
        })
    }

    /// Stops accepting, cuts the tunnels and waits for their records.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    /// [`App::stop`] in place: afterwards the node name is free for a new start.
    pub async fn shutdown(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        self.shutdown.cancel();
        let _ = (&mut self.api).await;
        let _ = (&mut self.gateway).await;
        let _ = (&mut self.scheduler).await;
        let _ = (&mut self.outbox).await;
        let _ = (&mut self.heartbeat).await;
        let _ = (&mut self.feed).await;
        let _ = (&mut self.journal).await;
        if let Err(e) = self.store.release_node(&self.identity, self.clock.now()).await {
            tracing::warn!(error = %e, "could not mark the node as stopped; its name frees itself once its heartbeat is stale");
        }
    }

    /// Stops every task at once, without the shutdown path: nothing is cut or
    /// recorded and the node name is not released — what a crash (`kill -9`)
    /// leaves behind. Tunnels already open keep their sockets until their peers
    /// close them, but nothing they do reaches the store any more.
    pub fn abort(&self) {
        self.heartbeat.abort();
        self.feed.abort();
        self.journal.abort();
        self.scheduler.abort();
        self.outbox.abort();
        self.gateway.abort();
        self.api.abort();
    }

    /// This process's claim on its node name.
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.stop().await;
    }
}

/// The vendor CA as a signer, if its key is present (it may be kept offline).
fn load_vendor_ca_signer(
    cert: &Path,
    key: &Path,
    at_rest: &crate::secrets::AtRest,
) -> anyhow::Result<Option<CertAuthority>> {
    if !key.exists() {
        tracing::info!(key = %key.display(), "no vendor CA key: technicians can only be registered with pinned certificates");
        return Ok(None);
    }
    let cert_pem = std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?;
    let key_pem = at_rest.read_key_file(key, crate::secrets::envelope::KeyRole::VendorCa)?;
    Ok(Some(
        CertAuthority::load(&cert_pem, &key_pem).context("loading the vendor CA")?,
    ))
}

/// When a DER certificate expires; `None` (and no metric) if it cannot be read.
fn not_after(der: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    match crate::pki::CertInfo::from_der(der) {
        Ok(c) => Some(c.not_after),
        Err(e) => {
            tracing::warn!(error = %e, "certificate not readable: its expiry is not in the metrics");
            None
        }
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

/// SHA-256 of the effective configuration, recorded when a node starts so an
/// auditor can tell when it changed (secrets are hashed in, never written out).
fn config_digest(settings: &Settings) -> String {
    use sha2::{Digest, Sha256};
    let text = toml::to_string(settings).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Kept here for callers that import it from `app`; see [`crate::redact`].
pub use crate::redact::redact_url;
