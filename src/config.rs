//! `portier.toml`: every key has a safe default and can be overridden by an
//! environment variable `PORTIER_<SECTION>_<KEY>` (e.g. `PORTIER_DATABASE_URL`).
//! Unknown keys, in the file or the environment, are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::policy::{OverdueMode, PolicySettings};

/// Smallest `gateway.fd_reserve`: the database pool, logs, notification
/// sockets and the runtime's own descriptors live in it.
const MIN_FD_RESERVE: u64 = 64;
/// The largest `database.node_stale_secs`: one day (and dates computed from it stay in range).
const MAX_NODE_STALE_SECS: u64 = 86_400;

/// Sections that environment overrides may address.
const SECTIONS: [&str; 11] = [
    "gateway", "api", "database", "policy", "notify", "audit", "log", "cluster", "console", "auth", "secrets",
];

/// Configuration errors, with the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid value: {0}")]
    Invalid(String),
}

/// Whether `name` can name a node: what a host name may be (letters, digits,
/// `.`, `-`), plus `_`, at most 253 characters, starting with a letter or digit.
pub fn valid_node_name(name: &str) -> bool {
    name.len() <= 253
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The default node name: this host's name (uname), refused with a clear
/// error if it cannot be read or cannot name a node.
fn host_node_name() -> Result<String, ConfigError> {
    node_name_from_host(read_host_name())
}

fn node_name_from_host(host: Option<String>) -> Result<String, ConfigError> {
    match host {
        Some(h) if valid_node_name(&h) => Ok(h),
        Some(h) => Err(ConfigError::Invalid(format!(
            "gateway.node is not set and this host's name {h:?} cannot name a node: set gateway.node (or PORTIER_GATEWAY_NODE)"
        ))),
        None => Err(ConfigError::Invalid(
            "gateway.node is not set and this host's name cannot be read: set gateway.node (or PORTIER_GATEWAY_NODE)".into(),
        )),
    }
}

#[cfg(unix)]
fn read_host_name() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_str().ok()?.trim().to_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(not(unix))]
fn read_host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok().filter(|h| !h.is_empty())
}

/// `[gateway]`: the technicians' TLS listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// PEM chain of the gateway's server certificate.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// PEM of the CA(s) technicians' certificates must chain to.
    pub vendor_ca: PathBuf,
    /// Key of the vendor CA, to sign technicians' CSRs; without it, only pinned
    /// certificates can be registered.
    pub vendor_ca_key: PathBuf,
    /// `["1.3"]` by default; add `"1.2"` only for legacy clients.
    pub tls_versions: Vec<String>,
    pub handshake_timeout_secs: u64,
    pub connect_timeout_secs: u64,
    /// Connections (handshakes and tunnels) held at once; each tunnel takes
    /// two file descriptors (technician and device).
    pub max_connections: usize,
    /// Connections one source address may hold at once, checked before the
    /// TLS handshake.
    pub max_connections_per_source: usize,
    /// File descriptors kept out of the connection limits for the database
    /// pool, logs and notifications; see [`crate::fd_budget`].
    pub fd_reserve: u64,
    pub linger_secs: u64,
    /// This node's name in session records and the `nodes` table. Unset (or
    /// empty): this host's name, filled in at load.
    pub node: String,
    /// A file whose presence locks this node down (written by `portier lockdown
    /// on`, read every 250 ms), so a lockdown reaches it without the database.
    /// Relative to the configuration file's directory.
    pub lockdown_file: PathBuf,
    /// Load balancers whose connections start with a PROXY protocol v2
    /// header naming the technician's address (required from them, refused
    /// from anyone else). Empty: PROXY protocol off.
    pub proxy_protocol_from: Vec<ipnet::IpNet>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            cert: "certs/server.pem".into(),
            key: "certs/server.key".into(),
            vendor_ca: "certs/vendor-ca.pem".into(),
            vendor_ca_key: "certs/vendor-ca.key".into(),
            tls_versions: vec!["1.3".into()],
            handshake_timeout_secs: 10,
            connect_timeout_secs: 5,
            max_connections: 10_000,
            max_connections_per_source: 64,
            fd_reserve: 256,
            linger_secs: 2,
            node: String::new(),
            lockdown_file: "lockdown".into(),
            proxy_protocol_from: Vec::new(),
        }
    }
}

/// `[api]`: the admin API (HTTPS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub tls_versions: Vec<String>,
    /// Validity of technician certificates signed from CSRs.
    pub technician_cert_days: u32,
    /// API connections held at once; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// API connections one source address may hold at once.
    pub max_connections_per_source: usize,
    /// The TLS handshake must complete within this.
    pub handshake_timeout_secs: u64,
    /// The first request's headers must arrive within this after the handshake.
    pub header_read_timeout_secs: u64,
    /// A connection without a request for this long is closed.
    pub idle_timeout_secs: u64,
    /// A connection whose peer reads nothing of an answer for this long is closed.
    pub send_timeout_secs: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8444)),
            cert: "certs/server.pem".into(),
            key: "certs/server.key".into(),
            tls_versions: vec!["1.3".into()],
            technician_cert_days: 365,
            max_connections: 256,
            max_connections_per_source: 64,
            handshake_timeout_secs: 10,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 30,
            send_timeout_secs: 30,
        }
    }
}

