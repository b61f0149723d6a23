//! Accounts and their tokens, and the lockdown switch.

use super::{effects, Actor, Ops, OpsError, OpsResult};
use crate::domain::{EndReason, Role, UserId, VendorId};
use crate::events::Event;
use crate::guard::LiftError;
use crate::rights::Function;
use crate::store::{Change, Effects, LockdownState, NewUser, StoreError, User};

/// An account created with its bearer token.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub user: User,
    /// Shown once: only its SHA-256 is stored.
    pub token: String,
    /// When the token expires.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a lockdown came to on this node.
#[derive(Debug, Clone)]
pub struct LockdownOutcome {
    pub state: LockdownState,
    /// Tunnels cut on this node.
    pub cut: usize,
    /// `Err`: in force on this node but not stored yet (retried until stored).
    pub stored: Result<(), String>,
}

impl Ops {
    /// Creates an account and its first bearer token (admin; the CLI acts as
    /// one). The token expires after `[auth] token_days`.
    pub async fn create_user(
        &self,
        who: &Actor,
        name: &str,
        role: Role,
        vendor_id: Option<VendorId>,
    ) -> OpsResult<NewToken> {
        let ttl = chrono::Duration::days(self.rules.token_days);
        self.create_account(who, name, role, vendor_id, None, ttl).await
    }

    /// Creates the bootstrap admin account `init` prints: its token expires
    /// after `[auth] bootstrap_token_hours`, or when it is revoked.
    pub async fn create_bootstrap_admin(&self, who: &Actor, name: &str) -> OpsResult<NewToken> {
        self.create_account(who, name, Role::Admin, None, None, self.rules.bootstrap_token)
            .await
    }

