//! The signed-in person's own account (`/console/account`): change the
//! password, enrol a second factor (the secret and the recovery codes are
//! shown once).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use serde::Deserialize;

use super::fail::Fail;
use super::form::{csrf_field, input, FieldErrors, Posted};
use super::layout::{done_notice, page, Nav};
use super::session::Viewer;
use super::signin::{enrol_form, recovery_codes};
use crate::api::ApiState;
use crate::ops::{Enrolment, Ops, OpsError};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/account", get(account_page))
        .route("/console/account/password", post(change_password))
        .route("/console/account/totp", post(enrol))
}

#[derive(Debug, Deserialize)]
struct AccountQuery {
    done: Option<String>,
}

async fn render(
    s: &ApiState,
    v: &Viewer,
    done: Option<&str>,
    password_errors: &FieldErrors,
    enrolment: Option<(Enrolment, &FieldErrors)>,
) -> Result<maud::Markup, Fail> {
    let tr = &v.tr;
    let (has_password, has_totp) = s.ops.sign_in_methods(&v.actor().id).await?;
    let min = s.ops.rules.password_min_length.to_string();
    let title = tr.t("auth-account-title");
    let fresh;
    let (enrolment, enrol_errors) = match enrolment {
        Some((e, errors)) => (e, errors),
        None => {
            fresh = FieldErrors::default();
            (s.ops.new_totp(&v.who.user), &fresh)
        }
    };
    Ok(page(
        v,
        Nav::None,
        &title,
        html! {
            h1 { (title) }
            (done_notice(tr, done))
            section aria-labelledby="password-h" {
                h2 #password-h { (tr.t("auth-account-password")) }
                (password_errors.summary(tr))
                form.stack #change-password method="post" action="/console/account/password" {
                    (csrf_field(&v.csrf))
                    @if has_password {
                        (input("current", &tr.t("auth-current-password"), "password", "", true, password_errors, None))
                    }
                    (input("password", &tr.t("auth-new-password"), "password", "", true, password_errors, Some(&tr.ta("auth-password-help", &[("min", &min)]))))
                    div { button type="submit" { (tr.t("auth-change-password")) } }
                }
            }
            section aria-labelledby="totp-h" {
                h2 #totp-h { (tr.t("auth-account-totp")) }
                @if has_totp {
                    p { (tr.t("auth-totp-enrolled")) }
                } @else {
                    (enrol_errors.summary(tr))
                    (enrol_form(tr, "/console/account/totp", &v.csrf, &enrolment, enrol_errors))
                }
            }
        },
    ))
}

async fn account_page(State(s): State<ApiState>, v: Viewer, Query(q): Query<AccountQuery>) -> Result<Response, Fail> {
    Ok(render(&s, &v, q.done.as_deref(), &FieldErrors::default(), None)
        .await?
        .into_response())
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    current: Option<String>,
    password: String,
}

async fn change_password(
    State(s): State<ApiState>,
    Posted { viewer, form }: Posted<PasswordForm>,
) -> Result<Response, Fail> {
    match s
        .ops
        .change_own_password(viewer.actor(), form.current.as_deref(), &form.password)
        .await
    {
        Ok(_) => Ok(Redirect::to("/console/account?done=auth-done-password-changed").into_response()),
        Err(e) => {
            let mut errors = FieldErrors::default();
            match e {
                OpsError::Unauthenticated(_) => errors.add("current", viewer.tr.t("auth-current-wrong")),
                e @ OpsError::Invalid(_) => {
                    let m = FieldErrors::from_ops(e, &viewer.tr, &[])?.form.unwrap_or_default();
                    errors.add("password", m);
                }
                e => return Err(e.into()),
            }
            Ok((StatusCode::BAD_REQUEST, render(&s, &viewer, None, &errors, None).await?).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
struct EnrolForm {
    secret: String,
    code: String,
}

async fn enrol(State(s): State<ApiState>, Posted { viewer, form }: Posted<EnrolForm>) -> Result<Response, Fail> {
    match s.ops.confirm_totp(viewer.actor(), &form.secret, &form.code).await {
        Ok(codes) => {
            let tr = &viewer.tr;
            let title = tr.t("auth-enrolled-title");
            Ok(page(
                &viewer,
                Nav::None,
                &title,
                html! {
                    h1 { (title) }
                    (recovery_codes(tr, &codes))
                    p { a href="/console/account" { (tr.t("auth-continue")) } }
                },
            )
            .into_response())
        }
        Err(e @ (OpsError::Invalid(_) | OpsError::Conflict(_))) => {
            let mut errors = FieldErrors::default();
            errors.add(
                "code",
                FieldErrors::from_ops(e, &viewer.tr, &[])?.form.unwrap_or_default(),
            );
            let enrolment = Ops::enrolment_of(&viewer.who.user, form.secret);
            let shown = render(&s, &viewer, None, &FieldErrors::default(), Some((enrolment, &errors))).await?;
            Ok((StatusCode::BAD_REQUEST, shown).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
