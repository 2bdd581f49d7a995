//! Report HTML made safe to embed in the report's document: read the way a browser reads it
//! (html5ever, in a `<div>`) and written back whole. Whatever the report leaves open (a
//! comment, a `<style>` or `<textarea>`, an attribute's quote, an element) is closed where the
//! report's text ends, so our markup after it (the other language, the report's script, the
//! boot script) stays markup. A report that is well formed reads the same afterwards.

use scraper::Html;

/// `html` with nothing left open, `<plaintext>` (which nothing can close) read as `<pre>`.
pub fn sealed(html: &str) -> String {
    let html = defuse_plaintext(html);
    Html::parse_fragment(&html).root_element().inner_html()
}

/// `<plaintext>` turns everything after it into text, its own end tag included.
fn defuse_plaintext(html: &str) -> std::borrow::Cow<'_, str> {
    let lower = html.to_ascii_lowercase();
    if !lower.contains("<plaintext") {
        return std::borrow::Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len());
    let mut last = 0;
    for (i, _) in lower.match_indices("<plaintext") {
        out.push_str(&html[last..i]);
        out.push_str("<pre data-plaintext");
        last = i + "<plaintext".len();
    }
    out.push_str(&html[last..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_open_is_closed_where_the_report_ends() {
        for (open, closed) in [
            (
                "<p>a</p><!-- CHART_DATA: {",
                "<p>a</p><!-- CHART_DATA: {-->",
            ),
            ("<style>p{}", "<style>p{}</style>"),
            ("<textarea>x", "<textarea>x</textarea>"),
            (
                "<div><section><p>x",
                "<div><section><p>x</p></section></div>",
            ),
            ("<a title=\"x>y", ""),
            ("<plaintext>x", "<pre data-plaintext=\"\">x</pre>"),
        ] {
            let out = sealed(open);
            if !closed.is_empty() {
                assert_eq!(out, closed, "{open}");
            }
            // What follows stays markup.
            let doc = Html::parse_fragment(&format!("{out}<script id=\"after\"></script>"));
            let after = scraper::Selector::parse("script#after").expect("selector");
            assert!(doc.select(&after).next().is_some(), "{open} -> {out}");
        }
    }

    #[test]
    fn a_well_formed_report_keeps_its_markup_and_comments() {
        let html = "<section id=\"s\"><h2 class=\"t\">Tổng quan</h2><!-- CHART_DATA: {\"a\":1} --><div id=\"c-container\" class=\"chart-container\"></div><p>a &amp; b</p></section>";
        assert_eq!(sealed(html), html);
    }
}
