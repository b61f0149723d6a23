//! Security (on call): the home page of what needs action — requests and
//! extensions to decide, live tunnels to watch and cut, the emergency grant,
//! grants awaiting review, the lockdown switch, the latest denials. The live
//! sections refresh from `/console/security/live/<section>`, which answer the
//! same fragment as the page, without its shell.

mod actions;
mod forms;
mod view;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::fail::Fail;
use super::form::FieldErrors;
use super::layout::{done_notice, live, page, Nav};
use super::session::Viewer;
use crate::api::ApiState;
use crate::domain::Role;
use crate::ops::{Denial, LiveTunnel, LockdownStatus, PendingDecisions, WindowView};
use crate::rights::Function;
use crate::store::{Device, Vendor};

use forms::{EmergencyInput, LockdownInput};
use view::{Names, RowFailure};

/// Denials shown on the home page.
const DENIALS_SHOWN: u32 = 20;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/security", get(home))
        .route("/console/security/live/pending", get(live_pending))
        .route("/console/security/live/tunnels", get(live_tunnels))
        .route("/console/security/live/reviews", get(live_reviews))
        .route("/console/security/live/denials", get(live_denials))
        .merge(actions::routes())
}

/// What the home page shows.
struct Home {
    pending: PendingDecisions,
    tunnels: Vec<LiveTunnel>,
    reviews: Vec<WindowView>,
    denials: Vec<Denial>,
    lockdown: LockdownStatus,
    vendors: Vec<Vendor>,
    devices: Vec<Device>,
    accounts: std::collections::HashMap<String, String>,
}

impl Home {
    async fn load(s: &ApiState, v: &Viewer) -> Result<Self, Fail> {
        let who = v.actor();
        who.may(Function::SecurityConsole)?;
        Ok(Self {
            pending: s.ops.pending_decisions(who).await?,
            tunnels: s.ops.live_tunnels(who).await?,
            reviews: s.ops.unreviewed_emergencies(who).await?,
            denials: s.ops.recent_denials(who, DENIALS_SHOWN).await?,
            lockdown: s.ops.lockdown_status(who).await?,
            vendors: s.ops.vendors(who).await?,
            devices: s.ops.devices(who).await?,
            accounts: s.ops.account_names(who).await?,
        })
    }
}

/// The forms of a page shown again after a refusal, with what was typed.
#[derive(Debug, Default)]
struct Shown {
    emergency: Option<(EmergencyInput, FieldErrors)>,
    lockdown: Option<(LockdownInput, FieldErrors)>,
    row: Option<RowFailure>,
}

#[derive(Debug, Deserialize)]
struct HomeQuery {
    done: Option<String>,
    /// With `done=sec-done-locked`: tunnels cut on this node.
    cut: Option<String>,
}

async fn home(State(s): State<ApiState>, v: Viewer, Query(q): Query<HomeQuery>) -> Result<Markup, Fail> {
    let data = Home::load(&s, &v).await?;
    let notice = match (q.done.as_deref(), q.cut.and_then(|c| c.parse::<i64>().ok())) {
        (Some("sec-done-locked"), Some(n)) => html! { p.notice role="status" { (v.tr.tn("sec-done-locked", "n", n)) } },
        (done, _) => done_notice(&v.tr, done),
    };
    Ok(render(&s, &v, &data, &Shown::default(), notice))
}

/// The page again after a refused form, with its errors, answered with `status`.
async fn again(s: &ApiState, v: &Viewer, shown: Shown, status: StatusCode) -> Result<Response, Fail> {
    let data = Home::load(s, v).await?;
    Ok((status, render(s, v, &data, &shown, html! {})).into_response())
}

