//! Where tapmesh's own log lines (`tracing`) go: stderr, as for every
//! command but `tapmesh up`, whose terminal shows the environment instead.
//! There they are held in memory until the environment's directory exists,
//! then written to `<dir>/tapmesh.log` ([`to_file`]); warnings also reach
//! the view as a line of its own ([`relay_warnings`]). With `up -v` they go
//! to stderr, through the view while it draws on the same terminal
//! ([`relay_lines`]).

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Log lines held before the file is open, at most.
const HELD_BYTES: usize = 1 << 20;

/// Hands a line (a whole formatted log event, or a warning's text) on.
pub type Relay = Box<dyn Fn(String) + Send + Sync>;

enum To {
    Stderr,
    /// Until [`to_file`] (or [`release`]).
    Held(Vec<u8>),
    File(std::fs::File),
}

struct Sink {
    to: To,
    /// Lines bound for stderr go here instead.
    lines: Option<Relay>,
    /// Warnings and errors, as one short line each.
    warnings: Option<Relay>,
}

static SINK: Mutex<Sink> = Mutex::new(Sink {
    to: To::Stderr,
    lines: None,
    warnings: None,
});

fn sink() -> std::sync::MutexGuard<'static, Sink> {
    SINK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs the subscriber (`RUST_LOG` sets the level, INFO by default):
/// to stderr, or held for a file (`hold`).
pub fn init(hold: bool) {
    let ansi = !hold && std::io::IsTerminal::is_terminal(&std::io::stderr());
    if hold {
        sink().to = To::Held(Vec::new());
    }
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(SinkWriter)
                .with_ansi(ansi)
                // Reporting a failed write goes through eprintln!, which
                // panics when stderr is closed.
                .log_internal_errors(false),
        )
        .with(Warnings)
        .init();
}

/// From now on, log lines go to `path` (appended), those held first.
pub fn to_file(path: &Path) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut sink = sink();
    if let To::Held(held) = &sink.to {
        file.write_all(held)?;
    }
    sink.to = To::File(file);
    Ok(())
}

/// Lines held for a file that never opened go to stderr after all.
pub fn release() {
    let mut sink = sink();
    if let To::Held(held) = &sink.to {
        let _ = std::io::stderr().write_all(held);
        sink.to = To::Stderr;
    }
}

/// Lines bound for stderr go to `relay` instead (`None`: to stderr again).
pub fn relay_lines(relay: Option<Relay>) {
    sink().lines = relay;
}

/// Each warning or error also goes to `relay`, as one line.
pub fn relay_warnings(relay: Option<Relay>) {
    sink().warnings = relay;
}

struct SinkWriter;

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = SinkWriter;

    fn make_writer(&'a self) -> Self::Writer {
        SinkWriter
    }
}

/// Each write is one formatted event (the fmt layer writes it whole).
/// Failures are not reported: a proxy must outlive whoever read its logs.
impl Write for SinkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut sink = sink();
        let sink = &mut *sink;
        match (&mut sink.to, &sink.lines) {
            (To::Stderr, Some(relay)) => relay(String::from_utf8_lossy(bytes).into_owned()),
            (To::Stderr, None) => {
                let _ = std::io::stderr().write_all(bytes);
            }
            (To::Held(held), _) => {
                if held.len() + bytes.len() <= HELD_BYTES {
                    held.extend_from_slice(bytes);
                }
            }
            (To::File(file), _) => {
                let _ = file.write_all(bytes);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hands warnings and errors to the warnings relay, when there is one.
struct Warnings;

impl<S: Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        // A connection's trouble is already an event of its own.
        if *meta.level() > Level::WARN || meta.target().starts_with("tapmesh::proxy") {
            return;
        }
        let sink = sink();
        let Some(relay) = &sink.warnings else {
            return;
        };
        let mut text = Text::default();
        event.record(&mut text);
        let level = if *meta.level() == Level::ERROR {
            "error"
        } else {
            "warning"
        };
        relay(format!("{level}: {}", text.line()));
    }
}

/// An event's message, and its other fields as `name=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: Vec<String>,
}

impl Text {
    fn line(&self) -> String {
        if self.fields.is_empty() {
            self.message.clone()
        } else {
            format!("{} ({})", self.message, self.fields.join(", "))
        }
    }
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push(format!("{}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn warnings_reach_the_relay_as_one_line_and_info_does_not() {
        let heard: Arc<Mutex<Vec<String>>> = Arc::default();
        let into = Arc::clone(&heard);
        let subscriber = tracing_subscriber::registry().with(Warnings);
        tracing::subscriber::with_default(subscriber, || {
            relay_warnings(Some(Box::new(move |line| into.lock().unwrap().push(line))));
            tracing::info!("started");
            tracing::warn!(dir = %"/tmp/x", tries = 2, "could not remove the scratch directories");
            tracing::error!("writing the event log failed");
            relay_warnings(None);
        });
        let heard = heard.lock().unwrap();
        // Other tests' warnings may come through the same relay meanwhile.
        let ours: Vec<&String> = heard
            .iter()
            .filter(|l| l.contains("scratch") || l.contains("event log"))
            .collect();
        assert_eq!(
            ours,
            [
                "warning: could not remove the scratch directories (dir=/tmp/x, tries=2)",
                "error: writing the event log failed",
            ]
        );
        assert!(!heard.iter().any(|l| l.contains("started")));
    }
}
