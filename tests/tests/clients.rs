//! Third-party Statuspage clients, unchanged, pointed at every node of a real cluster:
//! `statuscheck` (PyPI; parses summary.json strictly into its own status, component and
//! incident types, failing on an unknown enumeration value) and `statuspage.io` (npm; reads
//! the summary, status, components, incidents and maintenances endpoints).
//!
//! The clients are installed once per machine, pinned, under `~/.cache/statusmesh-clients`
//! (pip and npm fetch them from their registries the first time).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use statusmesh_proto::admin::{self as pb};
use statusmesh_tests::tools::{self, run_ok as run};
use statusmesh_tests::*;

const STATUSCHECK: &str = "statuscheck==3.11.0";
/// Standard tools from PyPI: gRPC health/reflection clients, and Prometheus' own parser.
const GRPC_TOOLS: [&str; 4] = [
    "grpcio==1.76.0",
    "grpcio-health-checking==1.76.0",
    "grpcio-reflection==1.76.0",
    "prometheus-client==0.21.1",
];
const STATUSPAGE_IO: &str = "statuspage.io@3.2.10";

/// Installs both clients once per machine (under a lock: the three tests here may all find
/// a cold cache at once).
fn clients_dir() -> PathBuf {
    let pinned = format!("{STATUSCHECK}+{STATUSPAGE_IO}+{}", GRPC_TOOLS.join("+"));
    tools::installed("statusmesh-clients", &pinned, |dir| {
        run(Command::new("python3")
            .args(["-m", "venv"])
            .arg(dir.join("venv")));
        run(Command::new(dir.join("venv/bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check", STATUSCHECK])
            .args(GRPC_TOOLS));
        run(Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(dir)
            .arg(STATUSPAGE_IO));
    })
}

const PYTHON: &str = r#"
import json, sys
from statuscheck.services.bases._statuspageio import BaseStatusPageAPI

class Node(BaseStatusPageAPI):
    name = "statusmesh"
    def _get_base_url(self):
        return sys.argv[1] + "/api/v2/"

s = Node().get_summary()
print(json.dumps({
    "code": s.status.code,
    "is_ok": s.status.is_ok,
    "description": s.status.description,
    "components": {c.name: c.status for c in s.components},
    "incidents": [[i.name, i.status, [c.name for c in i.components]] for i in s.incidents],
}))
"#;

const NODE: &str = r#"
const { Statuspage } = require(process.argv[2] + "/node_modules/statuspage.io");
const sp = new Statuspage("statusmesh");
sp.setApiUrl(process.argv[1]);
(async () => {
  const summary = await sp.api.getSummary();
  const status = await sp.api.getStatus();
  const components = await sp.api.getComponents();
  const incidents = await sp.api.incidents.getAll();
  const unresolved = await sp.api.incidents.getUnresolved();
  const upcoming = await sp.api.scheduledMaintenances.getUpcoming();
  console.log(JSON.stringify({
    page: summary.page.name,
    indicator: status.status.indicator,
    components: components.components.length,
    incidents: incidents.incidents.map((i) => i.name),
    unresolved: unresolved.incidents.length,
    upcoming: upcoming.scheduled_maintenances.map((m) => m.name),
  }));
})().catch((e) => { console.error(e.message); process.exit(1); });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_statuspage_clients_read_every_node() {
    let dir = tokio::task::spawn_blocking(clients_dir).await.unwrap();
    let mut cluster = TestCluster::start(3);
    cluster.wait_leader(Duration::from_secs(30)).await;
    let mut c = cluster.admin(0).await.unwrap();
    c.set_page(write(
        pb::SetPageRequest {
            name: Some("Acme Cloud".into()),
            url: Some("https://status.acme.test".into()),
            ..Default::default()
        },
        &key("page"),
    ))
    .await
    .unwrap();
    let mut ids = Vec::new();
    for name in ["API", "Dashboard"] {
        ids.push(create_component(&mut c, name).await);
    }
    let r = c
        .create_incident(write(
            pb::CreateIncidentRequest {
                name: "API errors".into(),
                impact: Some("major".into()),
                body: "Investigating.".into(),
                component_changes: vec![pb::ComponentChange {
                    component_id: ids[0].clone(),
                    status: "partial_outage".into(),
                }],
                ..Default::default()
            },
            &key("i"),
        ))
        .await
        .unwrap()
        .into_inner();
    let index = r.index;
    c.schedule_maintenance(write(
        pb::ScheduleMaintenanceRequest {
            name: "Database upgrade".into(),
            body: "Planned.".into(),
            scheduled_for: "2099-01-01T00:00:00Z".into(),
            scheduled_until: "2099-01-01T02:00:00Z".into(),
            component_ids: vec![ids[1].clone()],
            ..Default::default()
        },
        &key("m"),
    ))
    .await
    .unwrap();

    for node in &cluster.nodes {
        let base = node.public_url("");
        let base = base.trim_end_matches('/').to_owned();
        // Wait until this node has the writes (the clients have no min_index).
        let url = format!("{base}/api/v2/status.json?min_index={}", index + 1);
        reqwest::get(&url)
            .await
            .unwrap()
            .error_for_status()
            .unwrap();

        let out = run(Command::new(dir.join("venv/bin/python"))
            .args(["-c", PYTHON])
            .arg(&base));
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["code"], "major", "{v}");
        assert_eq!(v["is_ok"], false);
        assert_eq!(v["description"], "Partial System Outage");
        assert_eq!(v["components"]["API"], "Partial outage", "{v}");
        assert_eq!(v["components"]["Dashboard"], "Operational");
        assert_eq!(v["incidents"][0][0], "API errors");
        assert_eq!(v["incidents"][0][1], "investigating");
        assert_eq!(v["incidents"][0][2][0], "API");
        assert_eq!(v["incidents"][1][0], "Database upgrade");

        let out = run(Command::new("node").args(["-e", NODE]).arg(&base).arg(&dir));
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["page"], "Acme Cloud", "{v}");
        assert_eq!(v["indicator"], "major");
        assert_eq!(v["components"], 2);
        assert_eq!(v["incidents"], serde_json::json!(["API errors"]));
        assert_eq!(v["unresolved"], 1);
        assert_eq!(v["upcoming"], serde_json::json!(["Database upgrade"]));
    }
}

