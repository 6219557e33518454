//! Talking to the admin API: endpoint failover, auth, idempotency keys, optional TLS.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use statusmesh_proto::admin::admin_client::AdminClient;
use statusmesh_proto::request_id::{self, grpc_code_name as code_name, REQUEST_ID_HEADER};
use statusmesh_proto::{authed, AdminTls, IDEMPOTENCY_HEADER};
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

/// How long connecting to one endpoint may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest reply accepted (a backup chunk, a long audit page).
const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

pub struct Client {
    endpoints: Vec<String>,
    /// `None` when a client certificate authenticates instead.
    token: Option<String>,
    /// The CA (`--ca-cert`), the system roots and the client certificate (`--cert`).
    tls: AdminTls,
    timeout: Duration,
    /// Used by every write of this invocation, on every endpoint tried.
    pub idempotency_key: String,
    /// Sent with every call of this invocation (`x-request-id`): the nodes log it and the
    /// audit record keeps it.
    pub request_id: String,
}

impl Client {
    pub fn new(
        endpoint: &str,
        token: Option<String>,
        ca_cert: Option<&std::path::Path>,
        client_cert: Option<(&std::path::Path, &std::path::Path)>,
        timeout: u64,
        key: Option<String>,
        request_id: Option<String>,
    ) -> anyhow::Result<Self> {
        let request_id = match request_id {
            Some(id) => {
                request_id::validate(&id).map_err(|e| anyhow!("--request-id: {e}"))?;
                id
            }
            None => format!("statusctl-{}", hex::encode(rand::random::<[u8; 8]>())),
        };
        let endpoints: Vec<String> = endpoint
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                if e.contains("://") {
                    e.to_owned()
                } else {
                    format!("http://{e}")
                }
            })
            .collect();
        if endpoints.is_empty() {
            bail!("--endpoint is empty");
        }
        if token.is_none() && client_cert.is_none() {
            bail!("no token: pass --token or set STATUSMESH_TOKEN (or --cert and --key)");
        }
        let identity = client_cert
            .map(|(cert, key)| -> anyhow::Result<_> {
                let c = std::fs::read(cert)
                    .with_context(|| format!("cannot read --cert {}", cert.display()))?;
                let k = std::fs::read(key)
                    .with_context(|| format!("cannot read --key {}", key.display()))?;
                Ok(tonic::transport::Identity::from_pem(c, k))
            })
            .transpose()?;
        if identity.is_some() && endpoints.iter().any(|e| !e.starts_with("https://")) {
            bail!("--cert needs https:// endpoints");
        }
        let ca_pem = ca_cert
            .map(|p| {
                std::fs::read(p).with_context(|| format!("cannot read --ca-cert {}", p.display()))
            })
            .transpose()?;
        let idempotency_key =
            key.unwrap_or_else(|| format!("statusctl-{}", hex::encode(rand::random::<[u8; 16]>())));
        Ok(Client {
            endpoints,
            token,
            tls: AdminTls {
                ca_pem,
                system_roots: true,
                identity,
            },
            timeout: Duration::from_secs(timeout.max(1)),
            idempotency_key,
            request_id,
        })
    }

    async fn connect(&self, endpoint: &str) -> anyhow::Result<AdminClient<Channel>> {
        let channel = statusmesh_proto::connect_admin_with(
            endpoint,
            &self.tls,
            CONNECT_TIMEOUT,
            self.timeout,
        )
        .await?;
        Ok(AdminClient::new(channel).max_decoding_message_size(MAX_REPLY_BYTES))
    }

    /// Calls `f` on the first endpoint that answers; an unreachable endpoint, or one that
    /// answers UNAVAILABLE, passes the call to the next (writes keep their idempotency key).
    pub async fn call<Req: Clone, Resp>(
        &self,
        write: bool,
        message: Req,
        f: impl AsyncFn(
            &mut AdminClient<Channel>,
            tonic::Request<Req>,
        ) -> Result<Response<Resp>, Status>,
    ) -> anyhow::Result<Resp> {
        let key = write.then_some(self.idempotency_key.as_str());
        let mut last_err = None;
        for ep in &self.endpoints {
            let mut client = match self.connect(ep).await {
                Ok(c) => c,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            let mut req = match &self.token {
                Some(token) => authed(message.clone(), token, key)?,
                None => {
                    let mut r = tonic::Request::new(message.clone());
                    if let Some(k) = key {
                        let v = k.parse().map_err(|_| {
                            anyhow!("idempotency key {k:?} is not a valid header value")
                        })?;
                        r.metadata_mut().insert(IDEMPOTENCY_HEADER, v);
                    }
                    r
                }
            };
            if let Ok(v) = self.request_id.parse() {
                req.metadata_mut().insert(REQUEST_ID_HEADER, v);
            }
            let id = &self.request_id;
            match f(&mut client, req).await {
                Ok(resp) => return Ok(resp.into_inner()),
                Err(s) if s.code() == Code::Unavailable && self.endpoints.len() > 1 => {
                    last_err = Some(anyhow!(
                        "{ep}: {}: {} (request id {id})",
                        code_name(s.code()),
                        s.message()
                    ));
                }
                Err(s) => bail!("{}: {} (request id {id})", code_name(s.code()), s.message()),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no endpoint answered")))
    }
}
