//! Subscribers and their notifications: adding one (its target vetted before proposing),
//! reading subscribers (chat URLs masked below the admin role), their deliveries, the events
//! and the outbox's figures.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use prost::Message;
use statusmesh_metrics::DispatchStats;
use statusmesh_model::command::ImportedSubscriber;
use statusmesh_model::limits::{MAX_ENTRY_BYTES, MAX_IMPORT_ROWS};
use statusmesh_model::{Applied, Command, Id, PayloadFormat, Role, State, Subscriber};
use statusmesh_proto::admin as pb;
use statusmesh_proto::convert;
use tonic::{Request, Response, Status, Streaming};

use super::paths::{client_key, fingerprint};
use super::{not_found, parse_id, AdminService, Reply};
use crate::auth::Caller;
use crate::errors::command_status;
use crate::request::request_id;

/// The most bytes of rows in one `ImportSubscribers` entry, as the log encodes them once the
/// leader has stamped their ids and secrets: a log entry, less room for the envelope.
const IMPORT_CHUNK_BYTES: usize = MAX_ENTRY_BYTES - 16 * 1024;
/// What stamping adds to a row's encoding at most: a 24-character id and a 38-character
/// secret where the row had empty ones.
const STAMPED_BYTES: usize = 64;
/// A subscriber listing's page when the request says 0, and the largest.
const DEFAULT_PAGE: usize = 1_000;
const MAX_PAGE: usize = 10_000;

/// The rows of one import entry, gathered until the entry would be full.
#[derive(Default)]
struct Chunk {
    rows: Vec<ImportedSubscriber>,
    /// The rows' request encoding (the fingerprint of the chunk's write).
    encoded: Vec<u8>,
    /// The rows' size in the log entry.
    bytes: usize,
    /// Rows of the import before this chunk.
    first_row: u64,
}

/// What an import has done so far.
#[derive(Default)]
struct Imported {
    rows: u64,
    chunks: u32,
    replayed: u32,
    index: u64,
}

/// Items a delivery or event listing returns when the request says 0.
const DEFAULT_LIMIT: usize = 50;

fn limit(n: u32) -> usize {
    match n {
        0 => DEFAULT_LIMIT,
        n => n as usize,
    }
}

impl AdminService {
    /// `AddSubscriber`: authorized before the (slow) target vetting, once. DNS is not
    /// deterministic, so the target is vetted here, before proposing; the dispatcher checks
    /// again at every delivery.
    pub(super) async fn add_vetted_subscriber(
        &self,
        req: Request<pb::AddSubscriberRequest>,
    ) -> Reply<pb::WriteReply> {
        let caller = self.authorize(&req, "AddSubscriber").await?;
        let cmd = convert::add_subscriber(req.get_ref());
        // An email subscriber's mail goes to the configured relay, not to a target of its own.
        if let Ok(Command::AddSubscriber { spec, .. }) = &cmd {
            if !spec.format.is_email() {
                statusmesh_model::limits::http_url("url", &spec.url)
                    .map_err(|e| command_status(&e))?;
                statusmesh_egress::vet(&spec.url, &self.targets)
                    .await
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
            }
        }
        self.write_as(caller, "AddSubscriber", &req, cmd).await
    }

