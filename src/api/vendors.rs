//! Vendors, their declared networks, and their technicians.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use rustls::pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
use crate::domain::{one_line, parse_network, NetworkBreadth, TechnicianId, VendorId};
use crate::pki::{first_cert_der, CertInfo};
use crate::rights::Function;
use crate::store::{NewTechnician, NewVendor, Technician, Vendor};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_vendor, list_vendors))
        .routes(routes!(get_vendor))
        .routes(routes!(replace_networks))
        .routes(routes!(disable_vendor))
        .routes(routes!(enable_vendor))
        .routes(routes!(add_technician, list_technicians))
        .routes(routes!(revoke_technician))
}

/// Most networks a vendor may declare.
const MAX_NETWORKS: usize = 256;

/// Parses declared networks; a bad entry is named in the error. Networks
/// broader than `breadth` are refused unless `breadth` is `None` (an admin's
/// explicit `allow_broad_networks`); a /0 is always refused. The result is
/// sorted and without duplicates (`10.0.0.1` and `10.0.0.1/32` are one network).
pub(crate) fn parse_networks(list: &[String], breadth: Option<NetworkBreadth>) -> Result<Vec<IpNet>, ApiError> {
    if list.len() > MAX_NETWORKS {
        return Err(ApiError::bad_request(format!("at most {MAX_NETWORKS} networks")));
    }
    let mut nets = list
        .iter()
        .map(|n| {
            let net = parse_network(n).map_err(|e| ApiError::bad_request(e.to_string()))?;
            if net.prefix_len() == 0 {
                return Err(ApiError::bad_request(format!(
                    "{n:?} would admit every address: declare the vendor's own networks"
                )));
            }
            if let Some(b) = breadth {
                if let Some(min) = b.too_broad(&net) {
                    return Err(ApiError::bad_request(format!(
                        "{n:?} is broader than /{min} (policy.min_network_prefix_v4 / _v6): declare the vendor's own networks, or have an admin set allow_broad_networks"
                    )));
                }
            }
            Ok(net)
        })
        .collect::<Result<Vec<_>, _>>()?;
    nets.sort();
    nets.dedup();
    Ok(nets)
}

/// The breadth check to apply: none when an admin explicitly allows broad networks.
fn breadth_for(s: &ApiState, caller: &Caller, allow_broad: bool) -> Result<Option<NetworkBreadth>, ApiError> {
    if !allow_broad {
        return Ok(Some(s.limits.networks));
    }
    caller.may(Function::AllowBroadNetworks)?;
    Ok(None)
}

fn text(field: &'static str, value: &str, max: usize) -> Result<String, ApiError> {
    Ok(one_line(field, value, max)?)
}

/// A vendor to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVendor {
    pub name: String,
    /// Public networks its technicians connect from: CIDRs, or single addresses (/32, /128).
    #[schema(example = json!(["203.0.113.7/32", "198.51.100.0/24"]))]
    pub networks: Vec<String>,
    pub security_contact: Option<String>,
    /// Accept networks broader than `policy.min_network_prefix_v4` / `_v6`
    /// (admin only; the decision is audited).
    #[serde(default)]
    pub allow_broad_networks: bool,
}

/// Create a vendor (admin).
#[utoipa::path(post, path = "/api/v1/vendors", request_body = CreateVendor,
    responses((status = 201, body = Vendor), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_vendor(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateVendor>,
) -> ApiResult<(StatusCode, Json<Vendor>)> {
    caller.may(Function::CreateVendor)?;
    let name = text("name", &req.name, 200)?;
    let networks = parse_networks(&req.networks, breadth_for(&s, &caller, req.allow_broad_networks)?)?;
    let contact = req
        .security_contact
        .as_deref()
        .map(|c| text("security_contact", c, 200))
        .transpose()?;
    let new = NewVendor {
        name,
        networks,
        security_contact: contact,
    };
    let v = s.ops.create_vendor(&caller, new, req.allow_broad_networks).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// List vendors (a vendor account sees its own).
#[utoipa::path(get, path = "/api/v1/vendors", responses((status = 200, body = Vec<Vendor>), (status = 401, body = ErrorBody)))]
async fn list_vendors(State(s): State<ApiState>, caller: Caller) -> ApiResult<Json<Vec<Vendor>>> {
    Ok(Json(s.ops.vendors(&caller).await?))
}

/// One vendor.
#[utoipa::path(get, path = "/api/v1/vendors/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Vendor), (status = 404, body = ErrorBody)))]
async fn get_vendor(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Vendor>> {
    Ok(Json(s.ops.vendor(&caller, &VendorId(id)).await?))
}

/// Declared networks.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Networks {
    pub networks: Vec<String>,
    /// Accept networks broader than `policy.min_network_prefix_v4` / `_v6` (admin only).
    #[serde(default)]
    pub allow_broad_networks: bool,
}

/// Replace a vendor's declared networks (admin). Takes effect for the next connection.
#[utoipa::path(put, path = "/api/v1/vendors/{id}/networks", params(("id" = String, Path)), request_body = Networks,
    responses((status = 200, body = Vendor), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn replace_networks(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Networks>,
) -> ApiResult<Json<Vendor>> {
    caller.may(Function::ReplaceVendorNetworks)?;
    let networks = parse_networks(&req.networks, breadth_for(&s, &caller, req.allow_broad_networks)?)?;
    let v = s
        .ops
        .replace_vendor_networks(&caller, &VendorId(id), networks, req.allow_broad_networks)
        .await?;
    Ok(Json(v))
}

/// Disable a vendor (admin, security): its live tunnels are cut. The cut and the
/// refusal happen on this node first; if the database cannot take the change the
/// answer is 503, the cut stands and the change is retried until stored.
#[utoipa::path(post, path = "/api/v1/vendors/{id}/disable", params(("id" = String, Path)),
    responses((status = 200, body = Vendor), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "not stored yet: cut and refused on this node, retried")))]
