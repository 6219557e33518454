//! Response headers: the security headers every public response carries ([`secure`], applied
//! with the freshness headers in one place, the route dispatcher), and the answer for a
//! prebuilt representation ([`respond`]: validators, encodings, caching).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use crate::view::Representation;

/// The page needs nothing but its own inline styles (a `<style>` element and `style`
/// attributes: no scripts, no frames, no forms, no external resources), so everything else is
/// refused, and no other site may frame it. Badges (SVG, `img-src 'self'`) may be embedded by
/// other sites as images, which CSP does not restrict.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
pub const REFERRER_POLICY: &str = "strict-origin-when-cross-origin";
/// Two years, subdomains included (the HSTS preload list's minimum is one year).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000; includeSubDomains";

/// The security headers every public response carries.
pub(crate) fn secure(h: &mut HeaderMap, hsts: bool) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(REFERRER_POLICY),
    );
    if hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
}

pub const CACHE_CONTROL: &str =
    "public, max-age=5, stale-while-revalidate=30, stale-if-error=86400";

/// The encodings the client accepts, by preference: brotli, gzip, identity.
fn pick_encoding(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
    let accepts = |name: &str| {
        accept.split(',').any(|part| {
            let mut it = part.split(';');
            let token = it.next().unwrap_or("").trim();
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
                })
                .unwrap_or(1.0);
            (token.eq_ignore_ascii_case(name) || token == "*") && q > 0.0
        })
    };
    if accepts("br") {
        Some("br")
    } else if accepts("gzip") {
        Some("gzip")
    } else {
        None
    }
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// A cached representation: 304 when the client's validator matches, else the best encoding.
/// Every header value is prebuilt: nothing is parsed or formatted here.
pub fn respond(repr: &Representation, headers: &HeaderMap) -> Response {
    let not_modified = if_none_match(headers, &repr.etag);
    let (body, encoding) = if not_modified {
        (Body::empty(), None)
    } else {
        match pick_encoding(headers) {
            Some("br") => (Body::from(repr.brotli.clone()), Some("br")),
            Some(_) => (Body::from(repr.gzip.clone()), Some("gzip")),
            None => (Body::from(repr.identity.clone()), None),
        }
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.reserve(17);
    h.insert(header::ETAG, repr.etag_header.clone());
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if not_modified {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return resp;
    }
    h.insert(header::CONTENT_TYPE, repr.content_type_header.clone());
    if let Some(e) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    resp
}
