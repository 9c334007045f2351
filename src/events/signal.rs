//! Signals in lifecycle events: by name (`"SIGKILL"`), as `kill -l` and
//! people say them. Event files written before names were used hold the
//! number; reading one back turns it into the name.

use serde::{Deserialize, Deserializer};

/// A signal's name as `kill -l` gives it, with the `SIG`; `SIGRTMIN+n`
/// for real-time signals, `SIG<n>` for numbers Linux does not define.
pub fn signal_name(signal: i32) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match signal {
        1..=31 => NAMES[signal as usize - 1].to_string(),
        n if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) => {
            format!("SIGRTMIN+{}", n - libc::SIGRTMIN())
        }
        n => format!("SIG{n}"),
    }
}

/// `signal` as a name, or as the number older files hold.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NameOrNumber {
        Name(String),
        Number(i32),
    }
    Ok(Option::<NameOrNumber>::deserialize(d)?.map(|s| match s {
        NameOrNumber::Name(name) => name,
        NameOrNumber::Number(n) => signal_name(n),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::LifecycleInfo;

    #[test]
    fn signals_are_named_as_kill_names_them() {
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGSYS), "SIGSYS");
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
        assert_eq!(signal_name(99), "SIG99");
    }

    #[test]
    fn a_number_from_an_older_file_reads_back_as_the_name() {
        let old: LifecycleInfo = serde_json::from_str(r#"{"state":"failed","signal":9}"#).unwrap();
        assert_eq!(old.signal.as_deref(), Some("SIGKILL"));
        let new: LifecycleInfo =
            serde_json::from_str(r#"{"state":"stopped","signal":"SIGTERM"}"#).unwrap();
        assert_eq!(new.signal.as_deref(), Some("SIGTERM"));
        assert_eq!(
            serde_json::to_string(&new).unwrap(),
            r#"{"state":"stopped","signal":"SIGTERM"}"#
        );
        let none: LifecycleInfo = serde_json::from_str(r#"{"state":"ready"}"#).unwrap();
        assert_eq!(none.signal, None);
    }
}