async fn disable_vendor(
    State(s): State<ApiState>,
    RestrictiveCaller(caller): RestrictiveCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vendor>> {
    Ok(Json(s.ops.disable_vendor(&caller, &VendorId(id)).await?))
}

/// Enable a vendor again (admin, security).
#[utoipa::path(post, path = "/api/v1/vendors/{id}/enable", params(("id" = String, Path)),
    responses((status = 200, body = Vendor), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn enable_vendor(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Vendor>> {
    Ok(Json(s.ops.enable_vendor(&caller, &VendorId(id)).await?))
}

/// A technician to register: either a CSR for the vendor CA to sign, or an
/// externally issued certificate to pin (it must chain to a configured vendor CA).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTechnician {
    pub name: String,
    pub csr_pem: Option<String>,
    pub certificate_pem: Option<String>,
}

/// A registered technician's certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct TechnicianCertificate {
    pub id: TechnicianId,
    pub certificate_pem: String,
    pub fingerprint_sha256: String,
    pub not_after: DateTime<Utc>,
}

/// Register a technician (admin).
#[utoipa::path(post, path = "/api/v1/vendors/{id}/technicians", params(("id" = String, Path)), request_body = AddTechnician,
    responses((status = 201, body = TechnicianCertificate), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_technician(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddTechnician>,
) -> ApiResult<(StatusCode, Json<TechnicianCertificate>)> {
    caller.may(Function::AddTechnician)?;
    let vendor = s.store.vendor(&VendorId(id)).await?;
    let name = text("name", &req.name, 100)?;
    let certificate_pem = match (&req.csr_pem, &req.certificate_pem) {
        (Some(csr), None) => {
            let signer = s.pki.signer.as_ref().ok_or_else(|| {
                ApiError::unprocessable(
                    "this node has no vendor CA key (gateway.vendor_ca_key): pin a certificate instead",
                )
            })?;
            signer
                .sign_csr(csr, &name, Some(&vendor.name), s.limits.technician_cert_days)
                .map_err(|e| {
                    ApiError::bad_request(format!("csr_pem is not a valid PEM certificate signing request: {e}"))
                })?
        }
        (None, Some(pem)) => {
            let der =
                first_cert_der(pem).map_err(|_| ApiError::bad_request("certificate_pem holds no PEM certificate"))?;
            s.pki
                .verifier
                .verify_client_cert(&CertificateDer::from(der), &[], UnixTime::now())
                .map_err(|e| {
                    ApiError::unprocessable(format!(
                        "the certificate would fail the gateway's handshake ({e}); its CA must be in gateway.vendor_ca"
                    ))
                })?;
            pem.clone()
        }
        _ => return Err(ApiError::bad_request("give exactly one of csr_pem or certificate_pem")),
    };
    let info = CertInfo::from_pem(&certificate_pem).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // A pinned certificate's subject is shown in logs, exports and syslog lines:
    // the same rule as for names (no control or bidirectional characters).
    one_line("the certificate's subject", &info.subject, 1000)?;
    let new = NewTechnician {
        vendor_id: vendor.id.clone(),
        name,
        subject: info.subject.clone(),
        fingerprint: info.fingerprint,
        certificate_pem: certificate_pem.clone(),
        not_before: info.not_before,
        not_after: info.not_after,
    };
    let t = s
        .ops
        .add_technician(&caller, new, req.certificate_pem.is_some())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TechnicianCertificate {
            id: t.id,
            certificate_pem,
            fingerprint_sha256: info.fingerprint.to_hex(),
            not_after: info.not_after,
        }),
    ))
}

/// A vendor's technicians.
#[utoipa::path(get, path = "/api/v1/vendors/{id}/technicians", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Technician>), (status = 404, body = ErrorBody)))]
async fn list_technicians(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Technician>>> {
    Ok(Json(s.ops.technicians(&caller, &VendorId(id)).await?))
}

/// Revoke a technician (admin, security): their live tunnels are cut. The cut
/// and the refusal happen on this node first; if the database cannot take the
/// revocation the answer is 503, the cut stands and it is retried until stored.
#[utoipa::path(delete, path = "/api/v1/vendors/{id}/technicians/{tid}", params(("id" = String, Path), ("tid" = String, Path)),
    responses((status = 200, body = Technician), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "not stored yet: cut and refused on this node, retried")))]
async fn revoke_technician(
    State(s): State<ApiState>,
    RestrictiveCaller(caller): RestrictiveCaller,
    Path((id, tid)): Path<(String, String)>,
) -> ApiResult<Json<Technician>> {
    let (vendor, tid) = (VendorId(id), TechnicianId(tid));
    Ok(Json(s.ops.revoke_technician(&caller, &vendor, &tid).await?))
}
