//! Request ids: one per operator action, chosen by the client (statusctl makes one per
//! invocation) or by the first node when absent, sent as `x-request-id`, carried with the write
//! to the leader (in the proposal and on forwarded membership calls), logged on every node that
//! handles it, kept in the audit record, and echoed back on the answer.

/// The header, on requests and answers.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest accepted id.
pub const MAX_REQUEST_ID: usize = 64;

/// Why a client-chosen request id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestIdError {
    #[error("{REQUEST_ID_HEADER} must be 1 to {MAX_REQUEST_ID} characters (got {0})")]
    Length(usize),
    #[error("{REQUEST_ID_HEADER} may contain only letters, digits and . _ : - (found {0:?})")]
    Character(char),
    #[error("{REQUEST_ID_HEADER} must be printable ASCII")]
    NotPrintable,
}

/// Checks a client-chosen id: 1 to 64 characters of `A-Z a-z 0-9 . _ : -` (safe in a log line,
/// a header and a label).
pub fn validate(id: &str) -> Result<(), RequestIdError> {
    if id.is_empty() || id.len() > MAX_REQUEST_ID {
        return Err(RequestIdError::Length(id.len()));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(RequestIdError::Character(c));
    }
    Ok(())
}

/// The name of a gRPC status code as the protocol spells it (`INVALID_ARGUMENT`).
pub fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids_and_names_the_problem_otherwise() {
        assert!(validate("statusctl-0123abcd").is_ok());
        assert!(validate("trace:1.2_3-x").is_ok());
        assert!(validate("").unwrap_err().to_string().contains("1 to 64"));
        assert!(validate(&"a".repeat(65))
            .unwrap_err()
            .to_string()
            .contains("got 65"));
        assert!(validate("a b").unwrap_err().to_string().contains("' '"));
        assert!(validate("a\nb").is_err());
    }

    #[test]
    fn code_names() {
        assert_eq!(
            grpc_code_name(tonic::Code::InvalidArgument),
            "INVALID_ARGUMENT"
        );
        assert_eq!(grpc_code_name(tonic::Code::from(16)), "UNAUTHENTICATED");
    }
}
