//! The security home's forms: approve, reject, terminate, emergency grant,
//! review, lockdown on and off. Each checks its input here (messages in the
//! reader's language, next to the field), calls the use case as the signed-in
//! account, and redirects on success (Post/Redirect/Get) or shows the page
//! again with the refusal next to the field it is about.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::Router;
use ipnet::IpNet;
use maud::html;
use serde::Deserialize;

use super::forms::{EmergencyInput, LockdownInput};
use super::view::{RowFailure, RowForm};
use super::{again, Shown};
use crate::api::ApiState;
use crate::console::fail::Fail;
use crate::console::form::{FieldErrors, Posted};
use crate::console::i18n::Tr;
use crate::console::layout::page;
use crate::console::session::Viewer;
use crate::console::Nav;
use crate::domain::{BadText, DeviceId, SessionId, VendorId, WindowId};
use crate::ops::OpsError;
use crate::rights::Function;

/// Longest reason, justification or comment (as the API).
const MAX_TEXT: usize = 2000;
/// Most extra networks in one grant (as the API's network lists).
const MAX_NETWORKS: usize = 256;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/security/windows/{id}/approve", post(approve))
        .route("/console/security/windows/{id}/reject", post(reject))
        .route("/console/security/windows/{id}/review", post(review))
        .route("/console/security/sessions/{id}/terminate", post(terminate))
        .route("/console/security/emergency", post(grant))
        .route("/console/security/lockdown/on", post(lock))
        .route("/console/security/lockdown/off", post(lift))
}

/// Back to the home page, at `section`, with the notice `done`.
fn done(done: &str, section: &str) -> Response {
    Redirect::to(&format!("/console/security?done={done}#{section}")).into_response()
}

/// The status a use case's refusal is answered with.
fn status_of(e: &OpsError) -> StatusCode {
    match e {
        OpsError::Conflict(_) => StatusCode::CONFLICT,
        OpsError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Checks one line (or, `multi`, several lines) of free text as the API does,
/// with the message in the reader's language next to `field`.
fn text(tr: &Tr, errors: &mut FieldErrors, field: &'static str, value: &str, multi: bool) -> String {
    let checked = if multi {
        crate::domain::multi_line(field, value, MAX_TEXT)
    } else {
        crate::domain::one_line(field, value, MAX_TEXT)
    };
    match checked {
        Ok(t) => t,
        Err(BadText::Length { .. }) if value.trim().is_empty() => {
            errors.add(field, tr.t("err-required"));
            String::new()
        }
        Err(BadText::Length { max, .. }) => {
            errors.add(
                field,
                tr.tn("sec-err-too-long", "max", i64::try_from(max).unwrap_or(i64::MAX)),
            );
            String::new()
        }
        Err(BadText::Control { .. } | BadText::Bidi { .. }) => {
            errors.add(field, tr.t("sec-err-characters"));
            String::new()
        }
    }
}

/// A refused row form: the page again with the refusal in that row.
async fn row_refused(
    s: &ApiState,
    v: &Viewer,
    e: OpsError,
    form: RowForm,
    id: String,
    typed: (String, String),
    fields: &[&str],
) -> Result<Response, Fail> {
    let status = status_of(&e);
    let errors = FieldErrors::from_ops(e, &v.tr, fields)?;
    row_again(s, v, form, id, typed, errors, status).await
}

async fn row_again(
    s: &ApiState,
    v: &Viewer,
    form: RowForm,
    id: String,
    (text, verdict): (String, String),
    errors: FieldErrors,
    status: StatusCode,
) -> Result<Response, Fail> {
    let row = RowFailure {
        form,
        id,
        text,
        verdict,
        errors,
    };
    again(
        s,
        v,
        Shown {
            row: Some(row),
            ..Shown::default()
        },
        status,
    )
    .await
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Deserialize)]
struct Nothing {}

async fn approve(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, .. }: Posted<Nothing>,
) -> Result<Response, Fail> {
    v.actor().may(Function::SecurityConsole)?;
    match s.ops.approve_window(v.actor(), &WindowId(id.clone())).await {
        Ok(_) => Ok(done("sec-done-approved", "pending")),
        Err(e) => row_refused(&s, &v, e, RowForm::Approve, id, Default::default(), &[]).await,
    }
}

#[derive(Debug, Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn reject(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, form }: Posted<ReasonForm>,
) -> Result<Response, Fail> {
    v.actor().may(Function::SecurityConsole)?;
    let mut errors = FieldErrors::default();
    let reason = text(&v.tr, &mut errors, "reason", &form.reason, false);
    let typed = (form.reason, String::new());
    if !errors.is_empty() {
        return row_again(&s, &v, RowForm::Reject, id, typed, errors, StatusCode::BAD_REQUEST).await;
    }
    match s.ops.reject_window(v.actor(), &WindowId(id.clone()), reason).await {
        Ok(_) => Ok(done("sec-done-rejected", "pending")),
        Err(e) => row_refused(&s, &v, e, RowForm::Reject, id, typed, &["reason"]).await,
    }
}

