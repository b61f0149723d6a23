//! `portier check`: the deployment assessed against the commissioning guide
//! (docs/check.md). [`gather`] reads the facts once (configuration, files,
//! database); each check is a pure function of those facts, so that unit tests
//! drive every outcome without files or a database.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::domain::Role;
use crate::secrets::describe::{SecretAtRest, SecretState};
use crate::store::{ApiToken, AuditFilter, Store};

/// The account `portier init` creates (its token is printed once).
pub const BOOTSTRAP_ACCOUNT: &str = "bootstrap-admin";
/// Certificates expiring within this many days are a warning.
pub const EXPIRY_WARN_DAYS: i64 = 30;

/// The outcome of one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// One point of the assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable name of the check, e.g. `bootstrap_token`.
    pub check: &'static str,
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do (the configuration key or command), if anything.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, message: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Ok,
            message: message.into(),
            fix: None,
        }
    }
    fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Warn,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Fail,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

/// A file's permission bits (`None`: absent, unreadable metadata, or not Unix).
fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// A certificate the deployment serves or trusts.
#[derive(Debug, Clone)]
pub struct CertFact {
    /// The configuration key naming it, e.g. `gateway.cert`.
    pub key: &'static str,
    pub path: PathBuf,
    /// Its end of validity, or why it could not be read.
    pub not_after: Result<DateTime<Utc>, String>,
}

/// A secret at rest with, for files, their permission bits.
#[derive(Debug, Clone)]
pub struct SecretFact {
    pub secret: SecretAtRest,
    pub mode: Option<u32>,
}

/// What the database says, or why it could not be read.
#[derive(Debug, Clone)]
pub struct StoreFacts {
    /// The bootstrap account's tokens.
    pub bootstrap_tokens: Vec<ApiToken>,
    /// When a lockdown was last switched on, per the audit trail.
    pub last_lockdown: Option<DateTime<Utc>>,
    /// Whether a lockdown is on now.
    pub lockdown_active: bool,
    /// The audit chain's verification.
    pub audit: crate::audit::Verification,
}

/// Everything the checks look at, read once.
#[derive(Debug, Clone)]
pub struct Facts {
    pub now: DateTime<Utc>,
    pub settings: Settings,
    pub secrets: Result<Vec<SecretFact>, String>,
    /// `[secrets] master_key_file` and its permission bits.
    pub master_key_file: Option<(PathBuf, Option<u32>)>,
    /// The master key as this process finds it (its source), or the error.
    pub master_key: Result<Option<String>, String>,
    pub certs: Vec<CertFact>,
    /// The SQLite database file and its permission bits.
    pub sqlite_file: Option<(PathBuf, Option<u32>)>,
    pub store: Result<StoreFacts, String>,
}

/// Reads the facts of the deployment configured by `settings` (as loaded, not unsealed).
pub async fn gather(settings: Settings, now: DateTime<Utc>) -> Facts {
    let at_rest = crate::secrets::AtRest::locate(&settings.secrets);
    let master_key = match &at_rest {
        Ok(a) => Ok(a.key().map(|k| k.source().to_string())),
        Err(e) => Err(e.to_string()),
    };
    let store = crate::store::connect(&settings.database.url).await;
    let store_ref = store.as_ref().ok().map(|s| s.as_ref() as &dyn Store);
    let secrets = match crate::secrets::describe(
        &settings,
        at_rest.as_ref().unwrap_or(&crate::secrets::AtRest::none()),
        store_ref,
    )
    .await
    {
        Ok(report) => Ok(report
            .secrets
            .into_iter()
            .map(|secret| {
                let mode = (secret.location != "configuration file" && secret.count.is_none())
                    .then(|| mode_of(Path::new(&secret.location)))
                    .flatten();
                SecretFact { secret, mode }
            })
            .collect()),
        Err(e) => Err(e.to_string()),
    };
    let certs = [
        ("gateway.cert", &settings.gateway.cert),
        ("api.cert", &settings.api.cert),
        ("gateway.vendor_ca", &settings.gateway.vendor_ca),
    ]
    .into_iter()
    .map(|(key, path)| CertFact {
        key,
        path: path.clone(),
        not_after: std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| crate::pki::CertInfo::from_pem(&pem).map_err(|e| e.to_string()))
            .map(|c| c.not_after),
    })
    .collect();
    let master_key_file = settings
        .secrets
        .master_key_file
        .as_ref()
        .map(|p| (p.clone(), mode_of(p)));
    let sqlite_file = sqlite_path(&settings.database.url).map(|p| {
        let mode = mode_of(&p);
        (p, mode)
    });
    let store = match store {
        Ok(s) => store_facts(s.as_ref()).await.map_err(|e| format!("{e:#}")),
        Err(e) => Err(e.to_string()),
    };
    Facts {
        now,
        settings,
        secrets,
        master_key_file,
        master_key,
        certs,
        sqlite_file,
        store,
    }
}

