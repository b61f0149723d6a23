//! The security dossier: its documents in the viewer's language and the
//! other, each in its formats, opened from the console session (the same use
//! case as the API's `GET /api/v1/dossier/{lang}/{document}`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::{allow, tabs, Tab};
use crate::api::ApiState;
use crate::console::i18n::Lang;
use crate::console::layout::page;
use crate::console::{Fail, Nav, Viewer};

pub(super) async fn show(State(s): State<ApiState>, v: Viewer) -> Result<Response, Fail> {
    allow(&v, Tab::Dossier)?;
    let tr = &v.tr;
    let d = s.ops.dossier(v.actor(), &s.dossier, tr.lang.code()).await?;
    // The viewer's language first; the documents are the same in both.
    let langs: Vec<Lang> = std::iter::once(tr.lang)
        .chain(Lang::ALL.into_iter().filter(|l| *l != tr.lang))
        .collect();
    let (doc_col, formats_col) = (tr.t("aud-dossier-document"), tr.t("aud-dossier-formats"));
    let body = html! {
        (tabs(&v, Tab::Dossier))
        p { (tr.t("aud-dossier-intro")) }
        @if let Some(note) = &d.svg_note { p.warn { (tr.t("aud-dossier-no-svg")) " " code { (note) } } }
        section #dossier {
            div.table-wrap {
                table.responsive.dossier {
                    thead { tr { th scope="col" { (doc_col) } th scope="col" { (formats_col) } } }
                    tbody {
                        @for e in &d.index {
                            tr data-document=(e.stem) {
                                td data-label=(doc_col) { (e.title) }
                                td data-label=(formats_col) {
                                    @for l in &langs {
                                        span.formats lang=(l.code()) {
                                            (l.code().to_uppercase()) ": "
                                            @for (i, f) in e.formats.iter().enumerate() {
                                                @if i > 0 { " · " }
                                                a href=(format!("/console/audit/dossier/{}/{}.{f}", l.code(), e.stem)) { (f) }
                                            }
                                        }
                                        " "
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&v, Nav::Audit, &tr.t("aud-title-dossier"), body).into_response())
}

/// One document, as the API serves it (its own media type and policy).
pub(super) async fn document(
    State(s): State<ApiState>,
    v: Viewer,
    Path((lang, name)): Path<(String, String)>,
) -> Result<Response, Fail> {
    allow(&v, Tab::Dossier)?;
    let d = s.ops.dossier(v.actor(), &s.dossier, &lang).await?;
    let doc = d.get(&name).ok_or(Fail::NotFound)?;
    Ok(crate::api::document_response(doc))
}
