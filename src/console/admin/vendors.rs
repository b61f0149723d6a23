//! Vendors, their declared networks, and their technicians.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::technicians::TechnicianForm;
use super::{admin_only, checked, filled, refused, state, tabs, Tab};
use crate::api::ApiState;
use crate::console::form::{csrf_field, input, textarea, FieldErrors};
use crate::console::layout::{done_notice, empty, page, when};
use crate::console::{Fail, Nav, Posted, Viewer};
use crate::domain::{one_line, VendorId};
use crate::store::{Device, NewVendor, Technician, Vendor};

#[derive(Debug, Default, Deserialize)]
pub(super) struct DoneQuery {
    pub(super) done: Option<String>,
}

/// A vendor to create, as typed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct VendorForm {
    #[serde(default)]
    name: String,
    /// Networks, one per line (or separated by commas or spaces).
    #[serde(default)]
    networks: String,
    security_contact: Option<String>,
    /// The admin's consent to networks broader than the policy's minimum prefix.
    allow_broad_networks: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct NetworksForm {
    #[serde(default)]
    networks: String,
    allow_broad_networks: Option<String>,
}

/// A restrictive action's form: its CSRF token only.
#[derive(Debug, Deserialize)]
pub(super) struct Confirm {}

fn network_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses the networks as the API does: the breadth rule applies unless the
/// admin consents (`allow_broad`); errors go next to the `networks` field.
fn parse_networks(
    s: &ApiState,
    v: &Viewer,
    text: &str,
    allow_broad: bool,
    errors: &mut FieldErrors,
) -> Vec<ipnet::IpNet> {
    let list = network_list(text);
    if list.is_empty() {
        errors.add("networks", v.tr.t("adm-err-networks-empty"));
        return Vec::new();
    }
    let breadth = (!allow_broad).then_some(s.limits.networks);
    crate::api::parse_networks(&list, breadth).unwrap_or_else(|e| {
        errors.add("networks", v.tr.ta("error-refused", &[("message", &e.message)]));
        Vec::new()
    })
}

/// A one-line text checked as the API checks it, the error next to its field.
pub(super) fn text(v: &Viewer, field: &'static str, value: &str, max: usize, errors: &mut FieldErrors) -> String {
    one_line(field, value, max).unwrap_or_else(|e| {
        errors.add(field, v.tr.ta("error-refused", &[("message", &e.to_string())]));
        String::new()
    })
}

