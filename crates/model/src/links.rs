//! The signed links of subscription mails: confirm, manage, unsubscribe. A link names the
//! subscriber and carries an HMAC-SHA256 of its purpose keyed with the subscriber's secret
//! (replicated, never shown), so any node can check a link and nobody can make one for an
//! address they do not receive mail at. Rotating the secret (or removing the subscriber)
//! voids every link already sent.
//!
//! A confirmation link is bound to the confirmation's expiry as the state holds it: it stops
//! working when the confirmation expires, and a new confirmation mail voids the older ones.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::entities::{Subscriber, SubscriberState};

/// What a link lets its follower do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Confirm,
    Manage,
    Unsubscribe,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Confirm => "confirm",
            Purpose::Manage => "manage",
            Purpose::Unsubscribe => "unsubscribe",
        }
    }
}

/// The message a token signs: `purpose:id`, and the expiry for a confirmation.
fn message(purpose: Purpose, sub: &Subscriber) -> Option<String> {
    match (purpose, &sub.state) {
        (Purpose::Confirm, SubscriberState::Unconfirmed { expires }) => {
            Some(format!("confirm:{}:{}", sub.id, expires.0))
        }
        (Purpose::Confirm, _) => None,
        (p, _) => Some(format!("{}:{}", p.as_str(), sub.id)),
    }
}

fn mac(secret: &str, message: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(message.as_bytes());
    mac
}

/// The token for `purpose` (hex, 32 characters: the first 128 bits of the MAC); `None` for a
/// confirmation of a subscriber that is not waiting for one.
pub fn token(purpose: Purpose, sub: &Subscriber) -> Option<String> {
    let m = message(purpose, sub)?;
    let tag = mac(&sub.secret, &m).finalize().into_bytes();
    Some(hex::encode(&tag[..16]))
}

/// Whether `token` is `sub`'s token for `purpose`, compared in constant time.
pub fn verify(purpose: Purpose, sub: &Subscriber, token: &str) -> bool {
    let Some(m) = message(purpose, sub) else {
        return false;
    };
    let Ok(given) = hex::decode(token) else {
        return false;
    };
    given.len() == 16 && mac(&sub.secret, &m).verify_truncated_left(&given).is_ok()
}

/// The link for `purpose` on the page at `page_url`: `<page>/subscriptions/<purpose>?s=<id>&t=<token>`.
pub fn url(page_url: &str, purpose: Purpose, sub: &Subscriber) -> Option<String> {
    let t = token(purpose, sub)?;
    Some(format!(
        "{}/subscriptions/{}?s={}&t={t}",
        page_url.trim_end_matches('/'),
        purpose.as_str(),
        sub.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::PayloadFormat;
    use crate::ids::{Id, Timestamp};

    fn sub(state: SubscriberState) -> Subscriber {
        Subscriber {
            id: Id::parse("id", "e123").unwrap(),
            url: "mailto:jane@example.com".into(),
            component_ids: Default::default(),
            secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2Vj".into(),
            previous_secret: None,
            format: PayloadFormat::Email,
            owner: None,
            description: None,
            state,
            recent_failures: vec![],
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            since: 1,
            notice_at: None,
        }
    }

    #[test]
    fn tokens_are_bound_to_purpose_secret_and_expiry() {
        let pending = sub(SubscriberState::Unconfirmed {
            expires: Timestamp(5),
        });
        let t = token(Purpose::Confirm, &pending).unwrap();
        assert!(verify(Purpose::Confirm, &pending, &t));
        assert!(!verify(Purpose::Manage, &pending, &t));
        let later = sub(SubscriberState::Unconfirmed {
            expires: Timestamp(6),
        });
        assert!(
            !verify(Purpose::Confirm, &later, &t),
            "a newer confirmation voids it"
        );
        let active = sub(SubscriberState::Active);
        assert!(token(Purpose::Confirm, &active).is_none());
        assert!(!verify(Purpose::Confirm, &active, &t));
        let u = token(Purpose::Unsubscribe, &active).unwrap();
        assert!(verify(Purpose::Unsubscribe, &active, &u));
        let mut rotated = active.clone();
        rotated.secret = "whsec_b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90".into();
        assert!(!verify(Purpose::Unsubscribe, &rotated, &u));
        for bad in ["", "zz", &u[..30], &format!("{u}00")] {
            assert!(!verify(Purpose::Unsubscribe, &active, bad), "{bad:?}");
        }
        assert_eq!(
            url("https://status.example.com/", Purpose::Unsubscribe, &active).unwrap(),
            format!("https://status.example.com/subscriptions/unsubscribe?s=e123&t={u}")
        );
    }
}
