//! gRPC status codes and the `grpc-message` percent-encoding.

/// The names of the 17 status codes gRPC defines, indexed by code, as the
/// gRPC specification spells them (and as `grpc_status_name` shows them).
const STATUS_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// `CANCELLED`: what a client sees when its stream is reset.
pub const CANCELLED: u32 = 1;
/// `UNKNOWN`: what a client makes of a `grpc-status` it cannot parse.
pub const UNKNOWN: u32 = 2;
/// `DEADLINE_EXCEEDED`: what a client sees when its deadline runs out.
pub const DEADLINE_EXCEEDED: u32 = 4;

/// The name of a status code (`5` → `NOT_FOUND`); `None` for a code gRPC
/// does not define (a client treats those as `UNKNOWN`, but the number is
/// kept as sent so nothing is hidden).
pub fn status_name(code: u32) -> Option<&'static str> {
    STATUS_NAMES.get(code as usize).copied()
}

/// The status a gRPC client derives from an HTTP status when a response
/// carries no `grpc-status` at all (a proxy or a plain HTTP server answered),
/// following gRPC's "HTTP to gRPC status code mapping".
pub fn status_from_http(http_status: u16) -> u32 {
    match http_status {
        400 => 13,             // INTERNAL
        401 => 16,             // UNAUTHENTICATED
        403 => 7,              // PERMISSION_DENIED
        404 => 12,             // UNIMPLEMENTED
        429 | 502..=504 => 14, // UNAVAILABLE
        _ => UNKNOWN,
    }
}

/// Undoes the percent-encoding gRPC applies to `grpc-message` (bytes outside
/// printable ASCII, and `%` itself, travel as `%XX` of their UTF-8 bytes).
/// A malformed escape is kept literally, as gRPC implementations do; bytes
/// that do not form UTF-8 are shown lossily.
pub fn percent_decode(message: &str) -> String {
    let bytes = message.as_bytes();
    if !bytes.contains(&b'%') {
        return message.to_string();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_seventeen_codes_are_named_and_no_more() {
        assert_eq!(status_name(0), Some("OK"));
        assert_eq!(status_name(1), Some("CANCELLED"));
        assert_eq!(status_name(5), Some("NOT_FOUND"));
        assert_eq!(status_name(14), Some("UNAVAILABLE"));
        assert_eq!(status_name(16), Some("UNAUTHENTICATED"));
        assert_eq!(status_name(17), None);
        assert_eq!(status_name(u32::MAX), None);
    }

    #[test]
    fn percent_decoding_follows_grpc() {
        assert_eq!(percent_decode("plain text"), "plain text");
        assert_eq!(percent_decode("100%25 sure"), "100% sure");
        assert_eq!(percent_decode("caf%C3%A9 %E2%9C%93"), "café ✓");
        // Malformed escapes stay as they were.
        assert_eq!(percent_decode("50% off"), "50% off");
        assert_eq!(percent_decode("end%4"), "end%4");
        assert_eq!(percent_decode("end%"), "end%");
        // Bytes that are not UTF-8 are shown, not dropped.
        assert_eq!(percent_decode("a%FFb"), "a\u{FFFD}b");
    }

    #[test]
    fn http_statuses_map_as_grpc_clients_map_them() {
        assert_eq!(status_from_http(404), 12);
        assert_eq!(status_from_http(503), 14);
        assert_eq!(status_from_http(401), 16);
        assert_eq!(status_from_http(500), UNKNOWN);
    }
}
