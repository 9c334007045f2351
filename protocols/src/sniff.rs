//! Guessing a connection's protocol from its first bytes.
//!
//! On an `http` edge: HTTP/2 with prior knowledge or HTTP/1, from the
//! client's first bytes, and whether the server's first bytes can be an
//! HTTP/2 server's opening SETTINGS. [`crate::http::HttpDecoder`] acts on
//! the answers.

use crate::http2::PREFACE;

/// Server bytes held while undecided, at most: an HTTP/2 server's opening
/// SETTINGS (and perhaps a WINDOW_UPDATE) is far smaller.
const MAX_HELD_SERVER_BYTES: usize = 16 << 10;

/// What a client's first bytes say about the HTTP it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientHttp {
    /// Still a strict prefix of the HTTP/2 preface: could be either.
    Undecided,
    Http1,
    Http2,
}

/// Which HTTP a client speaks, from all its bytes so far.
pub(crate) fn client_http(first: &[u8]) -> ClientHttp {
    if first.starts_with(PREFACE) {
        ClientHttp::Http2
    } else if PREFACE.starts_with(first) {
        ClientHttp::Undecided
    } else {
        ClientHttp::Http1
    }
}

/// Whether `server` (the server's first bytes) can still be the SETTINGS
/// frame an HTTP/2 server opens with: type 0x4 on stream 0, held within
/// bounds.
pub(crate) fn looks_like_server_settings(server: &[u8]) -> bool {
    const SETTINGS: u8 = 0x4;
    if server.len() > MAX_HELD_SERVER_BYTES {
        return false;
    }
    match server.get(..9) {
        Some(head) => head[3] == SETTINGS && head[5..9] == [0, 0, 0, 0],
        None => server.len() < 4 || server[3] == SETTINGS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_decides_once_it_can() {
        assert_eq!(client_http(b""), ClientHttp::Undecided);
        assert_eq!(client_http(b"PRI * HT"), ClientHttp::Undecided);
        assert_eq!(client_http(PREFACE), ClientHttp::Http2);
        assert_eq!(
            client_http(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0"),
            ClientHttp::Http2
        );
        assert_eq!(client_http(b"GET / HTTP/1.1"), ClientHttp::Http1);
        assert_eq!(client_http(b"PRI * HTTP/1.1"), ClientHttp::Http1);
    }

    #[test]
    fn server_settings_are_recognised_within_bounds() {
        assert!(looks_like_server_settings(b""));
        assert!(looks_like_server_settings(b"\0\0\x06\x04"));
        assert!(looks_like_server_settings(b"\0\0\0\x04\0\0\0\0\0"));
        assert!(!looks_like_server_settings(b"\0\0\0\x04\0\0\0\0\x01"));
        assert!(!looks_like_server_settings(b"HTTP/1.1 200 OK"));
        let mut big = b"\0\0\0\x04\0\0\0\0\0".to_vec();
        big.resize(MAX_HELD_SERVER_BYTES + 1, 0);
        assert!(!looks_like_server_settings(&big));
    }
}
