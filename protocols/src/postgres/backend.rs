//! The server's messages, each paired with the oldest client message still
//! waiting for an answer.

use std::sync::Arc;

use super::framing::{Message, Mode};
use super::messages::{self, Cursor};
use super::pending::{ext_query, query, Acc, Op, Outcome, QueryBase, Statement, Step};
use super::types::{
    AuthMethod, CopyDirection, EncryptionKind, PgCopy, PgError, PgNotification, PostgresOutput,
};
use super::{Phase, PostgresDecoder, MAX_SERVER_PARAMS};
use crate::decoder::Fault;
use crate::{Decoded, Timestamp};

fn show(tag: u8) -> String {
    char::from(tag).escape_default().to_string()
}

/// How CommandComplete, EmptyQueryResponse, PortalSuspended or
/// FunctionCallResponse ends a request.
fn completion(tag: u8, body: &[u8], at: Timestamp) -> Outcome {
    let mut outcome = Outcome::empty(at);
    match tag {
        b'C' => outcome.tag = Some(messages::command_tag(body)),
        b'I' => outcome.empty = true,
        b's' => outcome.suspended = true,
        _ => {}
    }
    outcome
}

impl PostgresDecoder {
    pub(super) fn server_message(
        &mut self,
        m: Message,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let tag = m.tag.unwrap_or(0);
        if m.len == 0 {
            return self.encryption_answer(tag, at, out);
        }
        // An ErrorResponse answering an encryption request (servers that
        // predate them): typed messages from here on.
        self.server.mode = Mode::Typed;
        let size = m.wire_size();
        match tag {
            b'R' => self.authentication(&m.body),
            b'K' => {
                if let Some(s) = self.session.as_mut() {
                    // The secret key after the pid is never read.
                    s.backend_pid = Cursor::new(&m.body).i32();
                }
            }
            b'S' => self.parameter_status(&m.body, out),
            b'Z' => return self.ready(&m, at, out),
            b'E' => return self.server_error(messages::error(&m.body), size, at, out),
            b'N' => {
                if let Ok(acc) = self.head_acc(tag) {
                    acc.notice(messages::error(&m.body));
                    acc.response_size += size;
                }
            }
            b'A' => self.notification(&m, at, out),
            b'C' | b'I' | b's' | b'V' => {
                return self.complete(tag, completion(tag, &m.body, at), size, out)
            }
            b'D' => {
                let acc = self.head_acc(tag)?;
                acc.rows_seen += 1;
                acc.response_size += size;
            }
            b'T' => match self.head_acc(tag) {
                Ok(acc) => acc.response_size += size,
                Err(_) => return self.step_done(tag, size),
            },
            b't' => match self.ops.front() {
                Some(Op::Ext(x)) if x.step == Step::DescribeStatement => {
                    self.group_response += size;
                    self.parameter_description(&m.body);
                }
                _ => {
                    return Err(Fault::unexpected(
                        "ParameterDescription with no Describe awaiting it",
                    ))
                }
            },
            b'1' | b'2' | b'3' | b'n' => return self.step_done(tag, size),
            b'G' | b'H' | b'W' | b'd' | b'c' => return self.copy_message(tag, &m),
            // NegotiateProtocolVersion: the session goes on at the older minor.
            _ => {}
        }
        Ok(())
    }

    /// The parameter types the server resolved for the statement being
    /// described. Clients that declare none in their `Parse`
    /// (tokio-postgres, sqlx, JDBC) ask for them this way before binding
    /// binary values, so the later `Bind`s are decoded by them too.
    fn parameter_description(&mut self, body: &[u8]) {
        let Some(Op::Ext(x)) = self.ops.front() else {
            return;
        };
        let Some(old) = x.statement.clone() else {
            return;
        };
        let param_types = messages::parameter_types(body);
        if param_types == old.param_types {
            return;
        }
        let described = Arc::new(Statement {
            name: old.name.clone(),
            sql: old.sql.clone(),
            sql_truncated: old.sql_truncated,
            param_types,
        });
        // Unless a later Parse (pipelined behind the Describe) has
        // replaced the statement under its name since.
        match &old.name {
            Some(name) => {
                if self
                    .statements
                    .get(name)
                    .is_some_and(|s| Arc::ptr_eq(&s, &old))
                {
                    self.statements.insert(name.clone(), described);
                }
            }
            None => {
                if self
                    .unnamed_statement
                    .as_ref()
                    .is_some_and(|s| Arc::ptr_eq(s, &old))
                {
                    self.unnamed_statement = Some(described);
                }
            }
        }
    }

