//! Customers subscribing themselves on the public page, on a real cluster with a real SMTP
//! server on loopback: in Debian's headless Chromium, a webhook confirmed by mail, addresses
//! forgotten when their link expires, and the form's limit behind a trusted proxy.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use statusmesh_proto::admin as pb;
use statusmesh_tests::selfservice::*;
use statusmesh_tests::smtp::SmtpSink;
use statusmesh_tests::*;

const WAIT: Duration = Duration::from_secs(30);

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
