//! Webhook notifications: Standard Webhooks signatures, the three payload formats, the SSRF
//! guard, the retry policy, and the leader's dispatcher that drains the replicated outbox.
//!
//! Dependency direction: this crate reads the model and the public JSON rendering, and acts
//! through the cluster (proposing attempt records); nothing below depends on it.
//!
//! Delivery contract (documented for receivers): at-least-once. Every attempt of one event —
//! retries, operator replays, re-sends after a leader failover — carries the same `webhook-id`;
//! receivers that remember the ids they processed get effectively-once handling.

pub mod dispatcher;
pub mod email;
mod fanout;
pub mod payload;
pub mod policy;
mod ready;
pub mod relay;
pub mod signature;
pub mod ssrf;

pub use dispatcher::Dispatcher;
pub use email::{MailConfig, Mailer};
pub use policy::WebhookConfig;
