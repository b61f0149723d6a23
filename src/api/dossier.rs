//! The security dossier of this deployment (`GET /api/v1/dossier/{lang}` and
//! its documents; admin, security, auditor): what `portier dossier` writes,
//! assembled from the running node (docs/dossier.md).

use axum::extract::{Path, State};
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody};
use crate::dossier::{Document, Entry};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(index)).routes(routes!(document))
}

/// The dossier's documents, each in its formats.
#[derive(Debug, Serialize, ToSchema)]
pub struct DossierIndex {
    /// `en` or `fr`.
    pub lang: String,
    pub documents: Vec<Entry>,
    /// Every file, as `GET /api/v1/dossier/{lang}/{document}` serves it.
    pub files: Vec<String>,
    /// Why the architecture schema has no SVG, if it has none.
    pub svg_note: Option<String>,
}

/// The index of the security dossier in one language (admin, security,
/// auditor). Assembled from the running configuration and database; kept a
/// few seconds.
#[utoipa::path(get, path = "/api/v1/dossier/{lang}", params(("lang" = String, Path, description = "`en` or `fr`")),
    responses((status = 200, body = DossierIndex),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Not a dossier language"),
        (status = 500, body = ErrorBody, description = "The dossier could not be assembled (logged)"),
        (status = 503, body = ErrorBody, description = "The database cannot be read now, or did not answer in time")))]
async fn index(State(s): State<ApiState>, caller: Caller, Path(code): Path<String>) -> ApiResult<Json<DossierIndex>> {
    let d = s.ops.dossier(&caller, &s.dossier, &code).await?;
    Ok(Json(DossierIndex {
        lang: code,
        documents: d.index.clone(),
        files: d.documents.iter().map(|f| f.name.clone()).collect(),
        svg_note: d.svg_note.clone(),
    }))
}

/// One document of the security dossier (`rights.html`, `crypto.json`,
/// `architecture.svg`, `sbom.cdx.json`…), with its media type (admin,
/// security, auditor).
#[utoipa::path(get, path = "/api/v1/dossier/{lang}/{document}",
    params(("lang" = String, Path, description = "`en` or `fr`"),
        ("document" = String, Path, description = "A file name from the index's `files`")),
    responses((status = 200, description = "The document (Markdown, HTML, JSON, CSV, SVG, DOT or Mermaid)"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such document or language"),
        (status = 500, body = ErrorBody, description = "The dossier could not be assembled (logged)"),
        (status = 503, body = ErrorBody, description = "The database cannot be read now, or did not answer in time")))]
async fn document(
    State(s): State<ApiState>,
    caller: Caller,
    Path((code, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let d = s.ops.dossier(&caller, &s.dossier, &code).await?;
    let doc = d.get(&name).ok_or_else(|| ApiError::not_found("dossier document"))?;
    Ok(document_response(doc))
}

/// A document as an answer: its media type, a download name, and a policy
/// that lets an HTML page show its own style and the schema beside it but run
/// nothing (a vendor's or a device's name is text on the page, never code).
/// The sandbox keeps the page's origin (`allow-same-origin`) so the schema
/// loads with the console's session and resource policy; without
/// `allow-scripts` nothing runs either way.
pub(crate) fn document_response(doc: &Document) -> Response {
    let mut response = doc.bytes.clone().into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(doc.content_type()));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox allow-same-origin; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Names are ours (`[a-z.-]`), so the header needs no quoting rules.
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}\"", doc.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}
