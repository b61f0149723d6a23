//! Rights per profile: the one authorization table. Every role check in the use
//! cases, the API and the console reads [`TABLE`] through
//! [`crate::ops::Actor::may`]; the authorization-matrix test derives the roles it
//! expects from it; and the security dossier's "Rights per profile" document is
//! rendered from it ([`document`]). Changing a permission means changing a row
//! here, and the three follow.
//!
//! Rules about *objects* (a vendor account sees only its own vendor's objects,
//! an admin does not approve its own request) stay in the use cases: this table
//! is about roles.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::domain::Role;
use crate::ops::Lang;

/// The roles, in the order the documents show them.
pub const ROLES: [Role; 4] = [Role::Admin, Role::Security, Role::Auditor, Role::Vendor];

/// A set of roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    /// Every role.
    pub const ALL: Roles = Roles::of(&ROLES);

    const fn bit(role: Role) -> u8 {
        match role {
            Role::Admin => 1,
            Role::Security => 2,
            Role::Auditor => 4,
            Role::Vendor => 8,
        }
    }

    /// The set of `roles`.
    pub const fn of(mut roles: &[Role]) -> Roles {
        let mut bits = 0;
        while let [first, rest @ ..] = roles {
            bits |= Self::bit(*first);
            roles = rest;
        }
        Roles(bits)
    }

    pub const fn contains(self, role: Role) -> bool {
        self.0 & Self::bit(role) != 0
    }

    /// The set with `role` added or removed.
    #[must_use]
    pub const fn toggled(self, role: Role) -> Roles {
        Roles(self.0 ^ Self::bit(role))
    }

    /// The roles in the set, in [`ROLES`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        ROLES.into_iter().filter(move |r| self.contains(*r))
    }
}

/// Who may use a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who reaches the listener: no authentication.
    Public,
    /// An authenticated account with one of these roles.
    Roles(Roles),
}

impl Access {
    /// The roles allowed (every role for a public function).
    pub const fn roles(self) -> Roles {
        match self {
            Access::Public => Roles::ALL,
            Access::Roles(r) => r,
        }
    }
}

/// An API operation: method and path template as the router and the OpenAPI
/// document spell them. `variant` names the parameter that makes a function of
/// its own out of a route another function also uses (another account's tokens);
/// every route has exactly one entry without a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub variant: Option<(&'static str, &'static str)>,
}

const fn api(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        variant: None,
    }
}

/// A route with a variant: `(english, french)` say what makes it this function.
const fn api_with(method: &'static str, path: &'static str, en: &'static str, fr: &'static str) -> Route {
    Route {
        method,
        path,
        variant: Some((en, fr)),
    }
}

/// One function of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Right {
    pub function: Function,
    pub access: Access,
    /// An administrator's advanced function: configuration, lockdown, PKI and
    /// certificates, accounts and other accounts' tokens.
    pub advanced: bool,
    pub en: &'static str,
    pub fr: &'static str,
    /// Admin API operations.
    pub api: &'static [Route],
    /// `portier` commands that reach it (they act as an admin, see [`Actor::cli`](crate::ops::Actor::cli)).
    pub cli: &'static [&'static str],
    /// Console pages and forms: method and path.
    pub console: &'static [&'static str],
}

macro_rules! functions {
    ($($name:ident),* $(,)?) => {
        /// The role-checked functions (and the public ones, for the documents).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Function { $($name),* }

        impl Function {
            /// Every function, in declaration order.
            pub const ALL: &'static [Function] = &[$(Function::$name),*];

            /// The function's name in the documents.
            pub const fn name(self) -> &'static str {
                match self { $(Function::$name => stringify!($name)),* }
            }
        }
    };
}

functions! {
    Health, Metrics, ApiDescription, SignIn,
    ReadOwnAccount, ManageOwnAccount, ListOwnTokens, CreateOwnToken, RevokeOwnToken,
    ListVendors, ReadVendor, ListTechnicians, ListDevices, ReadDevice,
    ListWindows, ReadWindow, ReadReport, ListReports, ReadLockdown,
    CreateVendor, ReplaceVendorNetworks, DisableVendor, EnableVendor,
    CreateDevice, DisableDevice, EnableDevice,
    RequestWindow, ApproveWindow, RejectWindow, RevokeWindow, CancelWindow, ExtendWindow,
    GrantEmergency, ReviewEmergency, FileReport, AddReportAddendum,
    ListSessions, ReadSession, TerminateSession,
    ListNodes, ReadAccountNames, PendingDecisions, LiveTunnels, UnreviewedEmergencies, RecentDenials,
    ReadAudit, VerifyAudit, ReadFlows, ReadDossier, ExportEvidence, ReadTimeline, IncidentTimeline, PurgeData,
    AdminConsole, SecurityConsole, VendorConsole, AuditSessionsPage, AuditReportsPage,
    CreateAccount, ListAccounts, DisableAccount, EnableAccount, ResetPassword, ResetSecondFactor,
    ListTokensOfOthers, CreateTokenForOthers, RevokeTokenOfOthers,
    AllowBroadNetworks, AddTechnician, RevokeTechnician,
    Lockdown, LiftLockdown, ServerLockdown,
}

impl Function {
    /// This function's row.
    pub fn right(self) -> Option<&'static Right> {
        TABLE.iter().find(|r| r.function == self)
    }

    /// The roles allowed; none if the function had no row (which a test forbids).
    pub fn roles(self) -> Roles {
        self.right().map_or(Roles(0), |r| r.access.roles())
    }
}

const ANY: Access = Access::Roles(Roles::ALL);
const fn only(roles: &[Role]) -> Access {
    Access::Roles(Roles::of(roles))
}
use Role::{Admin, Auditor, Security, Vendor};

