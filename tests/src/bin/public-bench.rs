//! Public read benchmark (not a test): one statusmesh node versus nginx serving the very same
//! bytes from files, under the same wrk load (fixed connections and duration), for
//! `/api/v2/summary.json`, the HTML page and a 304 revalidation, on a page with 50 components
//! and 500 incidents in its history. Prints requests/s, p50 and p99 for both and the ratio.
//!
//! Usage: public-bench [SECONDS] [CONNECTIONS]   (defaults 10 and 64; wrk uses 2 threads)
//! Needs `nginx` and `wrk` on PATH (scripts/bench-public.sh installs them). Everything it
//! starts listens on 127.0.0.1 and is stopped when it ends.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_tests::*;

struct Nginx(Child);

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its worker (a SIGKILLed master leaves the worker
    /// running, orphaned); SIGKILL only if it has not exited within 5 s.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn parse_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => return None,
    })
}

fn wrk(url: &str, secs: u64, conns: u32, headers: &[String]) -> anyhow::Result<Figures> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .arg(url)
        .output()
        .context("cannot run wrk (install it: apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = Figures {
        rps: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
    };
    for line in text.lines() {
        let mut it = line.split_whitespace();
        match (it.next(), it.next()) {
            (Some("Requests/sec:"), Some(v)) => f.rps = v.parse().unwrap_or(0.0),
            (Some("50%"), Some(v)) => f.p50_ms = parse_ms(v).unwrap_or(0.0),
            (Some("99%"), Some(v)) => f.p99_ms = parse_ms(v).unwrap_or(0.0),
            _ => {}
        }
    }
    if text.contains("Non-2xx or 3xx responses") {
        bail!("wrk saw error responses from {url}:\n{text}");
    }
    if f.rps == 0.0 {
        bail!("wrk printed no figures for {url}:\n{text}");
    }
    Ok(f)
}