/// `[database]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://FILE` (relative to the configuration file) or `postgres://…`.
    /// May carry a password: shown only through [`crate::redact::redact_url`].
    pub url: String,
    /// The node records that it is alive this often (also the store's write probe).
    pub heartbeat_secs: u64,
    /// A node silent for this long is dead: its name may be taken by another
    /// process and its open sessions are no longer listed as active.
    pub node_stale_secs: u64,
    /// Byte counts of live sessions are saved this often (what a crash can lose).
    pub checkpoint_secs: u64,
    /// Audit events kept in memory for retry while the database is down (session
    /// ends are always kept).
    pub retry_queue: usize,
    /// While the database is down, it is probed this often.
    pub probe_ms: u64,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::redact::DebugUrl(&self.url))
            .finish()
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://portier.db".into(),
            heartbeat_secs: 2,
            node_stale_secs: 10,
            checkpoint_secs: 5,
            retry_queue: 10_000,
            probe_ms: 1000,
        }
    }
}

/// `[policy]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Longest window that may be requested.
    pub max_window_hours: u32,
    /// How far ahead a window may start.
    pub max_horizon_days: u32,
    /// Longest emergency grant.
    pub max_emergency_minutes: u32,
    /// A report is due this long after its window ends.
    pub report_due_hours: u32,
    /// `block` (default) or `warn`.
    pub on_overdue_report: OverdueMode,
    /// Declared IPv4 networks (vendors', emergency grants' extra ones) must be at
    /// least this narrow, unless an admin sets `allow_broad_networks` (vendors only).
    pub min_network_prefix_v4: u8,
    /// The same for IPv6.
    pub min_network_prefix_v6: u8,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            max_window_hours: 12,
            max_horizon_days: 90,
            max_emergency_minutes: 240,
            report_due_hours: 24,
            on_overdue_report: OverdueMode::Block,
            min_network_prefix_v4: 16,
            min_network_prefix_v6: 32,
        }
    }
}

/// `[notify]`: where events are sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `[[notify.webhooks]]` with `url`, `secret`, optional `events`.
    pub webhooks: Vec<crate::notify::WebhookConfig>,
    /// `udp://host:port` or `tcp://host:port` (RFC 5424).
    pub syslog: Option<String>,
    /// Minutes before a window's end when its vendor is told it ends soon.
    pub ending_soon_minutes: Vec<u32>,
    /// First retry delay of an undelivered notification, in milliseconds
    /// (doubled per attempt, with jitter, up to `retry_max_secs`).
    pub retry_base_ms: u64,
    /// Longest delay between two attempts, in seconds.
    pub retry_max_secs: u64,
    /// A notification not delivered this many hours after it was raised is
    /// given up (marked failed and logged as an error).
    pub retry_for_hours: u64,
    /// Delivered and failed notifications are deleted after this many days.
    pub retention_days: u64,
    /// How often a node looks for notifications due (raised on another node,
    /// or retries), in milliseconds; its own are sent at once.
    pub poll_ms: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            syslog: None,
            ending_soon_minutes: vec![15, 2],
            retry_base_ms: 1000,
            retry_max_secs: 30 * 60,
            retry_for_hours: 72,
            retention_days: 7,
            poll_ms: 1000,
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Every this many minutes, the chain's head (seq, hash) is logged and notified
    /// (`audit.anchor`), so that truncating the tail is detectable from outside.
    /// 0 turns it off.
    pub anchor_minutes: u32,
}

/// `[cluster]`: how this node follows the changes made through every node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// A node that has not confirmed the change feed for this long refuses new
    /// tunnels (`store_unavailable`) and says so in `/readyz`.
    pub max_staleness_secs: u64,
    /// `refuse` (default): live tunnels keep running while stale; `cut`: they
    /// are cut too (`end_reason = node_stale`).
    pub on_stale: crate::cluster::OnStale,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            max_staleness_secs: 5,
            on_stale: crate::cluster::OnStale::Refuse,
        }
    }
}

/// `[console]`: the web console on the admin API's listener (docs/console.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// The hospital's time zone (IANA name): dates are shown and entered in it,
    /// with UTC beside them; everything is stored in UTC.
    pub timezone: String,
    /// A console session unused for this long ends.
    pub idle_minutes: u32,
    /// A console session ends this long after sign-in, used or not.
    pub absolute_hours: u32,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            timezone: "Europe/Paris".into(),
            idle_minutes: 30,
            absolute_hours: 12,
        }
    }
}

impl ConsoleConfig {
    /// The configured time zone (validated at load).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::Tz::UTC)
    }
}