    /// `ImportSubscribers`: every row checked and its target vetted (each host resolved
    /// once), then committed in chunks of at most [`MAX_IMPORT_ROWS`] rows and
    /// [`IMPORT_CHUNK_BYTES`], each under the key `<idempotency-key>/<chunk>` so that a retried
    /// import replays the chunks already in and continues. A refused row stops the import;
    /// the error names it and says how many rows went in before.
    pub(super) async fn import_vetted_subscribers(
        &self,
        req: Request<Streaming<pb::ImportSubscriberRow>>,
    ) -> Reply<pb::ImportSubscribersReply> {
        let caller = self.authorize(&req, "ImportSubscribers").await?;
        let key = client_key(&req)?;
        let request_id = request_id(&req);
        let mut stream = req.into_inner();
        let mut vetted: HashMap<String, Result<(), String>> = HashMap::new();
        let mut chunk = Chunk::default();
        let mut done = Imported::default();
        let mut row_number = 0u64;
        while let Some(row) = stream.message().await? {
            row_number += 1;
            let stopped = |e: String| {
                Status::invalid_argument(format!(
                    "import stopped at row {row_number} ({} rows imported before it): {e}",
                    done.rows
                ))
            };
            let parsed = convert::import_row(&row).map_err(|e| stopped(e.to_string()))?;
            if !parsed.spec.format.is_email() {
                self.vet_cached(&parsed.spec.url, &mut vetted)
                    .await
                    .map_err(stopped)?;
            }
            let size =
                serde_json::to_vec(&parsed).map_or(usize::MAX / 2, |v| v.len()) + STAMPED_BYTES;
            if !chunk.rows.is_empty()
                && (chunk.rows.len() >= MAX_IMPORT_ROWS || chunk.bytes + size > IMPORT_CHUNK_BYTES)
            {
                self.import_chunk(&caller, &key, &request_id, &mut chunk, &mut done)
                    .await?;
            }
            chunk.rows.push(parsed);
            chunk.bytes += size;
            row.encode(&mut chunk.encoded)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        if row_number == 0 {
            return Err(Status::invalid_argument("an import needs at least one row"));
        }
        self.import_chunk(&caller, &key, &request_id, &mut chunk, &mut done)
            .await?;
        Ok(Response::new(pb::ImportSubscribersReply {
            imported: done.rows,
            index: done.index,
            replayed_chunks: done.replayed,
        }))
    }

    /// Commits the rows gathered and starts the next chunk.
    async fn import_chunk(
        &self,
        caller: &Caller,
        key: &str,
        request_id: &str,
        chunk: &mut Chunk,
        done: &mut Imported,
    ) -> Result<(), Status> {
        let rows = std::mem::take(&mut chunk.rows);
        let encoded = std::mem::take(&mut chunk.encoded);
        chunk.bytes = 0;
        let first_row = chunk.first_row;
        let n = rows.len() as u64;
        chunk.first_row += n;
        let command = Command::ImportSubscribers {
            first_row,
            subscribers: rows,
        };
        let (index, replayed, applied) = self
            .commit(
                caller.name.clone(),
                format!("{key}/{}", done.chunks),
                fingerprint("ImportSubscribers", &encoded),
                request_id.to_owned(),
                command,
            )
            .await
            .map_err(|e| {
                Status::new(
                    e.code(),
                    format!(
                        "import stopped in rows {}..{} ({} rows imported before them): {}",
                        first_row + 1,
                        first_row + n,
                        done.rows,
                        e.message()
                    ),
                )
            })?;
        done.chunks += 1;
        done.index = index;
        done.replayed += u32::from(replayed);
        done.rows += match applied {
            Applied::Imported(k) => u64::from(k),
            _ => n,
        };
        Ok(())
    }

    /// Checks a row's URL and vets its target, resolving each host once per import.
    async fn vet_cached(
        &self,
        url: &str,
        vetted: &mut HashMap<String, Result<(), String>>,
    ) -> Result<(), String> {
        statusmesh_model::limits::http_url("url", url).map_err(|e| e.to_string())?;
        let parsed = statusmesh_egress::check_url(url, &self.targets).map_err(|e| e.to_string())?;
        let host = format!(
            "{}:{}",
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or(443)
        );
        if let Some(known) = vetted.get(&host) {
            return known.clone();
        }
        let result = statusmesh_egress::vet(url, &self.targets)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        vetted.insert(host, result.clone());
        result
    }
}

pub(super) fn subscriber(
    caller: &Caller,
    r: &pb::GetRequest,
    s: &State,
) -> Result<pb::Subscriber, Status> {
    let id = parse_id(&r.id)?;
    s.subscribers
        .get(&id)
        .map(|x| convert::subscriber_listed(s, x, caller.role >= Role::Admin))
        .ok_or_else(|| not_found("subscriber", &id))
}

/// One page of subscribers, in subscriber order, after the page token's subscriber.
pub(super) fn subscribers(
    caller: &Caller,
    r: &pb::ListSubscribersRequest,
    s: &State,
) -> Result<pb::SubscriberList, Status> {
    let size = match r.page_size as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let after = match r.page_token.as_str() {
        "" => Bound::Unbounded,
        t => Bound::Excluded(parse_id(t).map_err(|_| {
            Status::invalid_argument(format!("page_token {t:?} is not one a listing gave"))
        })?),
    };
    let filter = Filter::of(r)?;
    let mut page = Vec::with_capacity(size.min(1024));
    let mut last_scanned = None;
    let mut more = false;
    let range = s.subscribers.range::<_, Id>((after, Bound::Unbounded));
    for (scanned, (id, sub)) in range.enumerate() {
        if page.len() == size || scanned == MAX_SCANNED {
            more = true;
            break;
        }
        last_scanned = Some(id);
        if filter.admits(sub) {
            page.push(sub);
        }
    }
    Ok(pb::SubscriberList {
        subscribers: convert::subscribers_listed(
            s,
            page.iter().copied(),
            caller.role >= Role::Admin,
        ),
        // A filtered page may end short of `size` with more to come: it ends where the
        // scan stopped, and the token carries on from there.
        next_page_token: match (more, last_scanned) {
            (true, Some(id)) => id.to_string(),
            _ => String::new(),
        },
        total: s.subscribers.len() as u64,
    })
}

/// The subscribers one scan of a listing looks at, at most: a filter that matches few of a
/// million subscribers answers in pages of bounded work (short pages, with a token).
const MAX_SCANNED: usize = 100_000;

/// Which subscribers a listing shows.
struct Filter {
    kind: Option<Kind>,
    state: Option<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Every subscriber delivered to by an HTTP POST.
    Webhook,
    Format(PayloadFormat),
}

/// The states a subscriber can be in, as listed.
const STATES: &[&str] = &[
    "active",
    "unconfirmed",
    "bounced",
    "disabled",
    "quarantined",
];

impl Filter {
    fn of(r: &pb::ListSubscribersRequest) -> Result<Filter, Status> {
        let kind = match r.kind.as_str() {
            "" => None,
            "webhook" => Some(Kind::Webhook),
            k => Some(Kind::Format(PayloadFormat::parse("kind", k).map_err(|_| {
                Status::invalid_argument(format!(
                    "kind {k:?} is not a subscriber kind (email, webhook, statuspage, slack, discord)"
                ))
            })?)),
        };
        let state = match r.state.as_str() {
            "" => None,
            st if STATES.contains(&st) => Some(st.to_owned()),
            st => {
                return Err(Status::invalid_argument(format!(
                    "state {st:?} is not a subscriber state ({})",
                    STATES.join(", ")
                )))
            }
        };
        Ok(Filter { kind, state })
    }

