//! What a service is told about its place in the environment: `HOST`,
//! `PORT`, `HOSTPORT` for its default ingress, `<INGRESS>_…` for named
//! ones, `<EGRESS>_HOST/_PORT/_HOSTPORT` per egress, and all of it as JSON
//! in `TAPMESH_WIRING`; and `${VAR}` expansion from the same names.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::spec::env_name;

/// A service's addresses: where it listens, where its egresses lead.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wiring {
    pub ingresses: BTreeMap<String, SocketAddr>,
    pub egresses: BTreeMap<String, SocketAddr>,
}

impl Wiring {
    /// The environment variables it sets (`TAPMESH_WIRING` included).
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let mut put = |prefix: &str, addr: &SocketAddr| {
            env.insert(format!("{prefix}HOST"), addr.ip().to_string());
            env.insert(format!("{prefix}PORT"), addr.port().to_string());
            env.insert(format!("{prefix}HOSTPORT"), addr.to_string());
        };
        for (name, addr) in &self.ingresses {
            if name == "default" {
                put("", addr);
            } else {
                put(&format!("{}_", env_name(name)), addr);
            }
        }
        for (name, addr) in &self.egresses {
            put(&format!("{}_", env_name(name)), addr);
        }
        let json = serde_json::json!({
            "ingresses": self.ingresses.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<BTreeMap<_, _>>(),
            "egresses": self.egresses.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<BTreeMap<_, _>>(),
        });
        env.insert("TAPMESH_WIRING".into(), json.to_string());
        env
    }
}

/// Expands `${NAME}` from `vars` (`$$` is a literal `$`). An unknown name is
/// an error naming it, so a typo does not start a service with an empty
/// port.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let name = &body[..end];
            let value = vars
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
                .ok_or_else(|| format!("${{{name}}} is not set (in {text:?})"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_for_ingresses_and_egresses() {
        let wiring = Wiring {
            ingresses: BTreeMap::from([
                ("default".into(), "127.0.0.1:7000".parse().unwrap()),
                ("admin-api".into(), "127.0.0.1:7001".parse().unwrap()),
            ]),
            egresses: BTreeMap::from([("order-db".into(), "127.0.0.1:7002".parse().unwrap())]),
        };
        let env = wiring.env();
        assert_eq!(env["PORT"], "7000");
        assert_eq!(env["HOSTPORT"], "127.0.0.1:7000");
        assert_eq!(env["ADMIN_API_PORT"], "7001");
        assert_eq!(env["ORDER_DB_HOST"], "127.0.0.1");
        assert_eq!(env["ORDER_DB_HOSTPORT"], "127.0.0.1:7002");
        let json: serde_json::Value = serde_json::from_str(&env["TAPMESH_WIRING"]).unwrap();
        assert_eq!(json["egresses"]["order-db"], "127.0.0.1:7002");
    }

    #[test]
    fn expansion() {
        let vars = BTreeMap::from([("PORT".to_string(), "7000".to_string())]);
        assert_eq!(expand("--port=${PORT}", &vars).unwrap(), "--port=7000");
        assert_eq!(expand("cost $$5 $x", &vars).unwrap(), "cost $5 $x");
        assert!(expand("${NOPE_NOT_SET_ANYWHERE}", &vars)
            .unwrap_err()
            .contains("NOPE_NOT_SET_ANYWHERE"));
    }
}