/// `[auth]`: how people and scripts prove who they are (README "Accounts and sign-in").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Personal API tokens expire after this many days unless asked otherwise.
    pub token_days: u32,
    /// The longest expiry a personal token may be given.
    pub max_token_days: u32,
    /// The bootstrap admin token printed by `init` expires after this many hours.
    pub bootstrap_token_hours: u32,
    /// Shortest local password accepted.
    pub password_min_length: u32,
    /// Roles that must use a second factor (TOTP) to sign in.
    pub require_mfa: Vec<crate::domain::Role>,
    /// Failed sign-ins of one account name before a temporary lockout.
    pub lockout_after: u32,
    /// Failed sign-ins from one source address (any names) before a temporary
    /// lockout of that address: higher than `lockout_after`, since a whole
    /// hospital site may reach the console through one NAT address.
    pub source_lockout_after: u32,
    /// How long a lockout lasts.
    pub lockout_minutes: u32,
    /// The hospital's directory (LDAP / Active Directory), if staff sign in with it.
    pub ldap: Option<LdapConfig>,
}

/// `[auth.ldap]`: hospital staff sign in with their directory password
/// (README "The hospital's directory").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldaps://host[:port]` or `ldap://host[:port]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// Allow `ldap://` without StartTLS (passwords in clear): for tests only.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// PEM file of the certificate authority of the directory's certificate
    /// (default: the system's roots).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The DN to bind as, `{user}` standing for the name typed (DN-escaped).
    #[serde(default)]
    pub user_dn_template: Option<String>,
    /// Search mode (Active Directory): a service account that finds the user…
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub bind_password: Option<crate::redact::Secret<String>>,
    /// …under this base…
    #[serde(default)]
    pub user_search_base: Option<String>,
    /// …with this filter, `{user}` standing for the name typed (filter-escaped).
    #[serde(default)]
    pub user_filter: Option<String>,
    /// Role → group DN. Membership: the group's `member`/`uniqueMember`, or the
    /// user's `memberOf`. A person in several groups gets the first of admin,
    /// security, auditor.
    #[serde(default)]
    pub role_groups: std::collections::HashMap<crate::domain::Role, String>,
    /// Connection and per-operation timeout.
    #[serde(default = "default_ldap_timeout")]
    pub timeout_secs: u64,
}

fn default_ldap_timeout() -> u64 {
    10
}

