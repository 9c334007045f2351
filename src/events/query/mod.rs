//! The query language: one expression over events, for every surface
//! (`tapmesh events|traffic|export -q`, the daemon's `?q=`, the Rust and
//! Python test APIs).
//!
//! It is CEL (the Common Expression Language of Kubernetes and Kubeshark's
//! filters) through the `cel` crate: its parser, operators, functions
//! (`matches`, `startsWith`, `duration`, the `exists`/`all` macros …) and
//! evaluation. What tapmesh adds is the events' names (`fields.rs`), read
//! lazily from the event itself (`view.rs`), and a check of those names and
//! of literals' types before anything runs (`check.rs`).
//!
//! A field an event does not have (`http.status` on a Kafka request, a
//! response that never came) makes the query false for that event, not an
//! error: evaluation errors are non-matches.

mod check;
mod fields;
mod fold;
mod parts;
mod view;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::common::types::CelBool;
use cel::common::value::Val;
use cel::{Context, Env, IdedExpr, Program, Value};

use super::Event;

/// The environment every query is compiled and run in: CEL's standard
/// library, made once.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// A compiled query. Cheap to clone; equal when written the same.
#[derive(Clone)]
pub struct Query {
    inner: Arc<Compiled>,
}

struct Compiled {
    text: String,
    /// As parsed: what explanations take apart.
    program: Program,
    /// As run (see `fold.rs`), with its constants.
    folded: IdedExpr,
    constants: Vec<Box<dyn Val>>,
}

impl Query {
    /// Parses and checks `text`: a syntax error, an unknown name or
    /// function, or a literal of the wrong type is an error with its
    /// position.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let env: &Env = &ENV;
        let program = env.compile(text).map_err(|errors| {
            let first = errors.errors.first();
            let (line, column) = first.map_or((1, 1), |e| {
                (e.pos.0.max(1) as usize, e.pos.1.max(1) as usize)
            });
            let message = first.map_or_else(|| "syntax error".to_string(), |e| e.msg.clone());
            QueryError::at_line(text, line, column, format!("syntax error: {message}"))
        })?;
        let mut checker = check::Checker::new(env, &program);
        checker.check_query();
        if let Some(problem) = checker.problems.first() {
            return Err(
                QueryError::at_offset(text, problem.offset, problem.message.clone())
                    .with_more(checker.problems.len() - 1),
            );
        }
        let mut folded = program.expression().clone();
        let mut constants = Vec::new();
        fold::fold(&mut folded, &mut constants);
        Ok(Self {
            inner: Arc::new(Compiled {
                text: text.to_string(),
                program,
                folded,
                constants,
            }),
        })
    }

    /// Every query joined with `&&` (the flags' clauses and `-q`); `None`
    /// when there are none.
    pub fn all<I: IntoIterator<Item = String>>(texts: I) -> Result<Option<Self>, QueryError> {
        let texts: Vec<String> = texts.into_iter().filter(|t| !t.trim().is_empty()).collect();
        match texts.len() {
            0 => Ok(None),
            1 => Self::parse(&texts[0]).map(Some),
            _ => {
                // Each checked alone first, so that positions are in the
                // text its author wrote.
                for text in &texts {
                    Self::parse(text)?;
                }
                let joined: Vec<String> = texts.iter().map(|t| format!("({t})")).collect();
                Self::parse(&joined.join(" && ")).map(Some)
            }
        }
    }

    /// The query as written.
    pub fn text(&self) -> &str {
        &self.inner.text
    }

    /// Whether `event` satisfies the query.
    pub fn matches(&self, event: &Event) -> bool {
        let c = &self.inner;
        let resolver = view::EventResolver::new(event, &c.constants);
        let mut context = Context::with_env(Arc::clone(&ENV));
        context.set_variable_resolver(&resolver);
        let result = Value::resolve_val(&c.folded, &context);
        result.is_ok_and(|v| v.downcast_ref::<CelBool>().is_some_and(|b| *b.inner()))
    }

    /// The conditions the query requires all of (its top-level `&&`
    /// operands), each a query of its own; the query itself when it is not
    /// a conjunction. Explanations say which of them an event missed.
    pub fn clauses(&self) -> Vec<Query> {
        let parts = parts::conjuncts(self.text());
        if parts.len() < 2 {
            return vec![self.clone()];
        }
        let parsed: Result<Vec<Query>, _> = parts.iter().map(|p| Query::parse(p)).collect();
        parsed.unwrap_or_else(|_| vec![self.clone()])
    }

    /// The lowest seq an event it matches can have, when the query
    /// bounds `seq` from below at its top level (`seq > 1000 && …`): a
    /// reader can start there instead of at the log's first event.
    pub fn first_seq(&self) -> Option<u64> {
        parts::first_seq(self.inner.program.expression())
    }

    /// The event fields the query reads (`http.status`,
    /// `http.request.headers["x-id"]`), as written, each once.
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        parts::paths(self.inner.program.expression(), &mut out);
        out
    }

    /// What `field` (one of [`Query::fields`]) holds in `event`, written
    /// for a person (`503`, `"POST"`, `12.5ms`); `None` where it has none.
    pub fn show_field(field: &str, event: &Event) -> Option<String> {
        let program = ENV.compile(field).ok()?;
        parts::show(&evaluate(&program, event).ok()?)
    }
}

fn evaluate(program: &Program, event: &Event) -> cel::ResolveResult {
    let resolver = view::EventResolver::new(event, &[]);
    let mut context = Context::with_env(Arc::clone(&ENV));
    context.set_variable_resolver(&resolver);
    program.execute(&context)
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Query").field(&self.inner.text).finish()
    }
}

impl PartialEq for Query {
    fn eq(&self, other: &Self) -> bool {
        self.inner.text == other.inner.text
    }
}

impl Eq for Query {}

/// A query that cannot run, and where: `line` and `column` count from 1
/// (columns in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub query: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl QueryError {
    fn at_line(query: &str, line: usize, column: usize, message: String) -> Self {
        Self {
            query: query.to_string(),
            line,
            column,
            message,
        }
    }

    fn at_offset(query: &str, offset: usize, message: String) -> Self {
        let before = &query[..offset.min(query.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self::at_line(query, line, column, message)
    }

    fn with_more(mut self, more: usize) -> Self {
        if more > 0 {
            let s = if more == 1 { "" } else { "s" };
            self.message
                .push_str(&format!(" (and {more} more problem{s})"));
        }
        self
    }
}

impl fmt::Display for QueryError {
    /// `query error at 1:6: unknown field …`, then the line and a caret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "query error at {}:{}: {}",
            self.line, self.column, self.message
        )?;
        if let Some(text) = self.query.lines().nth(self.line - 1) {
            let pad = " ".repeat(self.column.saturating_sub(1));
            write!(f, "\n  {text}\n  {pad}^")?;
        }
        Ok(())
    }
}

impl std::error::Error for QueryError {}
