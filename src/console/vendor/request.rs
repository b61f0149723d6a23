//! Requesting a window: devices, start and end in the hospital's time zone
//! (shown with UTC), and the reason, through the same use case as the API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Offset, TimeZone, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::super::fail::Fail;
use super::super::form::{csrf_field, input, FieldErrors, Posted};
use super::super::layout::{self, page, Nav};
use super::super::session::Viewer;
use super::{overdue_block, overdue_reports, refused_status, vendor_only};
use crate::api::ApiState;
use crate::domain::{one_line, DeviceId};
use crate::ops::WindowRequest;
use crate::store::Device;

/// The fields of the request form, as typed (kept to show them again).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RequestForm {
    #[serde(default)]
    device_ids: Vec<String>,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
    #[serde(default)]
    reason: String,
}

/// The instants read from the time fields, to show them in UTC.
#[derive(Debug, Default, Clone, Copy)]
struct Parsed {
    starts: Option<DateTime<Utc>>,
    ends: Option<DateTime<Utc>>,
}

/// The form's fields, in order, for placing the use case's messages.
const FIELDS: &[&str] = &["device_ids", "starts_at", "ends_at", "reason"];

pub(super) async fn form_page(State(s): State<ApiState>, v: Viewer) -> Result<Response, Fail> {
    vendor_only(&v)?;
    let devices = s.ops.devices(v.actor()).await?;
    let body = render(
        &s,
        &v,
        &devices,
        &RequestForm::default(),
        &FieldErrors::default(),
        Parsed::default(),
    )
    .await?;
    Ok(body.into_response())
}

pub(super) async fn submit(
    State(s): State<ApiState>,
    Posted { viewer: v, form }: Posted<RequestForm>,
) -> Result<Response, Fail> {
    vendor_only(&v)?;
    let tr = &v.tr;
    let mut errors = FieldErrors::default();
    if form.device_ids.is_empty() {
        errors.add("device_ids", tr.t("ven-err-no-device"));
    }
    let when = |field: &str, text: &str, errors: &mut FieldErrors| -> Option<DateTime<Utc>> {
        if text.trim().is_empty() {
            errors.add(field, tr.t("err-required"));
            return None;
        }
        tr.parse_local(text).map_err(|m| errors.add(field, m)).ok()
    };
    let starts = when("starts_at", &form.starts_at, &mut errors);
    let ends = when("ends_at", &form.ends_at, &mut errors);
    if let (Some(a), Some(b)) = (starts, ends) {
        if b <= a {
            errors.add("ends_at", tr.t("ven-err-end-before-start"));
        }
    }
    let reason = if form.reason.trim().is_empty() {
        errors.add("reason", tr.t("err-required"));
        None
    } else {
        match one_line("reason", &form.reason, 2000) {
            Ok(r) => Some(r),
            Err(bad) => {
                let placed = FieldErrors::from_ops(bad.into(), tr, FIELDS)?;
                for (f, m) in placed.fields {
                    errors.add(&f, m);
                }
                None
            }
        }
    };
    let devices = s.ops.devices(v.actor()).await?;
    let (Some(starts_at), Some(ends_at), Some(reason), true) = (starts, ends, reason, errors.is_empty()) else {
        let body = render(&s, &v, &devices, &form, &errors, Parsed { starts, ends }).await?;
        return Ok((StatusCode::BAD_REQUEST, body).into_response());
    };
    let req = WindowRequest {
        vendor_id: None,
        devices: form.device_ids.iter().map(|d| DeviceId(d.clone())).collect(),
        starts_at,
        ends_at,
        reason,
    };
    match s.ops.request_window(v.actor(), req).await {
        Ok(w) => Ok(Redirect::to(&format!("/console/vendor/windows/{}?done=ven-done-requested", w.id)).into_response()),
        Err(e) => {
            let status = refused_status(&e);
            let errors = FieldErrors::from_ops(e, tr, FIELDS)?;
            let body = render(&s, &v, &devices, &form, &errors, Parsed { starts, ends }).await?;
            Ok((status, body).into_response())
        }
    }
}

/// The help of a time field: the zone and its offset now, or the UTC instant
/// of what was entered.
fn time_help(v: &Viewer, now: DateTime<Utc>, parsed: Option<DateTime<Utc>>) -> String {
    let tr = &v.tr;
    match parsed {
        Some(t) => tr.ta("ven-time-help-utc", &[("tz", tr.tz.name()), ("utc", &tr.utc(t))]),
        None => {
            let offset = tr.tz.offset_from_utc_datetime(&now.naive_utc()).fix();
            tr.ta(
                "ven-time-help",
                &[("tz", tr.tz.name()), ("offset", &format!("UTC{offset}"))],
            )
        }
    }
}

async fn render(
    s: &ApiState,
    v: &Viewer,
    devices: &[Device],
    form: &RequestForm,
    errors: &FieldErrors,
    parsed: Parsed,
) -> Result<Markup, Fail> {
    let tr = &v.tr;
    let now = s.ops.clock.now();
    let overdue = overdue_reports(s, v.actor()).await?;
    let Parsed { starts, ends } = parsed;
    let device_error = errors.get("device_ids");
    let max_hours = s.ops.rules.max_window.num_hours().to_string();
    let horizon = s.ops.rules.max_horizon.num_days().to_string();
    let body = html! {
        @for r in &overdue {
            (overdue_block(v, s.ops.rules.on_overdue, &r.window_id, r.due_at, true))
        }
        p { (tr.ta("ven-request-intro", &[("hours", &max_hours), ("days", &horizon)])) }
        (errors.summary(tr))
        form.stack #request-window method="post" action="/console/vendor/windows/new" novalidate {
            (csrf_field(&v.csrf))
            fieldset.checks.invalid[device_error.is_some()]
                aria-describedby=[device_error.map(|_| "f-device_ids-error")] {
                legend { (tr.t("ven-field-devices")) }
                @if devices.is_empty() {
                    (layout::empty(tr))
                }
                @for d in devices {
                    @let id = format!("f-device-{}", d.id);
                    label for=(id) {
                        input id=(id) type="checkbox" name="device_ids" value=(d.id)
                            checked[form.device_ids.iter().any(|x| x == d.id.as_str())];
                        " " (d.name)
                        @if !d.enabled { " " span.badge.warn { (tr.t("ven-device-disabled")) } }
                    }
                }
                @if let Some(e) = device_error { p.error #f-device_ids-error { (e) } }
            }
            (input("starts_at", &tr.t("ven-field-starts-at"), "datetime-local", &form.starts_at, true, errors,
                Some(&time_help(v, now, starts))))
            (input("ends_at", &tr.t("ven-field-ends-at"), "datetime-local", &form.ends_at, true, errors,
                Some(&time_help(v, now, ends))))
            (input("reason", &tr.t("ven-field-reason"), "text", &form.reason, true, errors,
                Some(&tr.t("ven-field-reason-help"))))
            div { button type="submit" { (tr.t("ven-request-submit")) } }
        }
        p { a href="/console/vendor" { (tr.t("back")) } }
    };
    Ok(page(v, Nav::Vendor, &tr.t("ven-request-title"), body))
}
