//! The subscriber CSV of `statusctl subscriber import` and `export`, in two layouts:
//! - **statusmesh**: the first row names the columns (any order, case-insensitive): `url`
//!   (required), `format`, `components` (ids separated by `;`), `description`, `owner`,
//!   `secret`. `export` writes it (without secrets) and `import` reads it back.
//! - **Statuspage** (a page moving from Atlassian Statuspage): positional, as its import
//!   template documents it: `type` (`email`, `webhook`), then the address or endpoint; then,
//!   for an email row, "skip confirmation" (`yes`, or empty; these addresses opted in where
//!   they came from), and for a webhook row the contact address told about failures; then
//!   the components, one per column, by name or id (none: every component). A first row
//!   whose first field is `type` is a header. Recognised by its first field.
//!
//! Fields may be quoted (RFC 4180: `"a, b"`, `""` for a quote inside). A problem names its
//! line and column.

use anyhow::{anyhow, bail};
use statusmesh_proto::admin as pb;

const COLUMNS: &[&str] = &[
    "url",
    "format",
    "components",
    "description",
    "owner",
    "secret",
];

/// Splits the text into records of fields, each with the line it starts on.
fn records(text: &str) -> anyhow::Result<Vec<(usize, Vec<String>)>> {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                if fields.iter().any(|f| !f.is_empty()) {
                    out.push((start, std::mem::take(&mut fields)));
                }
                fields.clear();
                line += 1;
                start = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        bail!("line {start}: a quoted field is not closed");
    }
    fields.push(field);
    if fields.iter().any(|f| !f.is_empty()) {
        out.push((start, fields));
    }
    Ok(out)
}

/// The rows of an import file, and the layout they were read in.
#[derive(Debug)]
pub struct Import {
    pub rows: Vec<pb::ImportSubscriberRow>,
    /// The line each row starts on.
    lines: Vec<usize>,
    /// Statuspage rows name their components; [`Import::resolve_components`] turns the names
    /// into ids.
    pub names_components: bool,
}

/// The kinds of a Statuspage row, and those it has that statusmesh does not take.
const STATUSPAGE_KINDS: &[&str] = &["email", "webhook"];
const STATUSPAGE_OTHER_KINDS: &[&str] = &["sms", "slack", "teams", "msteams"];

/// The import rows of a CSV text, in whichever layout it is written.
pub fn rows(text: &str) -> anyhow::Result<Import> {
    let records = records(text)?;
    let first = records
        .first()
        .and_then(|(_, f)| f.first())
        .map(|f| f.trim().to_lowercase())
        .ok_or_else(|| anyhow!("the file is empty (it needs a header row: url,format,...)"))?;
    let import = if first == "type"
        || STATUSPAGE_KINDS.contains(&first.as_str())
        || STATUSPAGE_OTHER_KINDS.contains(&first.as_str())
    {
        statuspage_rows(records)?
    } else {
        statusmesh_rows(records)?
    };
    if import.rows.is_empty() {
        bail!("the file has a header but no subscribers");
    }
    Ok(import)
}

