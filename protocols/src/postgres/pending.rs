//! What waits for the server: the client messages it has not answered yet,
//! in order, and the prepared statements and portals they refer to.
//!
//! A PostgreSQL server answers a connection's messages strictly in order,
//! so pairing is a queue: each answer belongs to the oldest message still
//! waiting for one. The queue, the statements and the portals are all
//! bounded (the decoder gives up on a client that pipelines past the
//! limit, and forgets the least recently used statement past its limit).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::types::{PgCopy, PgError, PgParam, PostgresQuery, QueryProtocol};
use crate::Timestamp;

/// Notices kept per query; more are only counted.
pub const MAX_NOTICES: usize = 4;

/// A statement as `Parse` defined it.
#[derive(Debug)]
pub struct Statement {
    /// `None` for the unnamed statement.
    pub name: Option<Arc<str>>,
    pub sql: Arc<str>,
    pub sql_truncated: bool,
    pub param_types: Vec<u32>,
}

/// A portal as `Bind` created it.
#[derive(Debug)]
pub struct Portal {
    pub name: Option<Arc<str>>,
    /// `None` when its statement was never seen (parsed before the
    /// capture began, or forgotten past the statement limit).
    pub statement: Option<Arc<Statement>>,
    /// The statement's name as `Bind` gave it.
    pub statement_name: Option<Arc<str>>,
    pub params: Vec<PgParam>,
    pub params_truncated: bool,
}

/// Named entries, the least recently used forgotten past `max`.
pub struct Lru<T> {
    map: HashMap<Arc<str>, (Arc<T>, u64)>,
    clock: u64,
    max: usize,
}

impl<T> Lru<T> {
    pub fn new(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            clock: 0,
            max: max.max(1),
        }
    }

    pub fn get(&mut self, name: &str) -> Option<Arc<T>> {
        self.clock += 1;
        let clock = self.clock;
        self.map.get_mut(name).map(|(v, used)| {
            *used = clock;
            v.clone()
        })
    }

    pub fn insert(&mut self, name: Arc<str>, value: Arc<T>) {
        self.clock += 1;
        if self.map.len() >= self.max && !self.map.contains_key(&name) {
            // A scan, but only when full: clients that prepare a bounded
            // set of statements never get here.
            if let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        self.map.insert(name, (value, self.clock));
    }

    pub fn remove(&mut self, name: &str) {
        self.map.remove(name);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.map.shrink_to(16);
    }
}

/// What the server's answers to one request add up to.
#[derive(Debug, Default)]
pub struct Acc {
    pub rows_seen: u64,
    pub response_size: u64,
    /// Client bytes after the request itself (`COPY` data).
    pub request_extra: u64,
    pub notices: Vec<PgError>,
    pub notice_count: u32,
    pub copy: Option<PgCopy>,
}

impl Acc {
    pub fn notice(&mut self, notice: PgError) {
        self.notice_count = self.notice_count.saturating_add(1);
        if self.notices.len() < MAX_NOTICES {
            self.notices.push(notice);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Parse,
    Bind,
    DescribeStatement,
    DescribePortal,
    Close,
    Execute,
}

/// An extended-protocol message awaiting its answer.
#[derive(Debug)]
pub struct Exec {
    pub step: Step,
    pub statement: Option<Arc<Statement>>,
    pub portal: Option<Arc<Portal>>,
    pub started: Timestamp,
    pub request_size: u64,
    pub acc: Acc,
}

/// A `Query` (or `FunctionCall`) awaiting its answers, one per statement
/// and then `ReadyForQuery`.
#[derive(Debug)]
pub struct Simple {
    pub protocol: QueryProtocol,
    pub sql: Arc<str>,
    pub sql_truncated: bool,
    /// The statements' ranges in `sql`.
    pub statements: Vec<Range<usize>>,
    /// Answers so far (the statement the next one belongs to).
    pub answered: usize,
    pub ended_by_error: bool,
    pub started: Timestamp,
    /// The message's size, reported on its first statement.
    pub request_size: u64,
    pub acc: Acc,
}

#[derive(Debug)]
pub enum Op {
    Ext(Exec),
    Sync,
    Simple(Box<Simple>),
}

/// How an answered request ended.
pub struct Outcome {
    pub tag: Option<(String, String, Option<u64>)>,
    pub error: Option<PgError>,
    pub empty: bool,
    pub suspended: bool,
    pub at: Timestamp,
}

impl Outcome {
    /// Answered, with nothing to say yet but when.
    pub fn empty(at: Timestamp) -> Self {
        Self {
            tag: None,
            error: None,
            empty: false,
            suspended: false,
            at,
        }
    }

    pub fn error(error: PgError, at: Timestamp) -> Self {
        Self {
            tag: None,
            error: Some(error),
            empty: false,
            suspended: false,
            at,
        }
    }
}

/// The query an extended-protocol request reports.
pub fn ext_query(x: Exec, outcome: Outcome) -> PostgresQuery {
    let statement = x
        .portal
        .as_ref()
        .and_then(|p| p.statement.clone())
        .or(x.statement);
    let (sql, sql_truncated) = match &statement {
        Some(s) => (s.sql.clone(), s.sql_truncated),
        None => (Arc::from(""), false),
    };
    let statement_name = match &x.portal {
        Some(p) => p.statement_name.clone(),
        None => statement.as_ref().and_then(|s| s.name.clone()),
    };
    let (params, params_truncated) = match &x.portal {
        Some(p) => (p.params.clone(), p.params_truncated),
        None => (Vec::new(), false),
    };
    let base = QueryBase {
        protocol: QueryProtocol::Extended,
        sql,
        sql_truncated,
        started: x.started,
        request_size: x.request_size,
    };
    let mut q = query(base, x.acc, outcome);
    q.params = params;
    q.params_truncated = params_truncated;
    q.statement = statement_name;
    q.portal = x.portal.and_then(|p| p.name.clone());
    q
}

/// The fields every query has, from its request.
pub struct QueryBase {
    pub protocol: QueryProtocol,
    pub sql: Arc<str>,
    pub sql_truncated: bool,
    pub started: Timestamp,
    pub request_size: u64,
}

pub fn query(base: QueryBase, acc: Acc, outcome: Outcome) -> PostgresQuery {
    let (tag, command, tag_rows) = match outcome.tag {
        Some((tag, command, rows)) => (Some(tag), Some(command), rows),
        None => (None, None, None),
    };
    let rows = tag_rows
        .or((acc.rows_seen > 0 || command.as_deref() == Some("SELECT")).then_some(acc.rows_seen));
    PostgresQuery {
        protocol: base.protocol,
        sql: base.sql,
        sql_truncated: base.sql_truncated,
        params: Vec::new(),
        params_truncated: false,
        statement: None,
        portal: None,
        command,
        tag,
        rows,
        empty: outcome.empty,
        suspended: outcome.suspended,
        copy: acc.copy,
        error: outcome.error,
        notices: acc.notices,
        notice_count: acc.notice_count,
        transaction: None,
        started: base.started,
        completed: outcome.at,
        latency_ms: outcome.at.millis_since(base.started),
        request_size: base.request_size + acc.request_extra,
        response_size: acc.response_size,
    }
}
