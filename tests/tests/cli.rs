//! `statusctl` against a running cluster: JSON output parsed, endpoint failover, exit codes.

// Test-only crate: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use statusmesh_tests::*;

fn statusctl(ca: &std::path::Path, endpoints: &str, args: &[&str]) -> Output {
    Command::new(binary("statusctl"))
        .env("STATUSMESH_ENDPOINT", endpoints)
        .env("STATUSMESH_CA_CERT", ca)
        .env("STATUSMESH_TOKEN", TOKEN)
        .args(["--output", "json"])
        .args(args)
        .output()
        .expect("run statusctl")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "statusctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("statusctl printed JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statusctl_drives_the_cluster_with_json_output() {
    let mut cluster = TestCluster::start(3);
    let ca = cluster.ca_cert().unwrap();
    let ctl = |eps: &str, args: &[&str]| statusctl(&ca, eps, args);
    cluster.wait_leader(Duration::from_secs(30)).await;
    let eps: Vec<String> = cluster.nodes.iter().map(|n| n.admin_endpoint()).collect();
    let singapore = &eps[2];

    let group = json(&ctl(
        singapore,
        &["component", "create", "--name", "Platform", "--group"],
    ));
    let group_id = group["component"]["id"].as_str().unwrap().to_owned();
    let api = json(&ctl(
        singapore,
        &[
            "component",
            "create",
            "--name",
            "API",
            "--group-id",
            &group_id,
            "--showcase",
        ],
    ));
    let api_id = api["component"]["id"].as_str().unwrap().to_owned();
    assert_eq!(api["component"]["group_id"], group_id.as_str());

    let inc = json(&ctl(
        singapore,
        &[
            "incident",
            "create",
            "--name",
            "API down",
            "--body",
            "Investigating",
            "--impact",
            "major",
            "--component",
            &format!("{api_id}=major_outage"),
        ],
    ));
    let inc_id = inc["incident"]["id"].as_str().unwrap().to_owned();
    assert_eq!(inc["incident"]["status"], "investigating");
    assert!(inc["index"].as_u64().unwrap() > 0);

    // The incident is on every node.
    for ep in &eps {
        let got = json(&ctl(ep, &["--linearizable", "incident", "get", &inc_id]));
        assert_eq!(got["name"], "API down");
        assert_eq!(
            got["updates"][0]["affected_components"][0]["new_status"],
            "major_outage"
        );
    }
    let list = json(&ctl(&eps[0], &["component", "list"]));
    let comps = list["components"].as_array().unwrap();
    assert_eq!(comps.len(), 2);
    assert_eq!(
        comps[0]["status"], "major_outage",
        "a group shows its worst component"
    );

    json(&ctl(
        &eps[1],
        &[
            "incident",
            "update",
            &inc_id,
            "--status",
            "identified",
            "--body",
            "Found it",
        ],
    ));
    let resolved = json(&ctl(&eps[1], &["incident", "resolve", &inc_id]));
    assert_eq!(resolved["incident"]["status"], "resolved");
    let pm = json(&ctl(
        &eps[1],
        &[
            "incident",
            "postmortem",
            &inc_id,
            "--body",
            "Root cause: a bad config push.",
        ],
    ));
    assert_eq!(pm["incident"]["status"], "postmortem");
    let comp = json(&ctl(
        &eps[0],
        &["--linearizable", "component", "get", &api_id],
    ));
    assert_eq!(comp["components"][0]["status"], "operational");

    let m = json(&ctl(
        &eps[0],
        &[
            "maintenance",
            "schedule",
            "--name",
            "DB upgrade",
            "--body",
            "Brief blips",
            "--from",
            "2099-01-01T00:00:00Z",
            "--until",
            "2099-01-01T02:00:00Z",
            "--component",
            &api_id,
        ],
    ));
    let m_id = m["maintenance"]["id"].as_str().unwrap().to_owned();
    let cancelled = json(&ctl(&eps[0], &["maintenance", "cancel", &m_id]));
    assert_eq!(cancelled["maintenance"]["status"], "cancelled");

    let sub = json(&ctl(
        &eps[0],
        &[
            "subscriber",
            "add",
            "--url",
            "http://127.0.0.1:9/s",
            "--component",
            &api_id,
        ],
    ));
    assert!(sub["subscriber"]["secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    let subs = json(&ctl(&eps[0], &["subscriber", "list"]));
    assert_eq!(subs["subscribers"][0]["secret"], "whsec_****");

    let status = json(&ctl(&eps[0], &["cluster", "status"]));
    assert_eq!(status["members"].as_array().unwrap().len(), 3);
    assert_eq!(status["state_digest"].as_str().unwrap().len(), 64);

    // Several endpoints, the first one down: the next answers.
    let leader = cluster.wait_leader(Duration::from_secs(30)).await;
    let down = (leader + 1) % 3;
    cluster.kill(down);
    let order = format!("{},{}", eps[down], eps[(down + 1) % 3]);
    let c = json(&ctl(
        &order,
        &["component", "create", "--name", "Via failover"],
    ));
    assert_eq!(c["component"]["name"], "Via failover");

    // The same explicit idempotency key twice: applied once, replayed the second time.
    let a = json(&ctl(
        &order,
        &[
            "--idempotency-key",
            "cli-once",
            "component",
            "create",
            "--name",
            "Once",
        ],
    ));
    let b = json(&ctl(
        &order,
        &[
            "--idempotency-key",
            "cli-once",
            "component",
            "create",
            "--name",
            "Once",
        ],
    ));
    assert_eq!(a["component"]["id"], b["component"]["id"]);
    assert_eq!(b["replayed"], true);

    // Errors: non-zero exit and a message naming the code and the problem.
    let out = ctl(&order, &["component", "set-status", &api_id, "down"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("\"down\""),
        "{err}"
    );
    let out = Command::new(binary("statusctl"))
        .env_remove("STATUSMESH_TOKEN")
        .args(["--endpoint", &order, "component", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token"));
}

#[test]
fn statusctl_help_lists_every_noun() {
    let out = Command::new(binary("statusctl"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for noun in [
        "page",
        "component",
        "incident",
        "maintenance",
        "subscriber",
        "cluster",
        "token",
        "audit",
        "whoami",
        "backup",
        "--cert",
        "--endpoint",
        "--token",
        "--ca-cert",
        "--output",
    ] {
        assert!(
            help.contains(noun),
            "--help does not mention {noun}:\n{help}"
        );
    }
}

/// `statusctl subscriber import` from a CSV, through a follower: a refused row stops the
/// import naming it (the chunks before it are in), the same command with the fixed file and
/// the same --idempotency-key replays what went in and adds the rest, and the listing pages
/// through every subscriber in order on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_imported_from_csv_and_listed_page_by_page() {
    let mut cluster = TestCluster::start(3);
    let ca = cluster.ca_cert().unwrap();
    let ctl = |eps: &str, args: &[&str]| statusctl(&ca, eps, args);
    let leader = cluster.wait_leader(Duration::from_secs(30)).await;
    let eps: Vec<String> = cluster.nodes.iter().map(|n| n.admin_endpoint()).collect();
    let follower = &eps[(leader + 1) % 3];

    let dir = tempfile::TempDir::new().unwrap();
    let csv = dir.path().join("subscribers.csv");
    let rows = |bad: Option<usize>| {
        let mut text = String::from("url,format,description,owner\n");
        for i in 1..=4_500 {
            let url = if Some(i) == bad {
                format!("ftp://127.0.0.1/s/{i}")
            } else {
                format!("http://127.0.0.{}:9/s/{i}", 1 + i % 3)
            };
            text.push_str(&format!("{url},statuspage,\"row {i}, imported\",ops\n"));
        }
        text
    };
    std::fs::write(&csv, rows(Some(4_001))).unwrap();
    let path = csv.to_str().unwrap();
    let key = "import-acme-2026";
    let out = ctl(
        follower,
        &["--idempotency-key", key, "subscriber", "import", path],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let before: u64 = err
        .split_once("import stopped at row 4001 (")
        .and_then(|(_, rest)| rest.split_once(" rows imported before it"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    // Whole chunks (cut to fit a log entry) went in, none past the refused row.
    assert!(before > 0 && before < 4_000, "{err}");
    let page = json(&ctl(&eps[0], &["subscriber", "list", "--page-size", "10"]));
    assert_eq!(page["total"], before);

    std::fs::write(&csv, rows(None)).unwrap();
    let done = json(&ctl(
        follower,
        &["--idempotency-key", key, "subscriber", "import", path],
    ));
    assert_eq!(done["imported"], 4_500, "{done}");
    assert!(done["replayed_chunks"].as_u64().unwrap() >= 1, "{done}");

    // Page by page, in subscriber order, on another node than the one that imported.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let mut args = vec!["subscriber", "list", "--page-size", "1000"];
        if !token.is_empty() {
            args.extend(["--page-token", token.as_str()]);
        }
        let page = json(&ctl(&eps[leader], &args));
        assert_eq!(page["total"], 4_500);
        let subs = page["subscribers"].as_array().unwrap();
        assert!(subs.len() <= 1_000);
        seen.extend(subs.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        token = page["next_page_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 4_500);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in subscriber order");
    // Without a page flag: every page.
    let all = json(&ctl(&eps[2], &["subscriber", "list"]));
    assert_eq!(all["subscribers"].as_array().unwrap().len(), 4_500);
    let first = &all["subscribers"][0];
    assert_eq!(first["owner"], "ops");
    assert_eq!(first["secret"], "whsec_****");

    // A row the state machine refuses (an unknown component) names the import's row.
    std::fs::write(
        &csv,
        "url,components\nhttp://127.0.0.1:9/a,\nhttp://127.0.0.1:9/b,nosuchcomponent\n",
    )
    .unwrap();
    let out = ctl(follower, &["subscriber", "import", path]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("row 2") && err.contains("nosuchcomponent"),
        "{err}"
    );
    let all = json(&ctl(&eps[0], &["subscriber", "list", "--page-size", "1"]));
    assert_eq!(all["total"], 4_500, "the refused chunk added nothing");
}

/// A page moving from Statuspage: its subscriber CSV (components by name) imported with
/// `--csv`, the subscribers listed by kind and state (page by page when filtered), and
/// exported in both layouts — statusmesh's reads back as the same subscribers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statuspage_subscriber_csv_imports_filters_and_exports_back() {
    let mut cluster = TestCluster::start(3);
    let ca = cluster.ca_cert().unwrap();
    let ctl = |eps: &str, args: &[&str]| statusctl(&ca, eps, args);
    let leader = cluster.wait_leader(Duration::from_secs(30)).await;
    let eps: Vec<String> = cluster.nodes.iter().map(|n| n.admin_endpoint()).collect();
    let follower = &eps[(leader + 1) % 3];
    let id = |v: Value| v["component"]["id"].as_str().unwrap().to_owned();
    let api = id(json(&ctl(
        follower,
        &["component", "create", "--name", "API"],
    )));
    let web = id(json(&ctl(
        follower,
        &["component", "create", "--name", "Website"],
    )));

    let dir = tempfile::TempDir::new().unwrap();
    let csv = dir.path().join("statuspage.csv");
    std::fs::write(
        &csv,
        "Type,Email/Number/Endpoint,Skip Confirmation,Component,Component\n\
         email,ann@example.com,yes,API\n\
         email,Bob@Example.org,,website,API\n\
         webhook,http://127.0.0.1:9/hook,ops@example.net,Website\n\
         email,cy@example.com,yes\n",
    )
    .unwrap();
    let path = csv.to_str().unwrap();
    let done = json(&ctl(follower, &["subscriber", "import", "--csv", path]));
    assert_eq!(done["imported"], 4, "{done}");

    let list = |args: &[&str]| {
        let mut all = vec!["subscriber", "list"];
        all.extend(args);
        json(&ctl(&eps[leader], &all))["subscribers"]
            .as_array()
            .unwrap()
            .clone()
    };
    let emails = list(&["--kind", "email", "--state", "active"]);
    let mut addresses: Vec<&str> = emails.iter().map(|s| s["url"].as_str().unwrap()).collect();
    addresses.sort();
    // (The domain is normalised to lower case; the local part is the owner's.)
    assert_eq!(
        addresses,
        [
            "mailto:Bob@example.org",
            "mailto:ann@example.com",
            "mailto:cy@example.com"
        ]
    );
    let bob = emails
        .iter()
        .find(|s| s["url"] == "mailto:Bob@example.org")
        .unwrap();
    let mut bobs: Vec<&str> = bob["component_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    bobs.sort();
    let mut both = [api.as_str(), web.as_str()];
    both.sort();
    assert_eq!(bobs, both, "names resolved to ids, ignoring case");
    let hooks = list(&["--kind", "webhook"]);
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["owner"], "ops@example.net");
    assert!(list(&["--state", "unconfirmed"]).is_empty());
    // A filtered listing one page at a time: short pages carry a token on.
    let mut seen = 0;
    let mut token = String::new();
    loop {
        let mut args = vec!["subscriber", "list", "--kind", "email", "--page-size", "2"];
        if !token.is_empty() {
            args.extend(["--page-token", token.as_str()]);
        }
        let page = json(&ctl(&eps[0], &args));
        assert_eq!(page["total"], 4);
        seen += page["subscribers"].as_array().unwrap().len();
        token = page["next_page_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, 3);
    let out = ctl(&eps[0], &["subscriber", "list", "--kind", "sms"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("kind \"sms\" is not a subscriber kind"),
        "{err}"
    );

    // Statuspage's layout out, by name; statusmesh's out, and in again after a clean slate.
    let export = |args: &[&str]| {
        let mut all = vec!["subscriber", "export"];
        all.extend(args);
        let out = ctl(follower, &all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let mut lines: Vec<String> = export(&["--statuspage", "--kind", "email"])
        .lines()
        .map(|l| {
            // The component columns in a fixed order, to compare.
            let mut f: Vec<&str> = l.split(',').collect();
            f[3..].sort();
            f.join(",")
        })
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "email,Bob@example.org,yes,API,Website",
            "email,ann@example.com,yes,API",
            "email,cy@example.com,yes"
        ]
    );
    let ours = export(&[]);
    assert_eq!(ours.lines().count(), 5, "{ours}");
    let before = list(&[]);
    for s in &before {
        json(&ctl(
            follower,
            &["subscriber", "remove", s["id"].as_str().unwrap()],
        ));
    }
    assert!(list(&[]).is_empty());
    let back = dir.path().join("export.csv");
    std::fs::write(&back, &ours).unwrap();
    let done = json(&ctl(
        follower,
        &["subscriber", "import", back.to_str().unwrap()],
    ));
    assert_eq!(done["imported"], 4, "{done}");
    let fields = |subs: &[Value]| {
        let mut v: Vec<String> = subs
            .iter()
            .map(|s| {
                format!(
                    "{} {} {} {} {}",
                    s["url"], s["format"], s["component_ids"], s["owner"], s["state"]
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(fields(&list(&[])), fields(&before));
}
