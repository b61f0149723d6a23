//! The admin pages: vendors and their declared networks, their technicians
//! (a CSR signed into a certificate to download; revocation), devices and
//! their vendor assignments, and accounts (a new account's token is shown
//! once). Every change is the use case the API calls, as the signed-in admin.

mod accounts;
mod devices;
mod technicians;
mod vendors;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use super::fail::Fail;
use super::form::FieldErrors;
use super::session::Viewer;
use crate::api::ApiState;
use crate::ops::OpsError;
use crate::rights::Function;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/admin", get(vendors::list))
        .route("/console/admin/vendors", post(vendors::create))
        .route("/console/admin/vendors/{id}", get(vendors::show))
        .route("/console/admin/vendors/{id}/networks", post(vendors::replace_networks))
        .route("/console/admin/vendors/{id}/disable", post(vendors::disable))
        .route("/console/admin/vendors/{id}/enable", post(vendors::enable))
        .route("/console/admin/vendors/{id}/technicians", post(technicians::add))
        .route(
            "/console/admin/vendors/{id}/technicians/{tid}/certificate",
            get(technicians::certificate),
        )
        .route(
            "/console/admin/vendors/{id}/technicians/{tid}/revoke",
            post(technicians::revoke),
        )
        .route("/console/admin/devices", get(devices::list).post(devices::create))
        .route("/console/admin/devices/{id}/disable", post(devices::disable))
        .route("/console/admin/devices/{id}/enable", post(devices::enable))
        .route("/console/admin/accounts", get(accounts::list).post(accounts::create))
        .route("/console/admin/accounts/{id}/disable", post(accounts::disable))
        .route("/console/admin/accounts/{id}/enable", post(accounts::enable))
        .route(
            "/console/admin/accounts/{id}/reset-password",
            post(accounts::reset_password),
        )
        .route("/console/admin/accounts/{id}/reset-mfa", post(accounts::reset_mfa))
}

/// The area's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Vendors,
    Devices,
    Accounts,
}

impl Tab {
    const ALL: [Tab; 3] = [Tab::Vendors, Tab::Devices, Tab::Accounts];

    const fn path(self) -> &'static str {
        match self {
            Tab::Vendors => "/console/admin",
            Tab::Devices => "/console/admin/devices",
            Tab::Accounts => "/console/admin/accounts",
        }
    }

    const fn label(self) -> &'static str {
        match self {
            Tab::Vendors => "adm-tab-vendors",
            Tab::Devices => "adm-tab-devices",
            Tab::Accounts => "adm-tab-accounts",
        }
    }
}

fn tabs(v: &Viewer, current: Tab) -> Markup {
    html! {
        nav aria-label=(v.tr.t("adm-tabs")) {
            ul.tabs {
                @for t in Tab::ALL {
                    li { a href=(t.path()) aria-current=[(t == current).then_some("page")] { (v.tr.t(t.label())) } }
                }
            }
        }
    }
}

/// Every admin page is for admins only (each use case checks again).
fn admin_only(v: &Viewer) -> Result<(), Fail> {
    v.actor().may(Function::AdminConsole)?;
    Ok(())
}

/// A use case's refusal of a form, as errors next to `fields`, with its status.
fn refused(e: OpsError, v: &Viewer, fields: &[&str]) -> Result<(StatusCode, FieldErrors), Fail> {
    let status = super::auditor::refusal_status(&e);
    Ok((status, FieldErrors::from_ops(e, &v.tr, fields)?))
}

/// A form's text value, `None` when left empty.
fn filled(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A checkbox's value.
fn checked(v: &Option<String>) -> bool {
    filled(v).is_some_and(|x| x == "true" || x == "on")
}

/// A labelled choice among `options` (`(value, label)`), `first` as the empty choice.
fn select(
    name: &str,
    label: &str,
    first: Option<&str>,
    options: &[(String, String)],
    chosen: Option<&str>,
    errors: &FieldErrors,
) -> Markup {
    let id = format!("f-{name}");
    let error = errors.get(name);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| format!("{id}-error"))] {
                @if let Some(f) = first { option value="" { (f) } }
                @for (value, text) in options {
                    option value=(value) selected[chosen == Some(value.as_str())] { (text) }
                }
            }
            @if let Some(e) = error { p.error id=(format!("{id}-error")) { (e) } }
        }
    }
}

/// A state badge: enabled, or disabled/revoked with its word.
fn state(v: &Viewer, enabled: bool, off_id: &str) -> Markup {
    html! {
        @if enabled {
            span.badge data-state="enabled" { (v.tr.t("adm-enabled")) }
        } @else {
            span.badge.warn data-state="disabled" { (v.tr.t(off_id)) }
        }
    }
}
