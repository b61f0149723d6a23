//! The audit trail, newest first and paged, and the verification of its hash
//! chain (a POST: it reads the whole trail, so it is not done by a mere visit).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::{allow, tabs, Tab};
use crate::api::ApiState;
use crate::audit::Verification;
use crate::console::form::csrf_field;
use crate::console::layout::{empty, page, when};
use crate::console::{Fail, Nav, Posted, Viewer};
use crate::ops::{AudTrail, TRAIL_PAGE};

/// Characters of an event's details shown in the table (the export has them all).
const DETAILS_SHOWN: usize = 300;

#[derive(Debug, Deserialize)]
pub(super) struct TrailQuery {
    /// Events before this sequence number (the newest when absent).
    before: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct VerifyForm {
    before: Option<i64>,
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", text.get(..i).unwrap_or(text)),
        None => text.to_owned(),
    }
}

fn render(v: &Viewer, trail: &AudTrail, before: Option<i64>, verified: Option<&Verification>) -> Markup {
    let tr = &v.tr;
    let (seq, at, actor, action, object, outcome, details, hash) = (
        tr.t("aud-col-seq"),
        tr.t("aud-col-at"),
        tr.t("aud-col-actor"),
        tr.t("aud-col-action"),
        tr.t("aud-col-object"),
        tr.t("aud-col-outcome"),
        tr.t("aud-col-details"),
        tr.t("aud-col-hash"),
    );
    let newest = trail.events.first().map(|e| e.seq);
    let oldest = trail.events.last().map(|e| e.seq);
    let newer = match (newest, trail.head) {
        (Some(n), Some(h)) if n < h => Some(n + 1 + TRAIL_PAGE),
        _ => None,
    };
    let older = oldest.filter(|o| *o > 1);
    html! {
        (tabs(v, Tab::Trail))
        section #verification aria-labelledby="verify-title" {
            h2 #verify-title { (tr.t("aud-verify-title")) }
            p { (tr.t("aud-verify-intro")) }
            form #verify.inline method="post" action="/console/audit/trail/verify" {
                (csrf_field(&v.csrf))
                @if let Some(b) = before { input type="hidden" name="before" value=(b); }
                button type="submit" { (tr.t("aud-verify-submit")) }
            }
            @if let Some(r) = verified {
                @let word = if r.valid { "ok" } else { "broken" };
                div #verify-result .notice[r.valid] .overdue[!r.valid] role="status" data-result=(word) {
                    strong.badge { (tr.t(if r.valid { "aud-verify-word-ok" } else { "aud-verify-word-broken" })) } " "
                    @if r.valid {
                        (tr.tn("aud-verify-ok", "n", i64::try_from(r.events).unwrap_or(i64::MAX)))
                    } @else {
                        (tr.ta("aud-verify-broken", &[
                            ("n", &r.events.to_string()),
                            ("seq", &r.first_invalid_seq.map(|s| s.to_string()).unwrap_or_else(|| "?".into())),
                        ]))
                    }
                }
            }
        }
        section #trail aria-labelledby="trail-title" {
            h2 #trail-title { (tr.t("aud-trail-title")) }
            @if let Some(h) = trail.head { p { (tr.tn("aud-trail-total", "n", h)) } }
            @if trail.events.is_empty() { (empty(tr)) } @else {
                div.table-wrap {
                    table.responsive.trail {
                        thead { tr {
                            th scope="col" { (seq) } th scope="col" { (at) } th scope="col" { (actor) }
                            th scope="col" { (action) } th scope="col" { (object) } th scope="col" { (outcome) }
                            th scope="col" { (details) } th scope="col" { (hash) }
                        } }
                        tbody {
                            @for e in &trail.events {
                                tr data-seq=(e.seq) {
                                    td data-label=(seq) { (e.seq) }
                                    td data-label=(at) { (when(tr, e.at)) }
                                    td data-label=(actor) { (e.actor) }
                                    td data-label=(action) { code { (e.action) } }
                                    td data-label=(object) { (e.object) }
                                    td data-label=(outcome) { (e.outcome) }
                                    td data-label=(details) { code.details { (shorten(&e.details, DETAILS_SHOWN)) } }
                                    td data-label=(hash) { code title=(e.hash) { (shorten(&e.hash, 12)) } }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label=(tr.t("aud-pages")) {
                @if let Some(n) = newer { a rel="prev" href=(format!("/console/audit/trail?before={n}")) { (tr.t("aud-newer")) } " " }
                @if let Some(o) = older { a rel="next" href=(format!("/console/audit/trail?before={o}")) { (tr.t("aud-older")) } }
            }
        }
    }
}

pub(super) async fn show(State(s): State<ApiState>, v: Viewer, Query(q): Query<TrailQuery>) -> Result<Response, Fail> {
    allow(&v, Tab::Trail)?;
    let trail = s.ops.audit_trail_page(v.actor(), q.before).await?;
    let body = render(&v, &trail, q.before, None);
    Ok(page(&v, Nav::Audit, &v.tr.t("aud-title-trail"), body).into_response())
}

/// Verifies the whole chain and shows the result above the same page.
pub(super) async fn verify(
    State(s): State<ApiState>,
    Posted { viewer: v, form }: Posted<VerifyForm>,
) -> Result<Response, Fail> {
    allow(&v, Tab::Trail)?;
    let result = s.ops.verify_audit(v.actor()).await?;
    tracing::info!(user = %v.actor().id, valid = result.valid, events = result.events, "audit trail verified from the console");
    let trail = s.ops.audit_trail_page(v.actor(), form.before).await?;
    let body = render(&v, &trail, form.before, Some(&result));
    Ok(page(&v, Nav::Audit, &v.tr.t("aud-title-trail"), body).into_response())
}
