//! Email notifications on a real 3-node cluster, with a real SMTP server on loopback
//! (aiosmtpd) receiving the mail and a real MIME parser (Python's `email`) reading it: the
//! whole subscription path with the links followed over HTTP on other nodes, a leader killed
//! mid fan-out, and the relay's TLS.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_server::config::EmailConfig;
use statusmesh_tests::selfservice::*;
use statusmesh_tests::smtp::{Mail, SmtpSink};
use statusmesh_tests::*;

const WAIT: Duration = Duration::from_secs(30);

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
    let gone = add_email_subscriber(&mut c, "gone@example.net").await;
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
        let ops = add_email_subscriber(&mut c, "ops@example.com").await;
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
