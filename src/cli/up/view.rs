//! What `tapmesh up` writes while it runs, on a thread of its own (a
//! slow or stuck reader of stdout holds up nothing else).
//!
//! On a terminal: a table of the services redrawn in place while the
//! environment starts (cursor movement only, no full-screen takeover),
//! with the few lines it cannot show scrolling above it; once the
//! environment is up, or did not start, the table stays and events follow
//! one per line. Elsewhere: plain lines, a build's progress at most every
//! few seconds. Notes (tapmesh's own messages and warnings) go to stderr
//! in both. When stdout's reader is gone, writing stops and
//! [`View::closed`] fires.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::board::{Board, Phase};
use super::{lines, term};
use crate::events::{Event, EventFilter, EventKind, EventLog, LifecycleState, ServiceState};
use crate::events::{Payload, Subscription};
use crate::spec::Spec;

/// How often the table is redrawn (its clock) and stdout looked at.
const TICK: Duration = Duration::from_millis(200);
/// A build's progress, as plain lines, at most this often per service.
const PLAIN_BUILD_EVERY: Duration = Duration::from_secs(3);
/// How long [`View::finish`] waits for the last events to be written.
const FINISH_WAIT: Duration = Duration::from_secs(5);

enum Say {
    /// A line of tapmesh's own, for stderr (`tapmesh: ` is put before it).
    Note(String),
    /// A log line (`-v`), for stderr as it is.
    Log(String),
    Finish,
}

/// Sends lines to the view from anywhere (the log's relays).
#[derive(Clone)]
pub(super) struct Sayer(mpsc::UnboundedSender<Say>);

impl Sayer {
    pub fn note(&self, text: impl Into<String>) {
        let _ = self.0.send(Say::Note(text.into()));
    }

    pub fn log(&self, text: impl Into<String>) {
        let _ = self.0.send(Say::Log(text.into()));
    }
}

pub(super) struct View {
    sayer: Sayer,
    closed: CancellationToken,
    live: bool,
    thread: std::thread::JoinHandle<()>,
}

impl View {
    /// Follows `log` from its first event: a live table when stdout is a
    /// terminal, plain lines otherwise.
    pub fn start(spec: &Spec, log: &EventLog, logs: bool) -> std::io::Result<Self> {
        let live = std::io::stdout().is_terminal();
        let screen = match live {
            true => Screen::Live(Live {
                board: Board::new(spec),
                environment: spec.name.clone(),
                logs,
                started: Instant::now(),
                drawn: 0,
                shown: Vec::new(),
                frozen: false,
                stderr_shared: std::io::stderr().is_terminal(),
            }),
            false => Screen::Plain(Plain {
                environment: spec.name.clone(),
                logs,
                builds: Default::default(),
            }),
        };
        let (tx, said) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let out = Out {
            open: true,
            closed: closed.clone(),
        };
        let events = log.subscribe(1, EventFilter::all()).labeled("tapmesh up");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("tapmesh-up-view".into())
            .spawn(move || runtime.block_on(follow(screen, out, events, said)))?;
        Ok(Self {
            sayer: Sayer(tx),
            closed,
            live,
            thread,
        })
    }

    /// A table redrawn in place (stdout is a terminal).
    pub fn is_live(&self) -> bool {
        self.live
    }

    pub fn sayer(&self) -> Sayer {
        self.sayer.clone()
    }

    pub fn note(&self, text: impl Into<String>) {
        self.sayer.note(text);
    }

    /// Cancelled once stdout's reader is gone.
    pub fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }

    /// Writes what is left (the events logged so far), then ends; waits
    /// a few seconds at most for a reader that does not read.
    pub fn finish(self) {
        let _ = self.sayer.0.send(Say::Finish);
        let deadline = Instant::now() + FINISH_WAIT;
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.thread.is_finished() {
            let _ = self.thread.join();
        }
    }
}

async fn follow(
    mut screen: Screen,
    mut out: Out,
    mut events: Subscription,
    mut said: mpsc::UnboundedReceiver<Say>,
) {
    let mut tick = tokio::time::interval(TICK);
    let mut log_open = true;
    loop {
        tokio::select! {
            event = events.recv(), if log_open => match event {
                Some(event) => screen.event(&event, &mut out),
                None => log_open = false,
            },
            say = said.recv() => match say {
                Some(Say::Note(text)) => screen.stderr(&format!("tapmesh: {text}\n"), &mut out),
                Some(Say::Log(text)) => screen.stderr(&text, &mut out),
                Some(Say::Finish) | None => {
                    while let Some(event) = events.try_recv() {
                        screen.event(&event, &mut out);
                    }
                    screen.finish(&mut out);
                    return;
                }
            },
            _ = tick.tick() => {
                if out.open && term::stdout_closed() {
                    out.close();
                }
                screen.tick(&mut out);
            }
        }
    }
}

