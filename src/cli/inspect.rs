//! `tapmesh events`, `tapmesh traffic` and `tapmesh export`: reading an
//! environment's events back from its JSON Lines file or from the daemon.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::source::EventSource;
use crate::events::{Event, EventFilter, Shorthands, StatusClass};
use crate::inspect;

/// Filters shared by the reading commands: a query, and the flags that
/// predate it (each one a clause of the same query).
#[derive(Debug, Args)]
pub(crate) struct Filters {
    /// Only events this query holds for (`http.status >= 500`,
    /// `grpc.method == "Reserve" && latency > duration("50ms")`); see the
    /// README's "The query language".
    #[arg(long = "query", short = 'q', value_name = "QUERY")]
    query: Option<String>,
    /// Event types to show (`request.completed`, or a family: `connection.*`); repeatable.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Only this edge: `SOURCE->TARGET` (`*` matches any side).
    #[arg(long, value_parser = EventFilter::parse_edge)]
    edge: Option<(String, String)>,
    /// HTTP responses of this status class (`2xx` … `5xx`).
    #[arg(long)]
    status: Option<StatusClass>,
    /// gRPC calls with this status (`NOT_FOUND` or `5`).
    #[arg(long)]
    grpc_status: Option<String>,
    /// Kafka requests of this API (`Produce` or `0`).
    #[arg(long)]
    kafka_api: Option<String>,
    /// PostgreSQL statements whose SQL contains this text (any case).
    #[arg(long)]
    sql: Option<String>,
    /// Only events after this seq.
    #[arg(long)]
    since: Option<u64>,
}

impl Filters {
    /// The filter, or the query's error (with its position) before any
    /// event is read.
    fn query(&self) -> Result<EventFilter> {
        let (source, target) = self.edge.clone().unzip();
        let shorthands = Shorthands {
            types: self.types.clone(),
            source,
            target,
            status: self.status,
            grpc_status: self.grpc_status.clone(),
            kafka_api: self.kafka_api.clone(),
            sql: self.sql.clone(),
        };
        shorthands
            .filter(self.query.as_deref(), self.since)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// An events file (JSON Lines, as `tapmesh proxy --events` writes or an
    /// environment's directory holds), or a daemon environment:
    /// `http://127.0.0.1:7411/environments/ID` (or the daemon's address if
    /// it runs one).
    #[arg(value_parser = EventSource::parse, value_name = "FILE|URL")]
    source: EventSource,
    #[command(flatten)]
    filters: Filters,
    /// Keep reading as events are appended (until Ctrl-C).
    #[arg(long, short)]
    follow: bool,
    /// Print the events as JSON Lines instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TrafficArgs {
    /// An events file or a daemon environment's URL (as for `tapmesh events`).
    #[arg(value_parser = EventSource::parse, value_name = "FILE|URL")]
    source: EventSource,
    #[command(flatten)]
    filters: Filters,
    /// Print one event (by seq) in full instead of the summary.
    #[arg(long, value_name = "SEQ")]
    detail: Option<u64>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// An events file or a daemon environment's URL (as for `tapmesh events`).
    #[arg(value_parser = EventSource::parse, value_name = "FILE|URL")]
    source: EventSource,
    #[command(flatten)]
    filters: Filters,
    /// Write the HTTP exchanges as HAR 1.2 to this file.
    #[arg(long, value_name = "OUT")]
    har: Option<PathBuf>,
    /// Write the (filtered) events as JSON Lines to this file.
    #[arg(long, value_name = "OUT")]
    jsonl: Option<PathBuf>,
}

pub(crate) fn events(args: EventsArgs) -> Result<()> {
    let query = args.filters.query()?;
    let mut out = std::io::stdout().lock();
    let json = args.json;
    let mut print = |e: &Event| -> Result<()> {
        if query.matches(e) {
            if json {
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            } else {
                writeln!(out, "{}", inspect::one_line(e))?;
            }
        }
        Ok(())
    };
    match (&args.source, args.follow) {
        (EventSource::File(path), true) => follow_file(path, &mut print),
        (
            EventSource::Daemon {
                authority,
                environment,
            },
            true,
        ) => {
            // Replay then live in one stream; the daemon filters by seq.
            EventSource::follow_daemon(
                authority,
                environment.as_deref(),
                args.filters.since.unwrap_or(0),
                |e| {
                    print(&e)?;
                    std::io::stdout().flush()?;
                    Ok(())
                },
            )
        }
        (source, false) => {
            for e in source.read_all()? {
                print(&e)?;
            }
            Ok(())
        }
    }
}

/// Prints the file's events, then polls for appended lines (until Ctrl-C);
/// a partial last line waits for its newline.
fn follow_file(path: &PathBuf, print: &mut impl FnMut(&Event) -> Result<()>) -> Result<()> {
    let mut offset = 0u64;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut pending = String::new();
    loop {
        let len = file.metadata()?.len();
        if len < offset {
            bail!("{} was truncated while following it", path.display());
        }
        if len > offset {
            file.seek(SeekFrom::Start(offset))?;
            let mut chunk = String::new();
            Read::by_ref(&mut file)
                .take(len - offset)
                .read_to_string(&mut chunk)?;
            offset = len;
            pending.push_str(&chunk);
            let complete = pending.rfind('\n').map_or(0, |i| i + 1);
            let ready: String = pending.drain(..complete).collect();
            for e in inspect::parse_jsonl(&ready)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            {
                print(&e)?;
            }
            std::io::stdout().flush()?;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn traffic(args: TrafficArgs) -> Result<()> {
    let query = args.filters.query()?;
    let events = args.source.read_all()?;
    let events: Vec<Event> = events.into_iter().filter(|e| query.matches(e)).collect();
    let mut out = std::io::stdout().lock();
    if let Some(seq) = args.detail {
        let event = events
            .iter()
            .find(|e| e.seq == seq)
            .with_context(|| format!("no event with seq {seq} in {}", args.source.describe()))?;
        writeln!(out, "{}", serde_json::to_string_pretty(event)?)?;
        return Ok(());
    }
    let summary = inspect::summarize(&events);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<32} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "edge", "calls", "errors", "faults", "p50", "p95", "p99", "bytes in", "bytes out"
    )?;
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}ms"));
    for s in summary {
        writeln!(
            out,
            "{:<32} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>10} {:>10}",
            format!("{}->{}", s.source, s.target),
            s.calls,
            s.errors,
            s.faults,
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.p99_ms),
            s.bytes_in,
            s.bytes_out
        )?;
        for slow in &s.slowest {
            writeln!(
                out,
                "    slow {:>9}  #{:<6} {}",
                ms(Some(slow.latency_ms)),
                slow.seq,
                slow.what.replace('\n', " ")
            )?;
        }
    }
    Ok(())
}

pub(crate) fn export(args: ExportArgs) -> Result<()> {
    if args.har.is_none() && args.jsonl.is_none() {
        bail!("say what to write: --har OUT and/or --jsonl OUT");
    }
    let query = args.filters.query()?;
    let events = args.source.read_all()?;
    let events: Vec<Event> = events.into_iter().filter(|e| query.matches(e)).collect();
    if let Some(path) = &args.har {
        let har = inspect::to_har(&events);
        std::fs::write(path, serde_json::to_vec_pretty(&har)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let n = har["log"]["entries"].as_array().map_or(0, Vec::len);
        eprintln!("wrote {n} HTTP exchanges to {}", path.display());
    }
    if let Some(path) = &args.jsonl {
        let mut text = String::new();
        for e in &events {
            text.push_str(&serde_json::to_string(e)?);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {} events to {}", events.len(), path.display());
    }
    Ok(())
}