async fn store_facts(store: &dyn Store) -> anyhow::Result<StoreFacts> {
    let users = store.list_users().await?;
    let mut bootstrap_tokens = Vec::new();
    for u in users.iter().filter(|u| u.name == BOOTSTRAP_ACCOUNT) {
        bootstrap_tokens.extend(store.list_api_tokens(Some(&u.id)).await?);
    }
    let last_lockdown = store
        .list_audit(&AuditFilter {
            action: Some(crate::events::Event::LockdownOn.as_str().to_owned()),
            limit: Some(1),
            newest_first: true,
            ..Default::default()
        })
        .await?
        .first()
        .map(|r| r.at);
    let lockdown_active = store.lockdown().await?.active;
    let audit = crate::audit::verify_store(store, |_| {}).await?;
    Ok(StoreFacts {
        bootstrap_tokens,
        last_lockdown,
        lockdown_active,
        audit,
    })
}

/// The file of an `sqlite://FILE[?…]` URL.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://")?;
    let file = rest.split_once('?').map_or(rest, |(f, _)| f);
    (!file.is_empty() && file != ":memory:").then(|| PathBuf::from(file))
}

/// Every check, in the order of the commissioning guide.
pub fn assess(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(bootstrap_token(
        f.now,
        f.store.as_ref().map(|s| &s.bootstrap_tokens[..]),
    ));
    out.extend(tls_versions(&f.settings));
    out.extend(secrets_at_rest(f.secrets.as_ref().map(|s| &s[..])));
    out.extend(master_key(&f.master_key, f.master_key_file.as_ref()));
    out.extend(database_file(f.sqlite_file.as_ref()));
    out.extend(mfa(&f.settings.auth.require_mfa));
    out.extend(notifications(&f.settings.notify));
    out.extend(f.certs.iter().map(|c| certificate(f.now, c)));
    out.extend(lockdown(f.store.as_ref().map(|s| (s.last_lockdown, s.lockdown_active))));
    out.extend(anchoring(&f.settings));
    out.extend(backups(&f.settings.database.url));
    out.extend(audit_chain(f.store.as_ref().map(|s| &s.audit)));
    out
}

fn store_unreadable(check: &'static str, e: &str) -> Finding {
    Finding::fail(
        check,
        format!("the database cannot be read: {e}"),
        "check database.url and that the database is up (`portier migrate`)",
    )
}

