//! A real SMTP server on loopback (aiosmtpd, from PyPI, installed once per machine) that keeps
//! every message it accepts, and a real MIME parser (Python's `email` package) to read them.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

const SINK: &str = include_str!("sink.py");
const PARSE: &str = include_str!("parse.py");
const AIOSMTPD: &str = "aiosmtpd==1.4.6";
const BROWSER: &str = include_str!("browser.py");
const SELENIUM: &str = "selenium==4.27.1";

/// Runs `browser.py` (headless Chromium from Debian, driven by selenium from PyPI) with
/// `args`; returns the heading of the page it ended on.
pub fn browser(args: &[&str]) -> String {
    assert!(
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists(),
        "Debian's chromium and chromium-driver are missing: run .ci/run (it installs them)"
    );
    let bin = crate::tools::python_venv("statusmesh-selenium", &[SELENIUM]);
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("browser.py");
    std::fs::write(&script, BROWSER).expect("browser.py");
    crate::tools::run_ok(
        Command::new(bin.join("python3"))
            .arg(&script)
            .args(args)
            // Selenium Manager must not look for drivers on the network: both paths are given.
            .env("SE_OFFLINE", "true")
            .env("HOME", dir.path()),
    )
    .trim()
    .to_owned()
}

/// One accepted message, parsed.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    pub file: String,
    pub envelope_to: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Mail {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or("")
    }

    /// The first `https?://…` link in the text part whose path starts with `path`.
    pub fn link(&self, path: &str) -> Option<String> {
        self.text()
            .split_whitespace()
            .find(|w| w.starts_with("http") && w.contains(path))
            .map(str::to_owned)
    }
}

/// The server; stopped (by its pid) when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    pub port: u16,
    child: Child,
    _stdin: ChildStdin,
    dir: tempfile::TempDir,
    python: PathBuf,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        SmtpSink::start_args(&[])
    }

    /// A relay speaking TLS with `cert` and `key` (PEM files): `mode` is "starttls" (required
    /// before MAIL) or "tls" (from the first byte).
    pub fn start_tls(mode: &str, cert: &Path, key: &Path) -> SmtpSink {
        SmtpSink::start_args(&[
            mode,
            cert.to_str().expect("a UTF-8 path"),
            key.to_str().expect("a UTF-8 path"),
        ])
    }

    fn start_args(tls: &[&str]) -> SmtpSink {
        let bin = crate::tools::python_venv("statusmesh-aiosmtpd", &[AIOSMTPD]);
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("mail");
        std::fs::create_dir_all(&out).expect("mail dir");
        std::fs::write(dir.path().join("sink.py"), SINK).expect("sink.py");
        std::fs::write(dir.path().join("parse.py"), PARSE).expect("parse.py");
        let port = crate::free_port_block(1);
        let python = bin.join("python3");
        let mut child = Command::new(&python)
            .arg(dir.path().join("sink.py"))
            .arg(&out)
            .arg(port.to_string())
            .args(tls)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the SMTP sink's first line");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        SmtpSink {
            port,
            child,
            _stdin: stdin,
            dir,
            python,
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Refuses mail to `address` with `reply` from now on (`"550 5.1.1 no such user"`).
    pub fn refuse(&self, address: &str, reply: &str) {
        let path = self.out().join("rules.json");
        let mut rules: serde_json::Map<String, serde_json::Value> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        rules.insert(address.to_lowercase(), reply.into());
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&rules).unwrap()).expect("rules");
        std::fs::rename(tmp, path).expect("rules");
    }

    /// Slows every message down by `ms` milliseconds from now on.
    pub fn delay(&self, ms: u64) {
        std::fs::write(self.out().join("delay_ms"), ms.to_string()).expect("delay_ms");
    }

    /// The `[email]` table of a node mailing through this relay (plain SMTP on loopback).
    pub fn email_config(&self) -> statusmesh_server::config::EmailConfig {
        statusmesh_server::config::EmailConfig {
            host: "127.0.0.1".into(),
            port: Some(self.port),
            security: "none".into(),
            ca_cert: None,
            username: None,
            password_file: None,
            from: "Acme Status <status@acme.test>".into(),
            reply_to: None,
            connections: 8,
            timeout_ms: 30_000,
        }
    }

    /// The bytes of the `n`th accepted message (from 1), as the relay received them.
    pub fn raw(&self, n: usize) -> Option<Vec<u8>> {
        std::fs::read(self.out().join(format!("{n:07}.eml"))).ok()
    }

    /// The relay's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The envelope recipients of every accepted message, in arrival order (without parsing
    /// the messages).
    pub fn recipients(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.out())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .filter(|p| p.with_extension("eml").exists())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .flat_map(|v| {
                v["to"]
                    .as_array()
                    .map(|to| {
                        to.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    /// How many messages were accepted so far (without parsing them).
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.out())
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Every message accepted so far, parsed, in arrival order.
    pub fn messages(&self) -> Vec<Mail> {
        parse_dir(&self.python, &self.dir.path().join("parse.py"), &self.out())
    }

    /// Waits until `done` holds for the messages to `address`; returns them.
    pub async fn wait_for(
        &self,
        address: &str,
        limit: Duration,
        done: impl Fn(&[Mail]) -> bool,
    ) -> Vec<Mail> {
        let start = Instant::now();
        loop {
            let mine: Vec<Mail> = self
                .messages()
                .into_iter()
                .filter(|m| {
                    m.envelope_to
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(address))
                })
                .collect();
            if done(&mine) {
                return mine;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for mail to {address}; it has {}: {:?}",
                mine.len(),
                mine.iter().map(|m| m.header("Subject")).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn parse_dir(python: &Path, script: &Path, out: &Path) -> Vec<Mail> {
    let json = crate::tools::run_ok(Command::new(python).arg(script).arg(out));
    serde_json::from_str(&json).expect("parse.py output")
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
