//! The dossier's own Markdown (headings, lists, tables, code blocks, inline
//! code, bold) as one self-contained HTML page. Only that subset: the input is
//! generated here, never a user's Markdown.

use crate::rights::escape_html;

fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(&escape_html(part));
            out.push_str("</code>");
        } else {
            let mut bold = false;
            for (j, seg) in escape_html(part).split("**").enumerate() {
                if j > 0 {
                    out.push_str(if bold { "</strong>" } else { "<strong>" });
                    bold = !bold;
                }
                out.push_str(seg);
            }
            if bold {
                out.push_str("</strong>");
            }
        }
    }
    out
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// Markdown (the subset above) to a complete HTML page titled `title`.
pub fn page(title: &str, markdown: &str, lang: &str) -> String {
    let mut body = String::new();
    let mut lines = markdown.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("```") {
            let _ = rest;
            body.push_str("<pre><code>");
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                body.push_str(&escape_html(l));
                body.push('\n');
            }
            body.push_str("</code></pre>\n");
        } else if line.starts_with('#') {
            let level = line.chars().take_while(|c| *c == '#').count().min(6);
            body.push_str(&format!("<h{level}>{}</h{level}>\n", inline(line[level..].trim())));
        } else if line.starts_with("- ") {
            body.push_str("<ul>\n");
            let mut item = Some(line);
            while let Some(l) = item {
                body.push_str(&format!("<li>{}</li>\n", inline(&l[2..])));
                item = lines.next_if(|n| n.starts_with("- "));
            }
            body.push_str("</ul>\n");
        } else if line.starts_with('|') {
            body.push_str("<table>\n<thead><tr>");
            for c in cells(line) {
                body.push_str(&format!("<th>{}</th>", inline(&c)));
            }
            body.push_str("</tr></thead>\n<tbody>\n");
            let _separator = lines.next_if(|n| n.starts_with("|") && n.contains("---"));
            while let Some(l) = lines.next_if(|n| n.starts_with('|')) {
                body.push_str("<tr>");
                for c in cells(l) {
                    body.push_str(&format!("<td>{}</td>", inline(&c)));
                }
                body.push_str("</tr>\n");
            }
            body.push_str("</tbody></table>\n");
        } else if !line.trim().is_empty() {
            body.push_str(&format!("<p>{}</p>\n", inline(line)));
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;max-width:75em;margin:auto;padding:1em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.2em .5em;text-align:left;vertical-align:top}}code{{background:#eee}}pre{{background:#eee;padding:.5em;overflow:auto}}</style></head>\n<body>\n{body}</body></html>\n",
        escape_html(title)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_the_subset() {
        let html = super::page(
            "T",
            "# A <b>\n\n- `x|y` **z**\n\n| a | b |\n| --- | --- |\n| 1 \\| 2 | 3 |\n",
            "en",
        );
        assert!(html.contains("<h1>A &lt;b&gt;</h1>"));
        assert!(html.contains("<li><code>x|y</code> <strong>z</strong></li>"));
        assert!(html.contains("<td>1 | 2</td><td>3</td>"));
    }
}
