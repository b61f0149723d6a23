//! The hospital's directory (LDAP / Active Directory): a sign-in binds as the
//! person with the password typed, then reads the groups mapped to roles
//! (issue 11). Nothing is cached: the groups are read again at each sign-in,
//! so a person removed from a group loses the role at the next one.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{dn_escape, ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use rustls::pki_types::{pem::PemObject, CertificateDer};

use crate::config::LdapConfig;
use crate::domain::Role;

/// LDAP result code of a bind with wrong credentials.
const INVALID_CREDENTIALS: u32 = 49;
/// LDAP result code of a search under a base that does not exist.
const NO_SUCH_OBJECT: u32 = 32;
/// The order roles are given in when a person is in several mapped groups.
const ROLE_ORDER: [Role; 3] = [Role::Admin, Role::Security, Role::Auditor];

/// Why the directory could not answer (distinct from a wrong password).
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory: {0}")]
    Ldap(#[from] ldap3::LdapError),
    #[error("directory: cannot read the CA file {0}: {1}")]
    Ca(String, String),
    #[error("directory: TLS setup failed: {0}")]
    Tls(String),
    #[error("directory: no answer within {0} s")]
    Timeout(u64),
    #[error("directory: the service account's search failed: {0}")]
    Search(String),
}

/// A person the directory vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryPerson {
    /// The DN bound as.
    pub dn: String,
    /// The role of the first mapped group they are in; none: in no mapped group.
    pub role: Option<Role>,
}

/// Binds as `name` with `password`: `Ok(None)` when the directory refuses
/// the credentials (or the name is unknown), the person and role otherwise.
pub async fn authenticate(
    cfg: &LdapConfig,
    name: &str,
    password: &str,
) -> Result<Option<DirectoryPerson>, DirectoryError> {
    // An empty password would be an unauthenticated bind, which LDAP servers
    // answer with success (RFC 4513 §5.1.2).
    if password.is_empty() || name.trim().is_empty() {
        return Ok(None);
    }
    let limit = Duration::from_secs(cfg.timeout_secs);
    tokio::time::timeout(limit * 3, authenticate_in_time(cfg, name.trim(), password))
        .await
        .map_err(|_| DirectoryError::Timeout(cfg.timeout_secs))?
}

fn tls_config(cfg: &LdapConfig) -> Result<Option<Arc<rustls::ClientConfig>>, DirectoryError> {
    let Some(ca) = &cfg.ca else { return Ok(None) };
    let shown = ca.display().to_string();
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| DirectoryError::Ca(shown.clone(), e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DirectoryError::Ca(shown.clone(), e.to_string()))?;
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| DirectoryError::Ca(shown.clone(), e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| DirectoryError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

async fn authenticate_in_time(
    cfg: &LdapConfig,
    name: &str,
    password: &str,
) -> Result<Option<DirectoryPerson>, DirectoryError> {
    let limit = Duration::from_secs(cfg.timeout_secs);
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(limit)
        .set_starttls(cfg.starttls);
    if let Some(tls) = tls_config(cfg)? {
        settings = settings.set_config(tls);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &cfg.url).await?;
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "directory connection ended");
        }
    });
    let outcome = bind_and_read(cfg, &mut ldap, limit, name, password).await;
    // Best effort: the connection is dropped anyway.
    let _ = ldap.unbind().await;
    driver.abort();
    outcome
}

async fn bind_and_read(
    cfg: &LdapConfig,
    ldap: &mut Ldap,
    limit: Duration,
    name: &str,
    password: &str,
) -> Result<Option<DirectoryPerson>, DirectoryError> {
    let dn = match &cfg.user_dn_template {
        Some(template) => template.replace("{user}", &dn_escape(name)),
        None => match find_dn(cfg, ldap, limit, name).await? {
            Some(dn) => dn,
            None => return Ok(None),
        },
    };
    let bound = ldap.with_timeout(limit).simple_bind(&dn, password).await?;
    if bound.rc == INVALID_CREDENTIALS {
        return Ok(None);
    }
    bound.success()?;
    let groups = groups_of(cfg, ldap, limit, &dn).await?;
    let role = ROLE_ORDER.into_iter().find(|r| {
        cfg.role_groups
            .get(r)
            .is_some_and(|g| groups.iter().any(|m| same_dn(m, g)))
    });
    Ok(Some(DirectoryPerson { dn, role }))
}

/// Search mode (Active Directory): the service account finds the one entry
/// the filter names.
async fn find_dn(
    cfg: &LdapConfig,
    ldap: &mut Ldap,
    limit: Duration,
    name: &str,
) -> Result<Option<String>, DirectoryError> {
    if let (Some(dn), Some(pw)) = (&cfg.bind_dn, &cfg.bind_password) {
        ldap.with_timeout(limit)
            .simple_bind(dn, pw.expose())
            .await?
            .success()
            .map_err(|e| DirectoryError::Search(e.to_string()))?;
    }
    let base = cfg.user_search_base.as_deref().unwrap_or_default();
    let filter = cfg
        .user_filter
        .as_deref()
        .unwrap_or_default()
        .replace("{user}", &ldap_escape(name));
    let (entries, _) = ldap
        .with_timeout(limit)
        .search(base, Scope::Subtree, &filter, vec!["1.1"])
        .await?
        .success()
        .map_err(|e| DirectoryError::Search(e.to_string()))?;
    // None, or several (an ambiguous filter): nobody to bind as.
    Ok(match entries.len() {
        1 => entries.into_iter().next().map(|e| SearchEntry::construct(e).dn),
        _ => None,
    })
}

/// The mapped groups `dn` is in: from the user's `memberOf`, and from each
/// mapped group's `member` / `uniqueMember`.
async fn groups_of(
    cfg: &LdapConfig,
    ldap: &mut Ldap,
    limit: Duration,
    dn: &str,
) -> Result<Vec<String>, DirectoryError> {
    let mut found: Vec<String> = Vec::new();
    let (entries, _) = ldap
        .with_timeout(limit)
        .search(dn, Scope::Base, "(objectClass=*)", vec!["memberOf"])
        .await?
        .non_error()?;
    for entry in entries {
        let entry = SearchEntry::construct(entry);
        for (attr, values) in entry.attrs {
            if attr.eq_ignore_ascii_case("memberOf") {
                found.extend(values);
            }
        }
    }
    let filter = format!("(|(member={0})(uniqueMember={0}))", ldap_escape(dn));
    for group in cfg.role_groups.values() {
        if found.iter().any(|g| same_dn(g, group)) {
            continue;
        }
        let result = ldap
            .with_timeout(limit)
            .search(group, Scope::Base, &filter, vec!["1.1"])
            .await?;
        // A group that does not exist has no members.
        if result.1.rc == NO_SUCH_OBJECT {
            tracing::warn!(group = %group, "a group of [auth.ldap] role_groups is not in the directory");
            continue;
        }
        let (entries, _) = result.non_error()?;
        if !entries.is_empty() {
            found.push(group.clone());
        }
    }
    Ok(found)
}

/// DNs compared as directories do for these: case and spaces after commas aside.
fn same_dn(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split(',')
            .map(|p| p.trim().to_lowercase())
            .collect::<Vec<_>>()
            .join(",")
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::same_dn;

    #[test]
    fn dns_compare_without_case_or_spaces() {
        assert!(same_dn("CN=Security,OU=Groups,DC=h", "cn=security, ou=groups, dc=h"));
        assert!(!same_dn("cn=security,dc=h", "cn=auditors,dc=h"));
    }
}