    /// CopyInResponse, CopyOutResponse, CopyBothResponse, and the
    /// server's CopyData and CopyDone: counted on the request copying.
    fn copy_message(&mut self, tag: u8, m: &Message) -> Result<(), Fault> {
        let acc = self.head_acc(tag)?;
        acc.response_size += m.wire_size();
        let direction = match tag {
            b'G' => CopyDirection::In,
            b'H' => CopyDirection::Out,
            b'W' => CopyDirection::Both,
            _ => {
                if let (Some(copy), b'd') = (acc.copy.as_mut(), tag) {
                    copy.messages += 1;
                    copy.bytes += m.body_len() as u64;
                }
                return Ok(());
            }
        };
        acc.copy = Some(PgCopy {
            direction,
            messages: 0,
            bytes: 0,
            failed: false,
        });
        Ok(())
    }

    fn encryption_answer(
        &mut self,
        answer: u8,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let Phase::AwaitAnswer(kind) = self.phase else {
            return Err(Fault::unexpected(format!(
                "one-byte message '{}' with no request for it",
                show(answer)
            )));
        };
        match (kind, answer) {
            (EncryptionKind::Tls, b'S') | (EncryptionKind::Gss, b'G') => {
                // What follows is TLS or GSSAPI: decoding ends here, by
                // design; the proxy forwards the bytes as ever.
                self.release();
                Self::emit(out, PostgresOutput::Encrypted { kind, at });
            }
            (_, b'N') => {
                self.ssl_refused |= kind == EncryptionKind::Tls;
                self.server.mode = Mode::Typed;
                self.phase = Phase::Startup;
            }
            _ => {
                return Err(Fault::unexpected(format!(
                    "'{}' answering an encryption request (S, G or N expected)",
                    show(answer)
                )))
            }
        }
        Ok(())
    }

    fn authentication(&mut self, body: &[u8]) {
        let code = Cursor::new(body).i32().unwrap_or(-1);
        let Some(session) = self.session.as_mut() else {
            return;
        };
        // Only the method is recorded: salts, SASL challenges and server
        // signatures (codes 5, 11, 12) are never read past their code.
        let method = match code {
            0 => {
                session.auth.get_or_insert(AuthMethod::Trust);
                return;
            }
            2 => AuthMethod::KerberosV5,
            3 => AuthMethod::Cleartext,
            5 => AuthMethod::Md5,
            7 => AuthMethod::Gss,
            9 => AuthMethod::Sspi,
            10 => AuthMethod::Sasl {
                mechanisms: messages::sasl_mechanisms(body),
            },
            8 | 11 | 12 => return,
            other => AuthMethod::Other(other),
        };
        session.auth = Some(method);
    }

    fn parameter_status(&mut self, body: &[u8], out: &mut Vec<Decoded>) {
        let (name, value) = messages::parameter(body);
        match self.session.as_mut() {
            Some(s) if !self.session_reported => {
                if s.server_parameters.len() < MAX_SERVER_PARAMS {
                    s.server_parameters.push((name, value));
                }
            }
            _ => Self::emit(out, PostgresOutput::ParameterChanged { name, value }),
        }
    }

    fn notification(&mut self, m: &Message, at: Timestamp, out: &mut Vec<Decoded>) {
        let (pid, channel, payload, cut) =
            messages::notification(&m.body, self.config.capture_limit);
        let n = PgNotification {
            channel,
            payload,
            payload_truncated: cut,
            pid,
            at,
        };
        Self::emit(out, PostgresOutput::Notification(n));
    }

    /// The accumulator of the request whose rows or COPY data are arriving.
    fn head_acc(&mut self, tag: u8) -> Result<&mut Acc, Fault> {
        match self.ops.front_mut() {
            Some(Op::Simple(s)) => Ok(&mut s.acc),
            Some(Op::Ext(x)) if x.step == Step::Execute => Ok(&mut x.acc),
            _ => Err(Fault::unexpected(format!(
                "'{}' with no Query or Execute awaiting it",
                show(tag)
            ))),
        }
    }

    /// ParseComplete, BindComplete, CloseComplete, NoData or a Describe's
    /// RowDescription: the answer to the step at the head of the queue.
    fn step_done(&mut self, tag: u8, size: u64) -> Result<(), Fault> {
        let expected: &[Step] = match tag {
            b'1' => &[Step::Parse],
            b'2' => &[Step::Bind],
            b'3' => &[Step::Close],
            _ => &[Step::DescribeStatement, Step::DescribePortal],
        };
        match self.ops.front() {
            Some(Op::Ext(x)) if expected.contains(&x.step) => {
                self.ops.pop_front();
                self.group_response += size;
                Ok(())
            }
            head => Err(Fault::unexpected(format!(
                "'{}' answering {}",
                show(tag),
                match head {
                    Some(Op::Ext(x)) => format!("{:?}", x.step),
                    Some(Op::Simple(_)) => "a Query".into(),
                    Some(Op::Sync) => "a Sync".into(),
                    None => "nothing".into(),
                }
            ))),
        }
    }