/// Terminate is restrictive: accepted from this node's memory while the
/// database is down, and the cut happens here first.
async fn terminate(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, form }: Posted<ReasonForm, true>,
) -> Result<Response, Fail> {
    let mut errors = FieldErrors::default();
    let reason = text(&v.tr, &mut errors, "reason", &form.reason, false);
    let typed = (form.reason, String::new());
    if !errors.is_empty() {
        return row_again(&s, &v, RowForm::Terminate, id, typed, errors, StatusCode::BAD_REQUEST).await;
    }
    match s.ops.terminate_session(v.actor(), &SessionId(id.clone()), reason).await {
        Ok(t) if t.cut => Ok(done("sec-done-terminated", "tunnels")),
        Ok(_) => Ok(done("sec-done-terminate-pending", "tunnels")),
        Err(e) => row_refused(&s, &v, e, RowForm::Terminate, id, typed, &["reason"]).await,
    }
}

#[derive(Debug, Deserialize)]
struct ReviewForm {
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    comment: String,
}

async fn review(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, form }: Posted<ReviewForm>,
) -> Result<Response, Fail> {
    v.actor().may(Function::SecurityConsole)?;
    let mut errors = FieldErrors::default();
    if form.verdict != "justified" && form.verdict != "unjustified" {
        errors.add("verdict", v.tr.t("sec-err-verdict"));
    }
    let comment = text(&v.tr, &mut errors, "comment", &form.comment, true);
    let typed = (form.comment, form.verdict.clone());
    if !errors.is_empty() {
        return row_again(&s, &v, RowForm::Review, id, typed, errors, StatusCode::BAD_REQUEST).await;
    }
    match s
        .ops
        .review_emergency(v.actor(), &WindowId(id.clone()), &form.verdict, comment)
        .await
    {
        Ok(_) => Ok(done("sec-done-reviewed", "reviews")),
        Err(e) => row_refused(&s, &v, e, RowForm::Review, id, typed, &["verdict", "comment"]).await,
    }
}

