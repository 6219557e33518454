//! The server-rendered status page: works without JavaScript, readable on a phone, light and
//! dark (`prefers-color-scheme`), semantic HTML, and every status spelled out in text with a
//! symbol, never by colour alone. Pages are rendered once per applied index; the stale notice is
//! the only per-request part and is spliced in at [`STALE_MARKER`].

use std::fmt::Write as _;

use chrono_tz::Tz;
use statusmesh_model::{
    Component, ComponentStatus, Impact, Incident, IncidentStatus, Indicator, Maintenance,
    MaintenanceStatus, State, Timestamp,
};

use crate::uptime::{human_ms, uptime};

/// Where a stale node inserts its notice.
pub const STALE_MARKER: &str = "<!--statusmesh:stale-->";
pub const HISTORY_PAGE_SIZE: usize = 25;

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
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

/// Text, symbol and CSS class of a component status.
pub fn component_label(s: ComponentStatus) -> (&'static str, &'static str, &'static str) {
    match s {
        ComponentStatus::Operational => ("Operational", "✔", "ok"),
        ComponentStatus::UnderMaintenance => ("Under maintenance", "⚙", "maint"),
        ComponentStatus::DegradedPerformance => ("Degraded performance", "▲", "minor"),
        ComponentStatus::PartialOutage => ("Partial outage", "◆", "major"),
        ComponentStatus::MajorOutage => ("Major outage", "✖", "critical"),
    }
}

pub fn indicator_class(i: Indicator) -> (&'static str, &'static str) {
    match i {
        Indicator::None => ("ok", "✔"),
        Indicator::Maintenance => ("maint", "⚙"),
        Indicator::Minor => ("minor", "▲"),
        Indicator::Major => ("major", "◆"),
        Indicator::Critical => ("critical", "✖"),
    }
}

fn incident_status_text(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Investigating => "Investigating",
        IncidentStatus::Identified => "Identified",
        IncidentStatus::Monitoring => "Monitoring",
        IncidentStatus::Resolved => "Resolved",
        IncidentStatus::Postmortem => "Postmortem",
    }
}

fn maintenance_status_text(s: MaintenanceStatus) -> &'static str {
    match s {
        MaintenanceStatus::Scheduled => "Scheduled",
        MaintenanceStatus::InProgress => "In progress",
        MaintenanceStatus::Verifying => "Verifying",
        MaintenanceStatus::Completed => "Completed",
        MaintenanceStatus::Cancelled => "Cancelled",
    }
}

fn impact_class(i: Impact) -> &'static str {
    match i {
        Impact::None => "ok",
        Impact::Minor => "minor",
        Impact::Major => "major",
        Impact::Critical => "critical",
    }
}