    /// CommandComplete, EmptyQueryResponse, PortalSuspended,
    /// FunctionCallResponse or an ErrorResponse: the head request is
    /// answered.
    fn complete(
        &mut self,
        tag: u8,
        outcome: Outcome,
        size: u64,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let q = match self.ops.front_mut() {
            Some(Op::Simple(s)) => {
                let mut acc = std::mem::take(&mut s.acc);
                acc.response_size += size;
                let i = s.answered;
                s.answered += 1;
                s.ended_by_error |= outcome.error.is_some();
                let range = s.statements.get(i).cloned().unwrap_or(0..s.sql.len());
                let whole = range == (0..s.sql.len());
                let base = QueryBase {
                    protocol: s.protocol,
                    sql: if whole {
                        s.sql.clone()
                    } else {
                        Arc::from(&s.sql[range.clone()])
                    },
                    sql_truncated: s.sql_truncated && range.end == s.sql.len(),
                    started: s.started,
                    request_size: if i == 0 { s.request_size } else { 0 },
                };
                query(base, acc, outcome)
            }
            Some(Op::Ext(x)) if x.step == Step::Execute || outcome.error.is_some() => {
                let Some(Op::Ext(mut x)) = self.ops.pop_front() else {
                    unreachable!("the head was just matched")
                };
                x.acc.response_size += size + std::mem::take(&mut self.group_response);
                ext_query(x, outcome)
            }
            _ => {
                return Err(Fault::unexpected(format!(
                    "'{}' with no Query or Execute awaiting it",
                    show(tag)
                )))
            }
        };
        self.answered(q, out);
        Ok(())
    }

    fn server_error(
        &mut self,
        e: PgError,
        size: u64,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        if self.phase != Phase::Ready {
            // Startup refused (a wrong password, an unknown database).
            match self.session.as_mut() {
                Some(s) => s.error = Some(e),
                None => Self::emit(out, PostgresOutput::ServerError { error: e, at }),
            }
            self.report_session(out);
            self.phase = Phase::Ready;
            return Ok(());
        }
        match self.ops.front() {
            Some(Op::Simple(_)) => self.complete(b'E', Outcome::error(e, at), size, out),
            Some(Op::Ext(_)) => {
                self.complete(b'E', Outcome::error(e, at), size, out)?;
                self.skip_to_sync();
                Ok(())
            }
            // An error at Sync (a deferred constraint failing the implicit
            // commit) belongs to the last statement, if it has none.
            Some(Op::Sync) if self.done.last().is_some_and(|q| q.error.is_none()) => {
                if let Some(q) = self.done.last_mut() {
                    q.error = Some(e);
                    q.response_size += size;
                }
                Ok(())
            }
            _ => {
                Self::emit(out, PostgresOutput::ServerError { error: e, at });
                Ok(())
            }
        }
    }

    /// After an error the server ignores every message up to `Sync`: so
    /// are the ones queued, and those still to come if `Sync` is not.
    fn skip_to_sync(&mut self) {
        while matches!(self.ops.front(), Some(Op::Ext(_))) {
            self.ops.pop_front();
        }
        self.discarding = self.ops.is_empty();
        self.group_started = None;
        self.group_size = 0;
        self.group_response = 0;
    }

    fn ready(&mut self, m: &Message, at: Timestamp, out: &mut Vec<Decoded>) -> Result<(), Fault> {
        let status = messages::ready_status(&m.body);
        if self.phase != Phase::Ready {
            if let Some(s) = self.session.as_mut() {
                s.ready_at = Some(at);
            }
            self.report_session(out);
            self.phase = Phase::Ready;
            return Ok(());
        }
        match self.ops.pop_front() {
            Some(Op::Sync) => {}
            Some(Op::Simple(s)) => {
                // Answers that do not match the statements one to one (a
                // split gone wrong) all get the whole text. After an
                // error the rest are skipped, so fewer answers is right.
                let n = s.answered;
                let matched =
                    n == s.statements.len() || (s.ended_by_error && n < s.statements.len());
                if !matched && n <= self.done.len() {
                    let from = self.done.len() - n;
                    for q in &mut self.done[from..] {
                        q.sql = s.sql.clone();
                        q.sql_truncated = s.sql_truncated;
                    }
                }
            }
            Some(Op::Ext(x)) => {
                return Err(Fault::unexpected(format!(
                    "ReadyForQuery while {:?} awaits its answer",
                    x.step
                )))
            }
            None => return Err(Fault::unexpected("ReadyForQuery with nothing awaiting it")),
        }
        self.group_response = 0;
        self.flush_done(status, out);
        Ok(())
    }
}
