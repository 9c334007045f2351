//! An event's JSON envelope.

#[cfg(test)]
mod tests {
    use crate::events::Event;

    /// One event of every payload, each as tapmesh writes it: reading one
    /// and writing it again gives back the same bytes.
    pub(crate) const CANONICAL: &[&str] = &[
        r#"{"seq":7,"type":"connection.closed","timestamp":"2026-11-22T10:00:00.500Z","environment":"shop","connection":{"id":3,"source":"orders","target":"inventory","ingress":"default","client_addr":"127.0.0.1:5000","bytes_in":10,"bytes_out":20,"duration_ms":1.5,"error":"target reset the connection"}}"#,
        r#"{"seq":8,"type":"request.completed","timestamp":"2026-11-22T10:00:01.250Z","environment":"shop","request":{"connection":3,"source":"orders","target":"inventory","ingress":"default","version":"HTTP/1.1","method":"POST","path":"/items?id=7","status_code":201,"latency_ms":3.06,"request_size":2,"response_size":3,"request_headers":{"content-type":"text/plain","host":"inv:80"},"response_headers":{"content-type":"text/plain"},"response_trailers":{"x-sum":"1"},"request_body":"hi","request_body_encoding":"utf8","request_body_truncated":false,"response_body":"b2sK","response_body_encoding":"base64","response_body_truncated":true,"warnings":["request: odd"],"error":"cut off"}}"#,
        r#"{"seq":9,"type":"grpc.call.completed","timestamp":"2026-11-22T10:00:02Z","environment":"shop","grpc_call":{"connection":4,"source":"orders","target":"inventory","ingress":"default","service":"shop.Inventory","method":"Get","path":"/shop.Inventory/Get","grpc_status":5,"grpc_status_name":"NOT_FOUND","grpc_message":"no item","http_status":200,"latency_ms":1.25,"request_size":12,"response_size":0,"request_messages":1,"response_messages":0,"request_metadata":{"x-id":"1"},"response_metadata":{},"request_body_decoded":[{"id":"7"}],"response_body_decoded":[],"request_body_truncated":false,"response_body_truncated":false,"decoded_with":"reflection","decode_problems":["x"],"health_check":false}}"#,
        r#"{"seq":10,"type":"kafka.request.completed","timestamp":"2026-11-22T10:00:03.000001Z","environment":"shop","kafka_request":{"connection":5,"source":"orders","target":"kafka","ingress":"default","api_key":0,"api_name":"Produce","api_version":9,"correlation_id":42,"client_id":"rdkafka","latency_ms":null,"request_size":120,"response_size":null,"error_code":null,"topics":[{"topic":"orders","partition":0,"records":2,"bytes":64,"error_code":0}]}}"#,
        r#"{"seq":11,"type":"decode.error","timestamp":"2026-11-22T10:00:04Z","environment":"shop","decode_error":{"connection":5,"source":"orders","target":"kafka","ingress":"default","protocol":"kafka","direction":"client_to_target","offset":17,"reason":"bad size"}}"#,
        r#"{"seq":12,"type":"events.dropped","timestamp":"2026-11-22T10:00:05Z","environment":"shop","dropped":{"subscriber":"127.0.0.1:9","subscriber_id":2,"count":3,"first_seq":4,"last_seq":6}}"#,
        r#"{"seq":13,"type":"service.failed","timestamp":"2026-11-22T10:00:06Z","environment":"shop","service":"orders","lifecycle":{"state":"failed","reason":"exited with status 3"}}"#,
        r#"{"seq":14,"type":"service.log","timestamp":"2026-11-22T10:00:07Z","environment":"shop","service":"orders","log":{"stream":"stderr","line":"boom \"quoted\""}}"#,
        r#"{"seq":15,"type":"environment.up","timestamp":"2026-11-22T10:00:08Z","environment":"shop","lifecycle":{"state":"up","endpoints":{"orders":{"default":{"address":"127.0.0.1:1"}}}}}"#,
    ];

    #[test]
    fn every_payload_round_trips_byte_for_byte() {
        for line in CANONICAL {
            let event: Event = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&event).unwrap(), *line);
            let mut fast = Vec::new();
            event.write_json(&mut fast);
            assert_eq!(String::from_utf8(fast).unwrap(), *line);
        }
    }
}
