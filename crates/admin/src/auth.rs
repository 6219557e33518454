//! Bearer-token authentication for the admin API. Tokens come from configuration; the
//! comparison is constant-time and a failure never echoes the presented token.

use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use tonic::Status;

/// A named operator token.
#[derive(Clone)]
pub struct Token {
    pub name: String,
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Authenticator {
    tokens: Vec<Token>,
}

impl Authenticator {
    pub fn new(tokens: Vec<Token>) -> Self {
        Authenticator { tokens }
    }

    /// Returns the name of the token that authenticated the call.
    pub fn check(&self, metadata: &MetadataMap) -> Result<String, Status> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
        let value = header
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
        let presented = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be: Bearer <token>"))?
            .trim();
        // Compare against every token so timing does not reveal which (if any) matched.
        let mut found: Option<&Token> = None;
        for t in &self.tokens {
            if bool::from(t.secret.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(t);
            }
        }
        found
            .map(|t| t.name.clone())
            .ok_or_else(|| Status::unauthenticated("invalid token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(v: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", v.parse().unwrap());
        m
    }

    #[test]
    fn tokens_are_checked() {
        let auth = Authenticator::new(vec![Token {
            name: "ops".into(),
            secret: "s3cret-token-value".into(),
        }]);
        assert_eq!(auth.check(&md("Bearer s3cret-token-value")).unwrap(), "ops");
        let e = auth.check(&md("Bearer nope")).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(!e.message().contains("nope"));
        assert!(auth.check(&MetadataMap::new()).is_err());
        assert!(auth.check(&md("Basic abc")).is_err());
    }
}