impl LdapConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("auth.ldap: {m}")));
        let lower = self.url.to_ascii_lowercase();
        if lower.starts_with("ldaps://") {
            if self.starttls {
                return bad("starttls applies to ldap:// URLs, not ldaps://".into());
            }
        } else if lower.starts_with("ldap://") {
            if !self.starttls && !self.allow_plaintext {
                return bad(format!(
                    "{} would send passwords in clear: use ldaps://, or starttls = true (allow_plaintext = true is for tests only)",
                    self.url
                ));
            }
        } else {
            return bad(format!("url {:?} must start with ldaps:// or ldap://", self.url));
        }
        let search = self.bind_dn.is_some() || self.user_search_base.is_some() || self.user_filter.is_some();
        match (&self.user_dn_template, search) {
            (Some(t), false) if t.contains("{user}") => {}
            (Some(_), false) => return bad("user_dn_template must contain {user}".into()),
            (None, true)
                if self.user_search_base.is_some()
                    && self.user_filter.as_deref().is_some_and(|f| f.contains("{user}"))
                    && self.bind_dn.is_some() == self.bind_password.is_some() => {}
            (None, true) => {
                return bad(
                    "search mode needs user_search_base, user_filter (with {user}) and bind_dn with bind_password"
                        .into(),
                )
            }
            _ => return bad("set either user_dn_template, or bind_dn/user_search_base/user_filter".into()),
        }
        if self.role_groups.is_empty() {
            return bad("role_groups maps no group to a role: nobody could sign in".into());
        }
        if self.role_groups.contains_key(&crate::domain::Role::Vendor) {
            return bad("vendors' staff use local accounts, not the hospital's directory".into());
        }
        if self.timeout_secs == 0 {
            return bad("timeout_secs must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_days: 90,
            max_token_days: 365,
            bootstrap_token_hours: 24,
            password_min_length: 12,
            require_mfa: vec![crate::domain::Role::Security, crate::domain::Role::Admin],
            lockout_after: 5,
            source_lockout_after: 30,
            lockout_minutes: 15,
            ldap: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// `[retention]`: secure disposal (`portier purge`, docs/retention.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// A purge's cut-off must be at least this many days in the past: personal
    /// data younger than this is never removed. Default 365; at least 1.
    pub min_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { min_days: 365 }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub gateway: GatewayConfig,
    pub api: ApiConfig,
    pub database: DatabaseConfig,
    pub policy: PolicyConfig,
    pub notify: NotifyConfig,
    pub audit: AuditConfig,
    pub log: LogConfig,
    pub cluster: ClusterConfig,
    pub console: ConsoleConfig,
    pub auth: AuthConfig,
    /// Where the master key of secrets at rest is kept (docs/secrets.md).
    pub secrets: crate::secrets::SecretsConfig,
    pub retention: RetentionConfig,
    /// The file these settings were loaded from, when they were (the dossier
    /// names it in its commands).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Settings {
    /// Reads `path`, applies `PORTIER_*` overrides from the process environment,
    /// resolves relative paths against the file's directory and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut settings = Self::from_toml(&text, base, std::env::vars())?;
        settings.source = Some(path.to_owned());
        Ok(settings)
    }

    /// Parses a configuration text with the given environment.
    pub fn from_toml(
        text: &str,
        base: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        // Where and why, not the line itself: it may hold a secret in clear.
        let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let before = text.get(..e.span().map_or(0, |s| s.start)).unwrap_or_default();
            ConfigError::Parse(format!(
                "line {}, column {}: {}",
                before.matches('\n').count() + 1,
                before.rsplit('\n').next().unwrap_or_default().chars().count() + 1,
                e.message()
            ))
        })?;
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix("PORTIER_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            let Some((section, key)) = lower.split_once('_') else {
                continue;
            };
            if !SECTIONS.contains(&section) {
                continue;
            }
            let table = doc
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::Parse(format!("[{section}] is not a table")))?;
            table.insert(key.to_owned(), env_value(&raw));
        }
        let mut s: Settings = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(without_values(&e.to_string())))?;
        s.resolve_paths(base);
        if s.gateway.node.is_empty() {
            s.gateway.node = host_node_name()?;
        }
        s.validate()?;
        Ok(s)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.gateway.cert);
        abs(&mut self.gateway.key);
        abs(&mut self.gateway.vendor_ca);
        abs(&mut self.gateway.vendor_ca_key);
        abs(&mut self.gateway.lockdown_file);
        if let Some(ca) = self.auth.ldap.as_mut().and_then(|l| l.ca.as_mut()) {
            abs(ca);
        }
        abs(&mut self.api.cert);
        abs(&mut self.api.key);
        if let Some(f) = self.secrets.master_key_file.as_mut() {
            abs(f);
        }
        if let Some(file) = self.database.url.strip_prefix("sqlite://") {
            let (file, query) = file.split_once('?').map_or((file, None), |(f, q)| (f, Some(q)));
            if !file.is_empty() && Path::new(file).is_relative() && file != ":memory:" {
                let joined = base.join(file);
                self.database.url = match query {
                    Some(q) => format!("sqlite://{}?{q}", joined.display()),
                    None => format!("sqlite://{}", joined.display()),
                };
            }
        }
    }

    /// Checks the values together. Encrypted secrets (`enc:v2:…`, `enc:v1:…`) are checked
    /// once decrypted ([`crate::secrets::unseal_settings`] calls this again).
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(ldap) = &self.auth.ldap {
            ldap.validate()?;
        }
        if self.console.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "console.timezone {:?} is not an IANA time zone name (e.g. Europe/Paris)",
                self.console.timezone
            )));
        }
        if self.retention.min_days == 0 {
            return Err(ConfigError::Invalid(
                "retention.min_days must be at least 1: a purge never removes today's data".into(),
            ));
        }
        if self.console.idle_minutes == 0 || self.console.absolute_hours == 0 {
            return Err(ConfigError::Invalid(
                "console.idle_minutes and console.absolute_hours must be at least 1".into(),
            ));
        }
        let a = &self.auth;
        if a.token_days == 0 || a.token_days > a.max_token_days {
            return Err(ConfigError::Invalid(format!(
                "auth.token_days ({}) must be from 1 to auth.max_token_days ({})",
                a.token_days, a.max_token_days
            )));
        }
        if a.bootstrap_token_hours == 0 || a.lockout_after == 0 || a.lockout_minutes == 0 {
            return Err(ConfigError::Invalid(
                "auth.bootstrap_token_hours, auth.lockout_after and auth.lockout_minutes must be at least 1".into(),
            ));
        }
        if a.source_lockout_after < a.lockout_after {
            return Err(ConfigError::Invalid(format!(
                "auth.source_lockout_after ({}) must be at least auth.lockout_after ({})",
                a.source_lockout_after, a.lockout_after
            )));
        }
        if !valid_node_name(&self.gateway.node) {
            return Err(ConfigError::Invalid(format!(
                "gateway.node {:?} must be 1 to 253 letters, digits, '.', '-' or '_', starting with a letter or digit",
                self.gateway.node
            )));
        }
        crate::gateway::tls::versions(&self.gateway.tls_versions)
            .map_err(|e| ConfigError::Invalid(format!("gateway.tls_versions: {e}")))?;
        crate::gateway::tls::versions(&self.api.tls_versions)
            .map_err(|e| ConfigError::Invalid(format!("api.tls_versions: {e}")))?;
        let positive = [
            ("api.technician_cert_days", u64::from(self.api.technician_cert_days)),
            ("policy.max_horizon_days", u64::from(self.policy.max_horizon_days)),
            ("gateway.handshake_timeout_secs", self.gateway.handshake_timeout_secs),
            ("gateway.connect_timeout_secs", self.gateway.connect_timeout_secs),
            ("gateway.max_connections", self.gateway.max_connections as u64),
            (
                "gateway.max_connections_per_source",
                self.gateway.max_connections_per_source as u64,
            ),
            ("api.max_connections", self.api.max_connections as u64),
            (
                "api.max_connections_per_source",
                self.api.max_connections_per_source as u64,
            ),
            ("api.handshake_timeout_secs", self.api.handshake_timeout_secs),
            ("api.header_read_timeout_secs", self.api.header_read_timeout_secs),
            ("api.idle_timeout_secs", self.api.idle_timeout_secs),
            ("api.send_timeout_secs", self.api.send_timeout_secs),
            ("policy.max_window_hours", u64::from(self.policy.max_window_hours)),
            (
                "policy.max_emergency_minutes",
                u64::from(self.policy.max_emergency_minutes),
            ),
            ("notify.retry_base_ms", self.notify.retry_base_ms),
            ("notify.retry_max_secs", self.notify.retry_max_secs),
            ("notify.retry_for_hours", self.notify.retry_for_hours),
            ("notify.retention_days", self.notify.retention_days),
            ("notify.poll_ms", self.notify.poll_ms),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be greater than 0")));
            }
        }
        for (section, per_source, max) in [
            (
                "gateway",
                self.gateway.max_connections_per_source,
                self.gateway.max_connections,
            ),
            ("api", self.api.max_connections_per_source, self.api.max_connections),
        ] {
            if per_source > max {
                return Err(ConfigError::Invalid(format!(
                    "{section}.max_connections_per_source ({per_source}) must not exceed {section}.max_connections ({max})"
                )));
            }
        }
        if self.gateway.fd_reserve < MIN_FD_RESERVE {
            return Err(ConfigError::Invalid(format!(
                "gateway.fd_reserve ({}) must be at least {MIN_FD_RESERVE}: the database pool, logs and notifications need descriptors too",
                self.gateway.fd_reserve
            )));
        }
        self.validate_liveness()?;
        if let Some(net) = self.gateway.proxy_protocol_from.iter().find(|n| n.prefix_len() == 0) {
            return Err(ConfigError::Invalid(format!(
                "gateway.proxy_protocol_from: {net} would let anyone claim any source address; list the balancers' addresses"
            )));
        }
        if !(1..=32).contains(&self.policy.min_network_prefix_v4)
            || !(1..=128).contains(&self.policy.min_network_prefix_v6)
        {
            return Err(ConfigError::Invalid(
                "policy.min_network_prefix_v4 must be 1 to 32 and policy.min_network_prefix_v6 1 to 128".into(),
            ));
        }
        for hook in &self.notify.webhooks {
            if crate::secrets::envelope::is_sealed_value(hook.secret.expose()) {
                if !(hook.url.starts_with("https://") || hook.url.starts_with("http://")) {
                    return Err(ConfigError::Invalid(format!(
                        "notify.webhooks: {:?} needs an http(s) url",
                        crate::redact::redact_url(&hook.url)
                    )));
                }
                continue;
            }
            if !(hook.url.starts_with("https://") || hook.url.starts_with("http://")) || hook.secret.expose().len() < 16
            {
                return Err(ConfigError::Invalid(format!(
                    "notify.webhooks: {:?} needs an http(s) url and a secret of at least 16 characters",
                    crate::redact::redact_url(&hook.url)
                )));
            }
            if let Err(e) = crate::notify::signing_key(hook.secret.expose()) {
                return Err(ConfigError::Invalid(format!(
                    "notify.webhooks: {:?}: {e}",
                    crate::redact::redact_url(&hook.url)
                )));
            }
        }
        if let Some(target) = &self.notify.syslog {
            if !(target.starts_with("udp://") || target.starts_with("tcp://")) {
                return Err(ConfigError::Invalid(format!(
                    "notify.syslog {target:?} must be udp://host:port or tcp://host:port"
                )));
            }
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(format!(
                "database.url {:?} must start with sqlite:// or postgres://",
                crate::redact::redact_url(&self.database.url)
            )));
        }
        Ok(())
    }

    fn validate_liveness(&self) -> Result<(), ConfigError> {
        let d = &self.database;
        for (key, v) in [
            ("database.heartbeat_secs", d.heartbeat_secs),
            ("database.checkpoint_secs", d.checkpoint_secs),
            ("database.retry_queue", d.retry_queue as u64),
            ("database.probe_ms", d.probe_ms),
            ("cluster.max_staleness_secs", self.cluster.max_staleness_secs),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be greater than 0")));
            }
        }
        if d.node_stale_secs > MAX_NODE_STALE_SECS {
            return Err(ConfigError::Invalid(format!(
                "database.node_stale_secs ({}) must be at most {MAX_NODE_STALE_SECS} (one day): a node silent that long is dead",
                d.node_stale_secs
            )));
        }
        if d.node_stale_secs < d.heartbeat_secs.saturating_mul(3) {
            return Err(ConfigError::Invalid(format!(
                "database.node_stale_secs ({}) must be at least 3 × database.heartbeat_secs ({}), or a slow beat would pass for a dead node",
                d.node_stale_secs, d.heartbeat_secs
            )));
        }
        // With `on_stale = "cut"` a stale node promises to cut its tunnels before
        // the others declare it lost and close their records; the bound must say so.
        if self.cluster.on_stale == crate::cluster::OnStale::Cut && self.cluster.max_staleness_secs >= d.node_stale_secs
        {
            return Err(ConfigError::Invalid(format!(
                "with cluster.on_stale = \"cut\", cluster.max_staleness_secs ({}) must be less than database.node_stale_secs ({}): a node cut off from the database cuts its tunnels before the others declare it lost",
                self.cluster.max_staleness_secs, d.node_stale_secs
            )));
        }
        Ok(())
    }

    /// The heartbeat's cadence.
    pub fn heartbeat_settings(&self) -> crate::node::HeartbeatSettings {
        crate::node::HeartbeatSettings {
            every: Duration::from_secs(self.database.heartbeat_secs),
            checkpoint_every: Duration::from_secs(self.database.checkpoint_secs),
            stale_after: Duration::from_secs(self.database.node_stale_secs),
        }
    }

    /// The journal's outage behaviour.
    pub fn journal_settings(&self) -> crate::store::JournalSettings {
        crate::store::JournalSettings {
            retry_capacity: self.database.retry_queue,
            probe_every: Duration::from_millis(self.database.probe_ms),
            ..crate::store::JournalSettings::default()
        }
    }

    /// How notifications are delivered and retried.
    pub fn delivery_settings(&self) -> crate::notify::DeliverySettings {
        let n = &self.notify;
        crate::notify::DeliverySettings {
            retry_base: Duration::from_millis(n.retry_base_ms),
            retry_max: Duration::from_secs(n.retry_max_secs),
            retry_for: Duration::from_secs(n.retry_for_hours.saturating_mul(3600)),
            retention: Duration::from_secs(n.retention_days.saturating_mul(86_400)),
            poll: Duration::from_millis(n.poll_ms),
            ..crate::notify::DeliverySettings::default()
        }
    }

    /// The policy's configurable part.
    pub fn policy_settings(&self) -> PolicySettings {
        PolicySettings {
            report_due: chrono::Duration::hours(i64::from(self.policy.report_due_hours)),
            on_overdue: self.policy.on_overdue_report,
        }
    }

    /// How this node follows the change feed.
    pub fn feed_settings(&self) -> crate::cluster::FeedSettings {
        crate::cluster::FeedSettings {
            policy: self.policy_settings(),
            max_staleness: Duration::from_secs(self.cluster.max_staleness_secs),
            on_stale: self.cluster.on_stale,
            ..crate::cluster::FeedSettings::default()
        }
    }

    /// The API's limits.
    pub fn api_limits(&self) -> crate::api::ApiLimits {
        crate::api::ApiLimits {
            max_window: chrono::Duration::hours(i64::from(self.policy.max_window_hours)),
            max_horizon: chrono::Duration::days(i64::from(self.policy.max_horizon_days)),
            technician_cert_days: i64::from(self.api.technician_cert_days),
            max_emergency: chrono::Duration::minutes(i64::from(self.policy.max_emergency_minutes)),
            report_due: chrono::Duration::hours(i64::from(self.policy.report_due_hours)),
            on_overdue: self.policy.on_overdue_report,
            node_stale: chrono::Duration::seconds(i64::try_from(self.database.node_stale_secs).unwrap_or(i64::MAX)),
            networks: crate::domain::NetworkBreadth {
                min_prefix_v4: self.policy.min_network_prefix_v4,
                min_prefix_v6: self.policy.min_network_prefix_v6,
            },
            console_idle: chrono::Duration::minutes(i64::from(self.console.idle_minutes)),
            console_absolute: chrono::Duration::hours(i64::from(self.console.absolute_hours)),
            password_min_length: usize::try_from(self.auth.password_min_length).unwrap_or(usize::MAX),
            require_mfa: self.auth.require_mfa.clone(),
            lockout_after: self.auth.lockout_after,
            source_lockout_after: self.auth.source_lockout_after,
            lockout: chrono::Duration::minutes(i64::from(self.auth.lockout_minutes)),
            token_days: i64::from(self.auth.token_days),
            max_token_days: i64::from(self.auth.max_token_days),
            bootstrap_token: chrono::Duration::hours(i64::from(self.auth.bootstrap_token_hours)),
            directory: self.auth.ldap.clone().map(std::sync::Arc::new),
            // Set by whoever found the master key (App::start, the CLI).
            at_rest: crate::secrets::AtRest::none(),
            min_retention_days: i64::from(self.retention.min_days),
        }
    }

    /// The gateway's limits.
    pub fn gateway_settings(&self) -> crate::gateway::GatewaySettings {
        crate::gateway::GatewaySettings {
            handshake_timeout: Duration::from_secs(self.gateway.handshake_timeout_secs),
            connect_timeout: Duration::from_secs(self.gateway.connect_timeout_secs),
            max_connections: self.gateway.max_connections,
            max_connections_per_source: self.gateway.max_connections_per_source,
            linger: Duration::from_secs(self.gateway.linger_secs),
            node: self.gateway.node.clone(),
            proxy_protocol_from: self.gateway.proxy_protocol_from.clone(),
        }
    }

    /// The deadlines of an API connection.
    pub fn api_conn_settings(&self) -> crate::api::ConnSettings {
        crate::api::ConnSettings {
            handshake_timeout: Duration::from_secs(self.api.handshake_timeout_secs),
            header_read_timeout: Duration::from_secs(self.api.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(self.api.idle_timeout_secs),
            send_timeout: Duration::from_secs(self.api.send_timeout_secs),
        }
    }

    /// The connection limits as configured, for [`crate::fd_budget::prepare`].
    pub fn fd_wanted(&self) -> crate::fd_budget::Wanted {
        crate::fd_budget::Wanted {
            gateway_connections: self.gateway.max_connections,
            api_connections: self.api.max_connections,
            reserve: self.gateway.fd_reserve,
        }
    }
}