fn render(s: &ApiState, v: &Viewer, data: &Home, shown: &Shown, notice: Markup) -> Markup {
    let tr = &v.tr;
    let names = Names::new(&data.vendors, &data.devices, data.accounts.clone());
    let row = shown.row.as_ref();
    let security = v.actor().role == Role::Security;
    let no_errors = FieldErrors::default();
    let (em_given, em_errors) = match &shown.emergency {
        Some((given, errors)) => (Some(given), errors),
        None => (None, &no_errors),
    };
    let lock_default = LockdownInput::default();
    let (lock_given, lock_errors) = match &shown.lockdown {
        Some((given, errors)) => (given, errors),
        None => (&lock_default, &no_errors),
    };
    let body = html! {
        (notice)
        nav.sec-jump aria-label=(tr.t("sec-jump")) {
            ul {
                li { a href="#pending" { (tr.t("sec-pending-title")) } }
                li { a href="#tunnels" { (tr.t("sec-tunnels-title")) } }
                li { a href="#emergency-grant" { (tr.t("sec-em-title")) } }
                li { a href="#reviews" { (tr.t("sec-reviews-title")) } }
                li { a href="#lockdown" { (tr.t("sec-lock-title")) } }
                li { a href="#denials" { (tr.t("sec-denials-title")) } }
            }
        }
        section #pending aria-labelledby="pending-h" {
            h2 #pending-h { (tr.t("sec-pending-title")) " " small.live-note { (tr.t("live-updating")) } }
            (live("live-pending", "/console/security/live/pending", view::pending(v, &data.pending, &names, row)))
        }
        section #tunnels aria-labelledby="tunnels-h" {
            h2 #tunnels-h { (tr.t("sec-tunnels-title")) " " small.live-note { (tr.t("live-updating")) } }
            (live("live-tunnels", "/console/security/live/tunnels", view::tunnels(v, &data.tunnels, row)))
        }
        section #emergency-grant aria-labelledby="emergency-h" {
            h2 #emergency-h { (tr.t("sec-em-title")) }
            @if security {
                p { (tr.t("sec-em-intro")) }
                (forms::emergency_form(v, &data.vendors, &data.devices, s.ops.rules.max_emergency.num_minutes(), em_given, em_errors))
            } @else {
                p.sod { small { (tr.t("sec-em-security-only")) } }
            }
        }
        section #reviews aria-labelledby="reviews-h" {
            h2 #reviews-h { (tr.t("sec-reviews-title")) " " small.live-note { (tr.t("live-updating")) } }
            (live("live-reviews", "/console/security/live/reviews", view::reviews(v, &data.reviews, &names, row)))
        }
        section #lockdown aria-labelledby="lockdown-h" {
            h2 #lockdown-h { (tr.t("sec-lock-title")) }
            (forms::lockdown(v, &data.lockdown, lock_given, lock_errors))
        }
        section #denials aria-labelledby="denials-h" {
            h2 #denials-h { (tr.t("sec-denials-title")) " " small.live-note { (tr.t("live-updating")) } }
            p { small { (tr.t("sec-denials-intro")) } }
            (live("live-denials", "/console/security/live/denials", view::denials(v, &data.denials, &names)))
        }
    };
    page(v, Nav::Security, &tr.t("sec-title"), body)
}

async fn names(s: &ApiState, v: &Viewer) -> Result<Names, Fail> {
    let vendors = s.ops.vendors(v.actor()).await?;
    let devices = s.ops.devices(v.actor()).await?;
    let accounts = s.ops.account_names(v.actor()).await?;
    Ok(Names::new(&vendors, &devices, accounts))
}

async fn live_pending(State(s): State<ApiState>, v: Viewer) -> Result<Markup, Fail> {
    v.actor().may(Function::SecurityConsole)?;
    let pending = s.ops.pending_decisions(v.actor()).await?;
    Ok(view::pending(&v, &pending, &names(&s, &v).await?, None))
}

async fn live_tunnels(State(s): State<ApiState>, v: Viewer) -> Result<Markup, Fail> {
    v.actor().may(Function::SecurityConsole)?;
    let list = s.ops.live_tunnels(v.actor()).await?;
    Ok(view::tunnels(&v, &list, None))
}

async fn live_reviews(State(s): State<ApiState>, v: Viewer) -> Result<Markup, Fail> {
    v.actor().may(Function::SecurityConsole)?;
    let list = s.ops.unreviewed_emergencies(v.actor()).await?;
    Ok(view::reviews(&v, &list, &names(&s, &v).await?, None))
}

async fn live_denials(State(s): State<ApiState>, v: Viewer) -> Result<Markup, Fail> {
    v.actor().may(Function::SecurityConsole)?;
    let list = s.ops.recent_denials(v.actor(), DENIALS_SHOWN).await?;
    Ok(view::denials(&v, &list, &names(&s, &v).await?))
}