    /// Creates an account (with an optional e-mail address) and its first
    /// token, named "initial", valid for `ttl` (admin).
    pub async fn create_account(
        &self,
        who: &Actor,
        name: &str,
        role: Role,
        vendor_id: Option<VendorId>,
        email: Option<&str>,
        ttl: chrono::Duration,
    ) -> OpsResult<NewToken> {
        who.may(Function::CreateAccount)?;
        let name = crate::domain::one_line("name", name, 100)?;
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => {
                let e = crate::domain::one_line("email", e, 254)?;
                if !e.contains('@') || e.contains(' ') {
                    return Err(OpsError::unprocessable(
                        "email must be an address such as name@example.org",
                    ));
                }
                Some(e)
            }
            None => None,
        };
        match (role, &vendor_id) {
            (Role::Vendor, None) => return Err(OpsError::bad_request("a vendor account needs vendor_id")),
            (r, Some(_)) if r != Role::Vendor => {
                return Err(OpsError::bad_request("vendor_id is only for the vendor role"))
            }
            (_, Some(v)) => {
                self.store.vendor(v).await.map_err(|e| {
                    OpsError::unless_found(e, || OpsError::unprocessable(format!("unknown vendor {v}")))
                })?;
            }
            _ => {}
        }
        let (token, token_sha256) = crate::token::generate();
        let now = self.now();
        let new = NewUser {
            name: name.clone(),
            role,
            vendor_id,
            token_prefix: crate::token::shown_prefix(&token),
            token_sha256,
            token_expires_at: Some(now + ttl),
            email,
        };
        let record = effects(|u: &User| {
            Effects::audit(self.event(
                who,
                Event::UserCreated,
                u.id.as_str(),
                serde_json::json!({"name": u.name, "role": u.role, "vendor_id": u.vendor_id, "email": u.email}),
            ))
        });
        let user = self.store.create_user(&new, now, &record).await.map_err(|e| match e {
            StoreError::Conflict(m) if m.contains("name") => {
                OpsError::conflict(format!("an account named {name:?} already exists"))
            }
            other => other.into(),
        })?;
        Ok(NewToken {
            user,
            token,
            expires_at: new.token_expires_at,
        })
    }

    /// Disables an account (admin): its tokens and console sessions stop working
    /// at once on every node (both are looked up on each call), and its console
    /// sessions are ended. An admin cannot disable itself.
    pub async fn disable_user(&self, who: &Actor, id: &UserId) -> OpsResult<User> {
        who.may(Function::DisableAccount)?;
        if *id == who.id {
            return Err(OpsError::conflict("an account cannot disable itself"));
        }
        let record = effects(|u: &User| {
            Effects::audit(self.event(
                who,
                Event::UserDisabled,
                u.id.as_str(),
                serde_json::json!({"name": u.name, "role": u.role}),
            ))
        });
        let user = self.store.set_user_disabled(id, Some(self.now()), &record).await?;
        // Its console sessions are refused while it is disabled (looked up per
        // request); they are also ended, so enabling it later does not revive them.
        self.guard().forget_account(&user.id);
        let uid = user.id.clone();
        let record = effects(|n: &u64| {
            Effects::audit(self.event(
                who,
                Event::ConsoleSignedOut,
                uid.as_str(),
                serde_json::json!({"reason": "account_disabled", "sessions": n, "session": null}),
            ))
        });
        if let Err(e) = self.store.end_console_sessions(&uid, None, &record).await {
            tracing::warn!(user = %user.id, error = %e, "console sessions of a disabled account not ended; they stay refused while it is disabled");
        }
        Ok(user)
    }

    /// Locks down (security): every live tunnel of this node is cut and new ones
    /// are refused at once, even if the database cannot be reached; the lockdown
    /// is then stored with its audit event, and every node follows it.
    pub async fn lock_down(&self, who: &Actor, reason: String) -> OpsResult<LockdownOutcome> {
        who.may(Function::Lockdown)?;
        let state = LockdownState {
            active: true,
            reason: Some(reason.clone()),
            set_by: Some(who.id.0.clone()),
            set_at: Some(crate::audit::truncate_micros(self.now())),
        };
        // Invariant 7: cut and refuse here first; the store may not take it.
        let guard = self.guard();
        guard.lock_locally(state.clone());
        let cut = self.registry.cut_all(EndReason::Lockdown);
        let done = Effects::audit(self.event(
            who,
            Event::LockdownOn,
            "lockdown",
            serde_json::json!({"reason": reason, "via": "api", "tunnels_cut_here": cut}),
        ))
        .change(Change::Lockdown)
        .notice(
            Event::LockdownOn,
            serde_json::json!({"reason": reason, "by": who.name, "tunnels_cut_here": cut}),
        );
        let stored = guard.persist_lockdown(self.store.as_ref(), state.clone(), done).await;
        if stored.is_ok() {
            self.changed().await;
        }
        Ok(LockdownOutcome { state, cut, stored })
    }

    /// Lifts the lockdown (security, with a reason). Needs the database: lifting
    /// is not a restrictive action. A node locked down by its lockdown file
    /// stays so until `portier lockdown off` removes the file.
    pub async fn lift_lockdown(&self, who: &Actor, reason: String) -> OpsResult<LockdownState> {
        who.may(Function::LiftLockdown)?;
        let guard = self.guard();
        if let Some(file) = guard.file_lockdown() {
            return Err(OpsError::conflict(format!(
                "this node is locked down by its lockdown file (reason: {}): lift it on the server with `portier lockdown off`",
                file.reason.unwrap_or_default()
            )));
        }
        let state = LockdownState {
            active: false,
            reason: Some(reason.clone()),
            set_by: Some(who.id.0.clone()),
            set_at: Some(crate::audit::truncate_micros(self.now())),
        };
        let done = Effects::audit(self.event(
            who,
            Event::LockdownOff,
            "lockdown",
            serde_json::json!({"reason": reason, "via": "api"}),
        ))
        .change(Change::Lockdown)
        .notice(
            Event::LockdownOff,
            serde_json::json!({"reason": reason, "by": who.name}),
        );
        guard
            .lift_lockdown(self.store.as_ref(), &state, done)
            .await
            .map_err(|e| match e {
                LiftError::Store(e) => OpsError::from(e),
                pending @ LiftError::Pending(_) => OpsError::unavailable(pending.to_string()),
            })?;
        self.changed().await;
        Ok(state)
    }

    /// Stores a lockdown decided on the server's command line (`portier lockdown
    /// on|off`), unless a later decision is already stored. `false`: a later one was.
    pub async fn store_cli_lockdown(&self, who: &Actor, state: &LockdownState) -> OpsResult<bool> {
        who.may(Function::ServerLockdown)?;
        let stored = self.store.lockdown().await?;
        if stored.set_at.is_some() && stored.set_at >= state.set_at && stored.active == state.active {
            // A running node already stored this one from the file.
            return Ok(false);
        }
        let (event, details) = if state.active {
            // The command line holds no tunnel; the nodes cut theirs (lockdown file, feed).
            (
                Event::LockdownOn,
                serde_json::json!({"reason": state.reason, "via": "cli", "tunnels_cut_here": 0}),
            )
        } else {
            (
                Event::LockdownOff,
                serde_json::json!({"reason": state.reason, "via": "cli"}),
            )
        };
        let done = Effects::audit(self.event(who, event, "lockdown", details))
            .change(Change::Lockdown)
            .notice(
                event,
                serde_json::json!({"reason": state.reason, "by": who.name, "via": "cli"}),
            );
        self.store.set_lockdown(state, &|_| done.clone()).await?;
        Ok(true)
    }
}
