//! The client's messages: the startup packets, then queries queued to be
//! paired with the server's answers.

use std::sync::Arc;

use super::framing::{Message, Mode};
use super::messages::{self, prefix_text};
use super::pending::{Acc, Exec, Op, Portal, Simple, Statement, Step};
use super::types::{CopyDirection, EncryptionKind, PostgresOutput, PostgresSession, QueryProtocol};
use super::{name, params, split, Phase, PostgresDecoder};
use crate::decoder::Fault;
use crate::Decoded;

/// Statements of one `Query` told apart at most; the rest of its text goes
/// with the last.
const MAX_STATEMENTS_PER_QUERY: usize = 1024;

impl PostgresDecoder {
    pub(super) fn client_message(
        &mut self,
        m: Message,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let Some(tag) = m.tag else {
            return self.startup_packet(m, out);
        };
        if self.discarding && !matches!(tag, b'S' | b'X' | b'd' | b'c' | b'f') {
            // The server skips it too: nothing will answer it.
            return Ok(());
        }
        match tag {
            b'Q' => self.simple_query(&m),
            b'P' => self.parse(&m),
            b'B' => self.bind(&m),
            b'D' | b'C' => self.describe_or_close(&m),
            b'E' => self.execute(&m),
            b'S' => {
                self.discarding = false;
                self.group_started = None;
                self.group_size = 0;
                self.push_op(Op::Sync)
            }
            b'F' => self.function_call(&m),
            b'd' | b'c' | b'f' => {
                self.copy_from_client(&m);
                Ok(())
            }
            // Password, SASL and GSS messages ('p') pass unread; Flush and
            // Terminate need no answer.
            _ => Ok(()),
        }
    }

    fn startup_packet(&mut self, m: Message, out: &mut Vec<Decoded>) -> Result<(), Fault> {
        let packet = messages::startup(&m.body)
            .ok_or_else(|| Fault::malformed("startup packet too short"))?;
        match packet.code {
            messages::SSL_REQUEST => self.await_answer(EncryptionKind::Tls),
            messages::GSSENC_REQUEST => self.await_answer(EncryptionKind::Gss),
            messages::CANCEL_REQUEST => {
                let pid = packet.cancel_pid.unwrap_or(0);
                self.release();
                Self::emit(out, PostgresOutput::CancelRequest { pid, at: m.started });
            }
            code if code >> 16 == 3 => {
                let mut session = PostgresSession {
                    protocol_version: (3, (code & 0xffff) as u16),
                    ssl_refused: self.ssl_refused,
                    started: m.started,
                    ..PostgresSession::default()
                };
                for (k, v) in packet.params {
                    match k.as_str() {
                        "user" => session.user = Some(v),
                        "database" => session.database = Some(v),
                        "application_name" => session.application_name = Some(v),
                        _ => session.startup_parameters.push((k, v)),
                    }
                }
                self.session = Some(Box::new(session));
                self.phase = Phase::Authenticating;
                self.client.mode = Mode::Typed;
            }
            code => {
                return Err(Fault::unsupported(format!(
                    "startup packet with protocol version {}.{}, not 3.x",
                    code >> 16,
                    code & 0xffff
                )))
            }
        }
        Ok(())
    }

    fn await_answer(&mut self, kind: EncryptionKind) {
        self.phase = Phase::AwaitAnswer(kind);
        self.server.mode = Mode::SingleByte;
    }

    fn simple_query(&mut self, m: &Message) -> Result<(), Fault> {
        let (sql, cut) = messages::Cursor::new(&m.body).cstr_or_rest();
        let cut = cut && !m.is_whole();
        let sql: Arc<str> = Arc::from(prefix_text(sql, cut));
        let statements = split::statements(&sql, MAX_STATEMENTS_PER_QUERY);
        self.push_op(Op::Simple(Box::new(Simple {
            protocol: QueryProtocol::Simple,
            sql,
            sql_truncated: cut,
            statements,
            answered: 0,
            ended_by_error: false,
            started: m.started,
            request_size: m.wire_size(),
            acc: Acc::default(),
        })))
    }

    fn function_call(&mut self, m: &Message) -> Result<(), Fault> {
        let oid = messages::Cursor::new(&m.body).i32().unwrap_or(0) as u32;
        self.push_op(Op::Simple(Box::new(Simple {
            protocol: QueryProtocol::FunctionCall { oid },
            sql: Arc::from(""),
            sql_truncated: false,
            // One answer expected: the empty statement stands for the call.
            statements: std::iter::once(0..0).collect(),
            answered: 0,
            ended_by_error: false,
            started: m.started,
            request_size: m.wire_size(),
            acc: Acc::default(),
        })))
    }

