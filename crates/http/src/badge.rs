//! SVG status badges (shields-style): one for the page, one per component. The status is in
//! the text (and the SVG's title), not only in the colour.

use crate::html::esc;

fn colour(class: &str) -> &'static str {
    match class {
        "ok" => "#1e7d32",
        "minor" => "#8a5a00",
        "major" => "#b34700",
        "critical" => "#b3261e",
        _ => "#1f5fa8",
    }
}

/// A two-part badge: `label` on grey, `message` on the status colour.
pub fn badge(label: &str, message: &str, class: &str) -> String {
    // Approximate text widths (Verdana 11px averages about 7 px a character).
    let w = |s: &str| 10 + 7 * s.chars().count();
    let (lw, mw) = (w(label), w(message));
    let total = lw + mw;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total}\" height=\"20\" role=\"img\" aria-label=\"{l}: {m}\">\
<title>{l}: {m}</title><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/><rect x=\"{lw}\" width=\"{mw}\" height=\"20\" fill=\"{c}\"/>\
<g fill=\"#fff\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\" text-anchor=\"middle\">\
<text x=\"{lx}\" y=\"14\">{l}</text><text x=\"{mx}\" y=\"14\">{m}</text></g></svg>\n",
        l = esc(label),
        m = esc(message),
        c = colour(class),
        lx = lw / 2,
        mx = lw + mw / 2,
    )
}
