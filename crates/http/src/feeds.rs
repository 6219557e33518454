//! `/history.atom` (RFC 4287) and `/history.rss` (RSS 2.0): one entry per incident or
//! maintenance update, newest first, at most [`FEED_ENTRIES`]. Entry ids are stable forever:
//! derived from the page URL and the update's id, which never changes.

use std::fmt::Write as _;

use statusmesh_model::{State, Timestamp};

use crate::html::esc;

pub const FEED_ENTRIES: usize = 100;

struct Entry {
    id: String,
    link: String,
    title: String,
    body: String,
    at: Timestamp,
}

fn entries(state: &State) -> Vec<Entry> {
    let base = state.page.url.trim_end_matches('/');
    let mut out = Vec::new();
    for i in state.incidents.values() {
        for u in &i.updates {
            let link = format!("{base}/incidents/{}", i.id);
            out.push(Entry {
                id: format!("{link}#update-{}", u.id),
                link,
                title: format!("{}: {}", i.name, u.status),
                body: u.body.clone(),
                at: u.created_at,
            });
        }
    }
    for m in state.maintenances.values() {
        for u in &m.updates {
            let link = format!("{base}/incidents/{}", m.id);
            out.push(Entry {
                id: format!("{link}#update-{}", u.id),
                link,
                title: format!("{} (maintenance): {}", m.name, u.status),
                body: u.body.clone(),
                at: u.created_at,
            });
        }
    }
    out.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
    out.truncate(FEED_ENTRIES);
    out
}

fn rfc822(t: Timestamp) -> String {
    t.to_datetime()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

pub fn atom(state: &State) -> String {
    let base = state.page.url.trim_end_matches('/');
    let list = entries(state);
    let updated = list.first().map_or(state.clock, |e| e.at);
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
<id>{base}/history.atom</id><title>{name} status history</title><updated>{updated}</updated>\
<link rel=\"self\" type=\"application/atom+xml\" href=\"{base}/history.atom\"/><link rel=\"alternate\" type=\"text/html\" href=\"{base}/\"/>\
<author><name>{name}</name></author>",
        base = esc(base),
        name = esc(&state.page.name),
    );
    for e in list {
        let _ = write!(
            s,
            "<entry><id>{}</id><title>{}</title><updated>{}</updated><published>{}</published>\
<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/><content type=\"text\">{}</content></entry>",
            esc(&e.id),
            esc(&e.title),
            e.at,
            e.at,
            esc(&e.link),
            esc(&e.body)
        );
    }
    s.push_str("</feed>\n");
    s
}

pub fn rss(state: &State) -> String {
    let base = state.page.url.trim_end_matches('/');
    let list = entries(state);
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\"><channel>\
<title>{name} status history</title><link>{base}/</link><description>Incidents and maintenance for {name}</description>\
<atom:link href=\"{base}/history.rss\" rel=\"self\" type=\"application/rss+xml\"/>",
        base = esc(base),
        name = esc(&state.page.name),
    );
    if let Some(first) = list.first() {
        let _ = write!(s, "<lastBuildDate>{}</lastBuildDate>", rfc822(first.at));
    }
    for e in list {
        let _ = write!(
            s,
            "<item><title>{}</title><link>{}</link><guid isPermaLink=\"false\">{}</guid><pubDate>{}</pubDate><description>{}</description></item>",
            esc(&e.title),
            esc(&e.link),
            esc(&e.id),
            rfc822(e.at),
            esc(&e.body)
        );
    }
    s.push_str("</channel></rss>\n");
    s
}
