//! The console's words, in French and English: Fluent message catalogues
//! (`locales/<lang>/<area>.ftl`, compiled into the binary), the language chosen
//! for a request, and the formatting of dates in the hospital's time zone.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::HeaderMap;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

pub use crate::ops::Lang;

/// Every catalogue file, per language. Each area of the console owns one file.
macro_rules! catalogue {
    ($lang:literal, [$($area:literal),* $(,)?]) => {
        &[$(($area, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/locales/", $lang, "/", $area, ".ftl")))),*]
    };
}

const AREAS_FR: &[(&str, &str)] = catalogue!("fr", ["common", "security", "vendor", "auditor", "admin"]);
const AREAS_EN: &[(&str, &str)] = catalogue!("en", ["common", "security", "vendor", "auditor", "admin"]);

/// The compiled catalogues; built once.
struct Catalogues {
    bundles: HashMap<Lang, FluentBundle<FluentResource>>,
    /// Problems found while loading (a test asserts there are none).
    problems: Vec<String>,
}

static CATALOGUES: LazyLock<Catalogues> = LazyLock::new(load);

fn load() -> Catalogues {
    let mut problems = Vec::new();
    let mut bundles = HashMap::new();
    for (lang, areas) in [(Lang::Fr, AREAS_FR), (Lang::En, AREAS_EN)] {
        let id = match lang.code().parse() {
            Ok(id) => id,
            Err(e) => {
                problems.push(format!("{}: {e}", lang.code()));
                continue;
            }
        };
        let mut bundle = FluentBundle::new_concurrent(vec![id]);
        // No Unicode isolation marks around arguments: they would end up in HTML
        // attributes and in the text users copy.
        bundle.set_use_isolating(false);
        for (area, text) in areas.iter() {
            let resource = match FluentResource::try_new((*text).to_owned()) {
                Ok(r) => r,
                Err((r, errors)) => {
                    problems.push(format!("{}/{area}.ftl: {errors:?}", lang.code()));
                    r
                }
            };
            if let Err(errors) = bundle.add_resource(resource) {
                problems.push(format!("{}/{area}.ftl: {errors:?}", lang.code()));
            }
        }
        bundles.insert(lang, bundle);
    }
    for p in &problems {
        tracing::error!(problem = %p, "console message catalogue");
    }
    Catalogues { bundles, problems }
}

/// The ids of every message in a language (for the catalogue tests).
pub fn message_ids(lang: Lang) -> Vec<String> {
    let areas = match lang {
        Lang::Fr => AREAS_FR,
        Lang::En => AREAS_EN,
    };
    let mut ids = Vec::new();
    for (_, text) in areas {
        let resource = match FluentResource::try_new((*text).to_owned()) {
            Ok(r) | Err((r, _)) => r,
        };
        for entry in resource.entries() {
            if let fluent_syntax::ast::Entry::Message(m) = entry {
                ids.push(m.id.name.to_owned());
            }
        }
    }
    ids
}

/// Problems found while loading the catalogues.
pub fn catalogue_problems() -> &'static [String] {
    &CATALOGUES.problems
}

/// Translates for one language and shows times in one time zone.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
    pub tz: chrono_tz::Tz,
}

impl Tr {
    pub fn new(lang: Lang, tz: chrono_tz::Tz) -> Self {
        Self { lang, tz }
    }

    /// The message `id`; the id itself (and an error in the log) if missing.
    pub fn t(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The message `id` with arguments.
    pub fn ta(&self, id: &str, args: &[(&str, &str)]) -> String {
        let mut fargs = FluentArgs::new();
        for (k, v) in args {
            fargs.set(*k, FluentValue::from(*v));
        }
        self.format(id, Some(&fargs))
    }

    /// The message `id` with a number (for plural forms).
    pub fn tn(&self, id: &str, name: &str, n: i64) -> String {
        let mut fargs = FluentArgs::new();
        fargs.set(name, FluentValue::from(n));
        self.format(id, Some(&fargs))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let Some(bundle) = CATALOGUES.bundles.get(&self.lang) else {
            return id.to_owned();
        };
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            tracing::error!(
                id,
                lang = self.lang.code(),
                "console message missing from the catalogue"
            );
            return id.to_owned();
        };
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, args, &mut errors).into_owned();
        if !errors.is_empty() {
            tracing::error!(id, lang = self.lang.code(), ?errors, "console message formatting");
        }
        text
    }

    /// A time in the hospital's zone: `29/11/2026 14:30` (fr), `2026-11-29 14:30` (en).
    pub fn local(&self, t: DateTime<Utc>) -> String {
        let local = t.with_timezone(&self.tz);
        match self.lang {
            Lang::Fr => local.format("%d/%m/%Y %H:%M").to_string(),
            Lang::En => local.format("%Y-%m-%d %H:%M").to_string(),
        }
    }

    /// The same time in UTC, to show beside it: `13:30 UTC`, with the date when it differs.
    pub fn utc(&self, t: DateTime<Utc>) -> String {
        let local_date = t.with_timezone(&self.tz).date_naive();
        if local_date == t.date_naive() {
            t.format("%H:%M UTC").to_string()
        } else {
            match self.lang {
                Lang::Fr => t.format("%d/%m %H:%M UTC").to_string(),
                Lang::En => t.format("%m-%d %H:%M UTC").to_string(),
            }
        }
    }

    /// The value of a `datetime-local` input for `t` in the hospital's zone.
    pub fn input_value(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz).format("%Y-%m-%dT%H:%M").to_string()
    }

    /// Reads a `datetime-local` input (`2026-11-29T14:30`) as a time in the
    /// hospital's zone. A time that does not exist or exists twice there (a
    /// daylight-saving change) is refused with a message saying so.
    pub fn parse_local(&self, text: &str) -> Result<DateTime<Utc>, String> {
        let text = text.trim();
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
            .map_err(|_| self.t("err-datetime-format"))?;
        match self.tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            chrono::LocalResult::Ambiguous(_, _) => Err(self.t("err-datetime-ambiguous")),
            chrono::LocalResult::None => Err(self.t("err-datetime-skipped")),
        }
    }

    /// A duration in minutes or hours, for "time left".
    pub fn duration(&self, d: chrono::Duration) -> String {
        let minutes = d.num_minutes().max(0);
        if minutes < 120 {
            self.tn("duration-minutes", "n", minutes)
        } else {
            self.tn("duration-hours", "n", minutes / 60)
        }
    }
}