/// An environment value is read as a TOML value when it is one (numbers,
/// booleans, arrays), and as a plain string otherwise.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// A deserialization error without the values it quotes: "invalid type:
/// integer `12345678`, expected a string" would put a password written
/// without quotes into the journal. Field names (``in `auth.ldap.bind_password` ``)
/// stay: they say where to look.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for line in message.lines() {
        if !out.is_empty() {
            out.push('\n');
        }
        if line.starts_with("invalid type") || line.starts_with("invalid value") {
            for (i, part) in line.split('`').enumerate() {
                out.push_str(if i % 2 == 1 { "…" } else { part });
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// A value of the wrong type is not quoted either; the field is named.
    #[test]
    fn a_type_error_does_not_quote_the_value() {
        let text = "[gateway]\nnode = \"n1\"\n[auth.ldap]\nurl = \"ldaps://x\"\nbind_password = 12345678\n";
        let e = Settings::from_toml(text, Path::new("."), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("12345678"), "{e}");
        assert!(
            e.contains("auth.ldap.bind_password") && e.contains("expected a string"),
            "{e}"
        );
    }

    /// A syntax error names the line and column, never the line's text: a
    /// secret in clear there would end up in the journal.
    #[test]
    fn a_syntax_error_does_not_quote_the_line() {
        let text = "[gateway]\nnode = \"n1\"\n[auth.ldap]\nbind_password = \"hunter2-s3cr3t\n";
        let e = Settings::from_toml(text, Path::new("."), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("line 4, column"), "{e}");
    }

    #[test]
    fn token_lifetimes_and_lockout_must_make_sense() {
        let load = |auth: &str| {
            Settings::from_toml(
                &format!("[gateway]\nnode = \"n1\"\n[auth]\n{auth}"),
                Path::new("."),
                env(&[]),
            )
        };
        assert!(load("token_days = 30\nmax_token_days = 60").is_ok());
        for bad in [
            "token_days = 0",
            "token_days = 400\nmax_token_days = 365",
            "lockout_after = 0",
            "lockout_after = 10\nsource_lockout_after = 5",
            "bootstrap_token_hours = 0",
        ] {
            let e = load(bad).expect_err(bad).to_string();
            assert!(e.contains("auth."), "{bad}: {e}");
        }
    }

    #[test]
    fn retention_keeps_a_year_by_default_and_never_less_than_a_day() {
        let load = |text: &str| Settings::from_toml(text, Path::new("."), env(&[]));
        assert_eq!(load("").unwrap().api_limits().min_retention_days, 365);
        assert_eq!(
            load("[retention]\nmin_days = 730")
                .unwrap()
                .api_limits()
                .min_retention_days,
            730
        );
        let e = load("[retention]\nmin_days = 0").expect_err("0 days").to_string();
        assert!(e.contains("retention.min_days"), "{e}");
        assert!(load("[retention]\nmax_days = 3").is_err());
    }

    #[test]
    fn defaults_are_safe() {
        let s = Settings::from_toml("", Path::new("/etc/portier"), env(&[])).unwrap();
        assert!(s.gateway.listen.ip().is_loopback());
        assert_eq!(s.gateway.tls_versions, vec!["1.3"]);
        assert_eq!(s.database.url, "sqlite:///etc/portier/portier.db");
        assert_eq!(s.gateway.cert, Path::new("/etc/portier/certs/server.pem"));
        assert_eq!(s.gateway.lockdown_file, Path::new("/etc/portier/lockdown"));
    }

    #[test]
    fn cluster_section() {
        let s = Settings::from_toml("", Path::new("/x"), env(&[])).unwrap();
        let f = s.feed_settings();
        assert_eq!(f.max_staleness, Duration::from_secs(5));
        assert_eq!(f.on_stale, crate::cluster::OnStale::Refuse);
        let s = Settings::from_toml(
            "[cluster]\nmax_staleness_secs = 2\n",
            Path::new("/x"),
            env(&[("PORTIER_CLUSTER_ON_STALE", "cut")]),
        )
        .unwrap();
        let f = s.feed_settings();
        assert_eq!(f.max_staleness, Duration::from_secs(2));
        assert_eq!(f.on_stale, crate::cluster::OnStale::Cut);
        for bad in [
            "[cluster]\nmax_staleness_secs = 0\n",
            "[cluster]\non_stale = \"ignore\"\n",
            "[cluster]\nstaleness = 3\n",
            "[cluster]\nmax_staleness_secs = 10\non_stale = \"cut\"\n",
        ] {
            assert!(Settings::from_toml(bad, Path::new("/x"), env(&[])).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_overrides_keys() {
        let s = Settings::from_toml(
            "[gateway]\nlisten = \"127.0.0.1:1\"\n",
            Path::new("/x"),
            env(&[
                ("PORTIER_GATEWAY_LISTEN", "127.0.0.1:9999"),
                ("PORTIER_GATEWAY_MAX_CONNECTIONS", "12"),
                ("PORTIER_GATEWAY_MAX_CONNECTIONS_PER_SOURCE", "3"),
                ("PORTIER_API_IDLE_TIMEOUT_SECS", "7"),
                ("PORTIER_GATEWAY_TLS_VERSIONS", "[\"1.2\", \"1.3\"]"),
                ("PORTIER_DATABASE_URL", "postgres://localhost/p"),
                ("PORTIER_POLICY_ON_OVERDUE_REPORT", "warn"),
                (
                    "PORTIER_GATEWAY_PROXY_PROTOCOL_FROM",
                    "[\"10.0.0.5/32\", \"fd00::/64\"]",
                ),
                ("PORTIER_TEST_PG_URL", "ignored: not a section"),
            ]),
        )
        .unwrap();
        assert_eq!(s.gateway.listen.port(), 9999);
        assert_eq!(s.gateway.max_connections, 12);
        assert_eq!(s.gateway.max_connections_per_source, 3);
        assert_eq!(s.api_conn_settings().idle_timeout, Duration::from_secs(7));
        assert_eq!(s.gateway.tls_versions.len(), 2);
        assert_eq!(s.database.url, "postgres://localhost/p");
        assert_eq!(s.policy.on_overdue_report, OverdueMode::Warn);
        assert_eq!(s.gateway_settings().proxy_protocol_from.len(), 2);
    }

    #[test]
    fn unknown_and_bad_keys_are_refused() {
        for (text, vars) in [
            ("[gateway]\nlisten_on = \"x\"\n", env(&[])),
            ("[nope]\n", env(&[])),
            ("", env(&[("PORTIER_GATEWAY_LISTNE", "127.0.0.1:1")])),
            ("[gateway]\ntls_versions = [\"1.1\"]\n", env(&[])),
            ("[gateway]\nhandshake_timeout_secs = 0\n", env(&[])),
            ("[api]\nheader_read_timeout_secs = 0\n", env(&[])),
            ("[api]\nmax_connections = 4\nmax_connections_per_source = 5\n", env(&[])),
            ("[gateway]\nfd_reserve = 10\n", env(&[])),
            ("[database]\nheartbeat_secs = 5\nnode_stale_secs = 10\n", env(&[])),
            ("[database]\nretry_queue = 0\n", env(&[])),
            ("[gateway]\nproxy_protocol_from = [\"0.0.0.0/0\"]\n", env(&[])),
            ("[gateway]\nproxy_protocol_from = [\"10.0.0.300/32\"]\n", env(&[])),
            ("[database]\nurl = \"mysql://x\"\n", env(&[])),
            ("[gateway]\nnode = \"a b\"\n", env(&[])),
            ("[gateway]\nnode = \"-x\"\n", env(&[])),
            ("[policy]\non_overdue_report = \"ignore\"\n", env(&[])),
            ("not toml", env(&[])),
        ] {
            assert!(
                Settings::from_toml(text, Path::new("/x"), vars).is_err(),
                "{text:?} should fail"
            );
        }
    }

    #[test]
    fn node_stale_secs_is_at_most_a_day() {
        for (text, vars) in [
            ("[database]\nnode_stale_secs = 86401\n", env(&[])),
            ("[database]\nnode_stale_secs = 9223372036854775807\n", env(&[])),
            ("", env(&[("PORTIER_DATABASE_NODE_STALE_SECS", "100000")])),
        ] {
            let err = Settings::from_toml(text, Path::new("/x"), vars)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("database.node_stale_secs") && err.contains("at most 86400"),
                "{err}"
            );
        }
        // 3 × this overflows: no panic either.
        let err = Settings::from_toml(
            "[database]\nheartbeat_secs = 9223372036854775807\n",
            Path::new("/x"),
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("at least 3 × database.heartbeat_secs"), "{err}");
        Settings::from_toml("[database]\nnode_stale_secs = 86400\n", Path::new("/x"), env(&[])).unwrap();
    }

    #[test]
    fn node_defaults_to_the_host_name() {
        let s = Settings::from_toml("", Path::new("/x"), env(&[])).unwrap();
        let host = read_host_name().expect("this host has a name");
        assert_eq!(s.gateway.node, host);
        // Configured (file or environment), the name is kept.
        let s = Settings::from_toml("[gateway]\nnode = \"node-a\"\n", Path::new("/x"), env(&[])).unwrap();
        assert_eq!(s.gateway.node, "node-a");
        let s = Settings::from_toml("", Path::new("/x"), env(&[("PORTIER_GATEWAY_NODE", "node-b")])).unwrap();
        assert_eq!(s.gateway.node, "node-b");
        // A host name that cannot be read or cannot name a node is an error, not "local".
        assert_eq!(node_name_from_host(Some("h1.example".into())).unwrap(), "h1.example");
        let err = node_name_from_host(None).unwrap_err().to_string();
        assert!(err.contains("gateway.node"), "{err}");
        let err = node_name_from_host(Some("bad host".into())).unwrap_err().to_string();
        assert!(err.contains("bad host") && err.contains("gateway.node"), "{err}");
    }
}