fn networks_text(vendor: &Vendor) -> String {
    vendor
        .networks
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn consent(v: &Viewer, checked: bool, breadth: crate::domain::NetworkBreadth) -> Markup {
    let min = v.tr.ta(
        "adm-breadth",
        &[
            ("v4", &breadth.min_prefix_v4.to_string()),
            ("v6", &breadth.min_prefix_v6.to_string()),
        ],
    );
    html! {
        fieldset {
            legend { (v.tr.t("adm-consent")) }
            label {
                input type="checkbox" name="allow_broad_networks" value="true" checked[checked];
                " " (v.tr.t("adm-allow-broad"))
            }
            small { (min) }
        }
    }
}

fn list_page(
    v: &Viewer,
    breadth: crate::domain::NetworkBreadth,
    vendors: &[Vendor],
    devices: &[Device],
    draft: &VendorForm,
    errors: &FieldErrors,
    done: Option<&str>,
) -> Markup {
    let tr = &v.tr;
    let mut assigned: HashMap<&VendorId, Vec<&str>> = HashMap::new();
    for d in devices {
        for vid in &d.vendor_ids {
            assigned.entry(vid).or_default().push(d.name.as_str());
        }
    }
    let cols = [
        tr.t("adm-col-name"),
        tr.t("adm-col-networks"),
        tr.t("adm-col-devices"),
        tr.t("adm-col-contact"),
        tr.t("adm-col-state"),
        tr.t("adm-col-actions"),
    ];
    html! {
        (tabs(v, Tab::Vendors))
        (done_notice(tr, done))
        section #vendors aria-labelledby="vendors-title" {
            h2 #vendors-title { (tr.t("adm-vendors-title")) }
            @if vendors.is_empty() { (empty(tr)) } @else {
                div.table-wrap { table.responsive {
                    thead { tr { @for c in &cols { th scope="col" { (c) } } } }
                    tbody {
                        @for x in vendors {
                            tr data-vendor=(x.id) {
                                td data-label=(cols[0]) { a href=(format!("/console/admin/vendors/{}", x.id)) { (x.name) } }
                                td data-label=(cols[1]) { @for n in &x.networks { code { (n) } " " } }
                                td data-label=(cols[2]) {
                                    (assigned.get(&x.id).map(|d| d.join(", ")).unwrap_or_default())
                                }
                                td data-label=(cols[3]) { (x.security_contact.as_deref().unwrap_or("")) }
                                td data-label=(cols[4]) { (state(v, x.enabled, "adm-disabled")) }
                                td data-label=(cols[5]) { (switch(v, x)) }
                            }
                        }
                    }
                } }
            }
        }
        section #new-vendor aria-labelledby="new-vendor-title" {
            h2 #new-vendor-title { (tr.t("adm-vendor-create-title")) }
            (errors.summary(tr))
            form #create-vendor.stack method="post" action="/console/admin/vendors" {
                (csrf_field(&v.csrf))
                (input("name", &tr.t("adm-vendor-name"), "text", &draft.name, true, errors, None))
                (textarea("networks", &tr.t("adm-networks"), &draft.networks, true, errors))
                small { (tr.t("adm-networks-help")) }
                (input("security_contact", &tr.t("adm-contact"), "text", draft.security_contact.as_deref().unwrap_or(""), false, errors, None))
                (consent(v, checked(&draft.allow_broad_networks), breadth))
                div { button type="submit" { (tr.t("adm-vendor-create")) } }
            }
        }
    }
}

/// The disable or enable form of a vendor.
fn switch(v: &Viewer, x: &Vendor) -> Markup {
    html! {
        @if x.enabled {
            form.inline.disable-vendor method="post" action=(format!("/console/admin/vendors/{}/disable", x.id)) {
                (csrf_field(&v.csrf))
                button.danger type="submit" { (v.tr.t("adm-disable")) }
            }
        } @else {
            form.inline.enable-vendor method="post" action=(format!("/console/admin/vendors/{}/enable", x.id)) {
                (csrf_field(&v.csrf))
                button.secondary type="submit" { (v.tr.t("adm-enable")) }
            }
        }
    }
}

async fn vendors_and_devices(s: &ApiState, v: &Viewer) -> Result<(Vec<Vendor>, Vec<Device>), Fail> {
    Ok((s.ops.vendors(v.actor()).await?, s.ops.devices(v.actor()).await?))
}

pub(super) async fn list(State(s): State<ApiState>, v: Viewer, Query(q): Query<DoneQuery>) -> Result<Response, Fail> {
    admin_only(&v)?;
    let (vendors, devices) = vendors_and_devices(&s, &v).await?;
    let body = list_page(
        &v,
        s.limits.networks,
        &vendors,
        &devices,
        &VendorForm::default(),
        &FieldErrors::default(),
        q.done.as_deref(),
    );
    Ok(page(&v, Nav::Admin, &v.tr.t("adm-title"), body).into_response())
}

pub(super) async fn create(
    State(s): State<ApiState>,
    Posted { viewer: v, form }: Posted<VendorForm>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let mut errors = FieldErrors::default();
    let allow_broad = checked(&form.allow_broad_networks);
    let name = text(&v, "name", &form.name, 200, &mut errors);
    let networks = parse_networks(&s, &v, &form.networks, allow_broad, &mut errors);
    let contact = filled(&form.security_contact).map(|c| text(&v, "security_contact", c, 200, &mut errors));
    let status = if errors.is_empty() {
        let new = NewVendor {
            name,
            networks,
            security_contact: contact,
        };
        match s.ops.create_vendor(v.actor(), new, allow_broad).await {
            Ok(created) => {
                return Ok(Redirect::to(&format!(
                    "/console/admin/vendors/{}?done=adm-done-vendor-created",
                    created.id
                ))
                .into_response())
            }
            Err(e) => {
                let (status, e) = refused(e, &v, &["name", "networks"])?;
                errors = e;
                status
            }
        }
    } else {
        StatusCode::BAD_REQUEST
    };
    let (vendors, devices) = vendors_and_devices(&s, &v).await?;
    let body = list_page(&v, s.limits.networks, &vendors, &devices, &form, &errors, None);
    Ok((status, page(&v, Nav::Admin, &v.tr.t("adm-title"), body)).into_response())
}

