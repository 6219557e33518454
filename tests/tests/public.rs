//! The public HTTP face on a real cluster: the same status from every region, freshness
//! headers, ETag revalidation, compression, CORS, `min_index`, and stale mode when the node
//! is cut off from the cluster.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde_json::Value;
use statusmesh_proto::admin::{self as pb};
use statusmesh_tests::*;

const LIMIT: Duration = Duration::from_secs(30);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_region_serves_the_same_status_with_freshness_headers() {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(leader).await.unwrap();
    let reply = c
        .create_component(write(component_request("API"), &key("c")))
        .await
        .unwrap()
        .into_inner();
    let index = reply.index;
    let client = http();

    // Read-your-write on every node with min_index; all regions agree byte for byte.
    let mut etags = Vec::new();
    for n in &cluster.nodes {
        let url = n.public_url(&format!("/api/v2/summary.json?min_index={index}"));
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers().clone();
        assert_eq!(h["x-statusmesh-node"], n.id.to_string().as_str());
        assert_eq!(h["x-statusmesh-region"], n.config.region.as_str());
        assert!(
            h["x-statusmesh-applied-index"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= index
        );
        assert!(h.contains_key("x-statusmesh-leader-contact-ms"));
        assert_eq!(h["x-statusmesh-stale"], "false");
        assert_eq!(h["access-control-allow-origin"], "*");
        assert!(h["cache-control"]
            .to_str()
            .unwrap()
            .contains("stale-if-error"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["components"][0]["name"], "API");
        etags.push(h[ETAG].to_str().unwrap().to_owned());
    }
    assert!(
        etags.windows(2).all(|w| w[0] == w[1]),
        "every region serves the same bytes: {etags:?}"
    );

    // Revalidation.
    let url = cluster.nodes[1].public_url("/api/v2/summary.json");
    let resp = client
        .get(&url)
        .header(IF_NONE_MATCH, &etags[0])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()[ETAG], etags[0].as_str());

    // Compression negotiation, and the compressed bytes decode to the same document.
    let plain = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let resp = client
        .get(&url)
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()[CONTENT_ENCODING], "gzip");
    let gz = resp.bytes().await.unwrap();
    assert!(gz.len() < plain.len());
    let resp = client
        .get(&url)
        .header(ACCEPT_ENCODING, "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()[CONTENT_ENCODING], "br");
    let resp = client
        .get(&url)
        .header(ACCEPT_ENCODING, "br;q=0, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()[CONTENT_ENCODING], "gzip");
    let decoding = reqwest::Client::new();
    let decoded: Value = decoding
        .get(&url)
        .header(ACCEPT_ENCODING, "br")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(decoded, serde_json::from_slice::<Value>(&plain).unwrap());

    // CORS preflight for widgets embedding the API cross-origin.
    let resp = client
        .request(reqwest::Method::OPTIONS, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("GET"));

    // Unknown endpoints and bad min_index answer with clear errors.
    let resp = client
        .get(cluster.nodes[0].public_url("/api/v2/nope.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = client
        .get(cluster.nodes[0].public_url("/api/v2/status.json?min_index=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("min_index"));
    let started = Instant::now();
    let resp = client
        .get(cluster.nodes[0].public_url("/api/v2/status.json?min_index=999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "min_index waits are bounded"
    );
    assert!(resp.text().await.unwrap().contains("999999"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_the_leader_shows_on_every_node_promptly() {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(leader).await.unwrap();
    let reply = c
        .create_incident(write(
            pb::CreateIncidentRequest {
                name: "Payments failing".into(),
                body: "Investigating".into(),
                impact: Some("critical".into()),
                ..Default::default()
            },
            &key("i"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(reply.index > 0);
    let committed = Instant::now();
    let client = http();
    for n in &cluster.nodes {
        let url = n.public_url("/api/v2/status.json");
        eventually(
            Duration::from_secs(5),
            "the new incident on every node",
            || {
                let client = client.clone();
                let url = url.clone();
                async move {
                    let v: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
                    (v["status"]["indicator"] == "critical").then_some(())
                }
            },
        )
        .await;
    }
    println!(
        "visible on all three nodes {} ms after the write was acknowledged",
        committed.elapsed().as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_cluster_keeps_serving_and_says_it_is_stale() {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(leader).await.unwrap();
    c.create_component(write(component_request("API"), &key("c")))
        .await
        .unwrap();
    cluster.wait_converged(LIMIT).await;
    let survivor = (leader + 1) % 3;
    for i in 0..3 {
        if i != survivor {
            cluster.kill(i);
        }
    }
    let client = http();
    let url = cluster.nodes[survivor].public_url("/api/v2/summary.json");
    // Stale after 2 s without a leader (the harness's stale_after_ms); it never stops serving.
    let served = eventually(
        Duration::from_secs(15),
        "the survivor reporting itself stale",
        || {
            let client = client.clone();
            let url = url.clone();
            async move {
                let resp = client.get(&url).send().await.ok()?;
                assert_eq!(resp.status(), StatusCode::OK, "public reads must not fail");
                (resp.headers()["x-statusmesh-stale"] == "true").then_some(resp)
            }
        },
    )
    .await;
    let body: Value = served.json().await.unwrap();
    assert_eq!(
        body["components"][0]["name"], "API",
        "the last known status is still served"
    );
    let cluster_view: Value = client
        .get(cluster.nodes[survivor].public_url("/api/cluster"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cluster_view["stale"], true);
    let resp = client
        .get(cluster.nodes[survivor].public_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a stale replica is still a replica"
    );
    let html = client
        .get(cluster.nodes[survivor].public_url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("lost contact with the cluster"),
        "the HTML page says it is stale"
    );
    assert!(
        html.contains("API"),
        "and still shows the last known status"
    );
}

/// The security headers a browser needs on every response, and HSTS only over HTTPS.
fn assert_secure(resp: &reqwest::Response, https: bool) {
    let h = resp.headers();
    let what = format!("{} {}", resp.status(), resp.url());
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(
        !csp.contains("script-src"),
        "{what}: scripts are never allowed: {csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(
        h["referrer-policy"], "strict-origin-when-cross-origin",
        "{what}"
    );
    assert_eq!(
        h.get("strict-transport-security").is_some(),
        https,
        "{what}: HSTS exactly when the port serves HTTPS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_public_response_carries_the_security_headers() {
    for public_tls in [false, true] {
        let mut cluster = TestCluster::start_options(
            1,
            ClusterOptions {
                public_tls,
                ..ClusterOptions::default()
            },
        );
        cluster.wait_leader(LIMIT).await;
        let ca = std::fs::read(cluster.ca_cert().unwrap()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let node = &cluster.nodes[0];
        assert_eq!(node.public_url("/").starts_with("https://"), public_tls);
        let mut etag = None;
        for path in [
            "/",
            "/api/v2/summary.json",
            "/history",
            "/history.atom",
            "/badge.svg",
            "/api/cluster",
            "/healthz",
            "/no/such/page",
        ] {
            let resp = eventually(LIMIT, "an answer", || async {
                client.get(node.public_url(path)).send().await.ok()
            })
            .await;
            assert_secure(&resp, public_tls);
            if path == "/" {
                assert_eq!(resp.status(), StatusCode::OK);
                etag = resp.headers().get(ETAG).cloned();
            }
        }
        // A revalidation (304) carries them too.
        let resp = client
            .get(node.public_url("/"))
            .header(IF_NONE_MATCH, etag.unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert_secure(&resp, public_tls);
    }
}