/// Stdout while its reader is there, and stderr.
struct Out {
    open: bool,
    closed: CancellationToken,
}

impl Out {
    fn print(&mut self, text: &str) {
        if !self.open || text.is_empty() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            self.close();
        }
    }

    fn close(&mut self) {
        self.open = false;
        self.closed.cancel();
    }

    fn stderr(&mut self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }
}

enum Screen {
    Live(Live),
    Plain(Plain),
}

impl Screen {
    fn event(&mut self, event: &Event, out: &mut Out) {
        match self {
            Self::Live(live) => live.event(event, out),
            Self::Plain(plain) => plain.event(event, out),
        }
    }

    fn stderr(&mut self, text: &str, out: &mut Out) {
        match self {
            Self::Live(live) => live.stderr(text, out),
            Self::Plain(_) => out.stderr(text),
        }
    }

    fn tick(&mut self, out: &mut Out) {
        if let Self::Live(live) = self {
            if !live.frozen {
                live.draw(out, None);
            }
        }
    }

    fn finish(&mut self, out: &mut Out) {
        if let Self::Live(live) = self {
            if !live.frozen {
                live.draw(out, None);
                live.frozen = true;
            }
        }
    }
}

/// The table, redrawn in place until the environment is up or down.
struct Live {
    board: Board,
    environment: String,
    logs: bool,
    started: Instant,
    /// Lines of the table on the screen, just above the cursor.
    drawn: usize,
    shown: Vec<String>,
    /// The table stays as it is; events follow as lines.
    frozen: bool,
    /// Stderr writes on the same terminal: clear the table first.
    stderr_shared: bool,
}

impl Live {
    fn event(&mut self, event: &Event, out: &mut Out) {
        if self.frozen {
            if let Some(line) = lines::line(event, &self.environment, self.logs) {
                out.print(&format!("{line}\n"));
            }
            return;
        }
        let above = lines::beside_the_table(event, &self.environment, self.logs);
        let changed = self.board.apply(event);
        if above.is_some() || changed {
            self.draw(out, above.as_deref());
        }
        if self.board.phase() != &Phase::Starting {
            self.frozen = true;
        }
    }

    /// The table again, under `above` (lines that scroll away), if it
    /// changed or there is something to put above it.
    fn draw(&mut self, out: &mut Out, above: Option<&str>) {
        let (width, height) = term::size().unwrap_or((100, 40));
        // One column and a line spare: a full line would wrap on some
        // terminals, and the cursor sits on the line below the table.
        let table = self.board.lines(
            width.saturating_sub(1),
            height.saturating_sub(2),
            self.started.elapsed(),
        );
        if above.is_none() && table == self.shown {
            return;
        }
        let mut text = term::erase_above(self.drawn);
        if let Some(above) = above {
            text.push_str(above);
            text.push('\n');
        }
        for line in &table {
            text.push_str(line);
            text.push('\n');
        }
        out.print(&text);
        self.drawn = table.len();
        self.shown = table;
    }

    fn stderr(&mut self, text: &str, out: &mut Out) {
        if self.frozen || !self.stderr_shared || self.drawn == 0 {
            out.stderr(text);
            return;
        }
        out.print(&term::erase_above(self.drawn));
        self.drawn = 0;
        self.shown.clear();
        out.stderr(text);
        self.draw(out, None);
    }
}

/// Plain lines, as they come.
struct Plain {
    environment: String,
    logs: bool,
    /// When each service's build progress was last printed.
    builds: std::collections::BTreeMap<String, Instant>,
}

impl Plain {
    fn event(&mut self, event: &Event, out: &mut Out) {
        if let (EventKind::BuildProgress, Payload::Lifecycle(info)) = (&event.kind, &event.payload)
        {
            let service = event.service.as_deref().unwrap_or("").to_string();
            let building = info.state == LifecycleState::Service(ServiceState::Building);
            let last = self.builds.get(&service);
            if building && last.is_some_and(|t| t.elapsed() < PLAIN_BUILD_EVERY) {
                return;
            }
            self.builds.insert(service, Instant::now());
        }
        if let Some(line) = lines::line(event, &self.environment, self.logs) {
            out.print(&format!("{line}\n"));
        }
    }
}
