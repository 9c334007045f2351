//! Which arguments are secrets: passwords of `AUTH`, `HELLO … AUTH`,
//! `MIGRATE … AUTH|AUTH2`, `CONFIG SET requirepass`, `ACL SETUSER` rules
//! and `SENTINEL SET … auth-pass`. They are replaced before an argument is
//! ever made into text, so no output, log line or event can hold them.

/// Configuration parameters whose values are secrets, in `CONFIG SET` and
/// in the replies of `CONFIG GET` (which answers them in clear).
pub const SECRET_CONFIGS: &[&str] = &[
    "requirepass",
    "masterauth",
    "primaryauth",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

/// Whether [`secrets`] can mark anything for `command`: most commands
/// never carry one, and need not be looked at argument by argument.
pub fn may_hold_secrets(command: &str) -> bool {
    matches!(
        command,
        "AUTH" | "HELLO" | "MIGRATE" | "CONFIG SET" | "ACL SETUSER" | "SENTINEL SET"
    )
}

/// For each argument after `command` (its name and subcommand, already
/// upper-cased), whether it is a secret. `args` are the kept arguments'
/// bytes (a prefix of them, under capture limits).
pub fn secrets(command: &str, args: &[&[u8]]) -> Vec<bool> {
    let mut secret = vec![false; args.len()];
    if !may_hold_secrets(command) {
        return secret;
    }
    let mut mark = |i: usize| {
        if let Some(s) = secret.get_mut(i) {
            *s = true;
        }
    };
    let is = |i: usize, word: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    };
    match command {
        // AUTH password | AUTH username password: everything but a username.
        "AUTH" => {
            let first = usize::from(args.len() >= 2);
            (first..args.len()).for_each(&mut mark);
        }
        // HELLO [protover [AUTH username password] [SETNAME name]]
        "HELLO" => {
            for i in (0..args.len()).filter(|&i| is(i, "AUTH")) {
                mark(i + 2);
            }
        }
        // MIGRATE … [AUTH password | AUTH2 username password] [KEYS …]
        "MIGRATE" => {
            for i in 0..args.len() {
                if is(i, "AUTH") {
                    mark(i + 1);
                } else if is(i, "AUTH2") {
                    mark(i + 2);
                }
            }
        }
        // CONFIG SET parameter value [parameter value …]
        "CONFIG SET" => {
            for i in (0..args.len()).step_by(2) {
                let name = String::from_utf8_lossy(args[i]).to_ascii_lowercase();
                if SECRET_CONFIGS.contains(&name.as_str()) {
                    mark(i + 1);
                }
            }
        }
        // ACL SETUSER username [rule …]: `>pw` and `<pw` add and remove
        // passwords, `#hash` and `!hash` their SHA-256 hashes.
        "ACL SETUSER" => {
            for (i, rule) in args.iter().enumerate().skip(1) {
                if matches!(rule.first(), Some(b'>' | b'<' | b'#' | b'!')) {
                    mark(i);
                }
            }
        }
        // SENTINEL SET master-name option value [option value …]
        "SENTINEL SET" => {
            for i in (1..args.len()).step_by(2) {
                if is(i, "auth-pass") {
                    mark(i + 1);
                }
            }
        }
        _ => {}
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(command: &str, args: &[&str]) -> Vec<bool> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        secrets(command, &args)
    }

    #[test]
    fn marks_every_password_and_nothing_else() {
        assert_eq!(check("AUTH", &["pw"]), [true]);
        assert_eq!(check("AUTH", &["user", "pw"]), [false, true]);
        assert_eq!(check("AUTH", &[]), Vec::<bool>::new());
        assert_eq!(
            check("HELLO", &["3", "auth", "u", "pw", "SETNAME", "x"]),
            [false, false, false, true, false, false]
        );
        assert_eq!(
            check(
                "MIGRATE",
                &["h", "1", "", "0", "10", "AUTH2", "u", "pw", "KEYS", "a"]
            ),
            [false, false, false, false, false, false, false, true, false, false]
        );
        assert_eq!(
            check("CONFIG SET", &["maxmemory", "1", "RequirePass", "pw"]),
            [false, false, false, true]
        );
        assert_eq!(
            check("ACL SETUSER", &["bob", "on", ">pw", "~*", "<old"]),
            [false, false, true, false, true]
        );
    }
}
