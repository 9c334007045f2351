//! What a service is told about its place in the environment: `HOST`,
//! `PORT`, `HOSTPORT` for its default ingress, `<INGRESS>_…` for named
//! ones, `<EGRESS>_HOST/_PORT/_HOSTPORT` per egress, all of it as JSON in
//! `TAPMESH_WIRING`, and its directories (`TAPMESH_TEMP_DIR`,
//! `TAPMESH_ENV_DIR`). `spec::wiring_names` lists the same names for
//! validation; a test below keeps the two in step.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::spec::env_name;

/// A service's addresses: where it listens, where its egresses lead.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wiring {
    pub ingresses: BTreeMap<String, SocketAddr>,
    pub egresses: BTreeMap<String, SocketAddr>,
    /// Its own scratch directory, removed when the environment goes down.
    pub temp_dir: PathBuf,
    /// The environment's directory.
    pub env_dir: PathBuf,
    /// Ready-made addresses of managed servers its egresses reach
    /// (`DB_URL`, `BROKER_BROKERS`).
    pub extra: BTreeMap<String, String>,
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
        env.extend(self.extra.clone());
        env.insert("TAPMESH_WIRING".into(), json.to_string());
        env.insert(
            "TAPMESH_TEMP_DIR".into(),
            self.temp_dir.to_string_lossy().into_owned(),
        );
        env.insert(
            "TAPMESH_ENV_DIR".into(),
            self.env_dir.to_string_lossy().into_owned(),
        );
        env
    }
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
            temp_dir: "/env/tmp/api".into(),
            env_dir: "/env".into(),
            extra: BTreeMap::new(),
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

    /// Validation checks `$VAR`s against `spec::wiring_names`: it must
    /// name exactly what a service is given.
    #[test]
    fn validation_knows_every_name_a_service_is_given() {
        let spec = crate::spec::Spec::parse(
            r#"
name: e
services:
  db: { command: [db], ingresses: { default: {}, admin-api: {} } }
  api: { command: [api], egresses: { order-db: db } }
"#,
        )
        .unwrap();
        let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        for (name, service) in &spec.services {
            let wiring = Wiring {
                ingresses: service
                    .ingresses
                    .keys()
                    .map(|i| (i.clone(), addr))
                    .collect(),
                egresses: service.egresses.keys().map(|e| (e.clone(), addr)).collect(),
                temp_dir: "/t".into(),
                env_dir: "/e".into(),
                extra: BTreeMap::new(),
            };
            let given: std::collections::BTreeSet<String> = wiring.env().into_keys().collect();
            assert_eq!(given, crate::spec::wiring_names(&spec, service), "{name}");
        }
    }
}
