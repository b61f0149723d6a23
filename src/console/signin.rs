//! Sign-in (an API token exchanged for a console session), sign-out (this
//! session, or every session of the account) and the language switch.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use serde::Deserialize;

use super::fail::Fail;
use super::form::{csrf_field, decode, from_this_site, input, FieldErrors, Posted, MAX_FORM};
use super::i18n::{Lang, Tr};
use super::layout::bare;
use super::session::{
    cookie, csrf_token, request_lang, safe_next, set_cookie, LANG_COOKIE, PRE_COOKIE, SESSION_COOKIE,
};
use crate::api::ApiState;
use crate::ops::OpsError;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/lang", post(set_language))
}

#[derive(Debug, Deserialize)]
struct SignInQuery {
    next: Option<String>,
    lang: Option<String>,
    done: Option<String>,
}

/// Seconds a language cookie is kept (a year).
const LANG_COOKIE_SECS: i64 = 365 * 24 * 3600;

async fn sign_in_page(State(s): State<ApiState>, headers: HeaderMap, Query(q): Query<SignInQuery>) -> Response {
    let chosen = q.lang.as_deref().and_then(Lang::parse);
    let lang = chosen.unwrap_or_else(|| request_lang(&headers));
    let tr = Tr::new(lang, s.console.tz);
    // The form's CSRF token comes from a pre-sign-in secret in its own cookie.
    let (pre, fresh) = match cookie(&headers, PRE_COOKIE).filter(|p| p.len() == 68) {
        Some(p) => (p.to_owned(), false),
        None => (crate::token::generate_prefixed("pre_").0, true),
    };
    let next = q.next.filter(|n| safe_next(n));
    let mut response = render(
        &tr,
        &s,
        &pre,
        next.as_deref(),
        &FieldErrors::default(),
        q.done.as_deref(),
    )
    .into_response();
    if fresh {
        append_cookie(&mut response, &set_cookie(PRE_COOKIE, &pre, None));
    }
    if let Some(l) = chosen {
        append_cookie(&mut response, &lang_cookie(l));
    }
    response
}

fn lang_cookie(l: Lang) -> String {
    // Not secret, but kept like the others.
    set_cookie(LANG_COOKIE, l.code(), Some(LANG_COOKIE_SECS))
}

fn append_cookie(response: &mut Response, value: &str) {
    if let Ok(v) = header::HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn render(
    tr: &Tr,
    s: &ApiState,
    pre: &str,
    next: Option<&str>,
    errors: &FieldErrors,
    done: Option<&str>,
) -> maud::Markup {
    let idle = s.ops.rules.console_idle.num_minutes().to_string();
    let absolute = s.ops.rules.console_absolute.num_hours().to_string();
    let title = tr.t("signin-title");
    bare(
        tr,
        &title,
        html! {
            h1 { (title) }
            (super::layout::done_notice(tr, done))
            p { (tr.ta("signin-intro", &[("idle", &idle), ("absolute", &absolute)])) }
            (errors.summary(tr))
            form.stack #sign-in method="post" action="/console/sign-in" {
                (csrf_field(&csrf_token(pre)))
                @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                (input("token", &tr.t("signin-token"), "password", "", true, errors, Some(&tr.t("signin-token-help"))))
                div { button type="submit" { (tr.t("signin-submit")) } }
            }
            p.langs {
                @for l in Lang::ALL {
                    a href=(format!("/console/sign-in?lang={}", l.code())) lang=(l.code()) aria-current=[(l == tr.lang).then_some("true")] { (tr.t(&format!("lang-{}", l.code()))) }
                    " "
                }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    token: String,
    next: Option<String>,
}

async fn sign_in(State(s): State<ApiState>, req: Request) -> Result<Response, Fail> {
    let (parts, body) = req.into_parts();
    let lang = request_lang(&parts.headers);
    let tr = Tr::new(lang, s.console.tz);
    from_this_site(&parts.headers)?;
    let pre = cookie(&parts.headers, PRE_COOKIE).ok_or(Fail::Csrf)?.to_owned();
    let bytes = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| Fail::Refused(StatusCode::PAYLOAD_TOO_LARGE, tr.t("error-too-large")))?;
    let form: SignInForm = decode(&bytes, &csrf_token(&pre))?;
    let source = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let next = form.next.filter(|n| safe_next(n));
    match s.ops.console_sign_in_with_token(&form.token, source).await {
        Ok(signed) => {
            crate::api::note_caller(&parts, &crate::ops::Actor::from(signed.user.clone()));
            let to = next.unwrap_or_else(|| super::home_of(signed.user.role).to_owned());
            let mut response = Redirect::to(&to).into_response();
            let max_age = s.ops.rules.console_absolute.num_seconds();
            append_cookie(
                &mut response,
                &set_cookie(SESSION_COOKIE, &signed.cookie, Some(max_age)),
            );
            // The pre-sign-in secret is spent.
            append_cookie(&mut response, &set_cookie(PRE_COOKIE, "", Some(0)));
            if let Some(l) = signed.user.lang.as_deref().and_then(Lang::parse) {
                append_cookie(&mut response, &lang_cookie(l));
            }
            Ok(response)
        }
        Err(OpsError::Unauthenticated(_)) => {
            let mut errors = FieldErrors::default();
            errors.add("token", tr.t("signin-refused"));
            Ok((
                StatusCode::UNAUTHORIZED,
                render(&tr, &s, &pre, next.as_deref(), &errors, None),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct SignOutForm {
    #[serde(default)]
    everywhere: bool,
}

async fn sign_out(State(s): State<ApiState>, Posted { viewer, form }: Posted<SignOutForm>) -> Result<Response, Fail> {
    let n = s.ops.console_sign_out(&viewer.who, form.everywhere).await?;
    let done = if form.everywhere {
        "signed-out-everywhere"
    } else {
        "signed-out"
    };
    tracing::info!(user = %viewer.actor().id, sessions = n, everywhere = form.everywhere, "console sign-out");
    let mut response = Redirect::to(&format!("/console/sign-in?done={done}")).into_response();
    append_cookie(&mut response, &set_cookie(SESSION_COOKIE, "", Some(0)));
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct LangForm {
    lang: String,
    back: Option<String>,
}

async fn set_language(State(s): State<ApiState>, Posted { viewer, form }: Posted<LangForm>) -> Result<Response, Fail> {
    let lang = Lang::parse(&form.lang).ok_or_else(|| Fail::BadForm(format!("unknown language {:?}", form.lang)))?;
    s.ops.set_language(viewer.actor(), Some(lang)).await?;
    let back = form
        .back
        .filter(|b| safe_next(b))
        .unwrap_or_else(|| "/console/".to_owned());
    let mut response = Redirect::to(&back).into_response();
    append_cookie(&mut response, &lang_cookie(lang));
    Ok(response)
}