/// What the vendor page shows besides the vendor.
#[derive(Default)]
pub(super) struct VendorExtras<'a> {
    pub(super) networks: Option<&'a NetworksForm>,
    pub(super) networks_errors: FieldErrors,
    pub(super) technician: Option<&'a TechnicianForm>,
    pub(super) technician_errors: FieldErrors,
    /// A certificate just signed: the technician and its PEM.
    pub(super) signed: Option<(&'a Technician, &'a str)>,
    pub(super) done: Option<&'a str>,
}

pub(super) async fn vendor_page(
    s: &ApiState,
    v: &Viewer,
    id: &VendorId,
    extras: VendorExtras<'_>,
) -> Result<Markup, Fail> {
    let vendor = s.ops.vendor(v.actor(), id).await?;
    let technicians = s.ops.technicians(v.actor(), id).await?;
    let devices: Vec<Device> = s
        .ops
        .devices(v.actor())
        .await?
        .into_iter()
        .filter(|d| d.vendor_ids.contains(id))
        .collect();
    let tr = &v.tr;
    let nets = extras
        .networks
        .map_or_else(|| networks_text(&vendor), |f| f.networks.clone());
    let broad = extras.networks.is_some_and(|f| checked(&f.allow_broad_networks));
    let tech_draft = extras.technician;
    let cols = [
        tr.t("adm-col-name"),
        tr.t("adm-col-subject"),
        tr.t("adm-col-fingerprint"),
        tr.t("adm-col-valid-until"),
        tr.t("adm-col-state"),
        tr.t("adm-col-actions"),
    ];
    let body = html! {
        (tabs(v, Tab::Vendors))
        (done_notice(tr, extras.done))
        p { a href="/console/admin" { (tr.t("adm-back-vendors")) } }
        dl.facts {
            dt { (tr.t("adm-col-state")) } dd { (state(v, vendor.enabled, "adm-disabled")) " " (switch(v, &vendor)) }
            dt { (tr.t("adm-col-contact")) } dd { (vendor.security_contact.as_deref().unwrap_or("")) }
            dt { (tr.t("adm-col-devices")) }
            dd { @if devices.is_empty() { (tr.t("none")) } @for d in &devices { code { (d.name) } " " } }
            dt { (tr.t("adm-created")) } dd { (when(tr, vendor.created_at)) }
        }
        @if let Some((t, pem)) = extras.signed {
            section #certificate.notice aria-labelledby="certificate-title" {
                h2 #certificate-title { (tr.ta("adm-certificate-title", &[("name", &t.name)])) }
                p { (tr.t("adm-certificate-intro")) }
                label for="certificate-pem" { (tr.t("adm-certificate-pem")) }
                textarea #certificate-pem readonly rows="12" { (pem) }
                p { a #certificate-download href=(format!("/console/admin/vendors/{}/technicians/{}/certificate", vendor.id, t.id)) download { (tr.t("adm-certificate-download")) } }
            }
        }
        section #networks-section aria-labelledby="networks-title" {
            h2 #networks-title { (tr.t("adm-networks-title")) }
            p { (tr.t("adm-networks-intro")) }
            (extras.networks_errors.summary(tr))
            form #networks.stack method="post" action=(format!("/console/admin/vendors/{}/networks", vendor.id)) {
                (csrf_field(&v.csrf))
                (textarea("networks", &tr.t("adm-networks"), &nets, true, &extras.networks_errors))
                small { (tr.t("adm-networks-help")) }
                (consent(v, broad, s.limits.networks))
                div { button type="submit" { (tr.t("adm-networks-replace")) } }
            }
        }
        section #technicians aria-labelledby="technicians-title" {
            h2 #technicians-title { (tr.t("adm-technicians-title")) }
            @if technicians.is_empty() { (empty(tr)) } @else {
                div.table-wrap { table.responsive {
                    thead { tr { @for c in &cols { th scope="col" { (c) } } } }
                    tbody {
                        @for t in &technicians {
                            tr data-technician=(t.id) {
                                td data-label=(cols[0]) { (t.name) }
                                td data-label=(cols[1]) { code { (t.subject) } }
                                td data-label=(cols[2]) { code.fingerprint { (t.fingerprint.to_hex()) } }
                                td data-label=(cols[3]) { (when(tr, t.not_after)) }
                                td data-label=(cols[4]) { (state(v, t.revoked_at.is_none(), "adm-revoked")) }
                                td data-label=(cols[5]) {
                                    a href=(format!("/console/admin/vendors/{}/technicians/{}/certificate", vendor.id, t.id)) download { (tr.t("adm-certificate-download")) }
                                    @if t.revoked_at.is_none() {
                                        form.inline.revoke method="post" action=(format!("/console/admin/vendors/{}/technicians/{}/revoke", vendor.id, t.id)) {
                                            (csrf_field(&v.csrf))
                                            button.danger type="submit" { (tr.t("adm-revoke")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
            h3 { (tr.t("adm-technician-add-title")) }
            p { (tr.t("adm-technician-add-intro")) }
            (extras.technician_errors.summary(tr))
            form #add-technician.stack method="post" action=(format!("/console/admin/vendors/{}/technicians", vendor.id)) {
                (csrf_field(&v.csrf))
                (input("name", &tr.t("adm-technician-name"), "text", tech_draft.map_or("", |t| t.name.as_str()), true, &extras.technician_errors, None))
                (textarea("csr_pem", &tr.t("adm-csr"), tech_draft.map_or("", |t| t.csr_pem.as_str()), true, &extras.technician_errors))
                small { (tr.t("adm-csr-help")) }
                div { button type="submit" { (tr.t("adm-technician-add")) } }
            }
        }
    };
    Ok(page(
        v,
        Nav::Admin,
        &tr.ta("adm-vendor-title", &[("name", &vendor.name)]),
        body,
    ))
}

pub(super) async fn show(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let extras = VendorExtras {
        done: q.done.as_deref(),
        ..VendorExtras::default()
    };
    Ok(vendor_page(&s, &v, &VendorId(id), extras).await?.into_response())
}

pub(super) async fn replace_networks(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, form }: Posted<NetworksForm>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let id = VendorId(id);
    let mut errors = FieldErrors::default();
    let allow_broad = checked(&form.allow_broad_networks);
    let networks = parse_networks(&s, &v, &form.networks, allow_broad, &mut errors);
    let status = if errors.is_empty() {
        match s
            .ops
            .replace_vendor_networks(v.actor(), &id, networks, allow_broad)
            .await
        {
            Ok(_) => {
                return Ok(
                    Redirect::to(&format!("/console/admin/vendors/{id}?done=adm-done-networks-replaced"))
                        .into_response(),
                )
            }
            Err(e) => {
                let (status, e) = refused(e, &v, &["networks"])?;
                errors = e;
                status
            }
        }
    } else {
        StatusCode::BAD_REQUEST
    };
    let extras = VendorExtras {
        networks: Some(&form),
        networks_errors: errors,
        ..VendorExtras::default()
    };
    Ok((status, vendor_page(&s, &v, &id, extras).await?).into_response())
}

pub(super) async fn disable(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, .. }: Posted<Confirm, true>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let x = s.ops.disable_vendor(v.actor(), &VendorId(id)).await?;
    Ok(Redirect::to(&format!(
        "/console/admin/vendors/{}?done=adm-done-vendor-disabled",
        x.id
    ))
    .into_response())
}

pub(super) async fn enable(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Posted { viewer: v, .. }: Posted<Confirm>,
) -> Result<Response, Fail> {
    admin_only(&v)?;
    let x = s.ops.enable_vendor(v.actor(), &VendorId(id)).await?;
    Ok(Redirect::to(&format!("/console/admin/vendors/{}?done=adm-done-vendor-enabled", x.id)).into_response())
}
