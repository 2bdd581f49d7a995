//! What keeps a report's text inside the place it is put: HTML escaping, `<meta>` tags made
//! inert, and CSS and script bodies that cannot close their own element.

/// Escapes text for HTML and XML bodies and quoted attributes. Unlike tera's default it leaves
/// `/` alone, so URLs stay readable and byte-identical to what the router serves.
pub fn escape_html(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 8);
    for c in input.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Disarms `<meta http-equiv>` in report HTML: neither the sandbox nor the CSP stops a
/// `refresh` from navigating the report's frame away, so the attribute is renamed.
pub(super) fn defuse_meta(html: &str) -> std::borrow::Cow<'_, str> {
    let lower = html.to_ascii_lowercase();
    if !lower.contains("http-equiv") {
        return std::borrow::Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len() + 16);
    let mut last = 0;
    let mut from = 0;
    while let Some(start) = lower[from..].find("<meta").map(|i| i + from) {
        let end = tag_end(&lower, start);
        for (i, _) in lower[start..end].match_indices("http-equiv") {
            let at = start + i;
            out.push_str(&html[last..at]);
            out.push_str("data-disabled-");
            last = at;
        }
        from = end;
    }
    out.push_str(&html[last..]);
    std::borrow::Cow::Owned(out)
}

/// Index of the `>` closing the tag that starts at `start`, skipping quoted attribute values
/// (a `>` inside quotes does not end a tag); the text's end if it never closes.
fn tag_end(text: &str, start: usize) -> usize {
    let mut quote = None;
    for (i, b) in text.bytes().enumerate().skip(start) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return i,
            _ => {}
        }
    }
    text.len()
}

/// A CSS string literal (quotes included) that cannot end the string or the `<style>` element.
pub(super) fn css_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' | '<' | '>' => out.push_str(&format!("\\{:x} ", c as u32)),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Keeps report text from closing the element it is embedded in (`</script` -> `<\/script`).
pub(super) fn guard(text: &str, closing: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if !lower.contains(closing) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut last = 0;
    for (i, _) in lower.match_indices(closing) {
        out.push_str(&text[last..i]);
        out.push_str("<\\/");
        last = i + 2;
    }
    out.push_str(&text[last..]);
    out
}

/// Keeps report JS inside its own `<script>` element. Besides `</script`, a `<script` after a
/// `<!--` would switch the HTML tokenizer to its "double escaped" state, where the closing
/// tag of this element no longer closes it and the page's next script is swallowed. `\x3C`
/// is `<` in every place such text can sit in JS (strings, templates, regular expressions,
/// comments).
pub(super) fn guard_script(js: &str) -> String {
    let js = guard(js, "</script");
    let lower = js.to_ascii_lowercase();
    if !lower.contains("<script") {
        return js;
    }
    let mut out = String::with_capacity(js.len() + 8);
    let mut last = 0;
    for (i, _) in lower.match_indices("<script") {
        out.push_str(&js[last..i]);
        out.push_str("\\x3C");
        last = i + 1;
    }
    out.push_str(&js[last..]);
    out
}