const CSS: &str = r#"
:root{--bg:#fff;--fg:#1a1a1a;--muted:#555;--card:#f5f6f8;--line:#d6d9de;--ok:#1e7d32;--minor:#8a5a00;--major:#b34700;--critical:#b3261e;--maint:#1f5fa8;--none:#9aa0a6}
@media (prefers-color-scheme:dark){:root{--bg:#121417;--fg:#eceff1;--muted:#b0b6bc;--card:#1d2126;--line:#343a41;--ok:#6fcf7b;--minor:#f0c05a;--major:#ff9a5c;--critical:#ff8a80;--maint:#8ab4f8;--none:#5f6368}}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main,header,footer{max-width:52rem;margin:0 auto;padding:0 1rem}header{padding-top:1.5rem}h1{font-size:1.6rem;margin:.2rem 0}
a{color:var(--maint)}.banner{border:2px solid currentColor;border-radius:.5rem;padding:1rem;margin:1rem 0;font-size:1.25rem;font-weight:600}
.ok{color:var(--ok)}.minor{color:var(--minor)}.major{color:var(--major)}.critical{color:var(--critical)}.maint{color:var(--maint)}
.stale{background:var(--card);border-left:4px solid var(--major);padding:.75rem 1rem;margin:1rem 0}
section{margin:1.5rem 0}.card{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:.75rem 0}
ul.components{list-style:none;padding:0;margin:0}ul.components li{display:flex;justify-content:space-between;gap:1rem;padding:.5rem 0;border-bottom:1px solid var(--line)}
ul.components ul{list-style:none;padding-left:1rem}.status{white-space:nowrap;font-weight:600}
ol.timeline{list-style:none;padding:0}ol.timeline li{border-left:3px solid var(--line);padding:.25rem 0 .75rem .75rem}
time,.muted{color:var(--muted)}.bars{display:flex;gap:1px;height:2rem;margin:.25rem 0}.bars span{flex:1;border-radius:1px;background:var(--ok)}
.bars span.minor{background:var(--minor)}.bars span.major{background:var(--major)}.bars span.critical{background:var(--critical)}.bars span.maint{background:var(--maint)}.bars span.none{background:var(--none)}
.pager{display:flex;justify-content:space-between}
"#;

/// Renders `/`, `/incidents/<id>` and `/history/<n>`.
#[derive(Debug)]
pub struct Html<'a> {
    state: &'a State,
    tz: Tz,
    region: &'a str,
    /// Wall-clock time of the rendering: uptime bars end "today". Display only; it never
    /// feeds back into replicated state.
    now: Timestamp,
}

impl<'a> Html<'a> {
    pub fn new(state: &'a State, region: &'a str, now: Timestamp) -> Self {
        Html {
            state,
            tz: state.page.time_zone.parse().unwrap_or(Tz::UTC),
            region,
            now: now.max(state.clock),
        }
    }

    fn when(&self, t: Timestamp) -> String {
        let local = t.to_datetime().with_timezone(&self.tz);
        format!(
            "<time datetime=\"{}\">{}</time>",
            t,
            local.format("%b %-d, %Y %H:%M %Z")
        )
    }

    fn layout(&self, title: &str, body: &str) -> String {
        let page = &self.state.page;
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\"><title>{title}</title>\
<link rel=\"alternate\" type=\"application/atom+xml\" title=\"{name} history (Atom)\" href=\"/history.atom\">\
<link rel=\"alternate\" type=\"application/rss+xml\" title=\"{name} history (RSS)\" href=\"/history.rss\">\
<style>{CSS}</style></head><body>\
<header><p><a href=\"/\">{name}</a> status</p></header><main>{STALE_MARKER}{body}</main>\
<footer><p class=\"muted\">Times are shown in {tz}. Served from region {region}. \
<a href=\"/history\">Incident history</a> · <a href=\"/history.atom\">Atom</a> · <a href=\"/history.rss\">RSS</a> · \
<a href=\"/api/v2/summary.json\">JSON API</a></p></footer></body></html>\n",
            title = esc(title),
            name = esc(&page.name),
            tz = esc(&page.time_zone),
            region = esc(self.region),
        )
    }

    fn incident_card(&self, i: &Incident, heading: &str, full: bool) -> String {
        let mut s = format!(
            "<article class=\"card\"><{heading}><a href=\"/incidents/{id}\">{name}</a></{heading}>\
<p><span class=\"status {cls}\">{status}</span> · impact <span class=\"{cls}\">{impact}</span> · started {started}</p>",
            id = i.id,
            name = esc(&i.name),
            cls = impact_class(i.impact),
            status = incident_status_text(i.status),
            impact = i.impact,
            started = self.when(i.started_at),
        );
        let updates: Box<dyn Iterator<Item = _>> = if full {
            Box::new(i.updates.iter().rev())
        } else {
            Box::new(i.updates.iter().rev().take(1))
        };
        s.push_str("<ol class=\"timeline\">");
        for u in updates {
            let _ = write!(
                s,
                "<li><strong>{}</strong> — {}<p>{}</p>",
                incident_status_text(u.status),
                self.when(u.created_at),
                esc(&u.body).replace('\n', "<br>")
            );
            if !u.affected_components.is_empty() {
                s.push_str("<p class=\"muted\">");
                for a in &u.affected_components {
                    let _ = write!(
                        s,
                        "{}: {} → {}. ",
                        esc(&a.name),
                        component_label(a.old_status).0,
                        component_label(a.new_status).0
                    );
                }
                s.push_str("</p>");
            }
            s.push_str("</li>");
        }
        s.push_str("</ol>");
        if full {
            if let Some(pm) = &i.postmortem {
                let _ = write!(
                    s,
                    "<section><h3>Postmortem</h3><p class=\"muted\">Published {}</p><p>{}</p></section>",
                    self.when(pm.published_at),
                    esc(&pm.body).replace('\n', "<br>")
                );
            }
        }
        s.push_str("</article>");
        s
    }

    fn maintenance_card(&self, m: &Maintenance) -> String {
        let mut s = format!(
            "<article class=\"card\"><h3><a href=\"/incidents/{id}\">{name}</a></h3>\
<p><span class=\"status maint\">⚙ {status}</span> · {from} to {until}</p>",
            id = m.id,
            name = esc(&m.name),
            status = maintenance_status_text(m.status),
            from = self.when(m.scheduled_for),
            until = self.when(m.scheduled_until),
        );
        let names: Vec<String> = m
            .components
            .iter()
            .filter_map(|c| self.state.components.get(c))
            .map(|c| esc(&c.name))
            .collect();
        if !names.is_empty() {
            let _ = write!(s, "<p class=\"muted\">Affects: {}</p>", names.join(", "));
        }
        if let Some(u) = m.updates.last() {
            let _ = write!(s, "<p>{}</p>", esc(&u.body));
        }
        s.push_str("</article>");
        s
    }

    fn component_row(&self, c: &Component) -> String {
        let (text, symbol, cls) = component_label(self.state.component_status(c));
        let desc = c
            .description
            .as_deref()
            .map(|d| format!("<br><span class=\"muted\">{}</span>", esc(d)))
            .unwrap_or_default();
        let mut s = format!(
            "<div><strong>{}</strong>{desc}</div><span class=\"status {cls}\">{symbol} {text}</span>",
            esc(&c.name)
        );
        if c.showcase && !c.is_group {
            let u = uptime(c, self.now, self.tz);
            s = format!("<div style=\"flex:1\"><div style=\"display:flex;justify-content:space-between;gap:1rem\">{s}</div>");
            let _ = write!(
                s,
                "<div class=\"bars\" role=\"img\" aria-label=\"{} uptime over 90 days: {:.2}%\">",
                esc(&c.name),
                u.percent
            );
            for d in &u.days {
                let (cls, label) = match d.worst {
                    None => ("none", "no data".to_string()),
                    Some(w) => {
                        let mut parts = Vec::new();
                        for (ms, what) in [
                            (d.major_ms, "major outage"),
                            (d.partial_ms, "partial outage"),
                            (d.degraded_ms, "degraded"),
                        ] {
                            if ms > 0 {
                                parts.push(format!("{what} {}", human_ms(ms)));
                            }
                        }
                        let (_, _, cls) = component_label(w);
                        (
                            cls,
                            if parts.is_empty() {
                                "no incidents".into()
                            } else {
                                parts.join(", ")
                            },
                        )
                    }
                };
                let _ = write!(
                    s,
                    "<span class=\"{cls}\" title=\"{}: {label}\"></span>",
                    d.date
                );
            }
            let _ = write!(
                s,
                "</div><span class=\"muted\">90 days ago · {:.2} % uptime · today</span></div>",
                u.percent
            );
        }
        s
    }

    pub fn index(&self) -> String {
        let st = self.state;
        let indicator = st.public_indicator();
        let (cls, symbol) = indicator_class(indicator);
        let mut b = format!(
            "<h1>{}</h1><p class=\"banner {cls}\" role=\"status\">{symbol} {}</p>",
            esc(&st.page.name),
            indicator.description()
        );
        let mut open: Vec<&Incident> = st
            .incidents
            .values()
            .filter(|i| i.status.is_open())
            .collect();
        open.sort_by_key(|i| std::cmp::Reverse(i.created_at));
        if !open.is_empty() {
            b.push_str(
                "<section aria-labelledby=\"ongoing\"><h2 id=\"ongoing\">Ongoing incidents</h2>",
            );
            for i in open {
                b.push_str(&self.incident_card(i, "h3", true));
            }
            b.push_str("</section>");
        }
        let mut maint: Vec<&Maintenance> = st
            .maintenances
            .values()
            .filter(|m| m.status == MaintenanceStatus::Scheduled || m.status.is_active())
            .collect();
        maint.sort_by_key(|m| m.scheduled_for);
        if !maint.is_empty() {
            b.push_str(
                "<section aria-labelledby=\"maintenance\"><h2 id=\"maintenance\">Maintenance</h2>",
            );
            for m in maint {
                b.push_str(&self.maintenance_card(m));
            }
            b.push_str("</section>");
        }
        b.push_str("<section aria-labelledby=\"components\"><h2 id=\"components\">Components</h2><ul class=\"components\">");
        let ordered = st.components_in_order();
        for c in ordered.iter().filter(|c| c.group_id.is_none()) {
            let effective = st.component_status(c);
            if c.only_show_if_degraded && effective == ComponentStatus::Operational {
                continue;
            }
            let _ = write!(b, "<li>{}", self.component_row(c));
            if c.is_group {
                b.push_str("</li><li><ul class=\"components\" style=\"flex:1\">");
                for k in ordered
                    .iter()
                    .filter(|k| k.group_id.as_ref() == Some(&c.id))
                {
                    let _ = write!(b, "<li>{}</li>", self.component_row(k));
                }
                b.push_str("</ul>");
            }
            b.push_str("</li>");
        }
        b.push_str("</ul></section>");
        b.push_str("<section><h2>Past incidents</h2><p><a href=\"/history\">See the incident history</a></p></section>");
        self.layout(&format!("{} status", st.page.name), &b)
    }

    /// The page of one incident or maintenance, if it exists.
    pub fn incident_page(&self, id: &statusmesh_model::Id) -> Option<String> {
        if let Some(i) = self.state.incidents.get(id) {
            return Some(self.layout(&i.name, &self.incident_card(i, "h1", true)));
        }
        let m = self.state.maintenances.get(id)?;
        let mut b = self.maintenance_card(m);
        b.push_str("<ol class=\"timeline\">");
        for u in m.updates.iter().rev() {
            let _ = write!(
                b,
                "<li><strong>{}</strong> — {}<p>{}</p></li>",
                maintenance_status_text(u.status),
                self.when(u.created_at),
                esc(&u.body)
            );
        }
        b.push_str("</ol>");
        Some(self.layout(&m.name, &b))
    }

    /// History page `n` (1-based), newest first; `None` past the last page (page 1 always exists).
    pub fn history_page(&self, n: usize) -> Option<String> {
        let mut all: Vec<&Incident> = self.state.incidents.values().collect();
        all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let pages = all.len().div_ceil(HISTORY_PAGE_SIZE).max(1);
        if n == 0 || n > pages {
            return None;
        }
        let mut b = format!("<h1>Incident history</h1><p class=\"muted\">Page {n} of {pages}</p>");
        for i in all
            .iter()
            .skip((n - 1) * HISTORY_PAGE_SIZE)
            .take(HISTORY_PAGE_SIZE)
        {
            b.push_str(&self.incident_card(i, "h2", false));
        }
        if all.is_empty() {
            b.push_str("<p>No incidents reported.</p>");
        }
        b.push_str("<nav class=\"pager\" aria-label=\"History pages\">");
        if n > 1 {
            let _ = write!(
                b,
                "<a href=\"/history?page={}\" rel=\"prev\">← Newer</a>",
                n - 1
            );
        } else {
            b.push_str("<span></span>");
        }
        if n < pages {
            let _ = write!(
                b,
                "<a href=\"/history?page={}\" rel=\"next\">Older →</a>",
                n + 1
            );
        }
        b.push_str("</nav>");
        Some(self.layout("Incident history", &b))
    }

    pub fn history_pages(&self) -> usize {
        self.state
            .incidents
            .len()
            .div_ceil(HISTORY_PAGE_SIZE)
            .max(1)
    }
}

/// The notice a node shows when it has lost contact with the cluster.
pub fn stale_notice(millis_since_contact: Option<u64>) -> String {
    let text = match millis_since_contact {
        Some(ms) => {
            let minutes = ms / 60_000;
            let ago = if minutes == 0 {
                format!("{} seconds", ms / 1000)
            } else {
                format!("{minutes} minutes")
            };
            format!("This region lost contact with the cluster {ago} ago; showing the last known status.")
        }
        None => {
            "This region has not reached the cluster yet; showing the last known status.".into()
        }
    };
    format!("<p class=\"stale\" role=\"alert\">{text}</p>")
}
