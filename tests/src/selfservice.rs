//! The public page's subscription flow as a customer's client drives it (the form with its
//! CSRF cookie, the links of the mails), and the cluster set-up the email and subscription
//! tests share.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_server::config::EmailConfig;

use crate::smtp::{Mail, SmtpSink};
use crate::{eventually, key, read, write, ClusterOptions, TestCluster};

/// How long a follower may take to show a form the leader just turned on.
const FORM_WAIT: Duration = Duration::from_secs(30);

pub fn email_config(sink: &SmtpSink) -> EmailConfig {
    EmailConfig {
        reply_to: Some("support@acme.test".into()),
        connections: 4,
        timeout_ms: 10_000,
        ..sink.email_config()
    }
}

/// Names the page "Acme", at `url` (where the mails' links lead), taking email subscriptions.
pub async fn open_subscriptions(
    c: &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
    url: &str,
) {
    c.set_page(write(
        pb::SetPageRequest {
            name: Some("Acme".into()),
            url: Some(url.to_owned()),
            email_subscriptions: Some(true),
            ..Default::default()
        },
        &key("p"),
    ))
    .await
    .unwrap();
}

/// An operator adds `address` (no confirmation); the subscriber as the reply shows it.
pub async fn add_email_subscriber(
    c: &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
    address: &str,
) -> pb::Subscriber {
    let r = c
        .add_subscriber(write(
            pb::AddSubscriberRequest {
                url: format!("mailto:{address}"),
                ..Default::default()
            },
            &key("s"),
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(Entity::Subscriber(s)) = r.entity else {
        panic!("expected a subscriber")
    };
    s
}

/// `n` nodes mailing through `sink`.
pub fn email_cluster(n: u64, sink: &SmtpSink) -> TestCluster {
    TestCluster::start_options(
        n,
        ClusterOptions {
            email: Some(email_config(sink)),
            ..ClusterOptions::default()
        },
    )
}

/// The subscription form of one node: its CSRF cookie and field.
#[derive(Debug)]
pub struct Form {
    pub url: String,
    pub csrf: String,
}

pub async fn open_form(http: &reqwest::Client, base: &str) -> Form {
    // (A follower may not have applied the page setting yet.)
    let resp = eventually(FORM_WAIT, "the subscription form", || async {
        let r = http.get(format!("{base}subscribe")).send().await.ok()?;
        (r.status() == StatusCode::OK).then_some(r)
    })
    .await;
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let html = resp.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with(&format!("sm_csrf={csrf};")), "{cookie}");
    Form {
        url: format!("{base}subscribe"),
        csrf,
    }
}

pub async fn send_form(
    http: &reqwest::Client,
    form: &Form,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut all: Vec<(&str, &str)> = vec![("csrf", &form.csrf)];
    all.extend_from_slice(fields);
    let resp = http
        .post(&form.url)
        .header("cookie", format!("sm_csrf={}", form.csrf))
        .form(&all)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Follows a mail's link: the GET shows a button, the POST does it.
pub async fn follow(http: &reqwest::Client, link: &str) -> (StatusCode, String) {
    let shown = http.get(link).send().await.unwrap();
    assert_eq!(shown.status(), StatusCode::OK, "{link}");
    let resp = http.post(link).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

pub fn subject(m: &Mail) -> &str {
    m.header("Subject").unwrap_or("")
}

/// Each subscriber as "url state", sorted.
pub async fn subscriber_states(
    c: &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
) -> Vec<String> {
    let mut v: Vec<String> = c
        .list_subscribers(read(pb::ListSubscribersRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .subscribers
        .into_iter()
        .map(|s| format!("{} {}", s.url, s.state))
        .collect();
    v.sort();
    v
}
