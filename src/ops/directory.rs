//! Sign-in of hospital staff with the hospital's directory (`[auth.ldap]`,
//! issue 11).
//!
//! A name that is not a local password account (or that is linked to the
//! directory already) is checked by binding as the person. Its roles are read
//! from the mapped groups at each sign-in: the account is created at the
//! first one (no local password, `directory_dn` set), its role follows the
//! groups (`user.role_changed`), and a person in no mapped group any more is
//! refused and the account disabled (`user.disabled`): its console sessions
//! and tokens stop at once; an admin enables it again once the groups are
//! right. The second factor and the other stages are the local accounts'.

use std::net::IpAddr;
use std::sync::Arc;

use crate::audit::AuditEvent;
use crate::config::LdapConfig;
use crate::directory::{authenticate, DirectoryPerson};
use crate::events::Event;
use crate::store::{Credentials, Effects, NewUser, User};

use super::sign_in::{FirstFactor, PasswordSignIn};
use super::{effects, Ops, OpsError, OpsResult};

/// The actor written in the audit trail for what the directory decided.
const DIRECTORY_ACTOR: &str = "directory";

impl Ops {
    /// Whether the directory answers for this account (`found`: the local
    /// account of the name, if any).
    pub(super) fn directory_for(&self, found: Option<&(User, Credentials)>) -> Option<Arc<LdapConfig>> {
        let cfg = self.rules.directory.clone()?;
        match found {
            None => Some(cfg),
            Some((_, c)) if c.directory_dn.is_some() => Some(cfg),
            Some(_) => None,
        }
    }

    fn directory_event(&self, action: Event, user: &User, details: serde_json::Value) -> AuditEvent {
        AuditEvent::new(
            self.now(),
            DIRECTORY_ACTOR,
            action,
            user.id.as_str(),
            "success",
            details,
        )
    }

    /// The directory branch of [`Ops::sign_in_password`], after the throttle.
    pub(super) async fn sign_in_directory(
        &self,
        cfg: &LdapConfig,
        keys: &[String],
        name: &str,
        password: &str,
        found: Option<(User, Credentials)>,
        source: Option<IpAddr>,
    ) -> OpsResult<PasswordSignIn> {
        // Directories compare names without case: one account per person,
        // named in lower case, whatever case is typed.
        let name = name.trim().to_lowercase();
        let name = name.as_str();
        let found = match found {
            None => self.store.user_by_name(name).await?,
            some => some,
        };
        if found.as_ref().is_some_and(|(_, c)| c.directory_dn.is_none()) {
            // A local account of that name: the directory does not speak for it.
            return Err(self.sign_in_failed(keys, name, true, source, "password").await);
        }
        let person = match authenticate(cfg, name, password).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                let known = found.is_some();
                return Err(self.sign_in_failed(keys, name, known, source, "password").await);
            }
            Err(e) => {
                tracing::error!(error = %e, "the hospital's directory did not answer a sign-in");
                return Err(OpsError::Unavailable(
                    "the hospital's directory cannot be reached: retry later".into(),
                ));
            }
        };
        let DirectoryPerson { dn, role } = person;
        let Some(role) = role else {
            if let Some((user, _)) = found.as_ref().filter(|(u, _)| u.disabled_at.is_none()) {
                let record = effects(|u: &User| {
                    Effects::audit(self.directory_event(
                        Event::UserDisabled,
                        u,
                        serde_json::json!({"name": u.name, "role": u.role, "reason": "in no mapped directory group"}),
                    ))
                });
                self.store
                    .set_user_disabled(&user.id, Some(self.now()), &record)
                    .await?;
                // As an admin's disable: its sessions end (they must not come
                // back if it is enabled again) and this node forgets it.
                let ended = effects(|n: &u64| {
                    Effects::audit(self.directory_event(
                        Event::ConsoleSignedOut,
                        user,
                        serde_json::json!({"reason": "in no mapped directory group", "sessions": n}),
                    ))
                });
                self.store.end_console_sessions(&user.id, None, &ended).await?;
                self.guard().forget_account(&user.id);
                self.changed().await;
            }
            return Err(self
                .sign_in_failed(keys, name, true, source, "no_directory_group")
                .await);
        };
        let (user, linked) = match found {
            Some((user, _)) if user.disabled_at.is_some() => {
                return Err(self.sign_in_failed(keys, name, true, source, "disabled").await);
            }
            Some((user, creds)) => {
                let linked = creds.directory_dn.as_deref() == Some(dn.as_str());
                (user, linked)
            }
            None => {
                // The account's token is never shown: directory staff sign in
                // with the directory and make personal tokens if they need any.
                let (token, token_sha256) = crate::token::generate();
                let new = NewUser {
                    name: name.to_owned(),
                    role,
                    vendor_id: None,
                    token_sha256,
                    token_prefix: crate::token::shown_prefix(&token),
                    // Expired from the start: nobody ever sees it.
                    token_expires_at: Some(self.now()),
                    email: None,
                };
                let record = effects(|u: &User| {
                    Effects::audit(self.directory_event(
                        Event::UserCreated,
                        u,
                        serde_json::json!({"name": u.name, "role": u.role, "directory_dn": dn}),
                    ))
                });
                (self.store.create_user(&new, self.now(), &record).await?, false)
            }
        };
        // The role (and the DN, at the first sign-in or if it moved) as the
        // directory says now; `from` is null for an account just created.
        let user = if user.role != role || !linked {
            let from = linked.then_some(user.role);
            let record = effects(|u: &User| {
                Effects::audit(self.directory_event(
                    Event::UserRoleChanged,
                    u,
                    serde_json::json!({"name": u.name, "from": from, "to": u.role, "directory_dn": dn}),
                ))
            });
            let user = self.store.set_directory_account(&user.id, &dn, role, &record).await?;
            self.changed().await;
            user
        } else {
            user
        };
        // The name's failures are forgotten when the session opens (`advance`).
        let creds = self.store.credentials(&user.id).await?;
        self.advance(user, &creds, false, source, FirstFactor::Password).await
    }
}
