//! One function per noun: builds the request, calls the API, prints the reply. The nouns are
//! grouped by concept: `status` (page, components, incidents, maintenances), `notify`
//! (subscribers, events, deliveries), `access` (tokens, audit, whoami), `backup`, `cluster`.

mod access;
mod backup;
mod cluster;
mod notify;
mod status;

pub use access::{audit, token, whoami};
pub use backup::backup;
pub use cluster::cluster;
pub use notify::{delivery, event, subscriber};
pub use status::{component, incident, maintenance, page};

use statusmesh_proto::admin::{self as pb, Consistency};

use crate::args::*;
use crate::client::Client;
use crate::output;

pub struct Ctx {
    pub client: Client,
    pub out: Output,
    pub linearizable: bool,
}

impl Ctx {
    pub(crate) fn consistency(&self) -> i32 {
        (if self.linearizable {
            Consistency::Linearizable
        } else {
            Consistency::Local
        }) as i32
    }

    fn read(&self) -> pb::ReadRequest {
        pb::ReadRequest {
            consistency: self.consistency(),
        }
    }

    fn get(&self, id: String) -> pb::GetRequest {
        pb::GetRequest {
            id,
            consistency: self.consistency(),
        }
    }

    /// A call without an idempotency key: reads, and membership changes (which are not
    /// proposals), tried against each endpoint in turn.
    async fn ask<Req: Clone, Resp>(
        &self,
        message: Req,
        f: impl AsyncFn(
            &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
            tonic::Request<Req>,
        ) -> Result<tonic::Response<Resp>, tonic::Status>,
    ) -> anyhow::Result<Resp> {
        self.client.call(false, message, f).await
    }

    /// A write (with this invocation's idempotency key); prints the reply.
    async fn write<Req: Clone>(
        &self,
        message: Req,
        f: impl AsyncFn(
            &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
            tonic::Request<Req>,
        ) -> Result<tonic::Response<pb::WriteReply>, tonic::Status>,
    ) -> anyhow::Result<()> {
        let reply = self.client.call(true, message, f).await?;
        output::write(self.out, &reply)
    }
}