/// Splits the extra networks field (commas, spaces or lines between them) and
/// checks each as the API does, with the breadth rule.
fn networks(tr: &Tr, errors: &mut FieldErrors, s: &ApiState, given: &str) -> Vec<IpNet> {
    let items: Vec<&str> = given
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .collect();
    if items.len() > MAX_NETWORKS {
        errors.add(
            "extra_networks",
            tr.tn(
                "sec-err-networks-many",
                "max",
                i64::try_from(MAX_NETWORKS).unwrap_or(i64::MAX),
            ),
        );
        return Vec::new();
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match crate::domain::parse_network(item) {
            Ok(net) if net.prefix_len() == 0 => {
                errors.add("extra_networks", tr.ta("sec-err-network-all", &[("net", item)]));
            }
            Ok(net) => match s.ops.rules.networks.too_broad(&net) {
                Some(min) => errors.add(
                    "extra_networks",
                    tr.ta("sec-err-network-broad", &[("net", item), ("min", &min.to_string())]),
                ),
                None => out.push(net),
            },
            Err(_) => errors.add("extra_networks", tr.ta("sec-err-network", &[("net", item)])),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The emergency grant: checked here against the form's own lists and the cap,
/// then granted by the use case (which checks it all again).
async fn grant(
    State(s): State<ApiState>,
    Posted { viewer: v, form }: Posted<EmergencyInput>,
) -> Result<Response, Fail> {
    v.actor().may(Function::SecurityConsole)?;
    let tr = &v.tr;
    let mut errors = FieldErrors::default();
    let vendors = s.ops.vendors(v.actor()).await?;
    let devices = s.ops.devices(v.actor()).await?;
    let vendor = vendors.iter().find(|x| x.id.as_str() == form.vendor_id && x.enabled);
    match vendor {
        None if form.vendor_id.is_empty() => errors.add("vendor_id", tr.t("sec-err-vendor-choose")),
        None => errors.add("vendor_id", tr.t("sec-err-vendor-unknown")),
        Some(_) => {}
    }
    if form.device_ids.is_empty() {
        errors.add("device_ids", tr.t("sec-err-devices"));
    } else if let Some(vendor) = vendor {
        for id in &form.device_ids {
            match devices.iter().find(|d| d.id.as_str() == id) {
                None => errors.add("device_ids", tr.t("sec-err-device-unknown")),
                Some(d) if !d.vendor_ids.contains(&vendor.id) => errors.add(
                    "device_ids",
                    tr.ta(
                        "sec-err-device-not-assigned",
                        &[("device", &d.name.to_string()), ("vendor", &vendor.name)],
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    let cap = s.ops.rules.max_emergency.num_minutes();
    let minutes = form
        .minutes
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|m| *m >= 1 && i64::from(*m) <= cap);
    if minutes.is_none() {
        errors.add("minutes", tr.ta("sec-err-minutes", &[("max", &cap.to_string())]));
    }
    let justification = text(tr, &mut errors, "justification", &form.justification, false);
    let extra_networks = networks(tr, &mut errors, &s, &form.extra_networks);
    let (Some(minutes), true) = (minutes, errors.is_empty()) else {
        return again(
            &s,
            &v,
            Shown {
                emergency: Some((form, errors)),
                ..Shown::default()
            },
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let req = crate::ops::EmergencyGrant {
        vendor_id: VendorId(form.vendor_id.clone()),
        devices: form.device_ids.iter().map(|d| DeviceId(d.clone())).collect(),
        duration_minutes: minutes,
        justification,
        extra_networks,
    };
    match s.ops.grant_emergency(v.actor(), req).await {
        Ok(_) => Ok(done("sec-done-granted", "reviews")),
        Err(e) => {
            let status = status_of(&e);
            let mut errors = FieldErrors::from_ops(
                e,
                tr,
                &[
                    "vendor_id",
                    "device_ids",
                    "duration_minutes",
                    "justification",
                    "extra_networks",
                ],
            )?;
            // The use case names the duration as the API does.
            if let Some(m) = errors.fields.remove("duration_minutes") {
                errors.add("minutes", m);
            }
            again(
                &s,
                &v,
                Shown {
                    emergency: Some((form, errors)),
                    ..Shown::default()
                },
                status,
            )
            .await
        }
    }
}

/// The reason and the explicit confirmation of a lockdown form.
fn lockdown_input(tr: &Tr, form: &LockdownInput) -> (String, FieldErrors) {
    let mut errors = FieldErrors::default();
    let reason = text(tr, &mut errors, "reason", &form.reason, false);
    if form.confirm.as_deref().is_none_or(str::is_empty) {
        errors.add("confirm", tr.t("sec-err-confirm"));
    }
    (reason, errors)
}

async fn lockdown_again(
    s: &ApiState,
    v: &Viewer,
    form: LockdownInput,
    errors: FieldErrors,
    status: StatusCode,
) -> Result<Response, Fail> {
    let shown = Shown {
        lockdown: Some((form, errors)),
        ..Shown::default()
    };
    again(s, v, shown, status).await
}

/// Lockdown on is restrictive: in force on this node at once, even while the
/// database is down; stored after (or retried, which the answer says).
async fn lock(
    State(s): State<ApiState>,
    Posted { viewer: v, form }: Posted<LockdownInput, true>,
) -> Result<Response, Fail> {
    let (reason, errors) = lockdown_input(&v.tr, &form);
    if !errors.is_empty() {
        return lockdown_again(&s, &v, form, errors, StatusCode::BAD_REQUEST).await;
    }
    let outcome = match s.ops.lock_down(v.actor(), reason).await {
        Ok(o) => o,
        Err(e) => {
            let status = status_of(&e);
            let errors = FieldErrors::from_ops(e, &v.tr, &["reason"])?;
            return lockdown_again(&s, &v, form, errors, status).await;
        }
    };
    let cut = i64::try_from(outcome.cut).unwrap_or(i64::MAX);
    match outcome.stored {
        Ok(()) => {
            Ok(Redirect::to(&format!("/console/security?done=sec-done-locked&cut={cut}#lockdown")).into_response())
        }
        Err(e) => {
            // Not stored: the home page may not load either (its reads need the
            // database), so this answer says what holds, on its own.
            tracing::error!(error = %e, "console lockdown in force on this node but not stored yet; retrying");
            let mut shown = v.clone();
            shown.lockdown = Some(outcome.state);
            let tr = &v.tr;
            let body = html! {
                p.overdue role="alert" { (tr.tn("sec-lock-local-only", "n", cut)) }
                p { small { (e) } }
                p { a href="/console/security#lockdown" { (tr.t("back")) } }
            };
            Ok((
                StatusCode::ACCEPTED,
                page(&shown, Nav::Security, &tr.t("sec-lock-title"), body),
            )
                .into_response())
        }
    }
}

/// Lifting needs the database (it is not a restrictive action).
async fn lift(State(s): State<ApiState>, Posted { viewer: v, form }: Posted<LockdownInput>) -> Result<Response, Fail> {
    let (reason, errors) = lockdown_input(&v.tr, &form);
    if !errors.is_empty() {
        return lockdown_again(&s, &v, form, errors, StatusCode::BAD_REQUEST).await;
    }
    match s.ops.lift_lockdown(v.actor(), reason).await {
        Ok(_) => Ok(done("sec-done-lifted", "lockdown")),
        Err(e) => {
            let status = status_of(&e);
            let errors = FieldErrors::from_ops(e, &v.tr, &["reason"])?;
            lockdown_again(&s, &v, form, errors, status).await
        }
    }
}
