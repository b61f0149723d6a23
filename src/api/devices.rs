//! Devices and their vendor assignments.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
use crate::domain::{multi_line, one_line, DeviceId, DeviceName, VendorId};
use crate::rights::Function;
use crate::store::{Device, NewDevice};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_device, list_devices))
        .routes(routes!(get_device))
        .routes(routes!(disable_device))
        .routes(routes!(enable_device))
}

/// Disable a device (admin, security): its live tunnels are cut on every node
/// and it admits none until enabled again.
#[utoipa::path(post, path = "/api/v1/devices/{id}/disable", params(("id" = String, Path)),
    responses((status = 200, body = Device), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn disable_device(
    State(s): State<ApiState>,
    RestrictiveCaller(caller): RestrictiveCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Device>> {
    Ok(Json(s.ops.disable_device(&caller, &DeviceId(id)).await?))
}

/// Enable a device again (admin).
#[utoipa::path(post, path = "/api/v1/devices/{id}/enable", params(("id" = String, Path)),
    responses((status = 200, body = Device), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn enable_device(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Device>> {
    Ok(Json(s.ops.enable_device(&caller, &DeviceId(id)).await?))
}

/// A device to create. `name` is the TLS server name technicians ask for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDevice {
    #[schema(example = "mri-1")]
    pub name: String,
    /// `host:port` the gateway connects to, inside the hospital.
    #[schema(example = "10.20.0.15:22")]
    pub address: String,
    /// Label for the flow matrix: `ssh`, `https`, `dicom`, `rdp`…
    pub protocol: String,
    pub vendor_ids: Vec<VendorId>,
    pub description: Option<String>,
}

/// `host:port` with a non-zero port.
pub(crate) fn parse_address(a: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "address {a:?} must be host:port (e.g. 10.20.0.15:22 or [fd00::5]:443)"
        ))
    };
    let (host, port) = a.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host.parse::<std::net::Ipv4Addr>().is_ok()
            || host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if port == 0 || !host_ok {
        return Err(bad());
    }
    Ok(a.to_owned())
}

/// Create a device (admin).
#[utoipa::path(post, path = "/api/v1/devices", request_body = CreateDevice,
    responses((status = 201, body = Device), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_device(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateDevice>,
) -> ApiResult<(StatusCode, Json<Device>)> {
    caller.may(Function::CreateDevice)?;
    let name: DeviceName = req
        .name
        .parse()
        .map_err(|e: crate::domain::BadDeviceName| ApiError::bad_request(e.to_string()))?;
    let address = parse_address(req.address.trim())?;
    let protocol = one_line("protocol", &req.protocol, 32)?;
    // An empty description is no description.
    let description = match req.description.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(multi_line("description", d, 1000)?),
    };
    let new = NewDevice {
        name,
        address,
        protocol,
        description,
        vendor_ids: req.vendor_ids,
    };
    let d = s.ops.create_device(&caller, new).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// List devices (a vendor account sees the devices assigned to it).
#[utoipa::path(get, path = "/api/v1/devices", responses((status = 200, body = Vec<Device>), (status = 401, body = ErrorBody)))]
async fn list_devices(State(s): State<ApiState>, caller: Caller) -> ApiResult<Json<Vec<Device>>> {
    Ok(Json(s.ops.devices(&caller).await?))
}

/// One device.
#[utoipa::path(get, path = "/api/v1/devices/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Device), (status = 404, body = ErrorBody)))]
async fn get_device(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Device>> {
    Ok(Json(s.ops.device(&caller, &DeviceId(id)).await?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses() {
        for ok in ["10.0.0.1:22", "[fd00::1]:443", "pacs.hospital.local:104"] {
            assert!(super::parse_address(ok).is_ok(), "{ok}");
        }
        for bad in ["10.0.0.1", "10.0.0.1:0", ":22", "a b:22", "10.0.0.1:99999", "[zz]:1"] {
            assert!(super::parse_address(bad).is_err(), "{bad}");
        }
    }
}
