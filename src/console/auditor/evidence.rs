//! The network flow matrix, and the evidence bundle of a period as one
//! download (the files `portier export` writes, packed as a tar archive).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use tokio::io::{AsyncRead, ReadBuf};

use super::{allow, given, tabs, Tab};
use crate::api::ApiState;
use crate::console::form::{input, FieldErrors};
use crate::console::layout::{empty, page};
use crate::console::{Fail, Nav, Viewer};
use crate::export::EvidenceArchive;
use crate::ops::MAX_EVIDENCE_DAYS;

pub(super) async fn flows(State(s): State<ApiState>, v: Viewer) -> Result<Response, Fail> {
    allow(&v, Tab::Flows)?;
    let rows = s.ops.flow_matrix(v.actor(), &s.node).await?;
    let tr = &v.tr;
    let cols = [
        tr.t("aud-flow-id"),
        tr.t("aud-flow-description"),
        tr.t("aud-flow-exposure"),
        tr.t("aud-flow-source"),
        tr.t("aud-flow-destination"),
        tr.t("aud-flow-protocol"),
        tr.t("aud-flow-encryption"),
    ];
    let body = html! {
        (tabs(&v, Tab::Flows))
        p { (tr.t("aud-flows-intro")) }
        section #flows {
            @if rows.is_empty() { (empty(tr)) } @else {
                div.table-wrap {
                    table.responsive.flows {
                        thead { tr { @for c in &cols { th scope="col" { (c) } } } }
                        tbody {
                            @for f in &rows {
                                @let cells = [&f.id, &f.description, &f.internet_exposure, &f.source, &f.destination, &f.protocol, &f.encryption];
                                tr data-flow=(f.id) {
                                    @for (c, value) in cols.iter().zip(cells) { td data-label=(c) { (value) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&v, Nav::Audit, &tr.t("aud-title-flows"), body).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PeriodQuery {
    since: Option<String>,
    until: Option<String>,
}

/// The period form, filled with what was typed (or the last 30 days).
fn render(v: &Viewer, now: DateTime<Utc>, q: &PeriodQuery, errors: &FieldErrors) -> Markup {
    let tr = &v.tr;
    let since = given(&q.since).map_or_else(|| tr.input_value(now - Duration::days(30)), str::to_owned);
    let until = given(&q.until).map_or_else(|| tr.input_value(now), str::to_owned);
    html! {
        (tabs(v, Tab::Evidence))
        p { (tr.t("aud-evidence-intro")) }
        ul.files {
            @for f in ["sessions.json", "sessions.csv", "windows.json", "emergency_grants.json", "reports.json", "reports.csv", "audit.jsonl", "SHA256SUMS"] {
                li { code { (f) } }
            }
        }
        p { (tr.tn("aud-evidence-limit", "n", MAX_EVIDENCE_DAYS)) }
        (errors.summary(tr))
        form #evidence.stack method="get" action="/console/audit/evidence/download" {
            (input("since", &tr.t("aud-since"), "datetime-local", &since, true, errors, None))
            (input("until", &tr.t("aud-until"), "datetime-local", &until, true, errors, None))
            div { button type="submit" { (tr.t("aud-evidence-submit")) } }
        }
    }
}

pub(super) async fn show(State(s): State<ApiState>, v: Viewer, Query(q): Query<PeriodQuery>) -> Result<Response, Fail> {
    allow(&v, Tab::Evidence)?;
    let body = render(&v, s.clock.now(), &q, &FieldErrors::default());
    Ok(page(&v, Nav::Audit, &v.tr.t("aud-title-evidence"), body).into_response())
}

fn period(v: &Viewer, q: &PeriodQuery) -> Result<(DateTime<Utc>, DateTime<Utc>), FieldErrors> {
    let mut errors = FieldErrors::default();
    let mut read = |field: &str, raw: &Option<String>| match given(raw) {
        None => {
            errors.add(field, v.tr.t("err-required"));
            None
        }
        Some(text) => v.tr.parse_local(text).map_err(|e| errors.add(field, e)).ok(),
    };
    let (since, until) = (read("since", &q.since), read("until", &q.until));
    match (since, until) {
        (Some(s), Some(u)) if u > s => Ok((s, u)),
        (Some(_), Some(_)) => {
            errors.add("until", v.tr.t("aud-err-until-after-since"));
            Err(errors)
        }
        _ => Err(errors),
    }
}

/// Builds the archive in a temporary directory and streams it; the directory
/// goes when the download ends or the client leaves.
pub(super) async fn download(
    State(s): State<ApiState>,
    v: Viewer,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, Fail> {
    allow(&v, Tab::Evidence)?;
    let refused = |v: &Viewer, status: StatusCode, errors: FieldErrors| {
        let body = render(v, s.clock.now(), &q, &errors);
        Ok((status, page(v, Nav::Audit, &v.tr.t("aud-title-evidence"), body)).into_response())
    };
    let (since, until) = match period(&v, &q) {
        Ok(p) => p,
        Err(errors) => return refused(&v, StatusCode::BAD_REQUEST, errors),
    };
    let archive = match s
        .ops
        .evidence_archive(v.actor(), since, until, &std::env::temp_dir())
        .await
    {
        Ok(a) => a,
        Err(e) => {
            let status = super::refusal_status(&e);
            let errors = FieldErrors::from_ops(e, &v.tr, &["since", "until"])?;
            return refused(&v, status, errors);
        }
    };
    tracing::info!(user = %v.actor().id, %since, %until, bytes = archive.size, "evidence archive downloaded from the console");
    let file = tokio::fs::File::open(&archive.path).await.map_err(|e| {
        tracing::error!(error = %e, "evidence archive not readable");
        Fail::Internal
    })?;
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", archive.name)).map_err(|_| Fail::Internal)?;
    let size = archive.size;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(Download {
        file,
        _archive: archive,
    }));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The archive's file, read for the response; holding the archive keeps its
/// directory until the body is dropped.
struct Download {
    file: tokio::fs::File,
    _archive: EvidenceArchive,
}

impl AsyncRead for Download {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_read(cx, buf)
    }
}
