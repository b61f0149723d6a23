//! Devices and their vendor assignments.

use crate::events::Event;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody};
use crate::domain::{multi_line, one_line, DeviceId, DeviceName, Role, VendorId};
use crate::store::{Device, NewDevice, StoreError};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_device, list_devices))
        .routes(routes!(get_device))
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
fn parse_address(a: &str) -> Result<String, ApiError> {
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
    caller.require(&[Role::Admin])?;
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
    let mut vendor_ids = req.vendor_ids;
    vendor_ids.sort();
    vendor_ids.dedup();
    for v in &vendor_ids {
        s.store
            .vendor(v)
            .await
            .map_err(|e| ApiError::unless_found(e, || ApiError::unprocessable(format!("unknown vendor {v}"))))?;
    }
    let d = s
        .store
        .create_device(
            &NewDevice {
                name: name.clone(),
                address,
                protocol,
                description,
                vendor_ids,
            },
            s.clock.now(),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::conflict(format!("a device named {:?} already exists", name.as_str())),
            other => other.into(),
        })?;
    s.admission_changed().await;
    s.audit(
        &caller,
        Event::DeviceCreated,
        d.id.as_str(),
        serde_json::json!({"name": d.name, "address": d.address, "vendor_ids": d.vendor_ids}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(d)))
}

fn visible(caller: &Caller, d: &Device) -> bool {
    caller.role != Role::Vendor || d.vendor_ids.iter().any(|v| caller.sees_vendor(v))
}

/// List devices (a vendor account sees the devices assigned to it).
#[utoipa::path(get, path = "/api/v1/devices", responses((status = 200, body = Vec<Device>), (status = 401, body = ErrorBody)))]
async fn list_devices(State(s): State<ApiState>, caller: Caller) -> ApiResult<Json<Vec<Device>>> {
    let all = s.store.list_devices().await?;
    Ok(Json(all.into_iter().filter(|d| visible(&caller, d)).collect()))
}

/// One device.
#[utoipa::path(get, path = "/api/v1/devices/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Device), (status = 404, body = ErrorBody)))]
async fn get_device(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Device>> {
    let d = s.store.device(&DeviceId(id)).await?;
    if !visible(&caller, &d) {
        return Err(ApiError::not_found("device"));
    }
    Ok(Json(d))
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