/// The authorization table.
pub static TABLE: &[Right] = &[
    // Open to anyone who reaches the API listener.
    Right {
        function: Function::Health,
        access: Access::Public,
        advanced: false,
        en: "Liveness and readiness probes",
        fr: "Sondes de vie et de disponibilité",
        api: &[api("GET", "/healthz"), api("GET", "/readyz")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::Metrics,
        access: Access::Public,
        advanced: false,
        en: "Prometheus metrics (bind the API where only monitoring reaches it)",
        fr: "Métriques Prometheus (n'exposer l'API qu'à la supervision)",
        api: &[api("GET", "/metrics")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::ApiDescription,
        access: Access::Public,
        advanced: false,
        en: "The OpenAPI description of the admin API",
        fr: "La description OpenAPI de l'API d'administration",
        api: &[api("GET", "/api/v1/openapi.json")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::SignIn,
        access: Access::Public,
        advanced: false,
        en: "Sign in to the console (token, or password and second factor)",
        fr: "Connexion à la console (jeton, ou mot de passe et second facteur)",
        api: &[],
        cli: &[],
        console: &[
            "GET /console/sign-in",
            "POST /console/sign-in",
            "POST /console/sign-in/password",
            "POST /console/sign-in/code",
            "POST /console/sign-in/new-password",
            "POST /console/sign-in/enrol",
        ],
    },
    // Every account.
    Right {
        function: Function::ReadOwnAccount,
        access: ANY,
        advanced: false,
        en: "See one's own account",
        fr: "Voir son propre compte",
        api: &[api("GET", "/api/v1/me")],
        cli: &[],
        console: &["GET /console/account"],
    },
    Right {
        function: Function::ManageOwnAccount,
        access: ANY,
        advanced: false,
        en: "Change one's own password, second factor and console language",
        fr: "Changer son mot de passe, son second facteur et la langue de la console",
        api: &[],
        cli: &[],
        console: &[
            "POST /console/account/password",
            "POST /console/account/totp",
            "POST /console/lang",
        ],
    },
    Right {
        function: Function::ListOwnTokens,
        access: ANY,
        advanced: false,
        en: "List one's own API tokens",
        fr: "Lister ses propres jetons d'API",
        api: &[api("GET", "/api/v1/tokens")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::CreateOwnToken,
        access: ANY,
        advanced: false,
        en: "Create a personal API token (shown once)",
        fr: "Créer un jeton d'API personnel (affiché une fois)",
        api: &[api("POST", "/api/v1/tokens")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::RevokeOwnToken,
        access: ANY,
        advanced: false,
        en: "Revoke one's own API token",
        fr: "Révoquer son propre jeton d'API",
        api: &[api("DELETE", "/api/v1/tokens/{id}")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::ListVendors,
        access: ANY,
        advanced: false,
        en: "List vendors (a vendor account: its own)",
        fr: "Lister les fournisseurs (un compte fournisseur : le sien)",
        api: &[api("GET", "/api/v1/vendors")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::ReadVendor,
        access: ANY,
        advanced: false,
        en: "See a vendor (a vendor account: its own)",
        fr: "Voir un fournisseur (un compte fournisseur : le sien)",
        api: &[api("GET", "/api/v1/vendors/{id}")],
        cli: &[],
        console: &["GET /console/admin/vendors/{id}"],
    },
    Right {
        function: Function::ListTechnicians,
        access: ANY,
        advanced: false,
        en: "List a vendor's technicians (a vendor account: its own)",
        fr: "Lister les techniciens d'un fournisseur (un compte fournisseur : les siens)",
        api: &[api("GET", "/api/v1/vendors/{id}/technicians")],
        cli: &[],
        console: &["GET /console/admin/vendors/{id}"],
    },
    Right {
        function: Function::ListDevices,
        access: ANY,
        advanced: false,
        en: "List devices (a vendor account: those assigned to it)",
        fr: "Lister les équipements (un compte fournisseur : ceux qui lui sont attribués)",
        api: &[api("GET", "/api/v1/devices")],
        cli: &[],
        console: &["GET /console/admin/devices", "GET /console/vendor"],
    },
    Right {
        function: Function::ReadDevice,
        access: ANY,
        advanced: false,
        en: "See a device (a vendor account: one assigned to it)",
        fr: "Voir un équipement (un compte fournisseur : un des siens)",
        api: &[api("GET", "/api/v1/devices/{id}")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::ListWindows,
        access: ANY,
        advanced: false,
        en: "List maintenance windows (a vendor account: its own)",
        fr: "Lister les fenêtres de maintenance (un compte fournisseur : les siennes)",
        api: &[api("GET", "/api/v1/windows")],
        cli: &[],
        console: &["GET /console/vendor"],
    },
    Right {
        function: Function::ReadWindow,
        access: ANY,
        advanced: false,
        en: "See a maintenance window (a vendor account: its own)",
        fr: "Voir une fenêtre de maintenance (un compte fournisseur : les siennes)",
        api: &[api("GET", "/api/v1/windows/{id}")],
        cli: &[],
        console: &["GET /console/vendor/windows/{id}"],
    },
    Right {
        function: Function::ReadReport,
        access: ANY,
        advanced: false,
        en: "See a window's intervention report and its sessions (a vendor account: its own)",
        fr: "Voir le compte-rendu d'intervention d'une fenêtre et ses sessions (un compte fournisseur : les siens)",
        api: &[api("GET", "/api/v1/windows/{id}/report")],
        cli: &[],
        console: &["GET /console/vendor/windows/{id}"],
    },
    Right {
        function: Function::ListReports,
        access: ANY,
        advanced: false,
        en: "List intervention reports, filed or overdue (a vendor account: its own)",
        fr: "Lister les comptes-rendus d'intervention, déposés ou en retard (un compte fournisseur : les siens)",
        api: &[api("GET", "/api/v1/reports")],
        cli: &[],
        console: &["GET /console/vendor", "GET /console/audit/reports"],
    },
    Right {
        function: Function::ReadLockdown,
        access: ANY,
        advanced: false,
        en: "See whether the lockdown is in force, since when and why",
        fr: "Voir si la mise en sécurité est en vigueur, depuis quand et pourquoi",
        api: &[api("GET", "/api/v1/lockdown")],
        cli: &[],
        console: &["GET /console/security"],
    },
    // The catalogue: vendors and devices.
    Right {
        function: Function::CreateVendor,
        access: only(&[Admin]),
        advanced: false,
        en: "Create a vendor with its declared networks",
        fr: "Créer un fournisseur et ses réseaux déclarés",
        api: &[api("POST", "/api/v1/vendors")],
        cli: &[],
        console: &["POST /console/admin/vendors"],
    },
    Right {
        function: Function::ReplaceVendorNetworks,
        access: only(&[Admin]),
        advanced: false,
        en: "Replace a vendor's declared networks",
        fr: "Remplacer les réseaux déclarés d'un fournisseur",
        api: &[api("PUT", "/api/v1/vendors/{id}/networks")],
        cli: &[],
        console: &["POST /console/admin/vendors/{id}/networks"],
    },
    Right {
        function: Function::DisableVendor,
        access: only(&[Admin, Security]),
        advanced: false,
        en: "Disable a vendor: its live tunnels are cut",
        fr: "Désactiver un fournisseur : ses tunnels en cours sont coupés",
        api: &[api("POST", "/api/v1/vendors/{id}/disable")],
        cli: &[],
        console: &["POST /console/admin/vendors/{id}/disable"],
    },
    Right {
        function: Function::EnableVendor,
        access: only(&[Admin, Security]),
        advanced: false,
        en: "Enable a vendor again",
        fr: "Réactiver un fournisseur",
        api: &[api("POST", "/api/v1/vendors/{id}/enable")],
        cli: &[],
        console: &["POST /console/admin/vendors/{id}/enable"],
    },
    Right {
        function: Function::CreateDevice,
        access: only(&[Admin]),
        advanced: false,
        en: "Create a device and assign it to vendors",
        fr: "Créer un équipement et l'attribuer à des fournisseurs",
        api: &[api("POST", "/api/v1/devices")],
        cli: &[],
        console: &["POST /console/admin/devices"],
    },
    Right {
        function: Function::DisableDevice,
        access: only(&[Admin, Security]),
        advanced: false,
        en: "Disable a device: its live tunnels are cut",
        fr: "Désactiver un équipement : ses tunnels en cours sont coupés",
        api: &[api("POST", "/api/v1/devices/{id}/disable")],
        cli: &[],
        console: &["POST /console/admin/devices/{id}/disable"],
    },
    Right {
        function: Function::EnableDevice,
        access: only(&[Admin]),
        advanced: false,
        en: "Enable a device again",
        fr: "Réactiver un équipement",
        api: &[api("POST", "/api/v1/devices/{id}/enable")],
        cli: &[],
        console: &["POST /console/admin/devices/{id}/enable"],
    },
    // Maintenance windows and reports.
    Right {
        function: Function::RequestWindow,
        access: only(&[Vendor, Admin]),
        advanced: false,
        en: "Request a maintenance window (a vendor account: for its own vendor)",
        fr: "Demander une fenêtre de maintenance (un compte fournisseur : pour lui-même)",
        api: &[api("POST", "/api/v1/windows")],
        cli: &[],
        console: &["GET /console/vendor/windows/new", "POST /console/vendor/windows/new"],
    },
    Right {
        function: Function::ApproveWindow,
        access: only(&[Security, Admin]),
        advanced: false,
        en: "Approve a requested window or extension (not one's own request)",
        fr: "Approuver une fenêtre ou une prolongation demandée (pas sa propre demande)",
        api: &[api("POST", "/api/v1/windows/{id}/approve")],
        cli: &[],
        console: &["POST /console/security/windows/{id}/approve"],
    },
    Right {
        function: Function::RejectWindow,
        access: only(&[Security, Admin]),
        advanced: false,
        en: "Reject a requested window or extension, with a reason",
        fr: "Refuser une fenêtre ou une prolongation demandée, avec un motif",
        api: &[api("POST", "/api/v1/windows/{id}/reject")],
        cli: &[],
        console: &["POST /console/security/windows/{id}/reject"],
    },
    Right {
        function: Function::RevokeWindow,
        access: only(&[Security, Admin]),
        advanced: false,
        en: "Revoke an approved window: its live tunnels are cut",
        fr: "Révoquer une fenêtre approuvée : ses tunnels en cours sont coupés",
        api: &[api("POST", "/api/v1/windows/{id}/revoke")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::CancelWindow,
        access: only(&[Vendor, Admin]),
        advanced: false,
        en: "Cancel a window (a vendor account: its own)",
        fr: "Annuler une fenêtre (un compte fournisseur : les siennes)",
        api: &[api("POST", "/api/v1/windows/{id}/cancel")],
        cli: &[],
        console: &["POST /console/vendor/windows/{id}/cancel"],
    },
    Right {
        function: Function::ExtendWindow,
        access: only(&[Vendor]),
        advanced: false,
        en: "Ask for a window's extension (its vendor)",
        fr: "Demander la prolongation d'une fenêtre (son fournisseur)",
        api: &[api("POST", "/api/v1/windows/{id}/extend")],
        cli: &[],
        console: &["POST /console/vendor/windows/{id}/extend"],
    },
    Right {
        function: Function::GrantEmergency,
        access: only(&[Security]),
        advanced: false,
        en: "Grant emergency access, with a justification, reviewed afterwards",
        fr: "Accorder un accès d'urgence, justifié, revu ensuite",
        api: &[api("POST", "/api/v1/emergency")],
        cli: &[],
        console: &["POST /console/security/emergency"],
    },
    Right {
        function: Function::ReviewEmergency,
        access: only(&[Security]),
        advanced: false,
        en: "Review an emergency grant (a second security account)",
        fr: "Revoir un accès d'urgence (un second compte sécurité)",
        api: &[api("POST", "/api/v1/windows/{id}/review")],
        cli: &[],
        console: &["POST /console/security/windows/{id}/review"],
    },
    Right {
        function: Function::FileReport,
        access: only(&[Vendor]),
        advanced: false,
        en: "File a window's intervention report (its vendor)",
        fr: "Déposer le compte-rendu d'intervention d'une fenêtre (son fournisseur)",
        api: &[api("POST", "/api/v1/windows/{id}/report")],
        cli: &[],
        console: &["POST /console/vendor/windows/{id}/report"],
    },
    Right {
        function: Function::AddReportAddendum,
        access: only(&[Vendor]),
        advanced: false,
        en: "Append a correction to a filed report (its vendor)",
        fr: "Ajouter un rectificatif à un compte-rendu déposé (son fournisseur)",
        api: &[api("POST", "/api/v1/windows/{id}/report/addenda")],
        cli: &[],
        console: &["POST /console/vendor/windows/{id}/addendum"],
    },
    // Sessions and oversight.
    Right {
        function: Function::ListSessions,
        access: only(&[Security, Auditor, Vendor]),
        advanced: false,
        en: "List sessions, in JSON or CSV (a vendor account: its own)",
        fr: "Lister les sessions, en JSON ou CSV (un compte fournisseur : les siennes)",
        api: &[api("GET", "/api/v1/sessions")],
        cli: &[],
        console: &["GET /console/audit/sessions", "GET /console/audit/sessions/csv"],
    },
    Right {
        function: Function::ReadSession,
        access: only(&[Security, Auditor, Vendor]),
        advanced: false,
        en: "See a session (a vendor account: its own)",
        fr: "Voir une session (un compte fournisseur : les siennes)",
        api: &[api("GET", "/api/v1/sessions/{id}")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::TerminateSession,
        access: only(&[Security]),
        advanced: false,
        en: "Terminate a live session, with a reason",
        fr: "Couper une session en cours, avec un motif",
        api: &[api("POST", "/api/v1/sessions/{id}/terminate")],
        cli: &[],
        console: &["POST /console/security/sessions/{id}/terminate"],
    },
    Right {
        function: Function::ListNodes,
        access: only(&[Admin, Security, Auditor]),
        advanced: false,
        en: "List the gateway nodes and whether they are alive",
        fr: "Lister les nœuds de la passerelle et leur état",
        api: &[api("GET", "/api/v1/nodes")],
        cli: &[],
        console: &[],
    },
    Right {
        function: Function::ReadAccountNames,
        access: only(&[Admin, Security, Auditor]),
        advanced: false,
        en: "See who asked, approved or reviewed, by account name",
        fr: "Voir qui a demandé, approuvé ou revu, par nom de compte",
        api: &[],
        cli: &[],
        console: &["GET /console/security"],
    },
    Right {
        function: Function::PendingDecisions,
        access: only(&[Security, Admin]),
        advanced: false,
        en: "See the requests and extensions waiting for a decision",
        fr: "Voir les demandes et prolongations en attente de décision",
        api: &[],
        cli: &[],
        console: &["GET /console/security", "GET /console/security/live/pending"],
    },
    Right {
        function: Function::LiveTunnels,
        access: only(&[Security, Admin]),
        advanced: false,
        en: "Watch the live tunnels of every node",
        fr: "Suivre les tunnels en cours sur chaque nœud",
        api: &[],
        cli: &[],
        console: &["GET /console/security", "GET /console/security/live/tunnels"],
    },
    Right {
        function: Function::UnreviewedEmergencies,
        access: only(&[Security, Admin]),
        advanced: false,
        en: "See the emergency grants awaiting review",
        fr: "Voir les accès d'urgence en attente de revue",
        api: &[],
        cli: &[],
        console: &["GET /console/security", "GET /console/security/live/reviews"],
    },
    Right {
        function: Function::RecentDenials,
        access: only(&[Security, Admin, Auditor]),
        advanced: false,
        en: "See the latest refused connections",
        fr: "Voir les dernières connexions refusées",
        api: &[],
        cli: &[],
        console: &["GET /console/security", "GET /console/security/live/denials"],
    },
    // Evidence.
    Right {
        function: Function::ReadAudit,
        access: only(&[Security, Auditor]),
        advanced: false,
        en: "Read the audit trail with each event's hash",
        fr: "Lire la piste d'audit avec l'empreinte de chaque événement",
        api: &[api("GET", "/api/v1/audit")],
        cli: &[],
        console: &["GET /console/audit/trail"],
    },
    Right {
        function: Function::VerifyAudit,
        access: only(&[Security, Auditor]),
        advanced: false,
        en: "Verify the audit trail's hash chain",
        fr: "Vérifier la chaîne d'empreintes de la piste d'audit",
        api: &[api("GET", "/api/v1/audit/verify")],
        cli: &[],
        console: &["POST /console/audit/trail/verify"],
    },
    Right {
        function: Function::ReadFlows,
        access: only(&[Admin, Security, Auditor]),
        advanced: false,
        en: "Read the network flow matrix",
        fr: "Lire la matrice des flux réseau",
        api: &[api("GET", "/api/v1/flows")],
        cli: &[],
        console: &["GET /console/audit/flows"],
    },
    Right {
        function: Function::ReadDossier,
        access: only(&[Admin, Security, Auditor]),
        advanced: false,
        en: "Read the security dossier: rights, cryptography, flows, architecture, third parties, guide, procedures",
        fr: "Lire le dossier de sécurité : droits, cryptographie, flux, architecture, logiciels tiers, guide, procédures",
        api: &[
            api("GET", "/api/v1/dossier/{lang}"),
            api("GET", "/api/v1/dossier/{lang}/{document}"),
        ],
        cli: &[],
        console: &["GET /console/audit/dossier", "GET /console/audit/dossier/{lang}/{document}"],
    },
    Right {
        function: Function::ExportEvidence,
        access: only(&[Security, Auditor]),
        advanced: false,
        en: "Download an evidence bundle for a period",
        fr: "Télécharger un dossier de preuves pour une période",
        api: &[],
        cli: &[],
        console: &["GET /console/audit/evidence", "GET /console/audit/evidence/download"],
    },
    Right {
        function: Function::ReadTimeline,
        access: only(&[Auditor, Security, Admin]),
        advanced: false,
        en: "Read the timeline of windows and sessions",
        fr: "Lire la chronologie des fenêtres et des sessions",
        api: &[],
        cli: &[],
        console: &["GET /console/audit"],
    },
    Right {
        function: Function::IncidentTimeline,
        access: only(&[Admin, Security, Auditor]),
        advanced: false,
        en: "Read a vendor's or a device's incident timeline: windows, decisions, grants, sessions, denials, reports",
        fr: "Lire la chronologie d'incident d'un fournisseur ou d'un équipement : fenêtres, décisions, urgences, sessions, refus, rapports",
        api: &[api("GET", "/api/v1/timeline")],
        cli: &["timeline"],
        console: &[],
    },
    Right {
        function: Function::PurgeData,
        access: only(&[Admin]),
        advanced: true,
        en: "Purge personal data older than the retention period (the audit chain stays verifiable)",
        fr: "Purger les données personnelles plus anciennes que la durée de conservation (la chaîne d'audit reste vérifiable)",
        api: &[api("POST", "/api/v1/purge")],
        cli: &["purge"],
        console: &[],
    },
    // The console's areas (each use case behind a page checks again).
    Right {
        function: Function::AdminConsole,
        access: only(&[Admin]),
        advanced: false,
        en: "Open the administration pages: vendors, technicians, devices, accounts",
        fr: "Ouvrir les pages d'administration : fournisseurs, techniciens, équipements, comptes",
        api: &[],
        cli: &[],
        console: &["GET /console/admin"],
    },
    Right {
        function: Function::SecurityConsole,
        access: only(&[Security, Admin]),
        advanced: false,
        en: "Open the security pages: decisions, live tunnels, emergency, lockdown, denials",
        fr: "Ouvrir les pages sécurité : décisions, tunnels en cours, urgence, mise en sécurité, refus",
        api: &[],
        cli: &[],
        console: &["GET /console/security"],
    },
    Right {
        function: Function::VendorConsole,
        access: only(&[Vendor]),
        advanced: false,
        en: "Open the vendor's pages: its devices, windows and reports",
        fr: "Ouvrir les pages du fournisseur : ses équipements, fenêtres et comptes-rendus",
        api: &[],
        cli: &[],
        console: &["GET /console/vendor"],
    },
    Right {
        function: Function::AuditSessionsPage,
        access: only(&[Auditor, Security]),
        advanced: false,
        en: "Open the audit pages' session list and its CSV export",
        fr: "Ouvrir la liste des sessions de l'audit et son export CSV",
        api: &[],
        cli: &[],
        console: &["GET /console/audit/sessions", "GET /console/audit/sessions/csv"],
    },
    Right {
        function: Function::AuditReportsPage,
        access: only(&[Auditor, Security, Admin]),
        advanced: false,
        en: "Open the audit pages' reports with their sessions",
        fr: "Ouvrir les comptes-rendus de l'audit avec leurs sessions",
        api: &[],
        cli: &[],
        console: &["GET /console/audit/reports"],
    },
    // The administrator's advanced functions: accounts, tokens of others,
    // configuration, PKI, lockdown.
    Right {
        function: Function::CreateAccount,
        access: only(&[Admin]),
        advanced: true,
        en: "Create an account of any role, with its first token",
        fr: "Créer un compte de n'importe quel rôle, avec son premier jeton",
        api: &[api("POST", "/api/v1/users")],
        cli: &["account create", "token create --role"],
        console: &["POST /console/admin/accounts"],
    },
    Right {
        function: Function::ListAccounts,
        access: only(&[Admin]),
        advanced: true,
        en: "List every account with its role, state, last sign-in and live tokens",
        fr: "Lister les comptes avec leur rôle, état, dernière connexion et jetons valides",
        api: &[api("GET", "/api/v1/users")],
        cli: &["token list"],
        console: &["GET /console/admin/accounts"],
    },
    Right {
        function: Function::DisableAccount,
        access: only(&[Admin]),
        advanced: true,
        en: "Disable an account: its tokens and console sessions stop at once",
        fr: "Désactiver un compte : ses jetons et sessions de console cessent aussitôt",
        api: &[api("POST", "/api/v1/users/{id}/disable")],
        cli: &[],
        console: &["POST /console/admin/accounts/{id}/disable"],
    },
    Right {
        function: Function::EnableAccount,
        access: only(&[Admin]),
        advanced: true,
        en: "Enable a disabled account",
        fr: "Réactiver un compte désactivé",
        api: &[api("POST", "/api/v1/users/{id}/enable")],
        cli: &[],
        console: &["POST /console/admin/accounts/{id}/enable"],
    },
    Right {
        function: Function::ResetPassword,
        access: only(&[Admin]),
        advanced: true,
        en: "Reset another account's password (a temporary one, shown once)",
        fr: "Réinitialiser le mot de passe d'un autre compte (provisoire, affiché une fois)",
        api: &[api("POST", "/api/v1/users/{id}/reset-password")],
        cli: &[],
        console: &["POST /console/admin/accounts/{id}/reset-password"],
    },
    Right {
        function: Function::ResetSecondFactor,
        access: only(&[Admin]),
        advanced: true,
        en: "Remove another account's second factor",
        fr: "Supprimer le second facteur d'un autre compte",
        api: &[api("POST", "/api/v1/users/{id}/reset-mfa")],
        cli: &[],
        console: &["POST /console/admin/accounts/{id}/reset-mfa"],
    },
    Right {
        function: Function::ListTokensOfOthers,
        access: only(&[Admin]),
        advanced: true,
        en: "List other accounts' API tokens",
        fr: "Lister les jetons d'API des autres comptes",
        api: &[api_with(
            "GET",
            "/api/v1/tokens",
            "?user_id= another account",
            "?user_id= un autre compte",
        )],
        cli: &["token list"],
        console: &[],
    },
    Right {
        function: Function::CreateTokenForOthers,
        access: only(&[Admin]),
        advanced: true,
        en: "Create an API token for another account",
        fr: "Créer un jeton d'API pour un autre compte",
        api: &[],
        cli: &["token create --user"],
        console: &[],
    },
    Right {
        function: Function::RevokeTokenOfOthers,
        access: only(&[Admin]),
        advanced: true,
        en: "Revoke another account's API token",
        fr: "Révoquer le jeton d'API d'un autre compte",
        api: &[api_with(
            "DELETE",
            "/api/v1/tokens/{id}",
            "another account's token",
            "jeton d'un autre compte",
        )],
        cli: &["token revoke"],
        console: &[],
    },
    Right {
        function: Function::AllowBroadNetworks,
        access: only(&[Admin]),
        advanced: true,
        en: "Declare vendor networks broader than the configured minimum prefix",
        fr: "Déclarer des réseaux fournisseur plus larges que le préfixe minimal configuré",
        api: &[
            api_with(
                "POST",
                "/api/v1/vendors",
                "allow_broad_networks: true",
                "allow_broad_networks: true",
            ),
            api_with(
                "PUT",
                "/api/v1/vendors/{id}/networks",
                "allow_broad_networks: true",
                "allow_broad_networks: true",
            ),
        ],
        cli: &[],
        console: &[
            "POST /console/admin/vendors",
            "POST /console/admin/vendors/{id}/networks",
        ],
    },
    Right {
        function: Function::AddTechnician,
        access: only(&[Admin]),
        advanced: true,
        en: "Register a technician: sign its CSR with the vendor CA, or pin a certificate",
        fr: "Enregistrer un technicien : signer sa CSR par l'AC fournisseurs, ou épingler un certificat",
        api: &[api("POST", "/api/v1/vendors/{id}/technicians")],
        cli: &[],
        console: &[
            "POST /console/admin/vendors/{id}/technicians",
            "GET /console/admin/vendors/{id}/technicians/{tid}/certificate",
        ],
    },
    Right {
        function: Function::RevokeTechnician,
        access: only(&[Admin, Security]),
        advanced: true,
        en: "Revoke a technician's certificate: its live tunnels are cut",
        fr: "Révoquer le certificat d'un technicien : ses tunnels en cours sont coupés",
        api: &[api("DELETE", "/api/v1/vendors/{id}/technicians/{tid}")],
        cli: &[],
        console: &["POST /console/admin/vendors/{id}/technicians/{tid}/revoke"],
    },
    Right {
        function: Function::Lockdown,
        access: only(&[Security]),
        advanced: true,
        en: "Lock down (safe mode): cut every tunnel and refuse new ones",
        fr: "Mise en sécurité : couper tous les tunnels et refuser les nouveaux",
        api: &[api("POST", "/api/v1/lockdown")],
        cli: &[],
        console: &["POST /console/security/lockdown/on"],
    },
    Right {
        function: Function::LiftLockdown,
        access: only(&[Security]),
        advanced: true,
        en: "Lift the lockdown, with a reason",
        fr: "Lever la mise en sécurité, avec un motif",
        api: &[api("DELETE", "/api/v1/lockdown")],
        cli: &[],
        console: &["POST /console/security/lockdown/off"],
    },
    Right {
        function: Function::ServerLockdown,
        access: only(&[Admin, Security]),
        advanced: true,
        en: "Lock down or lift it from the server itself, when the API cannot be reached",
        fr: "Mettre en sécurité ou lever depuis le serveur, quand l'API est injoignable",
        api: &[],
        cli: &["lockdown on", "lockdown off"],
        console: &[],
    },
];

/// `portier` commands that use no account: they read the configuration and the
/// database directly, so they need the server operator's access (the files and
/// the database credentials), not a role. `(command, english, french)`.
pub const OPERATOR_COMMANDS: &[(&str, &str, &str)] = &[
    (
        "init",
        "Create a setup: PKI, configuration, database, bootstrap admin token",
        "Créer une installation : PKI, configuration, base, jeton d'administrateur initial",
    ),
    (
        "serve",
        "Run the gateway and the admin API",
        "Faire tourner la passerelle et l'API d'administration",
    ),
    (
        "migrate",
        "Apply database migrations",
        "Appliquer les migrations de la base",
    ),
    (
        "audit verify",
        "Verify the audit trail's hash chain",
        "Vérifier la chaîne d'empreintes de la piste d'audit",
    ),
    (
        "export",
        "Write an evidence bundle for a period",
        "Écrire un dossier de preuves pour une période",
    ),
    (
        "check",
        "Assess the deployment against the commissioning guide (OK / WARN / FAIL)",
        "Évaluer l'installation selon le guide de mise en service (OK / WARN / FAIL)",
    ),
    (
        "flows",
        "Print the network flow matrix",
        "Afficher la matrice des flux réseau",
    ),
    (
        "dossier",
        "Write the security dossier (rights, cryptography, flows, architecture, third parties, guide, procedures)",
        "Écrire le dossier de sécurité (droits, cryptographie, flux, architecture, logiciels tiers, guide, procédures)",
    ),
    (
        "rights",
        "Print this document (from the code: no configuration needed)",
        "Afficher ce document (issu du code : sans configuration)",
    ),
    (
        "sbom",
        "Print the software bill of materials (CycloneDX) or the third-party software table",
        "Afficher la nomenclature logicielle (CycloneDX) ou la liste des logiciels tiers",
    ),
    (
        "secrets new-key",
        "Make a master key for the secrets at rest",
        "Créer une clé maîtresse pour les secrets stockés",
    ),
    (
        "secrets encrypt",
        "Encrypt a configuration value under the master key",
        "Chiffrer une valeur de configuration sous la clé maîtresse",
    ),
    (
        "secrets rotate",
        "Re-encrypt every stored secret under a new master key",
        "Rechiffrer tous les secrets stockés sous une nouvelle clé maîtresse",
    ),
    (
        "secrets status",
        "Show which secrets are encrypted at rest, and how",
        "Montrer quels secrets sont chiffrés au repos, et comment",
    ),
];

/// A document's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
    Json,
}

impl Format {
    /// `md`, `html` or `json`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "md" | "markdown" => Some(Format::Markdown),
            "html" => Some(Format::Html),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// The labels of a document, per language.
struct Labels {
    title: &'static str,
    intro: &'static str,
    functions: &'static str,
    advanced: &'static str,
    advanced_intro: &'static str,
    operator: &'static str,
    operator_intro: &'static str,
    function: &'static str,
    description: &'static str,
    surfaces: &'static str,
    command: &'static str,
    allowed: &'static str,
    refused: &'static str,
    public: &'static str,
    advanced_mark: &'static str,
    cli_note: &'static str,
}

const EN: Labels = Labels {
    title: "Rights per profile",
    intro: "Generated from the authorization table the code enforces (src/rights.rs): every role check reads it, and the authorization-matrix test checks every API route against it. Rules on objects come on top: a vendor account sees and acts on its own vendor's objects only.",
    functions: "Functions",
    advanced: "The administrator's advanced functions",
    advanced_intro: "Configuration, lockdown, PKI and certificates, accounts and other accounts' tokens.",
    operator: "Server commands",
    operator_intro: "These `portier` commands use no account: they need the server operator's access to the configuration and the database.",
    function: "Function",
    description: "Description",
    surfaces: "Where",
    command: "Command",
    allowed: "yes",
    refused: "no",
    public: "public",
    advanced_mark: "advanced",
    cli_note: "Commands marked CLI run on the server and act as an admin.",
};

const FR: Labels = Labels {
    title: "Droits par profil",
    intro: "Généré depuis la table d'autorisation appliquée par le code (src/rights.rs) : chaque contrôle de rôle la lit, et le test de la matrice d'autorisation y confronte chaque route de l'API. Des règles sur les objets s'ajoutent : un compte fournisseur ne voit et n'agit que sur les objets de son fournisseur.",
    functions: "Fonctions",
    advanced: "Fonctions avancées de l'administrateur",
    advanced_intro: "Configuration, mise en sécurité, PKI et certificats, comptes et jetons des autres comptes.",
    operator: "Commandes du serveur",
    operator_intro: "Ces commandes `portier` n'utilisent aucun compte : elles demandent l'accès de l'exploitant du serveur à la configuration et à la base.",
    function: "Fonction",
    description: "Description",
    surfaces: "Où",
    command: "Commande",
    allowed: "oui",
    refused: "non",
    public: "public",
    advanced_mark: "avancée",
    cli_note: "Les commandes notées CLI s'exécutent sur le serveur, en tant qu'administrateur.",
};

fn labels(lang: Lang) -> &'static Labels {
    match lang {
        Lang::En => &EN,
        Lang::Fr => &FR,
    }
}

/// A role's name in the documents.
pub fn role_label(role: Role, lang: Lang) -> &'static str {
    match (lang, role) {
        (Lang::En, Role::Admin) => "admin",
        (Lang::En, Role::Security) => "security",
        (Lang::En, Role::Auditor) => "auditor",
        (Lang::En, Role::Vendor) => "vendor",
        (Lang::Fr, Role::Admin) => "administrateur",
        (Lang::Fr, Role::Security) => "sécurité",
        (Lang::Fr, Role::Auditor) => "auditeur",
        (Lang::Fr, Role::Vendor) => "fournisseur",
    }
}

impl Right {
    fn description(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.en,
            Lang::Fr => self.fr,
        }
    }

    /// The surfaces, one string each: `API GET /x`, `CLI portier y`, `console GET /z`.
    fn surfaces(&self, lang: Lang) -> Vec<String> {
        let api = self.api.iter().map(|r| match r.variant {
            None => format!("API {} {}", r.method, r.path),
            Some((en, fr)) => format!(
                "API {} {} ({})",
                r.method,
                r.path,
                if lang == Lang::Fr { fr } else { en }
            ),
        });
        let cli = self.cli.iter().map(|c| format!("CLI portier {c}"));
        let console = self.console.iter().map(|c| format!("console {c}"));
        api.chain(cli).chain(console).collect()
    }
}

/// The rights document of `table` in `lang` and `format`. Each function is one
/// row (one line in Markdown and HTML), so a changed permission changes one row.
pub fn document(table: &[Right], lang: Lang, format: Format) -> String {
    match format {
        Format::Markdown => markdown(table, lang),
        Format::Html => html(table, lang),
        // `{:#}`: a `Value` pretty-printed; its encoding cannot fail.
        Format::Json => format!("{:#}\n", json_value(table, lang)),
    }
}

fn sections(table: &[Right]) -> [(bool, Vec<&Right>); 2] {
    [false, true].map(|adv| (adv, table.iter().filter(|r| r.advanced == adv).collect()))
}

fn cell(r: &Right, role: Role, l: &Labels) -> &'static str {
    match r.access {
        Access::Public => l.public,
        Access::Roles(roles) if roles.contains(role) => l.allowed,
        Access::Roles(_) => l.refused,
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn markdown(table: &[Right], lang: Lang) -> String {
    let l = labels(lang);
    let mut out = format!("# {}\n\n{}\n\n{}\n", l.title, l.intro, l.cli_note);
    let roles: Vec<&str> = ROLES.iter().map(|r| role_label(*r, lang)).collect();
    for (adv, rows) in sections(table) {
        let (heading, intro) = if adv {
            (l.advanced, Some(l.advanced_intro))
        } else {
            (l.functions, None)
        };
        let _ = write!(out, "\n## {heading}\n\n");
        if let Some(i) = intro {
            let _ = write!(out, "{i}\n\n");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            l.function,
            l.description,
            roles.join(" | "),
            l.surfaces
        );
        let _ = writeln!(out, "|---|---|{}---|", "---|".repeat(roles.len()));
        for r in rows {
            let name = if r.advanced {
                format!("{} ({})", r.function.name(), l.advanced_mark)
            } else {
                r.function.name().to_owned()
            };
            let cells: Vec<&str> = ROLES.iter().map(|role| cell(r, *role, l)).collect();
            let surfaces: Vec<String> = r.surfaces(lang).iter().map(|s| format!("`{s}`")).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                name,
                md_escape(r.description(lang)),
                cells.join(" | "),
                md_escape(&surfaces.join(", "))
            );
        }
    }
    let _ = write!(
        out,
        "\n## {}\n\n{}\n\n| {} | {} |\n|---|---|\n",
        l.operator, l.operator_intro, l.command, l.description
    );
    for (cmd, en, fr) in OPERATOR_COMMANDS {
        let d = if lang == Lang::Fr { fr } else { en };
        let _ = writeln!(out, "| `portier {cmd}` | {} |", md_escape(d));
    }
    out
}

/// HTML text and attribute escaping.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111}table{border-collapse:collapse;margin-bottom:2rem}th,td{border:1px solid #999;padding:.25rem .5rem;vertical-align:top;text-align:left}td.yes{background:#d9f2d9}td.no{color:#777}td.public{background:#fde8c8}code{font-size:.85em}ul{margin:0;padding-left:1rem}";

fn html(table: &[Right], lang: Lang) -> String {
    let l = labels(lang);
    let e = escape_html;
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p>{}</p>\n<p>{}</p>\n",
        lang.code(),
        e(l.title),
        e(l.title),
        e(l.intro),
        e(l.cli_note)
    );
    let head: String = ROLES
        .iter()
        .map(|r| format!("<th scope=\"col\">{}</th>", e(role_label(*r, lang))))
        .collect();
    for (adv, rows) in sections(table) {
        let id = if adv { "advanced" } else { "functions" };
        let _ = writeln!(
            out,
            "<h2 id=\"{id}\">{}</h2>",
            e(if adv { l.advanced } else { l.functions })
        );
        if adv {
            let _ = writeln!(out, "<p>{}</p>", e(l.advanced_intro));
        }
        let _ = writeln!(
            out,
            "<table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>{head}<th scope=\"col\">{}</th></tr></thead>\n<tbody>",
            e(l.function),
            e(l.description),
            e(l.surfaces)
        );
        for r in rows {
            let mark = if r.advanced {
                format!(" <em>({})</em>", e(l.advanced_mark))
            } else {
                String::new()
            };
            let cells: String = ROLES
                .iter()
                .map(|role| {
                    let text = cell(r, *role, l);
                    let class = match r.access {
                        Access::Public => "public",
                        Access::Roles(roles) if roles.contains(*role) => "yes",
                        Access::Roles(_) => "no",
                    };
                    format!("<td class=\"{class}\">{}</td>", e(text))
                })
                .collect();
            let surfaces: String = r
                .surfaces(lang)
                .iter()
                .map(|s| format!("<li><code>{}</code></li>", e(s)))
                .collect();
            let _ = writeln!(
                out,
                "<tr id=\"{}\"{}><th scope=\"row\">{}{mark}</th><td>{}</td>{cells}<td><ul>{surfaces}</ul></td></tr>",
                e(r.function.name()),
                if r.advanced { " class=\"advanced\"" } else { "" },
                e(r.function.name()),
                e(r.description(lang)),
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    let _ = writeln!(
        out,
        "<h2 id=\"operator\">{}</h2>\n<p>{}</p>\n<table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>",
        e(l.operator),
        e(&l.operator_intro.replace('`', "")),
        e(l.command),
        e(l.description)
    );
    for (cmd, en, fr) in OPERATOR_COMMANDS {
        let d = if lang == Lang::Fr { fr } else { en };
        let _ = writeln!(
            out,
            "<tr><td><code>portier {}</code></td><td>{}</td></tr>",
            e(cmd),
            e(d)
        );
    }
    out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    out
}

fn json_value(table: &[Right], lang: Lang) -> Value {
    let l = labels(lang);
    let functions: Vec<Value> = table
        .iter()
        .map(|r| {
            let roles: serde_json::Map<String, Value> = ROLES
                .iter()
                .map(|role| (role.as_str().to_owned(), Value::Bool(r.access.roles().contains(*role))))
                .collect();
            let api: Vec<Value> = r
                .api
                .iter()
                .map(|a| {
                    json!({
                        "method": a.method,
                        "path": a.path,
                        "variant": a.variant.map(|(en, fr)| if lang == Lang::Fr { fr } else { en }),
                    })
                })
                .collect();
            json!({
                "function": r.function.name(),
                "description": r.description(lang),
                "public": r.access == Access::Public,
                "advanced": r.advanced,
                "roles": roles,
                "api": api,
                "cli": r.cli.iter().map(|c| format!("portier {c}")).collect::<Vec<_>>(),
                "console": r.console,
            })
        })
        .collect();
    let operator: Vec<Value> = OPERATOR_COMMANDS
        .iter()
        .map(|(cmd, en, fr)| json!({"command": format!("portier {cmd}"), "description": if lang == Lang::Fr { fr } else { en }}))
        .collect();
    json!({
        "title": l.title,
        "lang": lang.code(),
        "roles": ROLES.iter().map(|r| json!({"role": r.as_str(), "label": role_label(*r, lang)})).collect::<Vec<_>>(),
        "functions": functions,
        "operator_commands": operator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_exactly_one_row() {
        for f in Function::ALL {
            let n = TABLE.iter().filter(|r| r.function == *f).count();
            assert_eq!(n, 1, "{} has {n} rows", f.name());
        }
        assert_eq!(TABLE.len(), Function::ALL.len());
    }

    #[test]
    fn every_row_is_described_and_reachable() {
        for r in TABLE {
            assert!(!r.en.is_empty() && !r.fr.is_empty(), "{}", r.function.name());
            assert!(
                !(r.api.is_empty() && r.cli.is_empty() && r.console.is_empty()),
                "{} has no surface",
                r.function.name()
            );
            assert!(
                r.access != Access::Roles(Roles(0)),
                "{} is open to no role",
                r.function.name()
            );
            for c in r.console {
                let (method, path) = c.split_once(' ').unwrap();
                assert!(matches!(method, "GET" | "POST"), "{c}");
                assert!(path.starts_with("/console/"), "{c}");
            }
        }
    }

    /// Each route of the API is one function's (variants aside).
    #[test]
    fn api_routes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in TABLE {
            for a in r.api.iter().filter(|a| a.variant.is_none()) {
                assert!(seen.insert((a.method, a.path)), "{} {} twice", a.method, a.path);
            }
        }
        for r in TABLE {
            for a in r.api.iter().filter(|a| a.variant.is_some()) {
                assert!(
                    seen.contains(&(a.method, a.path)),
                    "variant of an unknown route {}",
                    a.path
                );
            }
        }
    }

    /// Every `portier` command is in the document: as a surface of the functions
    /// it reaches, or among the server commands.
    #[test]
    fn every_command_is_listed() {
        use clap::CommandFactory;
        fn leaves(prefix: &str, cmd: &clap::Command, out: &mut Vec<String>) {
            for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
                let path = format!("{prefix}{}", sub.get_name());
                if sub.has_subcommands() {
                    leaves(&format!("{path} "), sub, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut commands = Vec::new();
        leaves("", &crate::cli::Cli::command(), &mut commands);
        assert!(commands.contains(&"token revoke".to_owned()), "{commands:?}");
        let listed: Vec<&str> = TABLE
            .iter()
            .flat_map(|r| r.cli.iter().copied())
            .chain(OPERATOR_COMMANDS.iter().map(|c| c.0))
            .collect();
        for c in &commands {
            assert!(
                listed.iter().any(|l| l == c || l.starts_with(&format!("{c} "))),
                "portier {c} is in no row"
            );
        }
        for l in &listed {
            assert!(
                commands.iter().any(|c| l == c || l.starts_with(&format!("{c} "))),
                "{l} is no command"
            );
        }
    }

    fn flipped(f: Function, role: Role) -> Vec<Right> {
        let mut copy = TABLE.to_vec();
        let row = copy.iter_mut().find(|r| r.function == f).unwrap();
        row.access = Access::Roles(row.access.roles().toggled(role));
        copy
    }

    fn differing_lines<'a>(a: &'a str, b: &'a str) -> Vec<(&'a str, &'a str)> {
        assert_eq!(a.lines().count(), b.lines().count());
        a.lines().zip(b.lines()).filter(|(x, y)| x != y).collect()
    }

    /// A changed permission changes the document on that function's row, and
    /// nowhere else: in every format and language.
    #[test]
    fn a_flipped_permission_changes_exactly_its_row() {
        for (f, role) in [
            (Function::ApproveWindow, Role::Auditor),
            (Function::Lockdown, Role::Security),
            (Function::ReadOwnAccount, Role::Vendor),
        ] {
            let changed = flipped(f, role);
            for lang in Lang::ALL {
                for format in [Format::Markdown, Format::Html] {
                    let real = document(TABLE, lang, format);
                    let other = document(&changed, lang, format);
                    let diff = differing_lines(&real, &other);
                    assert_eq!(diff.len(), 1, "{f:?} {lang:?} {format:?}: {diff:#?}");
                    let (was, now) = diff[0];
                    assert!(was.contains(f.name()) && now.contains(f.name()), "{was}\n{now}");
                }
                let real: Value = serde_json::from_str(&document(TABLE, lang, Format::Json)).unwrap();
                let other: Value = serde_json::from_str(&document(&changed, lang, Format::Json)).unwrap();
                let (a, b) = (
                    real["functions"].as_array().unwrap(),
                    other["functions"].as_array().unwrap(),
                );
                let diff: Vec<_> = a.iter().zip(b).filter(|(x, y)| x != y).collect();
                assert_eq!(diff.len(), 1, "{f:?} {lang:?} json");
                let (was, now) = diff[0];
                assert_eq!(was["function"], f.name());
                assert_ne!(was["roles"][role.as_str()], now["roles"][role.as_str()]);
                let mut without = real.clone();
                without["functions"] = Value::Null;
                let mut other_without = other.clone();
                other_without["functions"] = Value::Null;
                assert_eq!(without, other_without, "only the functions differ");
            }
        }
    }

    #[test]
    fn documents_say_who_may_do_what() {
        let md = document(TABLE, Lang::En, Format::Markdown);
        assert!(md.starts_with("# Rights per profile\n"));
        assert!(md.contains("## The administrator's advanced functions"));
        let lockdown = md.lines().find(|l| l.starts_with("| Lockdown (advanced) |")).unwrap();
        assert!(lockdown.contains("| no | yes | no | no |"), "{lockdown}");
        assert!(lockdown.contains("`API POST /api/v1/lockdown`"), "{lockdown}");
        let fr = document(TABLE, Lang::Fr, Format::Markdown);
        assert!(fr.starts_with("# Droits par profil\n"));
        assert!(fr.contains("## Fonctions avancées de l'administrateur"));
        assert!(fr.contains("| administrateur | sécurité | auditeur | fournisseur |"));
        let html = document(TABLE, Lang::Fr, Format::Html);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"fr\">"));
        assert!(html.contains("Fonctions avancées de l&#39;administrateur"));
        assert!(!html.contains("<script") && !html.contains(" src="), "self-contained");
        let json: Value = serde_json::from_str(&document(TABLE, Lang::En, Format::Json)).unwrap();
        let health = json["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["function"] == "Health")
            .unwrap();
        assert_eq!(health["public"], true);
        assert_eq!(health["api"][0]["path"], "/healthz");
    }

    /// docs/rights.md carries the English document as generated: regenerated,
    /// never edited by hand.
    #[test]
    fn the_copy_in_the_docs_is_current() {
        let doc = include_str!("../docs/rights.md");
        let marker = "regenerate it rather than edit it.\n\n";
        let copy = &doc[doc.find(marker).expect("docs/rights.md lost its marker") + marker.len()..];
        let generated: String = document(TABLE, Lang::En, Format::Markdown)
            .lines()
            .map(|l| {
                if l.starts_with('#') {
                    format!("#{l}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(
            copy == generated,
            "docs/rights.md is out of date: replace what follows its marker with `portier rights`, headings one level down"
        );
    }

    #[test]
    fn html_is_escaped() {
        let mut copy = TABLE.to_vec();
        copy[0].en = "<b>&\"x\"</b>";
        let html = document(&copy, Lang::En, Format::Html);
        assert!(html.contains("&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;"));
        assert!(!html.contains("<b>&"));
    }
}