    fn admits(&self, sub: &Subscriber) -> bool {
        let kind = match self.kind {
            None => true,
            Some(Kind::Webhook) => !sub.format.is_email(),
            Some(Kind::Format(f)) => sub.format == f,
        };
        kind && self
            .state
            .as_deref()
            .is_none_or(|st| sub.state.as_str() == st)
    }
}

pub(super) fn deliveries(
    r: &pb::ListDeliveriesRequest,
    s: &State,
) -> Result<pb::DeliveryList, Status> {
    let id = parse_id(&r.id)?;
    if !s.subscribers.contains_key(&id) {
        return Err(not_found("subscriber", &id));
    }
    Ok(convert::deliveries(s, &id, limit(r.limit)))
}

/// Newest first, optionally of one kind.
pub(super) fn events(r: &pb::ListEventsRequest, s: &State) -> pb::EventList {
    let kind = &r.kind;
    pb::EventList {
        events: s
            .outbox
            .events
            .values()
            .rev()
            .filter(|e| kind.as_deref().is_none_or(|k| e.kind.as_str() == k))
            .take(limit(r.limit))
            .map(|e| convert::event(s, e))
            .collect(),
    }
}

/// The replicated outbox's figures and this node's dispatcher counters.
pub(super) fn outbox_status(s: &State, d: &DispatchStats) -> pb::OutboxStatusReply {
    let st = s.outbox.stats(&s.subscribers);
    pb::OutboxStatusReply {
        events: st.events,
        pending: st.pending,
        failed: st.failed,
        delivered_total: st.delivered_total,
        attempts_total: st.attempts_total,
        quarantined_subscribers: st.quarantined_subscribers,
        dispatching: d.dispatching.load(Ordering::Relaxed),
        in_flight: d.in_flight.load(Ordering::Relaxed),
        sent_total: d.sent_total.load(Ordering::Relaxed),
        fanning_out: st.fanning_out,
        record_writes: d.record_writes.load(Ordering::Relaxed),
        record_bytes: d.record_bytes.load(Ordering::Relaxed),
    }
}
