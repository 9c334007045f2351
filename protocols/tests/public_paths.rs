//! The paths the runtime, benches and fuzz targets import, kept in one
//! place: a refactor that makes one of them private fails here, in this
//! crate's own tests, rather than in a caller's build.

#![allow(unused_imports)]

use tapmesh_protocols::content::{decode_content, DecodedContent};
use tapmesh_protocols::grpc::{
    decode_body, decode_call, decode_schemaless, split_messages, DecodeLimits, DecodedCall,
    GrpcCall, GrpcMessageCounter, PayloadDecoder, SchemaRegistry, DEFAULT_MAX_DEPTH,
};
use tapmesh_protocols::http::{FieldSpan, HeaderBlock, HttpDecoder, HttpExchange};
use tapmesh_protocols::http1::{Http1Config, Http1Decoder};
use tapmesh_protocols::http2::{Http2Config, Http2Decoder};
use tapmesh_protocols::kafka::{
    BrokerAddressMap, KafkaConfig, KafkaDecoder, KafkaExchange, ResponseRewriter, RewriteFailure,
};
use tapmesh_protocols::postgres::{
    CopyDirection, EncryptionKind, PgValue, PostgresConfig, PostgresDecoder, PostgresOutput,
    PostgresQuery, PostgresSession, QueryProtocol,
};
use tapmesh_protocols::redis::{
    ArgEncoding, RedisArg, RedisCommand, RedisConfig, RedisDecoder, RedisError, RedisOutput,
    RedisPush, RedisReply, RespType, SkippedCommands,
};
use tapmesh_protocols::{DecodeFailure, Decoded, Decoder, Direction, FailureKind, Timestamp};

#[test]
fn every_decoder_is_a_decoder() {
    fn boxed(d: impl Decoder + 'static) -> Box<dyn Decoder> {
        Box::new(d)
    }
    let _ = [
        boxed(HttpDecoder::with_capture_limit(16)),
        boxed(Http1Decoder::new(Http1Config::default())),
        boxed(Http2Decoder::new(Http2Config::default())),
        boxed(KafkaDecoder::new(KafkaConfig::default())),
        boxed(PostgresDecoder::new(PostgresConfig::default())),
        boxed(RedisDecoder::new(RedisConfig::default())),
    ];
}