/// The bootstrap admin token `init` printed: a standing admin credential that
/// passed through a terminal. While it works, commissioning is not finished.
pub fn bootstrap_token(now: DateTime<Utc>, tokens: Result<&[ApiToken], &String>) -> Vec<Finding> {
    const C: &str = "bootstrap_token";
    let tokens = match tokens {
        Ok(t) => t,
        Err(e) => return vec![store_unreadable(C, e)],
    };
    let live: Vec<&ApiToken> = tokens.iter().filter(|t| t.live_at(now)).collect();
    if live.is_empty() {
        return vec![Finding::ok(C, "the bootstrap admin token is revoked or expired")];
    }
    live.iter()
        .map(|t| {
            let until = t.expires_at.map_or_else(
                || "never expires".to_owned(),
                |e| format!("valid until {}", e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            );
            let used = t.last_used_at.map_or_else(
                || "never used".to_owned(),
                |u| format!("last used {}", u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            );
            Finding::fail(
                C,
                format!(
                    "the bootstrap admin token {} ({}…) is still valid ({until}, {used})",
                    t.id, t.prefix
                ),
                format!("create your own admin account, then `portier token revoke {}`", t.id),
            )
        })
        .collect()
}

/// TLS 1.2: the admin API's clients (browsers, scripts) all speak 1.3, so 1.2
/// there only widens the surface; on the gateway it may serve legacy vendor
/// clients, so it is a warning.
pub fn tls_versions(s: &Settings) -> Vec<Finding> {
    const C: &str = "tls_versions";
    let has12 = |v: &[String]| v.iter().any(|x| x == "1.2");
    let mut out = Vec::new();
    if has12(&s.api.tls_versions) {
        out.push(Finding::fail(
            C,
            "TLS 1.2 is enabled on the admin API",
            "set api.tls_versions = [\"1.3\"]",
        ));
    }
    if has12(&s.gateway.tls_versions) {
        out.push(Finding::warn(
            C,
            "TLS 1.2 is enabled on the gateway",
            "set gateway.tls_versions = [\"1.3\"] once every vendor client speaks TLS 1.3",
        ));
    }
    if out.is_empty() {
        out.push(Finding::ok(C, "the gateway and the admin API accept TLS 1.3 only"));
    }
    out
}

/// Secrets in clear (key files, configuration values, TOTP secrets), secrets
/// in the legacy envelope (not bound to their field or role), and key files
/// that their group or others may read.
pub fn secrets_at_rest(secrets: Result<&[SecretFact], &String>) -> Vec<Finding> {
    const C: &str = "secrets_at_rest";
    let secrets = match secrets {
        Ok(s) => s,
        Err(e) => {
            return vec![Finding::fail(
                C,
                format!("the secrets at rest cannot be read: {e}"),
                "see `portier secrets status`",
            )]
        }
    };
    let mut out = Vec::new();
    for SecretFact { secret: s, mode } in secrets {
        let fix = if s.location == "configuration file" {
            format!(
                "encrypt {} with `portier secrets encrypt --field {}` and paste the result",
                s.what, s.what
            )
        } else {
            "encrypt under a master key: `portier secrets rotate --new-key-file FILE` (docs/secrets.md)".to_owned()
        };
        match s.state {
            SecretState::Clear => out.push(Finding::fail(C, format!("{}: in clear ({})", s.what, s.location), fix)),
            SecretState::Encrypted if s.legacy => out.push(Finding::warn(
                C,
                format!(
                    "{}: encrypted in the legacy format enc:v1, not bound to its {} ({})",
                    s.what,
                    if s.location == "configuration file" {
                        "field"
                    } else {
                        "role"
                    },
                    s.location
                ),
                "`portier secrets rotate` re-encrypts it in the current format (docs/secrets.md)",
            )),
            SecretState::Encrypted => out.push(Finding::ok(C, format!("{}: encrypted ({})", s.what, s.location))),
            SecretState::Absent => {}
        }
        if let Some(m) = mode.filter(|m| m & 0o077 != 0) {
            out.push(Finding::fail(
                C,
                format!(
                    "{} ({}): readable by others than its owner (mode {m:04o})",
                    s.what, s.location
                ),
                format!("chmod 0600 {}", s.location),
            ));
        }
    }
    out
}

/// Where the master key comes from, and the key file's permissions.
pub fn master_key(found: &Result<Option<String>, String>, file: Option<&(PathBuf, Option<u32>)>) -> Vec<Finding> {
    const C: &str = "master_key";
    let mut out = Vec::new();
    if let Some((path, Some(m))) = file {
        if m & 0o077 != 0 {
            out.push(Finding::fail(
                C,
                format!(
                    "the master key file {} is readable by others than its owner (mode {m:04o})",
                    path.display()
                ),
                format!("chmod 0600 {}", path.display()),
            ));
        }
    }
    match found {
        Err(e) => out.push(Finding::fail(
            C,
            format!("the master key cannot be read: {e}"),
            "fix secrets.master_key_file (owner-only, 0600) or the credential (docs/secrets.md)",
        )),
        Ok(Some(source)) if source.starts_with("the environment variable") => out.push(Finding::warn(
            C,
            format!("the master key comes from {source}, which the service's environment may leak"),
            "give it as the systemd credential portier-master-key (LoadCredentialEncrypted=, deploy/portier.service)",
        )),
        Ok(Some(source)) => out.push(Finding::ok(C, format!("the master key comes from {source}"))),
        // The service may hold it (systemd credential) where this shell does not:
        // what matters is that the secrets are encrypted, checked above.
        Ok(None) => out.push(Finding::ok(
            C,
            "no master key in this shell (the service may have it as a systemd credential)",
        )),
    }
    out
}

/// The SQLite file holds token hashes and TOTP secrets: owner-only.
pub fn database_file(file: Option<&(PathBuf, Option<u32>)>) -> Vec<Finding> {
    const C: &str = "database_file";
    match file {
        Some((path, Some(m))) if m & 0o077 != 0 => vec![Finding::fail(
            C,
            format!(
                "the database {} is readable by others than its owner (mode {m:04o})",
                path.display()
            ),
            format!("chmod 0600 {}", path.display()),
        )],
        Some((path, Some(_))) => vec![Finding::ok(C, format!("the database {} is owner-only", path.display()))],
        _ => Vec::new(),
    }
}

/// Admins and security officers must use a second factor.
pub fn mfa(require: &[Role]) -> Vec<Finding> {
    const C: &str = "mfa";
    let missing: Vec<&str> = [Role::Admin, Role::Security]
        .into_iter()
        .filter(|r| !require.contains(r))
        .map(Role::as_str)
        .collect();
    if missing.is_empty() {
        return vec![Finding::ok(
            C,
            "a second factor is required of admin and security accounts",
        )];
    }
    vec![Finding::fail(
        C,
        format!("no second factor is required of {} accounts", missing.join(" and ")),
        "set auth.require_mfa = [\"security\", \"admin\"]",
    )]
}

/// Somebody must hear of a lockdown: syslog, or a webhook that sends it.
pub fn notifications(n: &crate::config::NotifyConfig) -> Vec<Finding> {
    const C: &str = "notifications";
    const EVENT: &str = "lockdown.on";
    if n.syslog.is_some() {
        return vec![Finding::ok(C, "events are sent to syslog")];
    }
    let hooks = n
        .webhooks
        .iter()
        .filter(|w| crate::notify::wanted(&w.events, EVENT))
        .count();
    if hooks > 0 {
        return vec![Finding::ok(C, format!("{hooks} webhook(s) receive {EVENT}"))];
    }
    let message = if n.webhooks.is_empty() {
        "no syslog and no webhook: nobody hears of a lockdown".to_owned()
    } else {
        format!("no syslog, and no webhook receives {EVENT}: nobody hears of a lockdown")
    };
    vec![Finding::warn(
        C,
        message,
        "set notify.syslog = \"udp://HOST:514\" or add a [[notify.webhooks]] (docs/webhooks.md)",
    )]
}

/// A certificate expired (FAIL) or expiring within [`EXPIRY_WARN_DAYS`] (WARN).
pub fn certificate(now: DateTime<Utc>, c: &CertFact) -> Finding {
    const C: &str = "certificates";
    let fix = format!("renew the certificate and set {} to it", c.key);
    match &c.not_after {
        Err(e) => Finding::fail(C, format!("{} ({}) cannot be read: {e}", c.key, c.path.display()), fix),
        Ok(end) if *end <= now => Finding::fail(
            C,
            format!(
                "{} ({}) expired on {}",
                c.key,
                c.path.display(),
                end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            fix,
        ),
        Ok(end) if *end - now < Duration::days(EXPIRY_WARN_DAYS) => Finding::warn(
            C,
            format!(
                "{} ({}) expires in {} day(s), on {}",
                c.key,
                c.path.display(),
                (*end - now).num_days(),
                end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            fix,
        ),
        Ok(end) => Finding::ok(
            C,
            format!(
                "{} is valid until {}",
                c.key,
                end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ),
    }
}

/// A lockdown that was never tried is a procedure nobody knows works.
pub fn lockdown(facts: Result<(Option<DateTime<Utc>>, bool), &String>) -> Vec<Finding> {
    const C: &str = "lockdown";
    let (last, active) = match facts {
        Ok(f) => f,
        Err(e) => return vec![store_unreadable(C, e)],
    };
    let mut out = vec![match last {
        None => Finding::warn(
            C,
            "lockdown was never exercised (no lockdown.on in the audit trail)",
            "exercise it off-hours: `portier lockdown on --reason drill`, then `portier lockdown off --reason drill`",
        ),
        Some(at) => Finding::ok(
            C,
            format!(
                "lockdown last exercised on {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ),
    }];
    if active {
        out.push(Finding::warn(
            C,
            "a lockdown is on: every tunnel is refused",
            "once resolved, `portier lockdown off --reason \"…\"`",
        ));
    }
    out
}

/// The chain's head published outside, so that truncating the tail is seen.
pub fn anchoring(s: &Settings) -> Vec<Finding> {
    const C: &str = "audit_anchoring";
    if s.audit.anchor_minutes == 0 {
        return vec![Finding::warn(
            C,
            "audit chain anchoring is off: truncating the trail's tail would go unseen",
            "set audit.anchor_minutes = 60 with a syslog or webhook receiver, or run `portier audit verify` \
             periodically and keep its output (the head) outside",
        )];
    }
    if s.notify.syslog.is_none()
        && s.notify
            .webhooks
            .iter()
            .all(|w| !crate::notify::wanted(&w.events, "audit.anchor"))
    {
        return vec![Finding::warn(
            C,
            format!(
                "the chain's head is logged every {} minutes, but no syslog or webhook receives audit.anchor",
                s.audit.anchor_minutes
            ),
            "set notify.syslog or a [[notify.webhooks]] receiving audit.anchor",
        )];
    }
    vec![Finding::ok(
        C,
        format!("the chain's head is published every {} minutes", s.audit.anchor_minutes),
    )]
}

/// Portier has no backup setting, so this cannot be verified from here: a
/// warning that says how, until an operator confirms it elsewhere.
pub fn backups(url: &str) -> Vec<Finding> {
    const C: &str = "backups";
    let fix = match sqlite_path(url) {
        Some(file) => format!(
            "schedule `sqlite3 {} \".backup /var/backups/portier.db\"` and test a restore (docs/maintenance.md)",
            file.display()
        ),
        None if url.starts_with("postgres") => {
            "schedule pg_dump (or WAL archiving) of the database and test a restore (docs/maintenance.md)".to_owned()
        }
        None => "back the database up and test a restore (docs/maintenance.md)".to_owned(),
    };
    vec![Finding::warn(
        C,
        "backups are not Portier's to configure and cannot be verified from here",
        fix,
    )]
}

/// The audit chain recomputed from the first event.
pub fn audit_chain(v: Result<&crate::audit::Verification, &String>) -> Vec<Finding> {
    const C: &str = "audit_chain";
    match v {
        Err(e) => vec![store_unreadable(C, e)],
        Ok(v) if v.valid => vec![Finding::ok(
            C,
            format!("the audit chain verifies ({} events)", v.events),
        )],
        Ok(v) => vec![Finding::fail(
            C,
            format!(
                "the audit chain is broken at sequence number {}",
                v.first_invalid_seq.unwrap_or_default()
            ),
            "treat it as an incident: `portier audit verify`, compare with exported evidence and anchors",
        )],
    }
}

/// One line per finding: `STATUS  check  message — fix: …`.
pub fn to_text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = write!(out, "{:<4}  {:<16}  {}", f.status.label(), f.check, f.message);
        if let (Some(fix), true) = (&f.fix, f.status != Status::Ok) {
            let _ = write!(out, " — fix: {fix}");
        }
        out.push('\n');
    }
    let count = |s| findings.iter().filter(|f| f.status == s).count();
    let _ = writeln!(
        out,
        "{} OK, {} WARN, {} FAIL",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    );
    out
}

/// The worst status among `findings` (OK when empty).
pub fn worst(findings: &[Finding]) -> Status {
    findings.iter().map(|f| f.status).max().unwrap_or(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{TokenId, UserId};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z").unwrap().to_utc()
    }

    fn token(expires: Option<DateTime<Utc>>, revoked: Option<DateTime<Utc>>) -> ApiToken {
        ApiToken {
            id: TokenId("t1".into()),
            user_id: UserId("u1".into()),
            name: "bootstrap-admin".into(),
            prefix: "ptk_abcdef".into(),
            created_at: now() - Duration::hours(1),
            expires_at: expires,
            last_used_at: None,
            revoked_at: revoked,
        }
    }

    fn cert(not_after: DateTime<Utc>) -> CertFact {
        CertFact {
            key: "gateway.cert",
            path: "certs/server.pem".into(),
            not_after: Ok(not_after),
        }
    }

    #[test]
    fn certificate_expiry_thresholds() {
        let n = now();
        assert_eq!(certificate(n, &cert(n + Duration::days(31))).status, Status::Ok);
        assert_eq!(certificate(n, &cert(n + Duration::days(30))).status, Status::Ok);
        assert_eq!(
            certificate(n, &cert(n + Duration::days(30) - Duration::seconds(1))).status,
            Status::Warn
        );
        assert_eq!(certificate(n, &cert(n + Duration::seconds(1))).status, Status::Warn);
        assert_eq!(certificate(n, &cert(n)).status, Status::Fail);
        assert_eq!(certificate(n, &cert(n - Duration::days(1))).status, Status::Fail);
        let unreadable = CertFact {
            not_after: Err("no such file".into()),
            ..cert(n)
        };
        let f = certificate(n, &unreadable);
        assert_eq!(f.status, Status::Fail);
        assert!(f.fix.unwrap().contains("gateway.cert"));
    }

    #[test]
    fn bootstrap_token_fails_while_live() {
        let n = now();
        let live = [token(Some(n + Duration::hours(23)), None)];
        let f = bootstrap_token(n, Ok(&live));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].status, Status::Fail);
        assert!(f[0].fix.as_deref().unwrap().contains("portier token revoke t1"));
        let revoked = [token(Some(n + Duration::hours(23)), Some(n))];
        assert_eq!(bootstrap_token(n, Ok(&revoked))[0].status, Status::Ok);
        let expired = [token(Some(n - Duration::seconds(1)), None)];
        assert_eq!(bootstrap_token(n, Ok(&expired))[0].status, Status::Ok);
        assert_eq!(bootstrap_token(n, Ok(&[]))[0].status, Status::Ok);
        assert_eq!(bootstrap_token(n, Err(&"down".to_owned()))[0].status, Status::Fail);
    }

    #[test]
    fn tls_12_fails_on_the_api_and_warns_on_the_gateway() {
        let mut s = Settings::default();
        assert_eq!(worst(&tls_versions(&s)), Status::Ok);
        s.gateway.tls_versions = vec!["1.2".into(), "1.3".into()];
        assert_eq!(worst(&tls_versions(&s)), Status::Warn);
        s.api.tls_versions = vec!["1.2".into(), "1.3".into()];
        let f = tls_versions(&s);
        assert_eq!(worst(&f), Status::Fail);
        assert!(f
            .iter()
            .any(|f| f.fix.as_deref() == Some("set api.tls_versions = [\"1.3\"]")));
    }

    #[test]
    fn mfa_must_cover_admin_and_security() {
        assert_eq!(worst(&mfa(&[Role::Admin, Role::Security])), Status::Ok);
        let f = mfa(&[Role::Security]);
        assert_eq!(worst(&f), Status::Fail);
        assert!(f[0].message.contains("admin") && !f[0].message.contains("security"));
        assert_eq!(worst(&mfa(&[])), Status::Fail);
    }

    #[test]
    fn notifications_need_a_receiver_of_lockdowns() {
        let mut n = crate::config::NotifyConfig::default();
        assert_eq!(worst(&notifications(&n)), Status::Warn);
        n.webhooks.push(crate::notify::WebhookConfig {
            url: "https://siem.example/hook".into(),
            secret: crate::redact::Secret::new("s".into()),
            events: vec!["window.*".into()],
            legacy_signature: false,
        });
        assert_eq!(worst(&notifications(&n)), Status::Warn);
        n.webhooks[0].events = vec!["lockdown.*".into()];
        assert_eq!(worst(&notifications(&n)), Status::Ok);
        n.webhooks.clear();
        n.syslog = Some("udp://127.0.0.1:514".into());
        assert_eq!(worst(&notifications(&n)), Status::Ok);
    }

    #[test]
    fn secrets_in_clear_or_exposed_fail() {
        let fact = |state, mode| SecretFact {
            secret: SecretAtRest {
                what: "gateway private key".into(),
                location: "/etc/portier/certs/server.key".into(),
                state,
                count: None,
                legacy: false,
            },
            mode,
        };
        assert_eq!(
            worst(&secrets_at_rest(Ok(&[fact(SecretState::Encrypted, Some(0o600))]))),
            Status::Ok
        );
        assert_eq!(
            worst(&secrets_at_rest(Ok(&[fact(SecretState::Clear, Some(0o600))]))),
            Status::Fail
        );
        let exposed = secrets_at_rest(Ok(&[fact(SecretState::Encrypted, Some(0o640))]));
        assert_eq!(worst(&exposed), Status::Fail);
        assert!(exposed
            .iter()
            .any(|f| f.fix.as_deref() == Some("chmod 0600 /etc/portier/certs/server.key")));
        // A legacy envelope (not bound to its role): a warning, fixed by a rotation.
        let mut legacy = fact(SecretState::Encrypted, Some(0o600));
        legacy.secret.legacy = true;
        let found = secrets_at_rest(Ok(&[legacy]));
        assert_eq!(worst(&found), Status::Warn);
        assert!(found[0].message.contains("legacy format enc:v1, not bound to its role"));
        assert!(found[0]
            .fix
            .as_deref()
            .unwrap_or_default()
            .contains("portier secrets rotate"));
    }

    #[test]
    fn master_key_file_permissions() {
        let file = (PathBuf::from("/keys/master.key"), Some(0o644));
        assert_eq!(worst(&master_key(&Ok(None), Some(&file))), Status::Fail);
        let file = (PathBuf::from("/keys/master.key"), Some(0o600));
        assert_eq!(
            worst(&master_key(
                &Ok(Some("the key file /keys/master.key".into())),
                Some(&file)
            )),
            Status::Ok
        );
        assert_eq!(
            worst(&master_key(
                &Ok(Some("the environment variable PORTIER_MASTER_KEY".into())),
                None
            )),
            Status::Warn
        );
        assert_eq!(worst(&master_key(&Err("exposed".into()), None)), Status::Fail);
    }

    #[test]
    fn lockdown_anchoring_backups_and_chain() {
        assert_eq!(worst(&lockdown(Ok((None, false)))), Status::Warn);
        assert_eq!(worst(&lockdown(Ok((Some(now()), false)))), Status::Ok);
        assert_eq!(worst(&lockdown(Ok((Some(now()), true)))), Status::Warn);
        let mut s = Settings::default();
        assert_eq!(worst(&anchoring(&s)), Status::Warn);
        s.audit.anchor_minutes = 60;
        assert_eq!(worst(&anchoring(&s)), Status::Warn);
        s.notify.syslog = Some("udp://127.0.0.1:514".into());
        assert_eq!(worst(&anchoring(&s)), Status::Ok);
        assert!(backups("sqlite:///var/lib/portier/portier.db")[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("/var/lib/portier/portier.db"));
        let broken = crate::audit::Verification {
            valid: false,
            events: 3,
            first_invalid_seq: Some(2),
            anchor_seq: None,
        };
        assert_eq!(worst(&audit_chain(Ok(&broken))), Status::Fail);
        assert_eq!(
            worst(&audit_chain(Ok(&crate::audit::Verification { valid: true, ..broken }))),
            Status::Ok
        );
    }

    #[test]
    fn text_has_one_line_per_finding_and_a_summary() {
        let f = [mfa(&[]), mfa(&[Role::Admin, Role::Security])].concat();
        let text = to_text(&f);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("FAIL") && lines[0].contains("fix: set auth.require_mfa"));
        assert!(lines[1].starts_with("OK") && !lines[1].contains("fix"));
        assert_eq!(lines[2], "1 OK, 0 WARN, 1 FAIL");
    }
}
