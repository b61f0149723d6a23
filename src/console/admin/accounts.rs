//! Accounts: the list with role, vendor, state, sign-in method, second factor
//! and last sign-in; creation (the token is shown once, never stored);
//! disabling and enabling; an admin's resets of a password (the temporary one
//! shown once) and of a lost second factor.

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
use crate::console::layout::{done_notice, empty, page, when_opt};
use crate::console::{Fail, Nav, Posted, Viewer};
use crate::domain::{Role, UserId, VendorId};
use crate::ops::{AccountView, NewToken};
use crate::store::Vendor;

/// An account to create, as typed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AccountForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// Required for, and only for, the vendor role.
    vendor_id: Option<String>,
    /// The person's e-mail address.
    email: Option<String>,
}

/// What a creation or a reset shows once.
enum ShownOnce<'a> {
    Token(&'a NewToken),
    TemporaryPassword { name: &'a str, password: &'a str },
}

const ROLES: [Role; 4] = [Role::Security, Role::Auditor, Role::Vendor, Role::Admin];

fn render(
    v: &Viewer,
    accounts: &[AccountView],
    vendors: &[Vendor],
    draft: &AccountForm,
    errors: &FieldErrors,
    once: Option<ShownOnce<'_>>,
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
        tr.t("adm-col-sign-in"),
        tr.t("adm-col-mfa"),
        tr.t("adm-col-last-sign-in"),
        tr.t("adm-col-state"),
        tr.t("adm-col-actions"),
    ];
    html! {
        (tabs(v, Tab::Accounts))
        (done_notice(tr, done))
        @match once {
            Some(ShownOnce::Token(n)) => {
                section #new-token.notice role="status" aria-labelledby="new-token-title" {
                    h2 #new-token-title { (tr.ta("adm-token-title", &[("name", &n.user.name)])) }
                    p { strong { (tr.t("adm-token-once")) } }
                    label for="token" { (tr.t("adm-token")) }
                    input #token type="text" readonly value=(n.token) data-account=(n.user.id);
                }
            }
            Some(ShownOnce::TemporaryPassword { name, password }) => {
                section #temporary-password.notice role="status" aria-labelledby="temporary-password-title" {
                    h2 #temporary-password-title { (tr.ta("adm-temporary-title", &[("name", name)])) }
                    p { strong { (tr.t("adm-temporary-once")) } }
                    label for="temporary" { (tr.t("adm-temporary")) }
                    input #temporary type="text" readonly value=(password);
                }
            }
            None => {}
        }
        section #accounts aria-labelledby="accounts-title" {
            h2 #accounts-title { (tr.t("adm-accounts-title")) }
            @if accounts.is_empty() { (empty(tr)) } @else {
                div.table-wrap { table.responsive {
                    thead { tr { @for c in &cols { th scope="col" { (c) } } } }
                    tbody {
                        @for u in accounts {
                            tr data-account=(u.id) data-role=(u.role.as_str()) data-mfa=(u.mfa) {
                                td data-label=(cols[0]) {
                                    (u.name)
                                    @if let Some(e) = &u.email { br; small { (e) } }
                                }
                                td data-label=(cols[1]) { (tr.t(&format!("role-{}", u.role.as_str()))) }
                                td data-label=(cols[2]) {
                                    @if let Some(vid) = &u.vendor_id { (names.get(vid).copied().unwrap_or(vid.as_str())) }
                                }
                                td data-label=(cols[3]) {
                                    (tr.t(&format!("adm-sign-in-{}", u.sign_in)))
                                    @if u.must_change_password { br; small { (tr.t("adm-must-change")) } }
                                }
                                td data-label=(cols[4]) {
                                    @if u.mfa { span.badge data-state="enabled" { (tr.t("adm-mfa-on")) } }
                                    @else { span.badge.warn data-state="disabled" { (tr.t("adm-mfa-off")) } }
                                }
                                td data-label=(cols[5]) { (when_opt(tr, u.last_sign_in_at)) }
                                td data-label=(cols[6]) { (state(v, u.disabled_at.is_none(), "adm-disabled")) }
                                td data-label=(cols[7]) {
                                    @if u.id != v.actor().id {
                                        (account_actions(v, u))
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
                (input("email", &tr.t("adm-account-email"), "email", draft.email.as_deref().unwrap_or_default(), false, errors, None))
                div { button type="submit" { (tr.t("adm-account-create")) } }
            }
        }
    }
}

/// The buttons of an account's row: each posts a form of its own.
fn account_actions(v: &Viewer, u: &AccountView) -> Markup {
    let tr = &v.tr;
    let action = |what: &str| format!("/console/admin/accounts/{}/{what}", u.id);
    html! {
        div.actions {
            @if u.disabled_at.is_none() {
                form.inline.disable-account method="post" action=(action("disable")) {
                    (csrf_field(&v.csrf))
                    button.danger type="submit" { (tr.t("adm-disable")) }
                }
            } @else {
                form.inline.enable-account method="post" action=(action("enable")) {
                    (csrf_field(&v.csrf))
                    button type="submit" { (tr.t("adm-enable")) }
                }
            }
            @if u.sign_in != "directory" {
                form.inline.reset-password method="post" action=(action("reset-password")) {
                    (csrf_field(&v.csrf))
                    button type="submit" { (tr.t("adm-reset-password")) }
                }
            }
            @if u.mfa {
                form.inline.reset-mfa method="post" action=(action("reset-mfa")) {
                    (csrf_field(&v.csrf))
                    button.danger type="submit" { (tr.t("adm-reset-mfa")) }
                }
            }
        }
    }
}

async fn load(s: &ApiState, v: &Viewer) -> Result<(Vec<AccountView>, Vec<Vendor>), Fail> {
    Ok((s.ops.accounts(v.actor()).await?, s.ops.vendors(v.actor()).await?))
}

/// A page that shows a secret once: never cached.
fn not_cached(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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
        let ttl = chrono::Duration::days(s.limits.token_days);
        let email = filled(&form.email);
        match s
            .ops
            .create_account(v.actor(), &form.name, role, vendor_id, email, ttl)
            .await
        {
            Ok(n) => created = Some(n),
            Err(e) => {
                let (st, e) = refused(e, &v, &["name", "vendor_id", "email"])?;
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
    let body = render(
        &v,
        &users,
        &vendors,
        &draft,
        &errors,
        created.as_ref().map(ShownOnce::Token),
        None,
    );
    let title = v.tr.t("adm-title-accounts");
    if created.is_some() {
        tracing::info!(user = %v.actor().id, "account created from the console");
        return Ok(not_cached(
            (StatusCode::CREATED, page(&v, Nav::Admin, &title, body)).into_response(),
        ));
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

pub(super) async fn enable(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, .. }: Posted<Confirm>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    s.ops.enable_user(v.actor(), &UserId(id)).await?;
    Ok(Redirect::to("/console/admin/accounts?done=adm-done-account-enabled").into_response())
}

/// Resets the password and shows the temporary one, this once.
pub(super) async fn reset_password(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, .. }: Posted<Confirm>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let id = UserId(id);
    let password = s.ops.reset_password(v.actor(), &id).await?;
    let (accounts, vendors) = load(&s, &v).await?;
    let name = accounts
        .iter()
        .find(|a| a.id == id)
        .map_or_else(|| id.as_str().to_owned(), |a| a.name.clone());
    let once = ShownOnce::TemporaryPassword {
        name: &name,
        password: &password,
    };
    let body = render(
        &v,
        &accounts,
        &vendors,
        &AccountForm::default(),
        &FieldErrors::default(),
        Some(once),
        None,
    );
    Ok(not_cached(
        page(&v, Nav::Admin, &v.tr.t("adm-title-accounts"), body).into_response(),
    ))
}

pub(super) async fn reset_mfa(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, .. }: Posted<Confirm>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    s.ops.reset_second_factor(v.actor(), &UserId(id)).await?;
    Ok(Redirect::to("/console/admin/accounts?done=adm-done-mfa-reset").into_response())
}
