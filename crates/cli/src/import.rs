//! `statusctl subscriber import`: the CSV file read into import rows. The first row names the
//! columns (any order, case-insensitive): `url` (required), `format`, `components` (ids
//! separated by `;`), `description`, `owner`, `secret`. Fields may be quoted (RFC 4180:
//! `"a, b"`, `""` for a quote inside). A problem names its line and column.

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

/// The import rows of a CSV text.
pub fn rows(text: &str) -> anyhow::Result<Vec<pb::ImportSubscriberRow>> {
    let mut records = records(text)?.into_iter();
    let (_, header) = records
        .next()
        .ok_or_else(|| anyhow!("the file is empty (it needs a header row: url,format,...)"))?;
    let header: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    if let Some(unknown) = header.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        bail!(
            "line 1: unknown column {unknown:?} (the columns are {})",
            COLUMNS.join(", ")
        );
    }
    let col = |name: &str| header.iter().position(|h| h == name);
    let url = col("url").ok_or_else(|| anyhow!("line 1: the header has no url column"))?;
    let mut out = Vec::new();
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
        out.push(pb::ImportSubscriberRow {
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
    if out.is_empty() {
        bail!("the file has a header but no subscribers");
    }
    Ok(out)
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
        let rows = rows(text).unwrap();
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
}
