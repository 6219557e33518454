//! `statusmesh demo`: three real child processes, seeded once, stopped by Ctrl-C (SIGINT), and
//! resumed from the same data directory.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use statusmesh_proto::admin::{self as pb};
use statusmesh_proto::authed;
use statusmesh_tests::*;

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the demo and waits (bounded) for its "Press Ctrl-C" line.
fn start_demo(dir: &std::path::Path, ports: (u16, u16, u16)) -> Demo {
    let mut child = Command::new(binary("statusmesh"))
        .args(["demo", "--data-dir"])
        .arg(dir)
        .args([
            "--public-port",
            &ports.0.to_string(),
            "--admin-port",
            &ports.1.to_string(),
            "--peer-port",
            &ports.2.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let demo = Demo(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the demo did not report ready within 60 s");
        if line.contains("Press Ctrl-C") {
            return demo;
        }
    }
}

fn token(dir: &std::path::Path) -> String {
    let env = std::fs::read_to_string(dir.join("statusctl.env")).unwrap();
    env.lines()
        .find_map(|l| l.strip_prefix("export STATUSMESH_TOKEN="))
        .unwrap()
        .to_owned()
}

async fn counts(dir: &std::path::Path, admin_port: u16, token: &str) -> (usize, usize, usize) {
    // The demo runs its admin ports over TLS with its own CA.
    let mut c = admin_client(
        &format!("https://127.0.0.1:{admin_port}"),
        Some(&dir.join("tls/ca.pem")),
    )
    .await
    .unwrap();
    let linear = || pb::ReadRequest {
        consistency: pb::Consistency::Linearizable as i32,
    };
    let comps = c
        .list_components(authed(linear(), token, None).unwrap())
        .await
        .unwrap()
        .into_inner();
    let incs = c
        .list_incidents(
            authed(
                pb::ListIncidentsRequest {
                    consistency: 1,
                    ..Default::default()
                },
                token,
                None,
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    let mnts = c
        .list_maintenances(authed(linear(), token, None).unwrap())
        .await
        .unwrap()
        .into_inner();
    (
        comps.components.len(),
        incs.incidents.len(),
        mnts.maintenances.len(),
    )
}

fn sigint_and_wait(mut demo: Demo) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = demo.0.try_wait() {
            assert!(status.success(), "demo exited with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the demo did not stop within 20 s of Ctrl-C");
}

/// Runs statusctl with the demo's statusctl.env settings; returns its JSON output.
fn statusctl(env: &str, args: &[&str]) -> serde_json::Value {
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap()
            .trim_matches('"')
            .to_owned()
    };
    let out = Command::new(binary("statusctl"))
        .env("STATUSMESH_ENDPOINT", var("STATUSMESH_ENDPOINT"))
        .env("STATUSMESH_TOKEN", var("STATUSMESH_TOKEN"))
        .env("STATUSMESH_CA_CERT", var("STATUSMESH_CA_CERT"))
        .args(["--output", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "statusctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The demo's promise for webhooks: `statusctl subscriber add` to a local receiver, then an
/// incident update, delivers a webhook the reference Standard Webhooks verifier accepts.
async fn demo_webhooks(env: &str) {
    let recv = statusmesh_tests::receiver::Receiver::start().await;
    let sub = statusctl(env, &["subscriber", "add", "--url", &recv.url("/hook")]);
    let secret = sub["subscriber"]["secret"].as_str().unwrap().to_owned();
    let incidents = statusctl(env, &["incident", "list", "--unresolved"]);
    let id = incidents["incidents"][0]["id"].as_str().unwrap().to_owned();
    statusctl(
        env,
        &[
            "incident",
            "update",
            &id,
            "--status",
            "monitoring",
            "--body",
            "A fix is deployed.",
        ],
    );
    assert!(
        recv.wait_for(Duration::from_secs(30), |r| !r.is_empty())
            .await,
        "no webhook arrived"
    );
    let r = &recv.requests()[0];
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&r.body, &r.headers)
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["incident"]["id"], id.as_str());
    assert_eq!(body["incident"]["status"], "monitoring");
}

fn port_in_use(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_starts_three_regions_seeds_once_stops_cleanly_and_resumes() {
    let dir = tempfile::TempDir::new().unwrap();
    let ports = (free_port_block(3), free_port_block(3), free_port_block(3));

    let demo = start_demo(dir.path(), ports);
    for region in ["paris", "montreal", "singapore"] {
        assert!(dir.path().join(format!("{region}.toml")).exists());
    }
    let env = std::fs::read_to_string(dir.path().join("statusctl.env")).unwrap();
    assert!(
        env.contains(&format!("https://127.0.0.1:{}", ports.1 + 2)),
        "{env}"
    );
    assert!(env.contains("export STATUSMESH_CA_CERT="), "{env}");
    let token = token(dir.path());
    // The seeded page is on all three regions.
    for i in 0..3 {
        assert_eq!(
            counts(dir.path(), ports.1 + i, &token).await,
            (9, 1, 1),
            "region {i}"
        );
    }
    demo_webhooks(&env).await;
    sigint_and_wait(demo);
    for i in 0..3 {
        assert!(
            !port_in_use(ports.1 + i),
            "admin port {} still open after Ctrl-C",
            ports.1 + i
        );
    }

    // Same data directory: it resumes, with the same token, and does not seed twice.
    let demo = start_demo(dir.path(), ports);
    assert_eq!(crate::token(dir.path()), token);
    assert_eq!(counts(dir.path(), ports.1, &token).await, (9, 1, 1));
    sigint_and_wait(demo);
}

#[test]
fn the_fire_drill_rides_out_the_loss_of_the_leaders_region() {
    let dir = tempfile::TempDir::new().unwrap();
    let ports = (free_port_block(3), free_port_block(3), free_port_block(3));
    let mut child = Command::new(binary("statusmesh"))
        .args(["demo", "--drill", "--data-dir"])
        .arg(dir.path())
        .args(["--public-port", &ports.0.to_string()])
        .args(["--admin-port", &ports.1.to_string()])
        .args(["--peer-port", &ports.2.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: the drill has 30 s limits inside; give the whole run two minutes.
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the drill did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut out, mut err) = (String::new(), String::new());
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "drill failed:\n{out}\n{err}");
    assert!(out.contains("is taken down with SIGKILL"), "{out}");
    assert!(out.contains("now leads"), "{out}");
    assert!(out.contains("3 of 3 subscribers received it"), "{out}");
    assert!(out.contains(", 0 failed."), "{out}");
    assert!(out.contains("rode out the loss of a region"), "{out}");
    for port in [ports.1, ports.1 + 1, ports.1 + 2] {
        assert!(
            !port_in_use(port),
            "admin port {port} still open after the drill"
        );
    }
}

/// Runs `statusmesh demo` to completion (bounded); returns its exit status, stderr and how long
/// it took.
fn demo_run_to_exit(
    dir: &std::path::Path,
    ports: (u16, u16, u16),
    env: &[(&str, &str)],
) -> (std::process::ExitStatus, String, Duration) {
    let mut cmd = Command::new(binary("statusmesh"));
    cmd.args(["demo", "--data-dir"])
        .arg(dir)
        .args(["--public-port", &ports.0.to_string()])
        .args(["--admin-port", &ports.1.to_string()])
        .args(["--peer-port", &ports.2.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = Demo(cmd.spawn().unwrap());
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the demo neither started nor gave up within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status, err, took)
}

#[test]
fn a_node_that_cannot_start_stops_the_demo_with_its_own_error() {
    // A config every node refuses: all three children exit at once with the config error.
    let dir = tempfile::TempDir::new().unwrap();
    let ports = (free_port_block(3), free_port_block(3), free_port_block(3));
    let (status, err, took) =
        demo_run_to_exit(dir.path(), ports, &[("STATUSMESH_NO_SUCH_KEY", "1")]);
    assert!(!status.success(), "{err}");
    assert!(err.contains("node exited during start-up"), "{err}");
    assert!(err.contains("unknown field `no_such_key`"), "{err}");
    assert!(err.contains("exit status: 1"), "{err}");
    // Not the 30 s leader wait: the exit is noticed within a few polls.
    assert!(took < Duration::from_secs(15), "took {took:?}: {err}");

    // One region cannot start (its admin port is taken): the demo names that region, and
    // stops the two that did start.
    let dir = tempfile::TempDir::new().unwrap();
    let ports = (free_port_block(3), free_port_block(3), free_port_block(3));
    let taken = std::net::TcpListener::bind(("127.0.0.1", ports.1 + 1)).unwrap();
    let (status, err, took) = demo_run_to_exit(dir.path(), ports, &[]);
    drop(taken);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("the montreal node exited during start-up"),
        "{err}"
    );
    assert!(took < Duration::from_secs(25), "took {took:?}: {err}");
    for port in [
        ports.0,
        ports.0 + 2,
        ports.1,
        ports.1 + 2,
        ports.2,
        ports.2 + 2,
    ] {
        assert!(
            !port_in_use(port),
            "port {port} still open: the other regions were not stopped\n{err}"
        );
    }
}
