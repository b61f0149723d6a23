//! The timeline: the windows of a vendor or a device over a date range, by
//! day of start, each with the sessions it carried.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use maud::html;

use super::{allow, filter_form, sessions_table, tabs, FilterQuery, Names, Tab, MAX_ROWS};
use crate::api::ApiState;
use crate::console::i18n::{Lang, Tr};
use crate::console::layout::{empty, page, when, Nav};
use crate::console::{Fail, Viewer};
use crate::ops::{TimelineQuery, TimelineWindow};

/// The range shown when none is given: a week back, a week ahead.
const DEFAULT_SPAN_DAYS: i64 = 7;

/// The local day of `t`, as a heading.
fn day(tr: &Tr, t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&tr.tz);
    match tr.lang {
        Lang::Fr => local.format("%d/%m/%Y").to_string(),
        Lang::En => local.format("%Y-%m-%d").to_string(),
    }
}

pub(super) async fn show(State(s): State<ApiState>, v: Viewer, Query(q): Query<FilterQuery>) -> Result<Response, Fail> {
    allow(&v, Tab::Timeline)?;
    let tr = &v.tr;
    let mut f = q.parse(tr);
    let now = s.clock.now();
    let since = f.since.unwrap_or(now - Duration::days(DEFAULT_SPAN_DAYS));
    let until = f.until.unwrap_or(now + Duration::days(DEFAULT_SPAN_DAYS));
    if until <= since && f.errors.get("until").is_none() {
        f.errors.add("until", tr.t("aud-err-until-after-since"));
    }
    let names = Names::load(&s, &v).await?;
    let mut windows: Vec<TimelineWindow> = if f.errors.is_empty() {
        let q = TimelineQuery {
            vendor_id: f.vendor_id.clone(),
            device_id: f.device_id.clone(),
            since,
            until,
        };
        s.ops.timeline(v.actor(), &q).await?
    } else {
        Vec::new()
    };
    let cut = windows.len() > MAX_ROWS;
    windows.truncate(MAX_ROWS);
    let status = if f.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    // Grouped by the local day each window starts on (they are sorted by start).
    let mut days: Vec<(String, Vec<&TimelineWindow>)> = Vec::new();
    for w in &windows {
        let d = day(tr, w.window.starts_at);
        match days.last_mut() {
            Some((last, list)) if *last == d => list.push(w),
            _ => days.push((d, vec![w])),
        }
    }
    let body = html! {
        (tabs(&v, Tab::Timeline))
        p { (tr.t("aud-timeline-intro")) }
        (filter_form(&v, "timeline-filter", "/console/audit", &q, &f, &names, Some((since, until)), false))
        section #timeline aria-labelledby="timeline-title" {
            h2 #timeline-title { (tr.tn("aud-timeline-count", "n", i64::try_from(windows.len()).unwrap_or(i64::MAX))) }
            @if cut { p.notice { (tr.tn("aud-list-cut-period", "n", i64::try_from(MAX_ROWS).unwrap_or(i64::MAX))) } }
            @if windows.is_empty() { (empty(tr)) }
            @for (d, list) in &days {
                h3.day { (d) }
                ol.timeline {
                    @for w in list {
                        @let win = &w.window;
                        @let state = win.state.as_str();
                        li.tl-window data-window=(win.id) data-state=(state) {
                            div.tl-head {
                                strong { (names.vendor(&win.vendor_id)) }
                                " — " (names.devices_of(&win.device_ids)) " "
                                span.badge.state data-state=(state) { (tr.t(&format!("aud-state-{state}"))) }
                                @if win.emergency { " " span.badge.warn { (tr.t("aud-emergency")) } }
                            }
                            p.tl-when { (when(tr, win.starts_at)) " → " (when(tr, win.ends_at)) }
                            p.tl-reason { (win.reason) }
                            @if w.sessions.is_empty() {
                                p.empty { (tr.t("aud-no-sessions")) }
                            } @else {
                                (sessions_table(tr, &names, w.sessions.iter().map(|x| (&x.session, Some(x.live)))))
                            }
                        }
                    }
                }
            }
        }
    };
    Ok((status, page(&v, Nav::Audit, &tr.t("aud-title-timeline"), body)).into_response())
}
