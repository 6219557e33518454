//! Email notifications and self-service subscription on a real 3-node cluster, with a real
//! SMTP server on loopback (aiosmtpd) receiving the mail and a real MIME parser (Python's
//! `email`) reading it; the links in the mail are followed over HTTP on other nodes.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_server::config::EmailConfig;
use statusmesh_tests::smtp::{Mail, SmtpSink};
use statusmesh_tests::*;

const WAIT: Duration = Duration::from_secs(30);

fn email_config(sink: &SmtpSink) -> EmailConfig {
    EmailConfig {
        reply_to: Some("support@acme.test".into()),
        connections: 4,
        timeout_ms: 10_000,
        ..sink.email_config()
    }
}

/// Names the page "Acme", at `url` (where the mails' links lead), taking email subscriptions.
async fn open_subscriptions(
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

/// `n` nodes mailing through `sink`.
fn email_cluster(n: u64, sink: &SmtpSink) -> TestCluster {
    TestCluster::start_options(
        n,
        ClusterOptions {
            email: Some(email_config(sink)),
            ..ClusterOptions::default()
        },
    )
}

/// The subscription form of one node: its CSRF cookie and field.
struct Form {
    url: String,
    csrf: String,
}

async fn open_form(http: &reqwest::Client, base: &str) -> Form {
    // (A follower may not have applied the page setting yet.)
    let resp = eventually(WAIT, "the subscription form", || async {
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

async fn send_form(
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
async fn follow(http: &reqwest::Client, link: &str) -> (StatusCode, String) {
    let shown = http.get(link).send().await.unwrap();
    assert_eq!(shown.status(), StatusCode::OK, "{link}");
    let resp = http.post(link).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

fn subject(m: &Mail) -> &str {
    m.header("Subject").unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_subscribe_on_any_node_confirm_get_threaded_mail_and_unsubscribe_in_one_click() {
    let sink = SmtpSink::start();
    let mut cluster = email_cluster(3, &sink);
    let leader = cluster.wait_leader(WAIT).await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let mut c = cluster.admin(leader).await.unwrap();
    let http = reqwest::Client::new();
    let follower_base = cluster.nodes[follower].public_url("/");
    let other_base = cluster.nodes[other].public_url("/");

    // Off by default: the form is not offered.
    let closed = http
        .get(format!("{follower_base}subscribe"))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), StatusCode::NOT_FOUND);

    // The links in the mail lead to another region's page than the form's.
    c.set_page(write(
        pb::SetPageRequest {
            name: Some("Acme".into()),
            url: Some(other_base.clone()),
            time_zone: Some("Europe/Paris".into()),
            emit_maintenance_status: None,
            email_subscriptions: Some(true),
            ..Default::default()
        },
        &key("p"),
    ))
    .await
    .unwrap();
    let api = create_component(&mut c, "API").await;
    let web = create_component(&mut c, "Website").await;

    // A follower's form, sent: the write is forwarded to the leader.
    let form = open_form(&http, &follower_base).await;
    let (status, answer) = send_form(
        &http,
        &form,
        &[("email", "Jane@Example.com"), ("scope", "all")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.contains("Check your inbox"), "{answer}");

    let confirm = sink
        .wait_for("Jane@example.com", WAIT, |m| !m.is_empty())
        .await
        .remove(0);
    assert!(
        subject(&confirm).contains("Confirm your subscription"),
        "{}",
        subject(&confirm)
    );
    assert_eq!(confirm.content_type, "multipart/alternative");
    assert!(confirm
        .html
        .as_deref()
        .unwrap_or("")
        .contains("Confirm my subscription"));
    assert_eq!(
        confirm.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let link = confirm
        .link("/subscriptions/confirm?")
        .expect("a confirmation link");
    assert!(link.starts_with(&other_base), "{link}");

    // Nothing is sent to an unconfirmed address.
    let early = pb::CreateIncidentRequest {
        name: "Before confirming".into(),
        body: "Not for Jane.".into(),
        ..Default::default()
    };
    c.create_incident(write(early, &key("i"))).await.unwrap();

    // A forged or altered link gets the same answer as an unknown one.
    let forged = link.replace("&t=", "&t=00");
    assert_eq!(
        http.get(&forged).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let unknown = format!("{other_base}subscriptions/confirm?s=e0000&t=00");
    assert_eq!(
        http.get(&unknown).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let (status, page) = follow(&http, &link).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Subscribed"), "{page}");

    // Asking again with a subscribed address, or a new one: the same answer.
    let again = open_form(&http, &follower_base).await;
    let (s1, a1) = send_form(
        &http,
        &again,
        &[("email", "jane@example.com"), ("scope", "all")],
    )
    .await;
    let (s2, a2) = send_form(
        &http,
        &again,
        &[("email", "nobody@example.org"), ("scope", "all")],
    )
    .await;
    assert_eq!(
        (s1, &a1),
        (s2, &a2),
        "the form must not tell who is subscribed"
    );
    // A bot that fills the hidden field: answered alike, nothing written.
    let (s3, a3) = send_form(
        &http,
        &again,
        &[
            ("email", "bot@example.org"),
            ("scope", "all"),
            ("website", "http://spam"),
        ],
    )
    .await;
    assert_eq!((s3, &a3), (s1, &a1));
    // No CSRF cookie: refused. A bad address: refused, naming the field.
    let resp = http
        .post(format!("{follower_base}subscribe"))
        .form(&[("csrf", again.csrf.as_str()), ("email", "x@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (status, answer) = send_form(&http, &again, &[("email", "not an address")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer.contains("invalid email"), "{answer}");

    // An incident, then an update: two mails in one thread.
    let inc = pb::CreateIncidentRequest {
        name: "API errors".into(),
        body: "Some requests fail.".into(),
        impact: Some("major".into()),
        component_changes: vec![pb::ComponentChange {
            component_id: api.clone(),
            status: "partial_outage".into(),
        }],
        ..Default::default()
    };
    let Some(Entity::Incident(inc)) = c
        .create_incident(write(inc, &key("i")))
        .await
        .unwrap()
        .into_inner()
        .entity
    else {
        panic!("expected an incident")
    };
    c.update_incident(write(
        pb::UpdateIncidentRequest {
            id: inc.id.clone(),
            status: Some("identified".into()),
            body: "A bad deploy; rolling back.".into(),
            ..Default::default()
        },
        &key("u"),
    ))
    .await
    .unwrap();
    let mails = sink
        .wait_for("jane@example.com", WAIT, |m| {
            m.iter()
                .filter(|m| subject(m).contains("API errors"))
                .count()
                >= 2
        })
        .await;
    assert!(
        !mails
            .iter()
            .any(|m| subject(m).contains("Before confirming")),
        "an event recorded before the confirmation reached the subscriber"
    );
    let thread: Vec<&Mail> = mails
        .iter()
        .filter(|m| subject(m).contains("API errors"))
        .collect();
    let root = thread[0].header("Message-ID").unwrap();
    assert!(
        root.starts_with(&format!("<{}.", inc.id)) && root.ends_with("@acme.test>"),
        "{root}"
    );
    assert_eq!(thread[0].header("In-Reply-To"), None);
    assert_eq!(thread[1].header("In-Reply-To"), Some(root));
    assert_eq!(thread[1].header("References"), Some(root));
    assert_ne!(thread[1].header("Message-ID"), Some(root));
    assert!(
        thread[1].text().contains("A bad deploy"),
        "{}",
        thread[1].text()
    );
    assert!(thread[0].text().contains("CET") || thread[0].text().contains("CEST"));
    assert_eq!(thread[1].header("Reply-To"), Some("support@acme.test"));
    assert!(thread[1]
        .header("List-Id")
        .unwrap()
        .contains(".status.acme.test>"));

    // The manage page (from the mail) narrows the subscription to the website.
    let manage = thread[1].link("/subscriptions/manage?").unwrap();
    assert_eq!(
        http.get(&manage).send().await.unwrap().status(),
        StatusCode::OK
    );
    let saved = http
        .post(&manage)
        .form(&[("scope", "some"), ("component", web.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    c.update_incident(write(
        pb::UpdateIncidentRequest {
            id: inc.id.clone(),
            body: "Still the API only.".into(),
            ..Default::default()
        },
        &key("u"),
    ))
    .await
    .unwrap();

    // One click (RFC 8058): the POST a mailbox provider makes, no cookie, no question.
    let unsubscribe = thread[1]
        .header("List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_owned();
    let resp = reqwest::Client::new()
        .post(&unsubscribe)
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The address is gone, not only disabled, and the link is spent.
    let listed = c
        .list_subscribers(read(pb::ListSubscribersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let urls: Vec<&str> = listed.subscribers.iter().map(|s| s.url.as_str()).collect();
    // (The address that asked once, with nobody confirming, waits unconfirmed.)
    assert_eq!(urls, ["mailto:nobody@example.org"]);
    assert_eq!(
        reqwest::Client::new()
            .post(&unsubscribe)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    c.update_incident(write(
        pb::UpdateIncidentRequest {
            id: inc.id.clone(),
            body: "After the unsubscribe.".into(),
            component_changes: vec![pb::ComponentChange {
                component_id: web,
                status: "degraded_performance".into(),
            }],
            ..Default::default()
        },
        &key("u"),
    ))
    .await
    .unwrap();

    // An operator-added address the relay refuses for good: bounced, visible, no more mail.
    sink.refuse("gone@example.net", "550 5.1.1 no such user here");
    let r = c
        .add_subscriber(write(
            pb::AddSubscriberRequest {
                url: "mailto:gone@example.net".into(),
                ..Default::default()
            },
            &key("s"),
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(Entity::Subscriber(gone)) = r.entity else {
        panic!("expected a subscriber")
    };
    assert_eq!(gone.format, "email");
    c.test_subscriber(write(
        pb::IdRequest {
            id: gone.id.clone(),
        },
        &key("t"),
    ))
    .await
    .unwrap();
    let bounced = wait_subscriber_state(&c, &gone.id, "bounced", WAIT).await;
    assert!(
        bounced
            .state_reason
            .as_deref()
            .unwrap_or("")
            .contains("550"),
        "{bounced:?}"
    );
    assert!(!bounced.state_reason.unwrap().contains("gone@example.net"));

    // Jane got the confirmation and the two thread mails, nothing else: not a second notice
    // for asking again within the interval, not the API-only update her narrowed filter
    // excludes, nothing after the unsubscribe.
    wait_outbox_drained(&c, WAIT).await;
    let jane = sink.wait_for("jane@example.com", WAIT, |_| true).await;
    assert_eq!(
        jane.len(),
        3,
        "Jane's mail: {:?}",
        jane.iter().map(subject).collect::<Vec<_>>()
    );

    // Addresses never reach the nodes' logs; the audit log names the subscriber by id.
    for node in &cluster.nodes {
        let log = node.log().to_lowercase();
        assert!(
            !log.contains("jane@example.com"),
            "node {} logged an address",
            node.id
        );
    }
    let audit = c
        .list_audit(read(pb::ListAuditRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let text = format!("{audit:?}").to_lowercase();
    assert!(text.contains("request_subscription"), "{text}");
    assert!(
        !text.contains("jane@example.com"),
        "the audit log shows an address"
    );

    // Without a quorum the form says subscriptions are paused; the page still reads.
    let survivor = follower;
    for i in [leader, other] {
        cluster.kill(i);
    }
    let form = open_form(&http, &follower_base).await;
    let (status, answer) = send_form(
        &http,
        &form,
        &[("email", "late@example.com"), ("scope", "all")],
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(
        answer.contains("paused while the cluster recovers"),
        "{answer}"
    );
    let page = http
        .get(cluster.nodes[survivor].public_url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

/// The leader SIGKILLed while it is mailing 600 subscribers: every subscriber gets the
/// incident's mail from the next leader, and a repeat carries the same `Message-ID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_mid_email_fan_out_loses_no_subscriber_and_repeats_only_the_same_message() {
    const N: usize = 600;
    let sink = SmtpSink::start();
    let mut cluster = TestCluster::start_options(
        3,
        ClusterOptions {
            email: Some(EmailConfig {
                connections: 2,
                ..email_config(&sink)
            }),
            ..ClusterOptions::default()
        },
    );
    let leader = cluster.wait_leader(WAIT).await;
    let mut c = cluster.admin(leader).await.unwrap();
    let addresses: Vec<String> = (0..N).map(|i| format!("user{i}@example.com")).collect();
    let imported = statusmesh_tests::notify::import_webhooks(
        &mut c,
        addresses.iter().map(|a| format!("mailto:{a}")),
    )
    .await
    .unwrap();
    assert_eq!(imported, N as u64);
    let inc = pb::CreateIncidentRequest {
        name: "Datacenter fire".into(),
        body: "We are moving traffic to the other regions.".into(),
        impact: Some("critical".into()),
        ..Default::default()
    };
    // A relay taking 20 ms a message over 2 connections: about 100 messages a second.
    sink.delay(20);
    c.create_incident(write(inc, &key("i"))).await.unwrap();
    // Some mail is out, most is not: kill the leader.
    eventually(WAIT, "the first mails", || async {
        (sink.count() >= 100).then_some(())
    })
    .await;
    cluster.kill(leader);
    let sent_before_kill = sink.count();
    assert!(
        sent_before_kill < N / 2,
        "the fan-out was over before the kill"
    );
    let next = cluster.wait_leader(WAIT).await;
    assert_ne!(next, leader);
    let survivor = cluster.admin(next).await.unwrap();
    wait_outbox_drained(&survivor, Duration::from_secs(120)).await;

    let mails = sink.messages();
    let mut by_address: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for m in &mails {
        assert!(subject(m).contains("Datacenter fire"), "{}", subject(m));
        by_address
            .entry(m.envelope_to[0].to_lowercase())
            .or_default()
            .push(m.header("Message-ID").unwrap().to_owned());
    }
    let missing: Vec<&String> = addresses
        .iter()
        .filter(|a| !by_address.contains_key(*a))
        .collect();
    assert!(
        missing.is_empty(),
        "{} subscribers got no mail: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let mut repeated = 0;
    for (address, ids) in &by_address {
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "{address} got different messages: {ids:?}"
        );
        repeated += ids.len() - 1;
    }
    println!(
        "{N} subscribers: {sent_before_kill} mails before the SIGKILL, {} in all, {repeated} repeats (same Message-ID)",
        mails.len()
    );
}

/// The whole self-service path as a person does it, in Debian's headless Chromium: the form
/// on one region's page, the confirmation link from the mail, an incident's mail, and the
/// mail's unsubscribe link, one click.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_subscribes_confirms_and_unsubscribes_in_a_real_browser() {
    let sink = SmtpSink::start();
    let mut cluster = email_cluster(3, &sink);
    let leader = cluster.wait_leader(WAIT).await;
    let follower_base = cluster.nodes[(leader + 1) % 3].public_url("/");
    let other_base = cluster.nodes[(leader + 2) % 3].public_url("/");
    let mut c = cluster.admin(leader).await.unwrap();
    open_subscriptions(&mut c, &other_base).await;
    create_component(&mut c, "API").await;
    let web = create_component(&mut c, "Website").await;
    open_form(&reqwest::Client::new(), &follower_base).await;

    let form = format!("{follower_base}subscribe");
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            statusmesh_tests::smtp::browser(&args)
        })
    };
    let heading = run(vec![
        "subscribe".into(),
        form,
        "ann@example.com".into(),
        "Website".into(),
    ])
    .await
    .unwrap();
    assert_eq!(heading, "Check your inbox");

    let confirm = sink
        .wait_for("ann@example.com", WAIT, |m| !m.is_empty())
        .await
        .remove(0);
    let link = confirm.link("/subscriptions/confirm?").unwrap();
    let heading = run(vec!["click".into(), link, "Confirm".into()])
        .await
        .unwrap();
    assert_eq!(heading, "Subscribed");
    // What the form chose is what is stored: one active subscription, to the website only.
    let listed = c
        .list_subscribers(read(pb::ListSubscribersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let states: Vec<(&str, &[String])> = listed
        .subscribers
        .iter()
        .map(|s| (s.state.as_str(), s.component_ids.as_slice()))
        .collect();
    assert_eq!(states, [("active", std::slice::from_ref(&web))]);

    c.create_incident(write(
        pb::CreateIncidentRequest {
            name: "Website down".into(),
            body: "The website does not load.".into(),
            component_changes: vec![pb::ComponentChange {
                component_id: web.clone(),
                status: "major_outage".into(),
            }],
            ..Default::default()
        },
        &key("i"),
    ))
    .await
    .unwrap();
    let mails = sink
        .wait_for("ann@example.com", WAIT, |m| {
            m.iter().any(|m| subject(m).contains("Website down"))
        })
        .await;
    let incident = mails
        .iter()
        .find(|m| subject(m).contains("Website down"))
        .unwrap();
    let unsubscribe = incident
        .header("List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_owned();
    let heading = run(vec!["click".into(), unsubscribe, "Unsubscribe".into()])
        .await
        .unwrap();
    assert_eq!(heading, "Unsubscribed");
    let listed = c
        .list_subscribers(read(pb::ListSubscribersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.subscribers.is_empty(), "{:?}", listed.subscribers);
}

/// Each subscriber as "url state", sorted.
async fn subscriber_states(
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

/// Addresses are kept no longer than they serve, on the cluster's clock: a subscription never
/// confirmed is forgotten by the leader's scheduler once its link has expired (every node's
/// clock moved 25 hours on, as a day passing would), its link then answers as invalid, and
/// the confirmed subscriber stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_never_confirmed_is_forgotten_when_its_link_expires() {
    let sink = SmtpSink::start();
    let mut cluster = email_cluster(3, &sink);
    let leader = cluster.wait_leader(WAIT).await;
    let base = cluster.nodes[leader].public_url("/");
    let mut c = cluster.admin(leader).await.unwrap();
    open_subscriptions(&mut c, &base).await;
    let http = reqwest::Client::new();
    let form = open_form(&http, &base).await;
    for address in ["late@example.com", "keen@example.com"] {
        let (status, answer) =
            send_form(&http, &form, &[("email", address), ("scope", "all")]).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let link_of = async |address: &str| {
        sink.wait_for(address, WAIT, |m| !m.is_empty()).await[0]
            .link("/subscriptions/confirm?")
            .unwrap()
    };
    let late_link = link_of("late@example.com").await;
    let keen_link = link_of("keen@example.com").await;
    let (status, _) = follow(&http, &keen_link).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        subscriber_states(&mut c).await,
        [
            "mailto:keen@example.com active",
            "mailto:late@example.com unconfirmed"
        ]
    );

    // A day passes on every node (a majority agrees, so the cluster's clock follows).
    let day_on = (25 * 3_600_000).to_string();
    for i in 0..3 {
        cluster.stop(i);
        let id = cluster.nodes[i].id;
        cluster.set_node_env(id, "STATUSMESH_FAULT_CLOCK_OFFSET_MS", &day_on);
    }
    for i in 0..3 {
        cluster.spawn(i);
    }
    let leader = cluster.wait_leader(WAIT).await;
    let mut c = cluster.admin(leader).await.unwrap();
    eventually(WAIT, "the unconfirmed address forgotten", || {
        let mut c = c.clone();
        async move {
            let now = subscriber_states(&mut c).await;
            (now == ["mailto:keen@example.com active"]).then_some(())
        }
    })
    .await;
    let resp = http.post(&late_link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // The audit log records the scheduler's deletion without the address.
    let audit = c
        .list_audit(read(pb::ListAuditRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let text = format!("{audit:?}");
    assert!(text.contains("expire_subscribers"), "{text}");
    assert!(!text.contains("late@example.com"), "{text}");
}

/// The relay's TLS, both ways a relay offers it (STARTTLS on a plain port, TLS from the first
/// byte), verified against the configured CA: mail goes through each; a relay whose
/// certificate the node does not trust gets nothing, and the attempt says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_reaches_a_relay_over_starttls_and_tls_and_never_an_untrusted_one() {
    let pki = tempfile::TempDir::new().unwrap();
    let ca = statusmesh_tls::pki::create_ca(pki.path(), "relay test CA", 30).unwrap();
    let (cert, cert_key) =
        statusmesh_tls::pki::issue_node(pki.path(), 99, &["localhost".into()], 30).unwrap();
    for (mode, trusted) in [("starttls", true), ("tls", true), ("tls", false)] {
        let sink = SmtpSink::start_tls(mode, &cert, &cert_key);
        let mut email = email_config(&sink);
        email.host = "localhost".into();
        email.security = mode.into();
        email.ca_cert = trusted.then(|| ca.clone());
        let mut cluster = TestCluster::start_options(
            1,
            ClusterOptions {
                email: Some(email),
                ..ClusterOptions::default()
            },
        );
        let leader = cluster.wait_leader(WAIT).await;
        let mut c = cluster.admin(leader).await.unwrap();
        let r = c
            .add_subscriber(write(
                pb::AddSubscriberRequest {
                    url: "mailto:ops@example.com".into(),
                    ..Default::default()
                },
                &key("s"),
            ))
            .await
            .unwrap()
            .into_inner();
        let Some(Entity::Subscriber(ops)) = r.entity else {
            panic!("expected a subscriber")
        };
        c.test_subscriber(write(pb::IdRequest { id: ops.id.clone() }, &key("t")))
            .await
            .unwrap();
        if trusted {
            let mails = sink
                .wait_for("ops@example.com", WAIT, |m| !m.is_empty())
                .await;
            assert!(
                subject(&mails[0]).contains("Test notification"),
                "{mode}: {}",
                subject(&mails[0])
            );
            continue;
        }
        let error = eventually(WAIT, "the failed attempt", || {
            let mut c = c.clone();
            let id = ops.id.clone();
            async move {
                let list = c
                    .list_deliveries(read(pb::ListDeliveriesRequest { id, limit: 5 }))
                    .await
                    .ok()?
                    .into_inner();
                list.attempts.into_iter().find_map(|a| a.error)
            }
        })
        .await;
        assert!(error.contains("certificate"), "{error}");
        assert_eq!(sink.count(), 0, "nothing reached the untrusted relay");
    }
}

/// A developer subscribes a webhook on the page (a page setting, off by default): the form's
/// write goes through a follower, the confirmation goes by mail to the contact address — not
/// to the endpoint —, the confirm page shows the signing secret, and the incident then posted
/// to the endpoint verifies with it; the mail's unsubscribe link removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_subscribed_on_the_page_is_confirmed_by_mail_and_signed_with_the_shown_secret() {
    let sink = SmtpSink::start();
    let recv = statusmesh_tests::receiver::Receiver::start().await;
    let mut cluster = email_cluster(3, &sink);
    let leader = cluster.wait_leader(WAIT).await;
    let base = cluster.nodes[(leader + 1) % 3].public_url("/");
    let mut c = cluster.admin(leader).await.unwrap();
    let http = reqwest::Client::new();
    // Email only: a webhook form post is answered as closed.
    c.set_page(write(
        pb::SetPageRequest {
            url: Some(base.clone()),
            email_subscriptions: Some(true),
            ..Default::default()
        },
        &key("p"),
    ))
    .await
    .unwrap();
    let form = open_form(&http, &base).await;
    let endpoint = recv.url("/hook");
    let webhook_fields = [
        ("kind", "webhook"),
        ("url", endpoint.as_str()),
        ("contact", "dev@example.net"),
        ("scope", "all"),
    ];
    let (status, _) = send_form(&http, &form, &webhook_fields).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    c.set_page(write(
        pb::SetPageRequest {
            webhook_subscriptions: Some(true),
            ..Default::default()
        },
        &key("p2"),
    ))
    .await
    .unwrap();
    eventually(WAIT, "the webhook form", || {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let html = http
                .get(format!("{base}subscribe"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            html.contains("name=\"contact\"").then_some(())
        }
    })
    .await;
    let form = open_form(&http, &base).await;
    // A target the dispatcher may not reach is refused at the form, naming why.
    let (status, answer) = send_form(
        &http,
        &form,
        &[
            ("kind", "webhook"),
            ("url", "http://169.254.169.254/latest"),
            ("contact", "dev@example.net"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer.contains("169.254.169.254"), "{answer}");
    let (status, answer) = send_form(&http, &form, &webhook_fields).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.contains("Check your inbox"), "{answer}");

    let mail = sink
        .wait_for("dev@example.net", WAIT, |m| !m.is_empty())
        .await
        .remove(0);
    assert!(
        subject(&mail).contains("Confirm your webhook subscription"),
        "{}",
        subject(&mail)
    );
    assert!(mail.text().contains("127.0.0.1"), "{}", mail.text());
    assert_eq!(recv.count(), 0, "nothing is posted before the confirmation");
    let link = mail.link("/subscriptions/confirm?").unwrap();
    let (status, page) = follow(&http, &link).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let secret = page
        .split("<code id=\"secret\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{page}");

    c.create_incident(write(
        pb::CreateIncidentRequest {
            name: "Checkout errors".into(),
            body: "Payments fail for some customers.".into(),
            ..Default::default()
        },
        &key("i"),
    ))
    .await
    .unwrap();
    assert!(recv.wait_for(WAIT, |r| !r.is_empty()).await);
    let got = recv.on("/hook").remove(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    statusmesh_webhook::signature::verify(
        &secret,
        got.webhook_id.as_deref(),
        got.timestamp.as_deref(),
        got.signature.as_deref(),
        &got.body,
        now,
    )
    .expect("signed with the secret the confirm page showed");
    let listed = subscriber_states(&mut c).await;
    assert_eq!(listed, [format!("{endpoint} active")]);

    // The confirmation mail's unsubscribe link (a mail of its own within 10 minutes would
    // be held back: one notice per recipient per interval) removes it.
    let unsubscribe = mail.link("/subscriptions/unsubscribe?").unwrap();
    let (status, page) = follow(&http, &unsubscribe).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("nothing more will be posted"), "{page}");
    assert!(subscriber_states(&mut c).await.is_empty());
}

/// Behind a load balancer (`[limits] trusted_proxies`), the form's per-client limit counts
/// the client its `X-Forwarded-For` names — not the balancer, which would lock out everyone
/// at once — and a client's own forged entries do not get it out of its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_form_limit_counts_each_forwarded_client() {
    let sink = SmtpSink::start();
    let mut cluster = TestCluster::start_options(
        1,
        ClusterOptions {
            email: Some(email_config(&sink)),
            limits: statusmesh_server::config::LimitsConfig {
                trusted_proxies: vec!["127.0.0.0/8".into()],
                ..Default::default()
            },
            ..ClusterOptions::default()
        },
    );
    let leader = cluster.wait_leader(WAIT).await;
    let base = cluster.nodes[leader].public_url("/");
    let mut c = cluster.admin(leader).await.unwrap();
    open_subscriptions(&mut c, &base).await;
    let http = reqwest::Client::new();
    let form = open_form(&http, &base).await;
    let post = async |forwarded: &str, n: usize| {
        http.post(&form.url)
            .header("cookie", format!("sm_csrf={}", form.csrf))
            .header("x-forwarded-for", forwarded)
            .form(&[
                ("csrf", form.csrf.as_str()),
                ("email", format!("p{n}@example.com").as_str()),
            ])
            .send()
            .await
            .unwrap()
            .status()
    };
    for n in 0..10 {
        // Whatever a client puts first, the balancer's entry is the one counted.
        let forwarded = format!("198.51.100.{n}, 203.0.113.1");
        assert_eq!(post(&forwarded, n).await, StatusCode::OK, "post {n}");
    }
    assert_eq!(
        post("198.51.100.77, 203.0.113.1", 10).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        post("203.0.113.2", 11).await,
        StatusCode::OK,
        "another client"
    );
}
