//! The posts of a window's page: extension, cancellation, report, addendum.
//! Each checks its fields as the API would (errors next to them, translated
//! where the check is the console's), calls the use case, and either redirects
//! to the page with a notice or shows the page again with the refusal.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::super::fail::Fail;
use super::super::form::{FieldErrors, Posted};
use super::super::i18n::Tr;
use super::super::session::Viewer;
use super::window::{render, AddendumForm, CancelForm, ExtendForm, Forms, ReportForm, OUTCOMES};
use super::{lf, refused_status, vendor_only};
use crate::api::ApiState;
use crate::domain::{multi_line, one_line, WindowId};
use crate::ops::ReportInput;

/// After a post: the window's page again, or its page re-shown with the
/// form's errors and a status saying why.
async fn answer(s: &ApiState, v: &Viewer, id: &WindowId, forms: Forms, status: StatusCode) -> Result<Response, Fail> {
    let body = render(s, v, id, &forms, None).await?;
    Ok((status, body).into_response())
}

fn done(id: &WindowId, message: &str, anchor: &str) -> Response {
    Redirect::to(&format!("/console/vendor/windows/{id}?done={message}{anchor}")).into_response()
}

/// `text` checked as a use case's input would be, or its error placed next to `field`.
fn checked(
    tr: &Tr,
    field: &'static str,
    text: &str,
    max: usize,
    multi: bool,
    errors: &mut FieldErrors,
) -> Result<Option<String>, Fail> {
    if text.trim().is_empty() {
        errors.add(field, tr.t("err-required"));
        return Ok(None);
    }
    let result = if multi {
        multi_line(field, &lf(text), max)
    } else {
        one_line(field, text, max)
    };
    match result {
        Ok(t) => Ok(Some(t)),
        Err(bad) => {
            for (f, m) in FieldErrors::from_ops(bad.into(), tr, &[field])?.fields {
                errors.add(&f, m);
            }
            Ok(None)
        }
    }
}

pub(super) async fn extend(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, form }: Posted<ExtendForm>,
) -> Result<Response, Fail> {
    vendor_only(&v)?;
    let id = WindowId(id);
    let tr = &v.tr;
    let mut errors = FieldErrors::default();
    let ends_at = if form.ends_at.trim().is_empty() {
        errors.add("ends_at", tr.t("err-required"));
        None
    } else {
        tr.parse_local(&form.ends_at).map_err(|m| errors.add("ends_at", m)).ok()
    };
    let reason = checked(tr, "reason", &form.reason, 2000, false, &mut errors)?;
    let (Some(ends_at), Some(reason)) = (ends_at, reason) else {
        let forms = Forms {
            extend: form,
            extend_errors: errors,
            ..Forms::default()
        };
        return answer(&s, &v, &id, forms, StatusCode::BAD_REQUEST).await;
    };
    match s.ops.request_extension(v.actor(), &id, ends_at, reason).await {
        Ok(_) => Ok(done(&id, "ven-done-extension", "")),
        Err(e) => {
            let status = refused_status(&e);
            let forms = Forms {
                extend_errors: FieldErrors::from_ops(e, tr, &["ends_at", "reason"])?,
                extend: form,
                ..Forms::default()
            };
            answer(&s, &v, &id, forms, status).await
        }
    }
}

pub(super) async fn cancel(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, form }: Posted<CancelForm>,
) -> Result<Response, Fail> {
    vendor_only(&v)?;
    let id = WindowId(id);
    let tr = &v.tr;
    let mut errors = FieldErrors::default();
    // The reason is optional here, as in the API.
    let reason = if form.reason.trim().is_empty() {
        None
    } else {
        checked(tr, "reason", &form.reason, 2000, false, &mut errors)?
    };
    if !errors.is_empty() {
        let forms = Forms {
            cancel_errors: errors,
            ..Forms::default()
        };
        return answer(&s, &v, &id, forms, StatusCode::BAD_REQUEST).await;
    }
    match s.ops.cancel_window(v.actor(), &id, reason).await {
        Ok(_) => Ok(done(&id, "ven-done-cancelled", "")),
        Err(e) => {
            let status = refused_status(&e);
            let forms = Forms {
                cancel_errors: FieldErrors::from_ops(e, tr, &["reason"])?,
                ..Forms::default()
            };
            answer(&s, &v, &id, forms, status).await
        }
    }
}

pub(super) async fn report(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, form }: Posted<ReportForm>,
) -> Result<Response, Fail> {
    vendor_only(&v)?;
    let id = WindowId(id);
    let tr = &v.tr;
    let mut errors = FieldErrors::default();
    // The API's limits (src/api/reports.rs).
    let summary = checked(tr, "summary", &form.summary, 10_000, true, &mut errors)?;
    let actions = checked(tr, "actions", &form.actions, 20_000, true, &mut errors)?;
    if !OUTCOMES.contains(&form.outcome.as_str()) {
        errors.add("outcome", tr.t("ven-err-outcome"));
    }
    let follow_up = if form.follow_up.trim().is_empty() {
        None
    } else {
        checked(tr, "follow_up", &form.follow_up, 10_000, true, &mut errors)?
    };
    let (Some(summary), Some(actions), true) = (summary, actions, errors.is_empty()) else {
        let forms = Forms {
            report: form,
            report_errors: errors,
            ..Forms::default()
        };
        return answer(&s, &v, &id, forms, StatusCode::BAD_REQUEST).await;
    };
    let input = ReportInput {
        summary,
        actions,
        outcome: form.outcome.clone(),
        follow_up,
    };
    match s.ops.file_report(v.actor(), &id, input).await {
        Ok(_) => Ok(done(&id, "ven-done-report", "#report-filed")),
        Err(e) => {
            let status = refused_status(&e);
            let forms = Forms {
                report_errors: FieldErrors::from_ops(e, tr, &["summary", "actions", "outcome", "follow_up"])?,
                report: form,
                ..Forms::default()
            };
            answer(&s, &v, &id, forms, status).await
        }
    }
}

pub(super) async fn addendum(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, form }: Posted<AddendumForm>,
) -> Result<Response, Fail> {
    vendor_only(&v)?;
    let id = WindowId(id);
    let tr = &v.tr;
    let mut errors = FieldErrors::default();
    let Some(text) = checked(tr, "text", &form.text, 10_000, true, &mut errors)? else {
        let forms = Forms {
            addendum: form,
            addendum_errors: errors,
            ..Forms::default()
        };
        return answer(&s, &v, &id, forms, StatusCode::BAD_REQUEST).await;
    };
    match s.ops.add_report_addendum(v.actor(), &id, text).await {
        Ok(_) => Ok(done(&id, "ven-done-addendum", "#report-filed")),
        Err(e) => {
            let status = refused_status(&e);
            let forms = Forms {
                addendum_errors: FieldErrors::from_ops(e, tr, &["text"])?,
                addendum: form,
                ..Forms::default()
            };
            answer(&s, &v, &id, forms, status).await
        }
    }
}