async fn seed(cluster: &TestCluster) -> anyhow::Result<()> {
    let mut c = cluster.admin(0).await?;
    let page = pb::SetPageRequest {
        name: Some("Bench Cloud".into()),
        url: Some("https://status.bench.test/".into()),
        time_zone: Some("Europe/Paris".into()),
        emit_maintenance_status: None,
        email_subscriptions: None,
        webhook_subscriptions: None,
        mail_header: None,
        mail_footer: None,
    };
    c.set_page(write(page, &key("p"))).await?;
    let mut ids = Vec::new();
    for g in 0..5 {
        let group = pb::CreateComponentRequest {
            name: format!("Group {g}"),
            group: true,
            ..Default::default()
        };
        let Some(Entity::Component(group)) = c
            .create_component(write(group, &key("g")))
            .await?
            .into_inner()
            .entity
        else {
            bail!("no group")
        };
        for n in 0..9 {
            let comp = pb::CreateComponentRequest {
                name: format!("Service {g}.{n}"),
                description: Some("A service customers use".into()),
                group_id: Some(group.id.clone()),
                showcase: true,
                ..Default::default()
            };
            let Some(Entity::Component(comp)) = c
                .create_component(write(comp, &key("c")))
                .await?
                .into_inner()
                .entity
            else {
                bail!("no component")
            };
            ids.push(comp.id);
        }
    }
    for n in 0..500 {
        let id = ids[n % ids.len()].clone();
        let inc = pb::CreateIncidentRequest {
            name: format!("Incident {n}: elevated error rates"),
            body: "We are investigating reports of elevated error rates for some customers.".into(),
            impact: Some("minor".into()),
            component_changes: vec![pb::ComponentChange {
                component_id: id,
                status: "degraded_performance".into(),
            }],
            ..Default::default()
        };
        let Some(Entity::Incident(inc)) = c
            .create_incident(write(inc, &key("i")))
            .await?
            .into_inner()
            .entity
        else {
            bail!("no incident")
        };
        if n < 497 {
            let r = pb::ResolveIncidentRequest {
                id: inc.id,
                body: Some("The issue is resolved; error rates are back to normal.".into()),
                keep_component_status: false,
            };
            c.resolve_incident(write(r, &key("r"))).await?;
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10)
        .clamp(1, 120);
    let conns: u32 = std::env::args()
        .nth(2)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(64)
        .clamp(1, 1000);
    let rt = tokio::runtime::Runtime::new()?;
    let cluster = TestCluster::start_with(1, 100_000);
    rt.block_on(async {
        let mut cluster = cluster;
        cluster.wait_leader(Duration::from_secs(30)).await;
        println!("seeding 50 components and 500 incidents...");
        seed(&cluster).await?;
        anyhow::Ok(cluster)
    })
    .and_then(|cluster| run(&cluster, &rt, secs, conns))
}

fn run(
    cluster: &TestCluster,
    rt: &tokio::runtime::Runtime,
    secs: u64,
    conns: u32,
) -> anyhow::Result<()> {
    let node = &cluster.nodes[0];
    let dir = tempfile::TempDir::new()?;
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("api/v2"))?;
    // nginx serves the node's exact bytes.
    let (summary, index, etag) = rt.block_on(async {
        let c = reqwest::Client::builder().no_gzip().no_brotli().build()?;
        let summary = c
            .get(node.public_url("/api/v2/summary.json"))
            .send()
            .await?;
        let etag = summary.headers()["etag"].to_str()?.to_owned();
        let summary = summary.bytes().await?;
        let index = c.get(node.public_url("/")).send().await?.bytes().await?;
        anyhow::Ok((summary, index, etag))
    })?;
    std::fs::write(www.join("api/v2/summary.json"), &summary)?;
    std::fs::write(www.join("index.html"), &index)?;
    println!(
        "summary.json {} bytes, index.html {} bytes",
        summary.len(),
        index.len()
    );

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\nevents {{ worker_connections 4096; }}\n\
http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;\n\
  types {{ application/json json; text/html html; }}\n\
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n\
  server {{ listen 127.0.0.1:{port}; root {www}; etag on; }} }}\n",
            d = dir.path().display(),
            www = www.display()
        ),
    )?;
    std::fs::create_dir_all(dir.path().join("tmp"))?;
    let _nginx = Nginx(
        Command::new("nginx")
            .args(["-c", conf.to_str().unwrap_or_default(), "-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start nginx (install it: apt-get install nginx-light)")?,
    );
    std::thread::sleep(Duration::from_millis(500));
    let nginx_etag = rt.block_on(async {
        let r = reqwest::get(format!("http://127.0.0.1:{port}/api/v2/summary.json")).await?;
        anyhow::Ok(r.headers()["etag"].to_str()?.to_owned())
    })?;

    println!(
        "\nwrk: 2 threads, {conns} connections, {secs} s each; nginx 1 worker; statusmesh 1 node\n"
    );
    println!(
        "{:<28} {:>12} {:>9} {:>9}   {:>12} {:>9} {:>9}   {:>6}",
        "target", "statusmesh/s", "p50 ms", "p99 ms", "nginx/s", "p50 ms", "p99 ms", "ratio"
    );
    let cases = [
        ("summary.json", "/api/v2/summary.json", vec![], vec![]),
        ("HTML page", "/", vec![], vec![]),
        (
            "summary.json 304",
            "/api/v2/summary.json",
            vec![format!("If-None-Match: {etag}")],
            vec![format!("If-None-Match: {nginx_etag}")],
        ),
    ];
    for (name, path, sm_headers, ng_headers) in cases {
        let sm = wrk(&node.public_url(path), secs, conns, &sm_headers)?;
        let ng = wrk(
            &format!("http://127.0.0.1:{port}{path}"),
            secs,
            conns,
            &ng_headers,
        )?;
        println!(
            "{:<28} {:>12.0} {:>9.2} {:>9.2}   {:>12.0} {:>9.2} {:>9.2}   {:>6.2}",
            name,
            sm.rps,
            sm.p50_ms,
            sm.p99_ms,
            ng.rps,
            ng.p50_ms,
            ng.p99_ms,
            sm.rps / ng.rps
        );
    }
    Ok(())
}