    /// Counts the message into the group the next `Execute` reports.
    fn group(&mut self, m: &Message) {
        self.group_started.get_or_insert(m.started);
        self.group_size += m.wire_size();
    }

    fn ext(
        &mut self,
        step: Step,
        m: &Message,
        statement: Option<Arc<Statement>>,
        portal: Option<Arc<Portal>>,
    ) -> Result<(), Fault> {
        self.push_op(Op::Ext(Exec {
            step,
            statement,
            portal,
            started: self.group_started.unwrap_or(m.started),
            request_size: m.wire_size(),
            acc: Acc::default(),
        }))
    }

    fn parse(&mut self, m: &Message) -> Result<(), Fault> {
        self.group(m);
        let p = messages::parse(&m.body);
        let cut = p.sql_cut && !m.is_whole();
        let statement = Arc::new(Statement {
            name: name(p.name),
            sql: Arc::from(prefix_text(p.sql, cut)),
            sql_truncated: cut,
            param_types: p.param_types,
        });
        match &statement.name {
            Some(n) => self.statements.insert(n.clone(), statement.clone()),
            None => self.unnamed_statement = Some(statement.clone()),
        }
        self.ext(Step::Parse, m, Some(statement), None)
    }

    fn bind(&mut self, m: &Message) -> Result<(), Fault> {
        self.group(m);
        let b = messages::bind(&m.body);
        let statement_name = name(b.statement);
        let statement = match &statement_name {
            Some(n) => self.statements.get(n),
            None => self.unnamed_statement.clone(),
        };
        let types = statement
            .as_ref()
            .map(|s| &s.param_types[..])
            .unwrap_or_default();
        let limit = self.config.param_limit;
        let params = b
            .params
            .iter()
            .enumerate()
            .map(|(i, raw)| params::decode(raw, types.get(i).copied(), limit))
            .collect();
        let portal = Arc::new(Portal {
            name: name(b.portal),
            statement,
            statement_name,
            params,
            params_truncated: b.cut,
        });
        match &portal.name {
            Some(n) => self.portals.insert(n.clone(), portal.clone()),
            None => self.unnamed_portal = Some(portal.clone()),
        }
        self.ext(Step::Bind, m, None, Some(portal))
    }

    fn describe_or_close(&mut self, m: &Message) -> Result<(), Fault> {
        self.group(m);
        let (kind, target) = messages::target(&m.body);
        let target = name(target);
        let (mut statement, mut portal) = (None, None);
        if kind == b'S' {
            statement = match &target {
                Some(n) => self.statements.get(n),
                None => self.unnamed_statement.clone(),
            };
        } else {
            portal = match &target {
                Some(n) => self.portals.get(n),
                None => self.unnamed_portal.clone(),
            };
        }
        let step = match (m.tag, kind) {
            (Some(b'D'), b'S') => Step::DescribeStatement,
            (Some(b'D'), _) => Step::DescribePortal,
            _ => {
                // Closed now: a later Parse of the same name is a new one.
                if let Some(n) = &target {
                    match kind {
                        b'S' => self.statements.remove(n),
                        _ => self.portals.remove(n),
                    }
                }
                Step::Close
            }
        };
        self.ext(step, m, statement, portal)
    }

    fn execute(&mut self, m: &Message) -> Result<(), Fault> {
        let portal = match name(messages::execute(&m.body)) {
            Some(n) => self.portals.get(&n),
            None => self.unnamed_portal.clone(),
        };
        let started = self.group_started.take().unwrap_or(m.started);
        let request_size = std::mem::take(&mut self.group_size) + m.wire_size();
        self.push_op(Op::Ext(Exec {
            step: Step::Execute,
            statement: None,
            portal,
            started,
            request_size,
            acc: Acc::default(),
        }))
    }

    /// `CopyData`/`CopyDone`/`CopyFail` go to the request in COPY IN; with
    /// none (the server already refused the COPY) they are dropped, as the
    /// server drops them.
    fn copy_from_client(&mut self, m: &Message) {
        let acc = match self.ops.front_mut() {
            Some(Op::Simple(s)) => &mut s.acc,
            Some(Op::Ext(x)) if x.step == Step::Execute => &mut x.acc,
            _ => return,
        };
        let Some(copy) = acc
            .copy
            .as_mut()
            .filter(|c| c.direction != CopyDirection::Out)
        else {
            return;
        };
        acc.request_extra += m.wire_size();
        match m.tag {
            Some(b'd') => {
                copy.messages += 1;
                copy.bytes += m.body_len() as u64;
            }
            Some(b'f') => copy.failed = true,
            _ => {}
        }
    }
}
