//! deploy/ checked offline: the Kubernetes manifests against the Kubernetes 1.31 schemas
//! (kubernetes-validate from PyPI, strict), the Dockerfile parsed (dockerfile-parse), the
//! compose file parsed (PyYAML), the systemd unit verified (systemd-analyze, where present), and
//! every node config in them accepted by `statusmesh check` with each node's overrides.

// Test-only crate: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use statusmesh_tests::tools::{self, run_ok};
use statusmesh_tests::*;

const TOOLS: [&str; 3] = [
    "kubernetes-validate==1.31.0",
    "dockerfile-parse==2.0.1",
    "PyYAML==6.0.2",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A virtualenv with the pinned validators, made once per machine.
fn validators() -> PathBuf {
    tools::python_venv("statusmesh-deploy-tools", &TOOLS)
}

fn check_config(config: &Path, env: &[(&str, &str)]) {
    let mut cmd = Command::new(binary("statusmesh"));
    for (k, _) in std::env::vars() {
        if k.starts_with("STATUSMESH_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("check").arg("--config").arg(config);
    cmd.env("STATUSMESH_ADMIN_TOKEN", "deploy-check-token-0123456789");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_ok(&mut cmd);
}

const EXTRACT: &str = r#"
import sys, yaml, json
docs = list(yaml.safe_load_all(open(sys.argv[1])))
cm = [d for d in docs if d["kind"] == "ConfigMap"][0]
open(sys.argv[2], "w").write(cm["data"]["node.toml"])
sts = [d for d in docs if d["kind"] == "StatefulSet"][0]
pod = sts["spec"]["template"]["spec"]
assert sts["spec"]["replicas"] == 3
assert pod["securityContext"]["runAsNonRoot"] is True
assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
c = pod["containers"][0]
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
pdb = [d for d in docs if d["kind"] == "PodDisruptionBudget"][0]
assert pdb["spec"]["maxUnavailable"] == 1
print("ok")
"#;

const DOCKERFILE: &str = r#"
import sys
from dockerfile_parse import DockerfileParser
p = DockerfileParser(path=sys.argv[1])
froms = [i for i in p.structure if i["instruction"] == "FROM"]
assert len(froms) == 2, "multi-stage"
last = p.structure[[i for i, x in enumerate(p.structure) if x["instruction"] == "FROM"][-1]:]
kinds = {i["instruction"]: i["value"] for i in last}
assert kinds["USER"] not in ("root", "0"), "runs as non-root"
assert "HEALTHCHECK" in kinds and "VOLUME" in kinds
print("ok")
"#;

const COMPOSE: &str = r#"
import sys, yaml, json
d = yaml.safe_load(open(sys.argv[1]))
out = {}
for name, svc in d["services"].items():
    assert svc["image"] and svc["build"]["dockerfile"] == "deploy/compose/Dockerfile"
    assert "healthcheck" not in svc or svc["healthcheck"]
    for v in svc["volumes"]:
        src = v.split(":")[0]
        assert src.startswith("./") or src in d["volumes"], v
    out[name] = {k: str(v) for k, v in svc["environment"].items() if k.startswith("STATUSMESH_") and k != "STATUSMESH_ADMIN_TOKEN"}
print(json.dumps(out))
"#;

#[test]
fn deploy_manifests_validate_offline() {
    let bin = validators();
    let root = repo();
    let k8s = root.join("deploy/kubernetes/statusmesh.yaml");
    let out = run_ok(
        Command::new(bin.join("kubernetes-validate"))
            .args(["--strict", "-k", "1.31.0"])
            .arg(&k8s),
    );
    assert!(!out.contains("ERROR"), "{out}");
    let dir = tempfile::TempDir::new().unwrap();
    let cm = dir.path().join("k8s-node.toml");
    run_ok(
        Command::new(bin.join("python"))
            .args(["-c", EXTRACT])
            .arg(&k8s)
            .arg(&cm),
    );
    for ordinal in 0..3 {
        let id = (ordinal + 1).to_string();
        let region = format!("statusmesh-{ordinal}");
        check_config(
            &cm,
            &[
                ("STATUSMESH_NODE_ID", &id),
                ("STATUSMESH_REGION", &region),
                (
                    "STATUSMESH_TLS__CERT",
                    &format!("/etc/statusmesh/tls/node-{id}.pem"),
                ),
            ],
        );
    }

    run_ok(
        Command::new(bin.join("python"))
            .args(["-c", DOCKERFILE])
            .arg(root.join("deploy/compose/Dockerfile")),
    );
    let envs = run_ok(
        Command::new(bin.join("python"))
            .args(["-c", COMPOSE])
            .arg(root.join("deploy/compose/compose.yaml")),
    );
    let envs: serde_json::Value = serde_json::from_str(envs.trim()).unwrap();
    assert_eq!(envs.as_object().unwrap().len(), 3);
    for (_, env) in envs.as_object().unwrap() {
        let pairs: Vec<(&str, &str)> = env
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        check_config(&root.join("deploy/compose/node.toml"), &pairs);
    }

    // systemd: the unit parses and every directive is known (the binary path is ours).
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let unit = std::fs::read_to_string(root.join("deploy/systemd/statusmesh.service"))
            .unwrap()
            .replace(
                "/usr/local/bin/statusmesh",
                binary("statusmesh").to_str().unwrap(),
            );
        let path = dir.path().join("statusmesh.service");
        std::fs::write(&path, unit).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !text.contains("Unknown key")
                && !text.contains("Failed to parse")
                && !text.contains("Invalid"),
            "{text}"
        );
    }
}
