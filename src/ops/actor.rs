//! Who is acting, and the proof that a role check passed.

use crate::domain::{Role, UserId, VendorId};
use crate::rights::Function;
use crate::store::User;

use super::OpsError;

/// The authenticated account behind a change (an API caller, or the CLI's
/// operator, who acts as an admin).
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    /// Set for `vendor` accounts: the only vendor they see.
    pub vendor_id: Option<VendorId>,
}

/// Proof that a role check passed.
#[derive(Debug, Clone, Copy)]
pub struct Granted(());

impl Actor {
    /// The operator of the command line on the server: an admin, recorded as `cli:<what>`.
    pub fn cli(what: &str) -> Self {
        Self {
            id: UserId(format!("cli:{what}")),
            name: format!("cli:{what}"),
            role: Role::Admin,
            vendor_id: None,
        }
    }

    /// Passes if the actor's role may use `function`, as the one authorization
    /// table ([`crate::rights::TABLE`]) says.
    pub fn may(&self, function: Function) -> Result<Granted, OpsError> {
        let roles = function.roles();
        if roles.contains(self.role) {
            Ok(Granted(()))
        } else {
            let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
            Err(OpsError::forbidden(format!(
                "this action needs the role {}; you are {}",
                names.join(" or "),
                self.role.as_str()
            )))
        }
    }

    /// Whether the actor may see this vendor's objects.
    pub fn sees_vendor(&self, vendor: &VendorId) -> bool {
        match self.role {
            Role::Vendor => self.vendor_id.as_ref() == Some(vendor),
            _ => true,
        }
    }

    /// The audit actor: the account id.
    pub fn actor(&self) -> &str {
        self.id.as_str()
    }
}

impl From<User> for Actor {
    fn from(user: User) -> Self {
        Actor {
            id: user.id,
            name: user.name,
            role: user.role,
            vendor_id: user.vendor_id,
        }
    }
}
