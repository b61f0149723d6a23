//! Devices and their vendor assignments (given at creation, as the API models them).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::vendors::{Confirm, DoneQuery};
use super::{admin_only, filled, refused, state, tabs, Tab};
use crate::api::ApiState;
use crate::console::form::{csrf_field, input, textarea, FieldErrors};
use crate::console::layout::{done_notice, empty, page};
use crate::console::{Fail, Nav, Posted, Viewer};
use crate::domain::{multi_line, one_line, DeviceId, DeviceName, VendorId};
use crate::store::{Device, NewDevice, Vendor};

/// A device to create, as typed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DeviceForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    protocol: String,
    description: Option<String>,
    /// The vendors it is assigned to (checkboxes).
    #[serde(default)]
    vendor_ids: Vec<String>,
}

fn render(
    v: &Viewer,
    devices: &[Device],
    vendors: &[Vendor],
    draft: &DeviceForm,
    errors: &FieldErrors,
    done: Option<&str>,
) -> Markup {
    let tr = &v.tr;
    let names: HashMap<&VendorId, &str> = vendors.iter().map(|x| (&x.id, x.name.as_str())).collect();
    let cols = [
        tr.t("adm-col-name"),
        tr.t("adm-col-address"),
        tr.t("adm-col-protocol"),
        tr.t("adm-col-vendors"),
        tr.t("adm-col-state"),
        tr.t("adm-col-actions"),
    ];
    let vendors_error = errors.get("vendor_ids");
    html! {
        (tabs(v, Tab::Devices))
        (done_notice(tr, done))
        section #devices aria-labelledby="devices-title" {
            h2 #devices-title { (tr.t("adm-devices-title")) }
            @if devices.is_empty() { (empty(tr)) } @else {
                div.table-wrap { table.responsive {
                    thead { tr { @for c in &cols { th scope="col" { (c) } } } }
                    tbody {
                        @for d in devices {
                            tr data-device=(d.id) {
                                td data-label=(cols[0]) { code { (d.name) } @if let Some(desc) = &d.description { br; small { (desc) } } }
                                td data-label=(cols[1]) { code { (d.address) } }
                                td data-label=(cols[2]) { (d.protocol) }
                                td data-label=(cols[3]) {
                                    @for (i, vid) in d.vendor_ids.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        a href=(format!("/console/admin/vendors/{vid}")) data-vendor=(vid) { (names.get(vid).copied().unwrap_or(vid.as_str())) }
                                    }
                                }
                                td data-label=(cols[4]) { (state(v, d.enabled, "adm-disabled")) }
                                td data-label=(cols[5]) {
                                    @if d.enabled {
                                        form.inline.disable-device method="post" action=(format!("/console/admin/devices/{}/disable", d.id)) {
                                            (csrf_field(&v.csrf))
                                            button.danger type="submit" { (tr.t("adm-disable")) }
                                        }
                                    } @else {
                                        form.inline.enable-device method="post" action=(format!("/console/admin/devices/{}/enable", d.id)) {
                                            (csrf_field(&v.csrf))
                                            button.secondary type="submit" { (tr.t("adm-enable")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
        section #new-device aria-labelledby="new-device-title" {
            h2 #new-device-title { (tr.t("adm-device-create-title")) }
            (errors.summary(tr))
            form #create-device.stack method="post" action="/console/admin/devices" {
                (csrf_field(&v.csrf))
                (input("name", &tr.t("adm-device-name"), "text", &draft.name, true, errors, Some(&tr.t("adm-device-name-help"))))
                (input("address", &tr.t("adm-device-address"), "text", &draft.address, true, errors, Some(&tr.t("adm-device-address-help"))))
                (input("protocol", &tr.t("adm-device-protocol"), "text", &draft.protocol, true, errors, Some(&tr.t("adm-device-protocol-help"))))
                (textarea("description", &tr.t("adm-device-description"), draft.description.as_deref().unwrap_or(""), false, errors))
                fieldset.checks.invalid[vendors_error.is_some()] aria-describedby=[vendors_error.map(|_| "f-vendor_ids-error")] {
                    legend { (tr.t("adm-device-vendors")) }
                    @if vendors.is_empty() { p.empty { (tr.t("adm-no-vendors")) } }
                    @for x in vendors {
                        label {
                            input type="checkbox" name="vendor_ids" value=(x.id) checked[draft.vendor_ids.contains(&x.id.0)];
                            " " (x.name)
                        }
                    }
                    @if let Some(e) = vendors_error { p.error #f-vendor_ids-error { (e) } }
                }
                div { button type="submit" { (tr.t("adm-device-create")) } }
            }
        }
    }
}

async fn load(s: &ApiState, v: &Viewer) -> Result<(Vec<Device>, Vec<Vendor>), Fail> {
    Ok((s.ops.devices(v.actor()).await?, s.ops.vendors(v.actor()).await?))
}

pub(super) async fn list(State(s): State<ApiState>, v: Viewer, Query(q): Query<DoneQuery>) -> Result<Response, Fail> {
    admin_only(&v)?;
    let (devices, vendors) = load(&s, &v).await?;
    let body = render(
        &v,
        &devices,
        &vendors,
        &DeviceForm::default(),
        &FieldErrors::default(),
        q.done.as_deref(),
    );
    Ok(page(&v, Nav::Admin, &v.tr.t("adm-title-devices"), body).into_response())
}

/// Checks the fields as the API's `POST /api/v1/devices` does.
fn parse(v: &Viewer, form: &DeviceForm, errors: &mut FieldErrors) -> Option<NewDevice> {
    let refused = |e: String| v.tr.ta("error-refused", &[("message", &e)]);
    let name = form
        .name
        .trim()
        .parse::<DeviceName>()
        .map_err(|e| errors.add("name", refused(e.to_string())))
        .ok();
    let address = crate::api::parse_address(form.address.trim())
        .map_err(|e| errors.add("address", refused(e.message)))
        .ok();
    let protocol = one_line("protocol", &form.protocol, 32)
        .map_err(|e| errors.add("protocol", refused(e.to_string())))
        .ok();
    let description = match filled(&form.description) {
        None => Some(None),
        Some(d) => multi_line("description", d, 1000)
            .map(Some)
            .map_err(|e| errors.add("description", refused(e.to_string())))
            .ok(),
    };
    let vendor_ids: Vec<VendorId> = form
        .vendor_ids
        .iter()
        .map(|x| x.trim())
        .filter(|x| !x.is_empty())
        .map(|x| VendorId(x.to_owned()))
        .collect();
    Some(NewDevice {
        name: name?,
        address: address?,
        protocol: protocol?,
        description: description?,
        vendor_ids,
    })
}

pub(super) async fn create(
    State(s): State<ApiState>,
    Posted { viewer: v, form }: Posted<DeviceForm>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let mut errors = FieldErrors::default();
    let status = match parse(&v, &form, &mut errors) {
        Some(new) if errors.is_empty() => match s.ops.create_device(v.actor(), new).await {
            Ok(_) => return Ok(Redirect::to("/console/admin/devices?done=adm-done-device-created").into_response()),
            Err(e) => {
                let (status, e) = refused(e, &v, &["name", "address", "protocol", "description", "vendor_ids"])?;
                errors = e;
                status
            }
        },
        _ => StatusCode::BAD_REQUEST,
    };
    let (devices, vendors) = load(&s, &v).await?;
    let body = render(&v, &devices, &vendors, &form, &errors, None);
    Ok((status, page(&v, Nav::Admin, &v.tr.t("adm-title-devices"), body)).into_response())
}

pub(super) async fn disable(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, .. }: Posted<Confirm, true>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    s.ops.disable_device(v.actor(), &DeviceId(id)).await?;
    Ok(Redirect::to("/console/admin/devices?done=adm-done-device-disabled").into_response())
}

pub(super) async fn enable(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, .. }: Posted<Confirm>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    s.ops.enable_device(v.actor(), &DeviceId(id)).await?;
    Ok(Redirect::to("/console/admin/devices?done=adm-done-device-enabled").into_response())
}
