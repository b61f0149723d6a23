//! The page shell: language, menu by role, the account's controls, the
//! lockdown banner (on every page while one is in force), and the main content.

use maud::{html, Markup, DOCTYPE};

use super::form::csrf_field;
use super::i18n::{Lang, Tr};
use super::session::Viewer;
use crate::domain::Role;

/// The console's areas, for the menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Security,
    Vendor,
    Audit,
    Admin,
    None,
}

impl Nav {
    const fn path(self) -> &'static str {
        match self {
            Nav::Security => "/console/security",
            Nav::Vendor => "/console/vendor",
            Nav::Audit => "/console/audit",
            Nav::Admin => "/console/admin",
            Nav::None => "/console/",
        }
    }

    const fn label(self) -> &'static str {
        match self {
            Nav::Security => "nav-security",
            Nav::Vendor => "nav-vendor",
            Nav::Audit => "nav-auditor",
            Nav::Admin => "nav-admin",
            Nav::None => "app-name",
        }
    }

    /// The areas a role is offered (each page still checks the role).
    pub fn for_role(role: Role) -> &'static [Nav] {
        match role {
            Role::Security => &[Nav::Security, Nav::Audit],
            Role::Vendor => &[Nav::Vendor],
            Role::Auditor => &[Nav::Audit],
            Role::Admin => &[Nav::Admin, Nav::Security, Nav::Audit],
        }
    }
}

/// The stylesheet and script, with the version so a new release is fetched.
fn head(tr: &Tr, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light";
            title { (title) " — " (tr.t("app-name")) }
            link rel="stylesheet" href=(super::assets::CSS_PATH);
            script src=(super::assets::JS_PATH) defer {}
        }
    }
}

/// A page without a signed-in person (sign-in, errors).
pub fn bare(tr: &Tr, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(tr.lang.code()) {
            (head(tr, title))
            body {
                a.skip href="#main" { (tr.t("skip-to-content")) }
                header.top { a.brand href="/console/" { (tr.t("app-name")) } }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// A page for `v`: `title` is its `h1`, `current` the menu entry it is under.
pub fn page(v: &Viewer, current: Nav, title: &str, body: Markup) -> Markup {
    let tr = &v.tr;
    let actor = v.actor();
    let role = tr.t(&format!("role-{}", actor.role.as_str()));
    html! {
        (DOCTYPE)
        html lang=(tr.lang.code()) {
            (head(tr, title))
            body {
                a.skip href="#main" { (tr.t("skip-to-content")) }
                header.top {
                    a.brand href="/console/" { (tr.t("app-name")) }
                    nav aria-label=(tr.t("nav-label")) {
                        ul {
                            @for n in Nav::for_role(actor.role) {
                                li { a href=(n.path()) aria-current=[(*n == current).then_some("page")] { (tr.t(n.label())) } }
                            }
                        }
                    }
                    div.account {
                        span.who { (tr.ta("signed-in-as", &[("name", &actor.name), ("role", &role)])) }
                        " " a href="/console/account" { (tr.t("auth-account-link")) }
                        (language_switch(v))
                        form method="post" action="/console/sign-out" {
                            (csrf_field(&v.csrf))
                            button.link type="submit" name="everywhere" value="false" { (tr.t("sign-out")) }
                            button.link type="submit" name="everywhere" value="true" { (tr.t("sign-out-everywhere")) }
                        }
                    }
                }
                @if let Some(l) = &v.lockdown {
                    div.lockdown #lockdown-banner role="alert" {
                        (tr.ta("lockdown-banner", &[
                            ("since", &l.set_at.map(|t| tr.local(t)).unwrap_or_default()),
                            ("reason", l.reason.as_deref().unwrap_or("")),
                        ]))
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                footer { small { (tr.ta("times-shown-in", &[("tz", tr.tz.name())])) } }
            }
        }
    }
}

fn language_switch(v: &Viewer) -> Markup {
    let tr = &v.tr;
    html! {
        form.lang method="post" action="/console/lang" {
            (csrf_field(&v.csrf))
            input type="hidden" name="back" value=(v.path);
            label for="lang-select" { (tr.t("language")) }
            select #lang-select name="lang" {
                @for l in Lang::ALL {
                    option value=(l.code()) selected[l == tr.lang] { (tr.t(&format!("lang-{}", l.code()))) }
                }
            }
            button type="submit" { (tr.t("language-switch")) }
        }
    }
}

/// A time in the hospital's zone with UTC beside it.
pub fn when(tr: &Tr, t: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339()) { (tr.local(t)) " " small.utc { "(" (tr.utc(t)) ")" } }
    }
}

/// [`when`], or a dash for never.
pub fn when_opt(tr: &Tr, t: Option<chrono::DateTime<chrono::Utc>>) -> Markup {
    match t {
        Some(t) => when(tr, t),
        None => html! { span.never { "—" } },
    }
}

/// A section refreshed by the console script from `url` (every 1.5 s while the
/// page is shown), so it stays current without reloading the page.
pub fn live(id: &str, url: &str, content: Markup) -> Markup {
    html! {
        div.live id=(id) data-live=(url) aria-live="polite" { (content) }
    }
}

/// A notice after a successful action (`?done=<message id>`), if known.
pub fn done_notice(tr: &Tr, done: Option<&str>) -> Markup {
    // Only the catalogue's notices are shown (`*-done-*`, `signed-out*`), never
    // the query's text nor another message of the catalogue.
    let known = done.filter(|d| {
        d.len() <= 64
            && d.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
            && (d.contains("-done-") || d.starts_with("signed-out"))
    });
    html! {
        @if let Some(id) = known {
            p.notice role="status" { (tr.t(id)) }
        }
    }
}

/// An empty list's message.
pub fn empty(tr: &Tr) -> Markup {
    html! { p.empty { (tr.t("empty-list")) } }
}
