//! Redis decoder output as events: each command with its reply a
//! `redis.command.completed`, each message the server pushed (pub/sub,
//! invalidation, `MONITOR`) a `redis.push`.

use tapmesh_protocols::redis::{
    ArgEncoding, RedisArg, RedisCommand, RedisOutput, RedisPush, RedisReply,
};

use super::observe::{round_micros, Edge};
use crate::events::{
    EventKind, Payload, RedisCommandInfo, RedisErrorInfo, RedisPushInfo, RedisReplyInfo,
};

/// The event for one output, if it makes one.
pub(super) fn event(edge: &Edge<'_>, output: RedisOutput) -> Option<(EventKind, Payload)> {
    match output {
        RedisOutput::Command(c) => Some((
            EventKind::RedisCommandCompleted,
            Payload::RedisCommand(command_info(edge, c)),
        )),
        RedisOutput::Push(p) => {
            Some((EventKind::RedisPush, Payload::RedisPush(push_info(edge, p))))
        }
        RedisOutput::Skipped(s) => {
            // Only past 10 000 commands awaiting replies on one connection
            // (a pipeline far deeper than any client sends): counted, so
            // the connection's byte counts still hold them.
            tracing::debug!(
                connection = edge.connection,
                commands = s.commands,
                request_size = s.request_size,
                response_size = s.response_size,
                "redis commands past the pending limit were not kept"
            );
            None
        }
    }
}

fn command_info(edge: &Edge<'_>, c: RedisCommand) -> RedisCommandInfo {
    let mut binary_args = Vec::new();
    let args = c
        .args
        .into_iter()
        .enumerate()
        .map(|(i, arg)| {
            if arg.encoding == ArgEncoding::Base64 {
                binary_args.push(i as u32);
            }
            arg.text
        })
        .collect();
    RedisCommandInfo {
        connection: edge.connection,
        source: edge.source.clone(),
        target: edge.target.clone(),
        ingress: edge.ingress.clone(),
        command: c.command,
        args,
        binary_args,
        arg_count: c.arg_count,
        args_truncated: c.truncated,
        inline: c.inline,
        transaction: c.transaction,
        reply: c.reply.map(reply_info),
        error: c.error.map(|e| RedisErrorInfo {
            code: e.code,
            message: e.message,
        }),
        resp3: c.resp3,
        latency_ms: c.latency_ms.map(round_micros),
        request_size: c.request_size,
        response_size: c.response_size,
    }
}

fn reply_info(r: RedisReply) -> RedisReplyInfo {
    RedisReplyInfo {
        ty: r.ty.name().to_string(),
        value: r.rendered,
        truncated: r.truncated,
        replies: r.replies,
    }
}

fn push_info(edge: &Edge<'_>, p: RedisPush) -> RedisPushInfo {
    let text = |a: RedisArg| a.text;
    let (payload_encoding, payload_truncated) = match &p.payload {
        Some(a) => (a.encoding.name().to_string(), a.truncated),
        None => (String::new(), false),
    };
    RedisPushInfo {
        connection: edge.connection,
        source: edge.source.clone(),
        target: edge.target.clone(),
        ingress: edge.ingress.clone(),
        kind: p.kind,
        channel: p.channel.map(text),
        pattern: p.pattern.map(text),
        payload: p.payload.map(text),
        payload_encoding,
        payload_truncated,
        resp3: p.resp3,
        size: p.size,
    }
}
