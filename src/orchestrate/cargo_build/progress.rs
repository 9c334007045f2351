//! How far a `cargo build` is, from what cargo says while it builds: each
//! unit it finishes is a JSON message on stdout (`compiler-artifact`, or
//! `build-script-executed` for a build script's run), and the number of
//! units the build has is on its progress bar on stderr (`Building [==>  ]
//! 45/120: serde, tokio`, forced on when stderr is not a terminal by
//! `CARGO_TERM_PROGRESS_WHEN=always`, one bar after another separated by
//! `\r`). The rest of stderr is kept, without the bars, for the report of a
//! failed build.

use std::collections::VecDeque;

use crate::events::BuildProgress;

/// Lines of cargo's stderr kept for a failed build's report.
const TAIL_LINES: usize = 30;

#[derive(Debug, Default)]
pub(super) struct Tracker {
    progress: BuildProgress,
    /// Stderr not yet ended by `\n` or `\r`.
    pending: Vec<u8>,
    tail: VecDeque<String>,
}

impl Tracker {
    pub fn progress(&self) -> &BuildProgress {
        &self.progress
    }

    /// One of cargo's JSON messages; whether the progress changed.
    pub fn message(&mut self, message: &serde_json::Value) -> bool {
        match message["reason"].as_str() {
            Some("compiler-artifact" | "build-script-executed") => {
                self.progress.compiled += 1;
                self.progress.current = message["package_id"].as_str().map(package_name);
                true
            }
            // Every unit is done: what the bar said last may be older.
            Some("build-finished") if message["success"] == true => {
                let done = self.progress.compiled.max(self.progress.total.unwrap_or(0));
                let changed = self.progress.total != Some(done) || self.progress.compiled != done;
                self.progress.compiled = done;
                self.progress.total = Some(done);
                changed
            }
            _ => false,
        }
    }

    /// Bytes of cargo's stderr; whether the progress changed.
    pub fn stderr(&mut self, bytes: &[u8]) -> bool {
        self.pending.extend_from_slice(bytes);
        let mut changed = false;
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n' || b == b'\r') {
            let segment: Vec<u8> = self.pending.drain(..=end).collect();
            changed |= self.segment(&segment[..end], segment[end] == b'\n');
        }
        changed
    }

    /// Stderr ended: what is left of it is a last line.
    pub fn stderr_closed(&mut self) -> bool {
        let rest = std::mem::take(&mut self.pending);
        self.segment(&rest, false)
    }

    /// The last lines cargo wrote on stderr, bars left out.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    /// A piece of stderr up to a `\r`, or a line (`line`: up to a `\n`,
    /// kept even when blank, as diagnostics have blank lines).
    fn segment(&mut self, segment: &[u8], line: bool) -> bool {
        let text = String::from_utf8_lossy(segment);
        if !line && text.trim().is_empty() {
            return false;
        }
        if let Some((name, done, total)) = progress_bar(&text) {
            if name != "Building" || self.progress.total == Some(total) {
                return false;
            }
            // The bar counts what the JSON messages count; it may be a
            // moment ahead of them.
            self.progress.total = Some(total.max(done));
            return true;
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(text.trim_end().to_string());
        false
    }
}

/// `    Building [=====>     ] 45/120: serde, tokio` → ("Building", 45, 120).
/// Other bars (`Downloading`, `Fetch`) have their name and no counts, or
/// counts of something else: they give `(name, 0, 0)`.
fn progress_bar(text: &str) -> Option<(&str, u32, u32)> {
    let text = text.trim_start();
    let (name, rest) = text.split_once(" [")?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let (bar, rest) = rest.split_once(']')?;
    if !bar.chars().all(|c| matches!(c, '=' | '>' | ' ')) {
        return None;
    }
    let counts = rest.trim_start().split(':').next().unwrap_or("");
    let parsed = counts
        .split_once('/')
        .and_then(|(done, total)| Some((done.trim().parse().ok()?, total.trim().parse().ok()?)));
    let (done, total) = parsed.unwrap_or((0, 0));
    Some((name, done, total))
}

/// The package's name in a package id: `registry+https://…#serde@1.0.219`
/// → `serde`; `path+file:///src/shop/orders#0.1.0` → `orders`.
fn package_name(id: &str) -> String {
    let (url, fragment) = id.split_once('#').unwrap_or((id, ""));
    match fragment.split_once('@') {
        Some((name, _)) => name.to_string(),
        None => url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(url)
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn units_come_from_messages_and_the_total_from_the_bar() {
        let mut t = Tracker::default();
        assert!(!t.stderr(b"   Compiling b v0.1.0 (/ws/b)\n    Building [    "));
        assert!(t.stderr(b"   ] 0/5: a, b(build.rs)    \r   Compiling a v0.1.0 (/ws/a)\n"));
        assert_eq!(t.progress().total, Some(5));
        let artifact =
            json!({"reason": "compiler-artifact", "package_id": "path+file:///ws/a#0.1.0"});
        assert!(t.message(&artifact));
        let run = json!({"reason": "build-script-executed", "package_id": "registry+https://github.com/rust-lang/crates.io-index#serde@1.0.219"});
        assert!(t.message(&run));
        assert!(!t.message(&json!({"reason": "compiler-message"})));
        assert_eq!(
            *t.progress(),
            BuildProgress {
                compiled: 2,
                total: Some(5),
                current: Some("serde".into())
            }
        );
        // The same total again is no news; a download bar is none either.
        assert!(!t.stderr(b"    Building [=====>  ] 2/5: b\r"));
        assert!(!t.stderr(b" Downloading [=>   ] 1/3: x\r"));
        assert!(t.message(&json!({"reason": "build-finished", "success": true})));
        assert_eq!((t.progress().compiled, t.progress().total), (5, Some(5)));
        assert_eq!(
            t.tail(),
            [
                "   Compiling b v0.1.0 (/ws/b)",
                "   Compiling a v0.1.0 (/ws/a)"
            ]
        );
    }

    #[test]
    fn a_failure_keeps_the_last_lines_without_the_bars() {
        let mut t = Tracker::default();
        for i in 0..40 {
            t.stderr(format!("line {i}\n    Building [=> ] {i}/50: x\r").as_bytes());
        }
        t.stderr(b"\nerror: could not compile `x`");
        t.stderr_closed();
        let tail = t.tail();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail[0], "line 12");
        assert_eq!(tail[TAIL_LINES - 2], "");
        assert_eq!(tail.last().unwrap(), "error: could not compile `x`");
        assert_eq!(t.progress().total, Some(50));
    }

    #[test]
    fn package_names() {
        assert_eq!(package_name("path+file:///src/shop/orders#0.1.0"), "orders");
        assert_eq!(
            package_name("path+file:///src/shop/orders#my-orders@0.1.0"),
            "my-orders"
        );
        assert_eq!(
            package_name("registry+https://github.com/rust-lang/crates.io-index#serde@1.0.219"),
            "serde"
        );
    }
}
