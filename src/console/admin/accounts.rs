//! Accounts: the list with role, vendor and state; creation (the token is
//! shown once, never stored); disabling.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::vendors::{Confirm, DoneQuery};
use super::{admin_only, filled, refused, select, state, tabs, Tab};
use crate::api::ApiState;
use crate::console::form::{csrf_field, input, FieldErrors};
use crate::console::layout::{done_notice, empty, page, when};
use crate::console::{Fail, Nav, Posted, Viewer};
use crate::domain::{Role, UserId, VendorId};
use crate::ops::NewToken;
use crate::store::{User, Vendor};

/// An account to create, as typed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AccountForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// Required for, and only for, the vendor role.
    vendor_id: Option<String>,
}

const ROLES: [Role; 4] = [Role::Security, Role::Auditor, Role::Vendor, Role::Admin];

fn render(
    v: &Viewer,
    users: &[User],
    vendors: &[Vendor],
    draft: &AccountForm,
    errors: &FieldErrors,
    created: Option<&NewToken>,
    done: Option<&str>,
) -> Markup {
    let tr = &v.tr;
    let names: HashMap<&VendorId, &str> = vendors.iter().map(|x| (&x.id, x.name.as_str())).collect();
    let roles: Vec<(String, String)> = ROLES
        .iter()
        .map(|r| (r.as_str().to_owned(), tr.t(&format!("role-{}", r.as_str()))))
        .collect();
    let vendor_choices: Vec<(String, String)> = vendors.iter().map(|x| (x.id.0.clone(), x.name.clone())).collect();
    let cols = [
        tr.t("adm-col-name"),
        tr.t("adm-col-role"),
        tr.t("adm-col-vendor"),
        tr.t("adm-created"),
        tr.t("adm-col-state"),
        tr.t("adm-col-actions"),
    ];
    html! {
        (tabs(v, Tab::Accounts))
        (done_notice(tr, done))
        @if let Some(n) = created {
            section #new-token.notice role="status" aria-labelledby="new-token-title" {
                h2 #new-token-title { (tr.ta("adm-token-title", &[("name", &n.user.name)])) }
                p { strong { (tr.t("adm-token-once")) } }
                label for="token" { (tr.t("adm-token")) }
                input #token type="text" readonly value=(n.token) data-account=(n.user.id);
            }
        }
        section #accounts aria-labelledby="accounts-title" {
            h2 #accounts-title { (tr.t("adm-accounts-title")) }
            @if users.is_empty() { (empty(tr)) } @else {
                div.table-wrap { table.responsive {
                    thead { tr { @for c in &cols { th scope="col" { (c) } } } }
                    tbody {
                        @for u in users {
                            tr data-account=(u.id) data-role=(u.role.as_str()) {
                                td data-label=(cols[0]) { (u.name) }
                                td data-label=(cols[1]) { (tr.t(&format!("role-{}", u.role.as_str()))) }
                                td data-label=(cols[2]) {
                                    @if let Some(vid) = &u.vendor_id { (names.get(vid).copied().unwrap_or(vid.as_str())) }
                                }
                                td data-label=(cols[3]) { (when(tr, u.created_at)) }
                                td data-label=(cols[4]) { (state(v, u.disabled_at.is_none(), "adm-disabled")) }
                                td data-label=(cols[5]) {
                                    @if u.disabled_at.is_none() && u.id != v.actor().id {
                                        form.inline.disable-account method="post" action=(format!("/console/admin/accounts/{}/disable", u.id)) {
                                            (csrf_field(&v.csrf))
                                            button.danger type="submit" { (tr.t("adm-disable")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
        section #new-account aria-labelledby="new-account-title" {
            h2 #new-account-title { (tr.t("adm-account-create-title")) }
            (errors.summary(tr))
            form #create-account.stack method="post" action="/console/admin/accounts" {
                (csrf_field(&v.csrf))
                (input("name", &tr.t("adm-account-name"), "text", &draft.name, true, errors, None))
                (select("role", &tr.t("adm-col-role"), None, &roles, filled(&Some(draft.role.clone())), errors))
                (select("vendor_id", &tr.t("adm-col-vendor"), Some(&tr.t("adm-vendor-none")), &vendor_choices, filled(&draft.vendor_id), errors))
                small { (tr.t("adm-account-vendor-help")) }
                div { button type="submit" { (tr.t("adm-account-create")) } }
            }
        }
    }
}

async fn load(s: &ApiState, v: &Viewer) -> Result<(Vec<User>, Vec<Vendor>), Fail> {
    Ok((s.ops.users(v.actor()).await?, s.ops.vendors(v.actor()).await?))
}

pub(super) async fn list(State(s): State<ApiState>, v: Viewer, Query(q): Query<DoneQuery>) -> Result<Response, Fail> {
    admin_only(&v)?;
    let (users, vendors) = load(&s, &v).await?;
    let body = render(
        &v,
        &users,
        &vendors,
        &AccountForm::default(),
        &FieldErrors::default(),
        None,
        q.done.as_deref(),
    );
    Ok(page(&v, Nav::Admin, &v.tr.t("adm-title-accounts"), body).into_response())
}

/// Creates the account and shows its token, this once (the answer is not cached).
pub(super) async fn create(
    State(s): State<ApiState>,
    Posted { viewer: v, form }: Posted<AccountForm>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let mut errors = FieldErrors::default();
    let role = form
        .role
        .parse::<Role>()
        .map_err(|_| errors.add("role", v.tr.t("adm-err-role")))
        .ok();
    let vendor_id = filled(&form.vendor_id).map(|x| VendorId(x.to_owned()));
    let mut created = None;
    let mut status = StatusCode::BAD_REQUEST;
    if let Some(role) = role {
        match s.ops.create_user(v.actor(), &form.name, role, vendor_id).await {
            Ok(n) => created = Some(n),
            Err(e) => {
                let (st, e) = refused(e, &v, &["name", "vendor_id"])?;
                errors = e;
                status = st;
            }
        }
    }
    let (users, vendors) = load(&s, &v).await?;
    let draft = if created.is_some() {
        AccountForm::default()
    } else {
        form
    };
    let body = render(&v, &users, &vendors, &draft, &errors, created.as_ref(), None);
    let title = v.tr.t("adm-title-accounts");
    if created.is_some() {
        tracing::info!(user = %v.actor().id, "account created from the console");
        let mut response = (StatusCode::CREATED, page(&v, Nav::Admin, &title, body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }
    Ok((status, page(&v, Nav::Admin, &title, body)).into_response())
}

pub(super) async fn disable(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, .. }: Posted<Confirm, true>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    s.ops.disable_user(v.actor(), &UserId(id)).await?;
    Ok(Redirect::to("/console/admin/accounts?done=adm-done-account-disabled").into_response())
}