const GRPC_PYTHON: &str = r#"
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
# The admin port speaks TLS; trust the cluster's CA.
creds = grpc.ssl_channel_credentials(root_certificates=open(sys.argv[2], "rb").read())
ch = grpc.secure_channel(sys.argv[1], creds)
h = health_pb2_grpc.HealthStub(ch)
req = health_pb2.HealthCheckRequest(service="statusmesh.admin.v1.Admin")
print(health_pb2.HealthCheckResponse.ServingStatus.Name(h.Check(req, timeout=5).status))
r = reflection_pb2_grpc.ServerReflectionStub(ch)
out = list(r.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
print(",".join(sorted(s.name for s in out[0].list_services_response.service)))
sym = reflection_pb2.ServerReflectionRequest(file_containing_symbol="statusmesh.admin.v1.Admin")
out = list(r.ServerReflectionInfo(iter([sym]), timeout=5))
print(len(out[0].file_descriptor_response.file_descriptor_proto))
"#;

/// Standard gRPC tooling (Python grpcio's health checking and reflection clients) talks to the
/// admin port without the .proto files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_and_reflection_answer_standard_clients() {
    let dir = tokio::task::spawn_blocking(clients_dir).await.unwrap();
    let mut cluster = TestCluster::start(1);
    cluster.wait_leader(Duration::from_secs(30)).await;
    let addr = cluster.nodes[0].config.listen.admin.to_string();
    let ca = cluster.ca_cert().unwrap();
    // SERVING once the node holds a replica of an initialised cluster.
    let out = eventually(
        Duration::from_secs(10),
        "the admin service reports SERVING",
        || {
            let (dir, addr, ca) = (dir.clone(), addr.clone(), ca.clone());
            async move {
                let out = run(Command::new(dir.join("venv/bin/python"))
                    .args(["-c", GRPC_PYTHON])
                    .arg(&addr)
                    .arg(&ca));
                out.starts_with("SERVING\n").then_some(out)
            }
        },
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[1],
        "grpc.health.v1.Health,grpc.reflection.v1.ServerReflection,grpc.reflection.v1alpha.ServerReflection,statusmesh.admin.v1.Admin",
        "{out}"
    );
    assert!(lines[2].parse::<u32>().unwrap() >= 1, "{out}");
}

const PROMETHEUS_PYTHON: &str = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1]).read().decode()
out = {}
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else "")
        out[key] = s.value
    out["type:" + fam.name] = fam.type
print(json.dumps(out))
"#;