fn statusmesh_rows(records: Vec<(usize, Vec<String>)>) -> anyhow::Result<Import> {
    let mut records = records.into_iter();
    let (_, header) = records
        .next()
        .expect("rows() checked the file is not empty");
    let header: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    if let Some(unknown) = header.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        bail!(
            "line 1: unknown column {unknown:?} (the columns are {}; or Statuspage's layout, \
             starting with type)",
            COLUMNS.join(", ")
        );
    }
    let col = |name: &str| header.iter().position(|h| h == name);
    let url = col("url").ok_or_else(|| anyhow!("line 1: the header has no url column"))?;
    let mut import = Import {
        rows: Vec::new(),
        lines: Vec::new(),
        names_components: false,
    };
    for (line, fields) in records {
        if fields.len() != header.len() {
            bail!(
                "line {line}: {} fields, but the header names {}",
                fields.len(),
                header.len()
            );
        }
        let get = |name: &str| {
            col(name)
                .map(|i| fields[i].trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if fields[url].trim().is_empty() {
            bail!("line {line}: the url is empty");
        }
        import.lines.push(line);
        import.rows.push(pb::ImportSubscriberRow {
            subscriber: Some(pb::AddSubscriberRequest {
                url: fields[url].trim().to_owned(),
                component_ids: get("components")
                    .map(|c| {
                        c.split(';')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                description: get("description"),
                format: get("format").unwrap_or_default(),
                owner: get("owner"),
            }),
            secret: get("secret"),
        });
    }
    Ok(import)
}

fn statuspage_rows(records: Vec<(usize, Vec<String>)>) -> anyhow::Result<Import> {
    let mut import = Import {
        rows: Vec::new(),
        lines: Vec::new(),
        names_components: true,
    };
    for (n, (line, fields)) in records.into_iter().enumerate() {
        let field = |i: usize| fields.get(i).map(|f| f.trim()).unwrap_or("");
        let kind = field(0).to_lowercase();
        if n == 0 && kind == "type" {
            continue;
        }
        if STATUSPAGE_OTHER_KINDS.contains(&kind.as_str()) {
            bail!("line {line}: {kind} subscribers are not taken here (email and webhook are)");
        }
        if !STATUSPAGE_KINDS.contains(&kind.as_str()) {
            bail!("line {line}, column 1: {kind:?} is not a subscriber type (email, webhook)");
        }
        let target = field(1);
        if target.is_empty() {
            bail!("line {line}, column 2: the {kind} row has no address");
        }
        let third = field(2);
        let (url, owner) = if kind == "email" {
            match third.to_lowercase().as_str() {
                "" | "yes" | "true" => {}
                "no" | "false" => bail!(
                    "line {line}, column 3: confirmation on import is not offered; import \
                     addresses that opted in (yes), or let them subscribe on the page"
                ),
                other => bail!("line {line}, column 3: {other:?} is not yes or no"),
            }
            (format!("mailto:{target}"), None)
        } else {
            (
                target.to_owned(),
                Some(third.to_owned()).filter(|o| !o.is_empty()),
            )
        };
        import.lines.push(line);
        import.rows.push(pb::ImportSubscriberRow {
            subscriber: Some(pb::AddSubscriberRequest {
                url,
                component_ids: fields
                    .iter()
                    .skip(3)
                    .map(|c| c.trim())
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                description: None,
                format: String::new(),
                owner,
            }),
            secret: None,
        });
    }
    Ok(import)
}

impl Import {
    /// Replaces the component names of Statuspage rows by the ids of the page's components
    /// (a name, matched exactly and then ignoring case, or an id); one that is neither stops
    /// the import, naming its line.
    pub fn resolve_components(&mut self, components: &[pb::Component]) -> anyhow::Result<()> {
        for (row, line) in self.rows.iter_mut().zip(&self.lines) {
            let Some(sub) = row.subscriber.as_mut() else {
                continue;
            };
            for c in &mut sub.component_ids {
                let found = components
                    .iter()
                    .find(|k| k.name == *c || k.id == *c)
                    .or_else(|| components.iter().find(|k| k.name.eq_ignore_ascii_case(c)))
                    .ok_or_else(|| anyhow!("line {line}: the page has no component named {c:?}"))?;
                *c = found.id.clone();
            }
        }
        self.names_components = false;
        Ok(())
    }
}

/// One CSV field, quoted when it must be.
fn field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn line(fields: &[&str]) -> String {
    let mut out = fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    out
}

/// The statusmesh layout of `subscribers` (no secrets: they are never listed).
pub fn export(subscribers: &[pb::Subscriber]) -> String {
    let mut out = line(&["url", "format", "components", "description", "owner"]);
    for s in subscribers {
        out.push_str(&line(&[
            &s.url,
            &s.format,
            &s.component_ids.join(";"),
            s.description.as_deref().unwrap_or(""),
            s.owner.as_deref().unwrap_or(""),
        ]));
    }
    out
}

/// Statuspage's layout of `subscribers`, components by name. Chat subscribers (Slack,
/// Discord) have no row there: they are left out, and counted in the answer.
pub fn export_statuspage(
    subscribers: &[pb::Subscriber],
    components: &[pb::Component],
) -> (String, usize) {
    fn name<'a>(components: &'a [pb::Component], id: &'a str) -> &'a str {
        components
            .iter()
            .find(|c| c.id == id)
            .map_or(id, |c| c.name.as_str())
    }
    let mut out = String::new();
    let mut left_out = 0;
    for s in subscribers {
        let mut fields = match s.format.as_str() {
            "email" => vec![
                "email",
                s.url.strip_prefix("mailto:").unwrap_or(&s.url),
                "yes",
            ],
            "statuspage" | "" => vec!["webhook", s.url.as_str(), s.owner.as_deref().unwrap_or("")],
            _ => {
                left_out += 1;
                continue;
            }
        };
        fields.extend(s.component_ids.iter().map(|id| name(components, id)));
        out.push_str(&line(&fields));
    }
    (out, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_header_with_quotes_and_lists() {
        let text = "URL,components,description,secret\r\n\
                    https://a.example/in,api;web,\"Team A, \"\"core\"\"\",\n\
                    \n\
                    https://b.example/in,,,whsec_x\n";
        let rows = rows(text).unwrap().rows;
        assert_eq!(rows.len(), 2);
        let a = rows[0].subscriber.as_ref().unwrap();
        assert_eq!(a.url, "https://a.example/in");
        assert_eq!(a.component_ids, ["api", "web"]);
        assert_eq!(a.description.as_deref(), Some("Team A, \"core\""));
        assert_eq!(rows[0].secret, None);
        assert_eq!(rows[1].secret.as_deref(), Some("whsec_x"));
    }

    #[test]
    fn problems_name_the_line() {
        let e = rows("url,colour\nhttps://a\n").unwrap_err().to_string();
        assert!(e.contains("unknown column \"colour\""), "{e}");
        let e = rows("url,owner\nhttps://a,me\nhttps://b\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 3: 1 fields"), "{e}");
        let e = rows("owner\nme\n").unwrap_err().to_string();
        assert!(e.contains("no url column"), "{e}");
        let e = rows("url\n\"https://a\n").unwrap_err().to_string();
        assert!(e.contains("not closed"), "{e}");
    }

    #[test]
    fn statuspage_rows_name_components_and_refuse_what_is_not_taken() {
        let text = "Type,Email/Endpoint,Skip confirmation,Components\n\
                    email,Ann@Example.com,yes,API,website\n\
                    webhook,https://hooks.example/in,ops@example.com\n";
        let mut import = rows(text).unwrap();
        assert!(import.names_components);
        let a = import.rows[0].subscriber.as_ref().unwrap();
        assert_eq!(a.url, "mailto:Ann@Example.com");
        assert_eq!(a.component_ids, ["API", "website"]);
        let b = import.rows[1].subscriber.as_ref().unwrap();
        assert_eq!(b.url, "https://hooks.example/in");
        assert_eq!(b.owner.as_deref(), Some("ops@example.com"));
        let comp = |id: &str, name: &str| pb::Component {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        };
        let page = [comp("c1", "API"), comp("c2", "Website")];
        import.resolve_components(&page).unwrap();
        let a = import.rows[0].subscriber.as_ref().unwrap();
        assert_eq!(a.component_ids, ["c1", "c2"]);

        let mut unknown = rows("email,a@example.com,,Billing\n").unwrap();
        let e = unknown.resolve_components(&page).unwrap_err().to_string();
        assert_eq!(e, "line 1: the page has no component named \"Billing\"");
        let e = rows("type,x\nsms,5550100\n").err().unwrap().to_string();
        assert!(
            e.starts_with("line 2: sms subscribers are not taken"),
            "{e}"
        );
        let e = rows("email,a@example.com,no\n").err().unwrap().to_string();
        assert!(
            e.starts_with("line 1, column 3: confirmation on import"),
            "{e}"
        );
        let e = rows("email,\n").err().unwrap().to_string();
        assert!(e.contains("has no address"), "{e}");
    }

    #[test]
    fn an_export_reads_back_as_the_same_rows() {
        let subs = [
            pb::Subscriber {
                url: "mailto:ann@example.com".into(),
                format: "email".into(),
                component_ids: vec!["c1".into(), "c2".into()],
                ..Default::default()
            },
            pb::Subscriber {
                url: "https://hooks.example/in".into(),
                format: "slack".into(),
                description: Some("ops, \"night\" shift".into()),
                owner: Some("ops@example.com".into()),
                ..Default::default()
            },
        ];
        let back = rows(&export(&subs)).unwrap();
        assert!(!back.names_components);
        for (row, sub) in back.rows.iter().zip(&subs) {
            let r = row.subscriber.as_ref().unwrap();
            assert_eq!(
                (
                    &r.url,
                    &r.format,
                    &r.component_ids,
                    &r.description,
                    &r.owner
                ),
                (
                    &sub.url,
                    &sub.format,
                    &sub.component_ids,
                    &sub.description,
                    &sub.owner
                )
            );
        }
        let comp = pb::Component {
            id: "c1".into(),
            name: "API, public".into(),
            ..Default::default()
        };
        let (text, left_out) = export_statuspage(&subs, &[comp]);
        assert_eq!(text, "email,ann@example.com,yes,\"API, public\",c2\n");
        assert_eq!(left_out, 1, "the Slack subscriber has no Statuspage row");
        let again = rows(&text).unwrap();
        assert_eq!(
            again.rows[0].subscriber.as_ref().unwrap().url,
            "mailto:ann@example.com"
        );
    }
}