/// The language a browser prefers among ours, from `Accept-Language` (quality
/// values honoured); English when it names neither.
pub fn negotiate(headers: &HeaderMap) -> Lang {
    let Some(header) = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Lang::En;
    };
    let mut best: Option<(f32, Lang)> = None;
    for part in header.split(',').take(32) {
        let mut pieces = part.split(';');
        let Some(lang) = pieces.next().and_then(Lang::parse) else {
            continue;
        };
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map_or(Lang::En, |(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_load_and_match() {
        assert!(catalogue_problems().is_empty(), "{:?}", catalogue_problems());
        let mut fr = message_ids(Lang::Fr);
        let mut en = message_ids(Lang::En);
        fr.sort();
        en.sort();
        let only_fr: Vec<_> = fr.iter().filter(|id| !en.contains(id)).collect();
        let only_en: Vec<_> = en.iter().filter(|id| !fr.contains(id)).collect();
        assert!(
            only_fr.is_empty() && only_en.is_empty(),
            "untranslated: fr only {only_fr:?}, en only {only_en:?}"
        );
        let mut dedup = en.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), en.len(), "a message id is defined twice");
    }

    #[test]
    fn accept_language_picks_the_preferred_of_ours() {
        let h = |v: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(
                axum::http::header::ACCEPT_LANGUAGE,
                axum::http::HeaderValue::from_static(v),
            );
            negotiate(&m)
        };
        assert_eq!(h("fr-FR,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(h("de-DE,en;q=0.5,fr;q=0.7"), Lang::Fr);
        assert_eq!(h("en-GB"), Lang::En);
        assert_eq!(h("de"), Lang::En);
        assert_eq!(h("fr;q=0"), Lang::En);
        assert_eq!(negotiate(&HeaderMap::new()), Lang::En);
    }

    #[test]
    fn local_times_round_trip_and_daylight_saving_gaps_are_refused() {
        let tr = Tr::new(Lang::Fr, chrono_tz::Europe::Paris);
        let t = tr.parse_local("2026-11-29T14:30").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-29T13:30:00+00:00");
        assert_eq!(tr.local(t), "29/11/2026 14:30");
        assert_eq!(tr.utc(t), "13:30 UTC");
        assert_eq!(tr.input_value(t), "2026-11-29T14:30");
        // Summer time: UTC+2.
        assert_eq!(
            tr.parse_local("2026-07-01T10:00").unwrap().to_rfc3339(),
            "2026-07-01T08:00:00+00:00"
        );
        // 29 March 2026, 02:30 does not exist in Paris; 25 October 2026, 02:30 exists twice.
        assert_eq!(tr.parse_local("2026-03-29T02:30"), Err(tr.t("err-datetime-skipped")));
        assert_eq!(tr.parse_local("2026-10-25T02:30"), Err(tr.t("err-datetime-ambiguous")));
        assert_eq!(tr.parse_local("tomorrow"), Err(tr.t("err-datetime-format")));
        let en = Tr::new(Lang::En, chrono_tz::Europe::Paris);
        assert_eq!(en.local(t), "2026-11-29 14:30");
        // Late evening in Paris is the next day... the other way: early morning is the previous day in UTC.
        let early = en.parse_local("2026-11-30T00:30").unwrap();
        assert_eq!(en.utc(early), "11-29 23:30 UTC");
    }
}
