//! Sign-in (name and password, then the second factor, a forced password
//! change or the enrolment the role requires; or an API token exchanged for a
//! console session), sign-out (this session, or every session of the account)
//! and the language switch.
//!
//! Between the password and the session, the browser holds only a pending
//! cookie (`__Host-portier-pending`, minutes): the stage it is at is stored
//! server-side ([`crate::store::PendingSignIn`]), and the forms of those pages
//! carry a CSRF token derived from that cookie.

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
use crate::ops::{OpsError, PasswordSignIn};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-in/password", post(sign_in_password))
        .route("/console/sign-in/code", get(code_page).post(code_post))
        .route(
            "/console/sign-in/new-password",
            get(new_password_page).post(new_password_post),
        )
        .route("/console/sign-in/enrol", get(enrol_page).post(enrol_post))
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
            section aria-labelledby="with-password" {
                h2 #with-password { (tr.t("auth-with-password")) }
                form.stack #sign-in-password method="post" action="/console/sign-in/password" {
                    (csrf_field(&csrf_token(pre)))
                    @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                    (input("name", &tr.t("auth-name"), "text", "", true, errors, None))
                    (input("password", &tr.t("auth-password"), "password", "", true, errors, None))
                    div { button type="submit" { (tr.t("signin-submit")) } }
                }
            }
            section aria-labelledby="with-token" {
                h2 #with-token { (tr.t("auth-with-token")) }
                form.stack #sign-in method="post" action="/console/sign-in" {
                    (csrf_field(&csrf_token(pre)))
                    @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                    (input("token", &tr.t("signin-token"), "password", "", true, errors, Some(&tr.t("signin-token-help"))))
                    div { button type="submit" { (tr.t("signin-submit")) } }
                }
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
        Ok(outcome) => {
            if let PasswordSignIn::SignedIn(signed) = &outcome {
                crate::api::note_caller(&parts, &crate::ops::Actor::from(signed.user.clone()));
            }
            Ok(after_step(&s, outcome, next))
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

/// The cookie of a sign-in half done (password right, more to come).
pub const PENDING_COOKIE: &str = "__Host-portier-pending";
/// How long the browser keeps it (the server forgets it after 5 minutes too).
const PENDING_COOKIE_SECS: i64 = 300;

/// The cookies of a new console session: the session, the pre-sign-in and
/// pending secrets spent, the account's language.
fn signed_in_cookies(s: &ApiState, response: &mut Response, signed: &crate::ops::SignedIn) {
    let max_age = s.ops.rules.console_absolute.num_seconds();
    append_cookie(response, &set_cookie(SESSION_COOKIE, &signed.cookie, Some(max_age)));
    append_cookie(response, &set_cookie(PRE_COOKIE, "", Some(0)));
    append_cookie(response, &set_cookie(PENDING_COOKIE, "", Some(0)));
    if let Some(l) = signed.user.lang.as_deref().and_then(Lang::parse) {
        append_cookie(response, &lang_cookie(l));
    }
}

/// `?next=…` for a stage's page, if there is a next page.
fn next_query(next: Option<&str>) -> String {
    next.map(|n| {
        let encoded: String = url::form_urlencoded::byte_serialize(n.as_bytes()).collect();
        format!("?next={encoded}")
    })
    .unwrap_or_default()
}

/// Where a step of a password sign-in leads: the session, or the next stage.
fn after_step(s: &ApiState, outcome: PasswordSignIn, next: Option<String>) -> Response {
    let (page, pending) = match outcome {
        PasswordSignIn::SignedIn(signed) => {
            let to = next.unwrap_or_else(|| super::home_of(signed.user.role).to_owned());
            let mut response = Redirect::to(&to).into_response();
            signed_in_cookies(s, &mut response, &signed);
            return response;
        }
        PasswordSignIn::NeedsSecondFactor(c) => ("/console/sign-in/code", c),
        PasswordSignIn::MustChangePassword(c) => ("/console/sign-in/new-password", c),
        PasswordSignIn::MustEnrol(c) => ("/console/sign-in/enrol", c),
    };
    let mut response = Redirect::to(&format!("{page}{}", next_query(next.as_deref()))).into_response();
    append_cookie(
        &mut response,
        &set_cookie(PENDING_COOKIE, &pending, Some(PENDING_COOKIE_SECS)),
    );
    response
}

fn source_of(parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    name: String,
    password: String,
    next: Option<String>,
}

async fn sign_in_password(State(s): State<ApiState>, req: Request) -> Result<Response, Fail> {
    let (parts, body) = req.into_parts();
    let tr = Tr::new(request_lang(&parts.headers), s.console.tz);
    from_this_site(&parts.headers)?;
    let pre = cookie(&parts.headers, PRE_COOKIE).ok_or(Fail::Csrf)?.to_owned();
    let bytes = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| Fail::Refused(StatusCode::PAYLOAD_TOO_LARGE, tr.t("error-too-large")))?;
    let form: PasswordForm = decode(&bytes, &csrf_token(&pre))?;
    let next = form.next.filter(|n| safe_next(n));
    match s
        .ops
        .sign_in_password(&form.name, &form.password, source_of(&parts))
        .await
    {
        Ok(outcome) => Ok(after_step(&s, outcome, next)),
        Err(OpsError::Unauthenticated(_)) => {
            let mut errors = FieldErrors::default();
            errors.add("password", tr.t("auth-refused"));
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
struct StageQuery {
    next: Option<String>,
}

/// The pending sign-in of the request at `stage`, with its cookie; else the
/// way back to the sign-in page.
async fn pending_at(s: &ApiState, headers: &HeaderMap, stage: &str) -> Result<(String, crate::store::User), Response> {
    let back = || Redirect::to("/console/sign-in?done=auth-done-sign-in-again").into_response();
    let Some(c) = cookie(headers, PENDING_COOKIE) else {
        return Err(back());
    };
    match s.ops.pending_sign_in(c).await {
        Ok(Some((p, user))) if p.due() == stage => Ok((c.to_owned(), user)),
        Ok(_) => Err(back()),
        Err(e) => Err(Fail::from(e).into_response()),
    }
}

/// A stage's page: a title, an introduction and a form posted back to `action`.
fn stage_page(tr: &Tr, title: &str, intro: maud::Markup, form: maud::Markup, errors: &FieldErrors) -> maud::Markup {
    bare(
        tr,
        title,
        html! {
            h1 { (title) }
            (intro)
            (errors.summary(tr))
            (form)
        },
    )
}

fn code_form(tr: &Tr, pending: &str, next: Option<&str>, errors: &FieldErrors) -> maud::Markup {
    let title = tr.t("auth-code-title");
    stage_page(
        tr,
        &title,
        html! { p { (tr.t("auth-code-intro")) } },
        html! {
            form.stack #sign-in-code method="post" action=(format!("/console/sign-in/code{}", next_query(next))) {
                (csrf_field(&csrf_token(pending)))
                (input("code", &tr.t("auth-code"), "text", "", true, errors, Some(&tr.t("auth-code-help"))))
                div { button type="submit" { (tr.t("auth-continue")) } }
            }
        },
        errors,
    )
}

async fn code_page(State(s): State<ApiState>, headers: HeaderMap, Query(q): Query<StageQuery>) -> Response {
    let tr = Tr::new(request_lang(&headers), s.console.tz);
    match pending_at(&s, &headers, "totp").await {
        Ok((pending, _)) => {
            let next = q.next.filter(|n| safe_next(n));
            code_form(&tr, &pending, next.as_deref(), &FieldErrors::default()).into_response()
        }
        Err(r) => r,
    }
}

/// Reads a stage's form, checked against the pending cookie's CSRF token.
async fn stage_form<T: serde::de::DeserializeOwned>(
    s: &ApiState,
    req: Request,
    stage: &str,
) -> Result<Result<(T, String, crate::store::User, Tr, Option<std::net::IpAddr>), Response>, Fail> {
    let (parts, body) = req.into_parts();
    let tr = Tr::new(request_lang(&parts.headers), s.console.tz);
    from_this_site(&parts.headers)?;
    let (pending, user) = match pending_at(s, &parts.headers, stage).await {
        Ok(found) => found,
        Err(r) => return Ok(Err(r)),
    };
    let bytes = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| Fail::Refused(StatusCode::PAYLOAD_TOO_LARGE, tr.t("error-too-large")))?;
    let form: T = decode(&bytes, &csrf_token(&pending))?;
    Ok(Ok((form, pending, user, tr, source_of(&parts))))
}

#[derive(Debug, Deserialize)]
struct CodeForm {
    code: String,
}

async fn code_post(State(s): State<ApiState>, Query(q): Query<StageQuery>, req: Request) -> Result<Response, Fail> {
    let (form, pending, _, tr, source) = match stage_form::<CodeForm>(&s, req, "totp").await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let next = q.next.filter(|n| safe_next(n));
    match s.ops.sign_in_second_factor(&pending, &form.code, source).await {
        Ok(outcome) => Ok(after_step(&s, outcome, next)),
        Err(OpsError::Unauthenticated(_)) => {
            let mut errors = FieldErrors::default();
            errors.add("code", tr.t("auth-refused"));
            Ok((
                StatusCode::UNAUTHORIZED,
                code_form(&tr, &pending, next.as_deref(), &errors),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

fn new_password_form(tr: &Tr, s: &ApiState, pending: &str, next: Option<&str>, errors: &FieldErrors) -> maud::Markup {
    let title = tr.t("auth-new-password-title");
    let min = s.ops.rules.password_min_length.to_string();
    stage_page(
        tr,
        &title,
        html! { p { (tr.ta("auth-new-password-intro", &[("min", &min)])) } },
        html! {
            form.stack #new-password method="post" action=(format!("/console/sign-in/new-password{}", next_query(next))) {
                (csrf_field(&csrf_token(pending)))
                (input("password", &tr.t("auth-new-password"), "password", "", true, errors, Some(&tr.ta("auth-password-help", &[("min", &min)]))))
                div { button type="submit" { (tr.t("auth-continue")) } }
            }
        },
        errors,
    )
}

async fn new_password_page(State(s): State<ApiState>, headers: HeaderMap, Query(q): Query<StageQuery>) -> Response {
    let tr = Tr::new(request_lang(&headers), s.console.tz);
    match pending_at(&s, &headers, "change_password").await {
        Ok((pending, _)) => {
            let next = q.next.filter(|n| safe_next(n));
            new_password_form(&tr, &s, &pending, next.as_deref(), &FieldErrors::default()).into_response()
        }
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct NewPasswordForm {
    password: String,
}

async fn new_password_post(
    State(s): State<ApiState>,
    Query(q): Query<StageQuery>,
    req: Request,
) -> Result<Response, Fail> {
    let (form, pending, _, tr, source) = match stage_form::<NewPasswordForm>(&s, req, "change_password").await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let next = q.next.filter(|n| safe_next(n));
    match s.ops.sign_in_change_password(&pending, &form.password, source).await {
        Ok(outcome) => Ok(after_step(&s, outcome, next)),
        Err(e @ OpsError::Invalid(_)) => {
            let mut errors = FieldErrors::from_ops(e, &tr, &[])?;
            if let Some(m) = errors.form.take() {
                errors.add("password", m);
            }
            Ok((
                StatusCode::BAD_REQUEST,
                new_password_form(&tr, &s, &pending, next.as_deref(), &errors),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The `otpauth://` URI as a QR code an authenticator app scans (inline SVG:
/// no image request, nothing the CSP must allow). None if it does not fit.
fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Inline in HTML: without the XML declaration the renderer starts with.
    let start = svg.find("<svg")?;
    svg.get(start..).map(str::to_owned)
}

/// The enrolment form: the secret (base32 and `otpauth://` URI), shown once,
/// and the first code that confirms it. The secret travels in the form: it is
/// the person's own, and only a code computed from it is accepted.
pub fn enrol_form(
    tr: &Tr,
    action: &str,
    csrf: &str,
    enrolment: &crate::ops::Enrolment,
    errors: &FieldErrors,
) -> maud::Markup {
    html! {
        p { (tr.t("auth-enrol-intro")) }
        @if let Some(svg) = qr_svg(&enrolment.uri) {
            figure #totp-qr {
                (maud::PreEscaped(svg))
                figcaption { (tr.t("auth-enrol-qr")) }
            }
        }
        dl.enrolment {
            dt { (tr.t("auth-enrol-secret")) }
            dd { code #totp-secret { (enrolment.secret) } }
            dt { (tr.t("auth-enrol-uri")) }
            dd { a #totp-uri href=(enrolment.uri) { code { (enrolment.uri) } } }
        }
        form.stack #enrol method="post" action=(action) {
            (csrf_field(csrf))
            input type="hidden" name="secret" value=(enrolment.secret);
            (input("code", &tr.t("auth-code"), "text", "", true, errors, Some(&tr.t("auth-enrol-code-help"))))
            div { button type="submit" { (tr.t("auth-enrol-confirm")) } }
        }
    }
}

/// The recovery codes, shown once.
pub fn recovery_codes(tr: &Tr, codes: &[String]) -> maud::Markup {
    html! {
        div.notice role="status" {
            p { (tr.t("auth-recovery-intro")) }
            ul #recovery-codes { @for c in codes { li { code { (c) } } } }
        }
    }
}

fn enrol_stage(
    tr: &Tr,
    pending: &str,
    next: Option<&str>,
    enrolment: &crate::ops::Enrolment,
    errors: &FieldErrors,
) -> maud::Markup {
    let title = tr.t("auth-enrol-title");
    let action = format!("/console/sign-in/enrol{}", next_query(next));
    stage_page(
        tr,
        &title,
        html! { p { (tr.t("auth-enrol-required")) } },
        enrol_form(tr, &action, &csrf_token(pending), enrolment, errors),
        errors,
    )
}

async fn enrol_page(State(s): State<ApiState>, headers: HeaderMap, Query(q): Query<StageQuery>) -> Response {
    let tr = Tr::new(request_lang(&headers), s.console.tz);
    match pending_at(&s, &headers, "enrol").await {
        Ok((pending, user)) => {
            let next = q.next.filter(|n| safe_next(n));
            let enrolment = s.ops.new_totp(&user);
            enrol_stage(&tr, &pending, next.as_deref(), &enrolment, &FieldErrors::default()).into_response()
        }
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct EnrolForm {
    secret: String,
    code: String,
}

async fn enrol_post(State(s): State<ApiState>, Query(q): Query<StageQuery>, req: Request) -> Result<Response, Fail> {
    let (form, pending, user, tr, source) = match stage_form::<EnrolForm>(&s, req, "enrol").await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let next = q.next.filter(|n| safe_next(n));
    match s.ops.sign_in_enrol(&pending, &form.secret, &form.code, source).await {
        Ok((outcome, codes)) => {
            // The recovery codes are shown once, on this page; the session's
            // cookies go with it and the link continues.
            let (to, signed) = match outcome {
                PasswordSignIn::SignedIn(signed) => (
                    next.unwrap_or_else(|| super::home_of(signed.user.role).to_owned()),
                    Some(signed),
                ),
                _ => ("/console/sign-in".to_owned(), None),
            };
            let title = tr.t("auth-enrolled-title");
            let mut response = bare(
                &tr,
                &title,
                html! {
                    h1 { (title) }
                    (recovery_codes(&tr, &codes))
                    p { a #continue href=(to) { (tr.t("auth-continue")) } }
                },
            )
            .into_response();
            if let Some(signed) = signed {
                signed_in_cookies(&s, &mut response, &signed);
            }
            Ok(response)
        }
        Err(e @ (OpsError::Invalid(_) | OpsError::Conflict(_))) => {
            let mut errors = FieldErrors::default();
            errors.add("code", FieldErrors::from_ops(e, &tr, &[])?.form.unwrap_or_default());
            let enrolment = crate::ops::Ops::enrolment_of(&user, form.secret);
            Ok((
                StatusCode::BAD_REQUEST,
                enrol_stage(&tr, &pending, next.as_deref(), &enrolment, &errors),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}
