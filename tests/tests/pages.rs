//! The HTML status page, incident and history pages, Atom and RSS feeds and SVG badges, read
//! from a follower of a real cluster and parsed (feeds and badges with a real XML parser).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_page_feeds_and_badges_carry_the_status() {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(30)).await;
    let mut c = cluster.admin(leader).await.unwrap();
    let page = pb::SetPageRequest {
        name: Some("Acme <Cloud>".into()),
        url: Some("https://status.acme.test/".into()),
        time_zone: Some("Europe/Paris".into()),
        emit_maintenance_status: None,
        email_subscriptions: None,
        webhook_subscriptions: None,
        mail_header: None,
        mail_footer: None,
    };
    c.set_page(write(page, &key("p"))).await.unwrap();
    let api = pb::CreateComponentRequest {
        name: "Public API".into(),
        showcase: true,
        ..Default::default()
    };
    let Some(Entity::Component(api)) = c
        .create_component(write(api, &key("c")))
        .await
        .unwrap()
        .into_inner()
        .entity
    else {
        panic!("expected a component")
    };
    let inc = pb::CreateIncidentRequest {
        name: "Elevated errors".into(),
        body: "We are investigating <b>errors</b>.".into(),
        impact: Some("major".into()),
        component_changes: vec![pb::ComponentChange {
            component_id: api.id.clone(),
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
    let update = pb::UpdateIncidentRequest {
        id: inc.id.clone(),
        status: Some("monitoring".into()),
        body: "A fix is deployed.".into(),
        ..Default::default()
    };
    c.update_incident(write(update, &key("u"))).await.unwrap();
    let resolve = pb::ResolveIncidentRequest {
        id: inc.id.clone(),
        ..Default::default()
    };
    c.resolve_incident(write(resolve, &key("r"))).await.unwrap();
    let pm = pb::PostmortemRequest {
        id: inc.id.clone(),
        body: "A bad config push.".into(),
    };
    let last = c
        .publish_postmortem(write(pm, &key("pm")))
        .await
        .unwrap()
        .into_inner();

    let client = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    let node = &cluster.nodes[(leader + 1) % 3];
    let get = |path: String| {
        let client = client.clone();
        async move { client.get(&path).send().await.unwrap() }
    };
    // Read-your-write on this follower.
    let resp = get(node.public_url(&format!("/api/v2/status.json?min_index={}", last.index))).await;
    assert_eq!(resp.status(), StatusCode::OK);

    let resp = get(node.public_url("/")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(resp.headers().contains_key("etag"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("Acme &lt;Cloud&gt;"), "names are escaped");
    assert!(html.contains(r#"<link rel="alternate" type="application/atom+xml""#));
    assert!(html.contains(r#"type="application/rss+xml""#));
    assert!(
        html.contains("All Systems Operational"),
        "the banner says it in words"
    );
    assert!(
        html.contains("Public API") && html.contains("✔ Operational"),
        "status in text, not colour alone"
    );
    assert!(
        html.contains("uptime over 90 days"),
        "uptime bars carry an accessible label"
    );
    assert!(html.contains("prefers-color-scheme:dark"));
    assert!(!html.contains("<script"), "works without JavaScript");
    assert!(html.contains(&format!("Served from region {}", node.config.region)));

    let page = get(node.public_url(&format!("/incidents/{}", inc.id)))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Elevated errors")
            && page.contains("Postmortem")
            && page.contains("A bad config push.")
    );
    assert!(
        page.contains("We are investigating &lt;b&gt;errors&lt;/b&gt;."),
        "bodies are escaped"
    );
    let (newer, older) = (
        page.find("A fix is deployed.").unwrap(),
        page.find("We are investigating").unwrap(),
    );
    assert!(newer < older, "the timeline is newest first");
    assert!(
        page.contains("CET") || page.contains("CEST"),
        "times in the page's time zone"
    );

    let history = get(node.public_url("/history")).await.text().await.unwrap();
    assert!(history.contains("Elevated errors") && history.contains("Page 1 of 1"));
    assert_eq!(
        get(node.public_url("/history?page=abc")).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(node.public_url("/history?page=9")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(node.public_url("/incidents/nosuchincident"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Feeds: well-formed, one entry per update, stable unique ids, identical from every region.
    let atom = get(node.public_url("/history.atom"))
        .await
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&atom).expect("the Atom feed is well-formed XML");
    let feed = doc.root_element();
    assert_eq!(feed.tag_name().name(), "feed");
    assert_eq!(
        feed.tag_name().namespace(),
        Some("http://www.w3.org/2005/Atom")
    );
    let entries: Vec<_> = feed
        .children()
        .filter(|n| n.has_tag_name("entry"))
        .collect();
    assert_eq!(entries.len(), 3, "created, monitoring, resolved");
    let ids: std::collections::BTreeSet<String> = entries
        .iter()
        .map(|e| {
            e.children()
                .find(|n| n.has_tag_name("id"))
                .unwrap()
                .text()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 3);
    for e in &entries {
        for required in ["id", "title", "updated"] {
            assert!(
                e.children().any(|n| n.has_tag_name(required)),
                "an Atom entry without {required}"
            );
        }
    }
    // The same feed from the leader, once its renderer has caught up (views are rebuilt
    // asynchronously after apply).
    let leader_url = cluster.nodes[leader].public_url("/history.atom");
    eventually(Duration::from_secs(10), "the leader's feed matches", || {
        let (url, atom) = (leader_url.clone(), atom.clone());
        async move { (get(url).await.text().await.ok()? == atom).then_some(()) }
    })
    .await;
    let rss = get(node.public_url("/history.rss"))
        .await
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&rss).expect("the RSS feed is well-formed XML");
    assert_eq!(doc.root_element().attribute("version"), Some("2.0"));
    let items: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("item"))
        .collect();
    assert_eq!(items.len(), 3);
    for item in &items {
        assert!(item.children().any(|n| n.has_tag_name("guid")));
        assert!(item.children().any(|n| n.has_tag_name("pubDate")));
    }

    for path in [
        "/badge.svg".to_string(),
        format!("/components/{}/badge.svg", api.id),
    ] {
        let resp = get(node.public_url(&path)).await;
        assert_eq!(resp.headers()["content-type"], "image/svg+xml");
        let svg = resp.text().await.unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("the badge is well-formed SVG");
        let label = doc
            .root_element()
            .attribute("aria-label")
            .unwrap()
            .to_owned();
        assert!(label.contains("Operational"), "{label}");
    }
}
