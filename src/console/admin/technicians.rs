//! Technicians of a vendor: a CSR signed by the vendor CA into a certificate
//! (shown, and downloadable), and revocation.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::vendors::{text, vendor_page, Confirm, VendorExtras};
use super::{admin_only, refused};
use crate::api::ApiState;
use crate::console::form::FieldErrors;
use crate::console::{Fail, Posted, Viewer};
use crate::domain::{TechnicianId, VendorId};
use crate::pki::CertInfo;
use crate::store::NewTechnician;

#[derive(Debug, Default, Deserialize)]
pub(super) struct TechnicianForm {
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) csr_pem: String,
}

/// Signs the CSR with the vendor CA (as the API's `csr_pem`), registers the
/// technician, and shows the certificate with its download link.
pub(super) async fn add(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, form }: Posted<TechnicianForm>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let vendor = s.ops.vendor(v.actor(), &VendorId(id)).await?;
    let mut errors = FieldErrors::default();
    let name = text(&v, "name", &form.name, 100, &mut errors);
    let csr = form.csr_pem.trim();
    if csr.is_empty() {
        errors.add("csr_pem", v.tr.t("err-required"));
    }
    let signed = match (&s.pki.signer, errors.is_empty()) {
        (_, false) => None,
        (None, true) => {
            errors.add("csr_pem", v.tr.t("adm-err-no-ca"));
            None
        }
        (Some(signer), true) => signer
            .sign_csr(csr, &name, Some(&vendor.name), s.limits.technician_cert_days)
            .map_err(|e| errors.add("csr_pem", v.tr.ta("adm-err-csr", &[("message", &e.to_string())])))
            .ok(),
    };
    let info = signed.as_deref().and_then(|pem| {
        CertInfo::from_pem(pem)
            .map_err(|e| errors.add("csr_pem", v.tr.ta("adm-err-csr", &[("message", &e.to_string())])))
            .ok()
    });
    let mut status = StatusCode::BAD_REQUEST;
    if let (Some(pem), Some(info)) = (&signed, info) {
        let new = NewTechnician {
            vendor_id: vendor.id.clone(),
            name,
            subject: info.subject,
            fingerprint: info.fingerprint,
            certificate_pem: pem.clone(),
            not_before: info.not_before,
            not_after: info.not_after,
        };
        match s.ops.add_technician(v.actor(), new, false).await {
            Ok(t) => {
                let extras = VendorExtras {
                    signed: Some((&t, pem)),
                    done: Some("adm-done-technician-added"),
                    ..VendorExtras::default()
                };
                let mut response =
                    (StatusCode::CREATED, vendor_page(&s, &v, &vendor.id, extras).await?).into_response();
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return Ok(response);
            }
            Err(e) => {
                let (st, e) = refused(e, &v, &["name", "csr_pem"])?;
                errors = e;
                status = st;
            }
        }
    }
    let extras = VendorExtras {
        technician: Some(&form),
        technician_errors: errors,
        ..VendorExtras::default()
    };
    Ok((status, vendor_page(&s, &v, &vendor.id, extras).await?).into_response())
}

/// A technician's certificate (PEM), to hand to the vendor.
pub(super) async fn certificate(
    State(s): State<ApiState>,
    v: Viewer,
    Path((id, tid)): Path<(String, String)>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let tid = TechnicianId(tid);
    let t = s
        .ops
        .technicians(v.actor(), &VendorId(id))
        .await?
        .into_iter()
        .find(|t| t.id == tid)
        .ok_or(Fail::NotFound)?;
    // The file name from the technician's name, reduced to safe characters.
    let stem: String = t
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{stem}.pem\"")).map_err(|_| Fail::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/x-pem-file")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        t.certificate_pem,
    )
        .into_response())
}

pub(super) async fn revoke(
    State(s): State<ApiState>,
    Path((id, tid)): Path<(String, String)>,
    Posted { viewer: v, .. }: Posted<Confirm, true>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let vendor = VendorId(id);
    s.ops.revoke_technician(v.actor(), &vendor, &TechnicianId(tid)).await?;
    Ok(Redirect::to(&format!(
        "/console/admin/vendors/{vendor}?done=adm-done-technician-revoked"
    ))
    .into_response())
}