/// `/metrics` on every node parses with Prometheus' reference Python parser, and says who leads,
/// what was proposed and what the outbox holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_parse_with_the_reference_parser() {
    let dir = tokio::task::spawn_blocking(clients_dir).await.unwrap();
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(30)).await;
    let mut c = cluster.admin(1).await.unwrap();
    for n in 0..3 {
        create_component(&mut c, &format!("m{n}")).await;
    }
    cluster.wait_converged(Duration::from_secs(30)).await;
    // A refused admin call (no token), and public requests a route matches or none does.
    let refused = c
        .who_am_i(tonic::Request::new(pb::ReadRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let http = reqwest::Client::new();
    for i in 0..3 {
        for path in ["/api/v2/summary.json", "/incidents/nope", "/no/such/page"] {
            http.get(cluster.nodes[i].public_url(path))
                .send()
                .await
                .unwrap();
        }
    }
    let (mut leaders, mut elections) = (0.0, 0.0);
    for i in 0..3 {
        let out = run(Command::new(dir.join("venv/bin/python"))
            .args(["-c", PROMETHEUS_PYTHON])
            .arg(cluster.nodes[i].public_url("/metrics")));
        let m: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let v = |k: &str| {
            m[k].as_f64()
                .unwrap_or_else(|| panic!("{k} missing in {m}"))
        };
        leaders += v("statusmesh_raft_is_leader");
        elections += v("statusmesh_raft_elections_total");
        assert!(v("statusmesh_raft_term") >= 1.0);
        assert_eq!(v("statusmesh_raft_members"), 3.0);
        assert!(v("statusmesh_raft_applied_index") >= 4.0);
        assert!(v("statusmesh_store_disk_bytes") > 0.0);
        assert_eq!(m["type:statusmesh_proposal_duration_seconds"], "histogram");
        assert_eq!(m["type:statusmesh_webhook_delivered"], "counter");
        let state = if i == leader { "leader" } else { "follower" };
        assert_eq!(
            v(&format!("statusmesh_raft_state{{state={state}}}")),
            1.0,
            "{m}"
        );
        // Every node saw the leader take over; request counts are by route pattern and code.
        assert!(v("statusmesh_raft_leader_changes_total") >= 1.0, "{m}");
        assert_eq!(m["type:statusmesh_raft_elections"], "counter");
        assert_eq!(
            v("statusmesh_http_requests_total{code=200,route=/api/v2/{*path}}"),
            1.0
        );
        assert_eq!(
            v("statusmesh_http_requests_total{code=404,route=/incidents/{id}}"),
            1.0
        );
        assert_eq!(
            v("statusmesh_http_requests_total{code=404,route=unmatched}"),
            1.0
        );
        assert_eq!(
            v("statusmesh_http_request_duration_seconds_count{route=unmatched}"),
            1.0
        );
        for family in [
            "statusmesh_http_request_duration_seconds",
            "statusmesh_grpc_admin_request_duration_seconds",
            "statusmesh_grpc_peer_request_duration_seconds",
            "statusmesh_snapshot_build_duration_seconds",
            "statusmesh_snapshot_install_duration_seconds",
            "statusmesh_webhook_attempt_duration_seconds",
            "statusmesh_webhook_delivery_lag_seconds",
        ] {
            assert_eq!(m[format!("type:{family}")], "histogram", "{family}");
        }
        if i != leader {
            // Followers answer the leader's AppendEntries on the peer port.
            assert!(
                v("statusmesh_grpc_peer_requests_total{code=OK,method=statusmesh.peer.v1.Peer/AppendEntries}")
                    >= 1.0
            );
        }
        if i == 1 {
            // The writes, and the refused call, arrived here.
            assert_eq!(
                v("statusmesh_grpc_admin_requests_total{code=OK,method=statusmesh.admin.v1.Admin/CreateComponent}"),
                3.0
            );
            assert_eq!(
                v("statusmesh_grpc_admin_requests_total{code=UNAUTHENTICATED,method=statusmesh.admin.v1.Admin/WhoAmI}"),
                1.0
            );
            // The three writes arrived here.
            assert_eq!(v("statusmesh_proposal_duration_seconds_count"), 3.0);
            assert_eq!(
                v("statusmesh_proposal_duration_seconds_bucket{le=+Inf}"),
                3.0
            );
        }
        if i == leader {
            assert!(m
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with("statusmesh_raft_replication_lag_entries{")));
        }
    }
    assert_eq!(leaders, 1.0);
    // The leader was elected: some node counted the election it started.
    assert!(elections >= 1.0);
}
