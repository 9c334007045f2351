//! Pure rewrites of a validated [`Spec`] into the graph that runs: the
//! observe rewrite (a proxy node on every egress edge) and the `~test`
//! node (the user's own terminal or test, with an edge to every ingress).

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::{Condition, ProtoSources, Protocol, Spec};

/// The node that stands for the user: traffic from a test or a terminal.
pub const TEST_NODE: &str = "~test";

/// A node of the running environment.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A service of the spec.
    Service { name: String },
    /// The observing proxy of one edge, listening where the source's egress
    /// now points and forwarding to the target's ingress.
    Proxy(ProxyNode),
    /// The user.
    Test,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProxyNode {
    /// `{target}~proxy~{source}`, or `{target}~{ingress}~proxy~{source}`.
    pub name: String,
    pub source: String,
    pub egress: String,
    pub target: String,
    pub ingress: String,
    /// Carried over from the target's ingress.
    pub protocol: Protocol,
    pub proto: ProtoSources,
    pub capture_limit: usize,
}

/// Where each service's egress leads once the graph is rewritten.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub nodes: BTreeMap<String, Node>,
    /// (source service, egress name) → the node it reaches: the target
    /// service itself, or with observe on, the edge's proxy.
    pub egress_targets: BTreeMap<(String, String), String>,
    /// The proxies, by name.
    pub proxies: BTreeMap<String, ProxyNode>,
}

/// The proxy node's name for an edge.
pub fn proxy_name(source: &str, target: &str, ingress: &str) -> String {
    if ingress == "default" {
        format!("{target}~proxy~{source}")
    } else {
        format!("{target}~{ingress}~proxy~{source}")
    }
}

/// The `~test` node's egress to `service`'s `ingress`: the service's name
/// for its default ingress, else `service/ingress`. Not `service-ingress`:
/// service `db`'s ingress `admin` and a service `db-admin` would meet there,
/// and `/` is in no service's name.
pub fn test_egress(service: &str, ingress: &str) -> String {
    if ingress == "default" {
        service.to_string()
    } else {
        format!("{service}/{ingress}")
    }
}

/// The graph that runs `spec`: with `spec.observe`, every egress edge gets a
/// proxy, and the `~test` node gets an edge (through a proxy) to every
/// ingress of every service.
pub fn build(spec: &Spec) -> Graph {
    let mut graph = Graph {
        nodes: BTreeMap::new(),
        egress_targets: BTreeMap::new(),
        proxies: BTreeMap::new(),
    };
    for name in spec.services.keys() {
        graph
            .nodes
            .insert(name.clone(), Node::Service { name: name.clone() });
    }
    let mut edges: Vec<(String, String, String, String)> = spec
        .edges()
        .map(|(source, egress_name, egress)| {
            (
                source.name.clone(),
                egress_name.to_string(),
                egress.service.clone(),
                egress.ingress.clone(),
            )
        })
        .collect();
    graph.nodes.insert(TEST_NODE.to_string(), Node::Test);
    for (name, service) in &spec.services {
        for ingress in service.ingresses.keys() {
            let egress = test_egress(name, ingress);
            edges.push((TEST_NODE.to_string(), egress, name.clone(), ingress.clone()));
        }
    }
    for (source, egress, target, ingress) in edges {
        let reached = if spec.observe {
            let target_ingress = &spec.services[&target].ingresses[&ingress];
            let proxy = ProxyNode {
                name: proxy_name(&source, &target, &ingress),
                source: source.clone(),
                egress: egress.clone(),
                target: target.clone(),
                ingress: ingress.clone(),
                protocol: target_ingress.protocol,
                proto: target_ingress.proto.clone(),
                capture_limit: spec.capture_limit,
            };
            graph
                .nodes
                .insert(proxy.name.clone(), Node::Proxy(proxy.clone()));
            let name = proxy.name.clone();
            graph.proxies.insert(name.clone(), proxy);
            name
        } else {
            target.clone()
        };
        graph.egress_targets.insert((source, egress), reached);
    }
    graph
}

/// Services in start order: each after every service it depends on, by
/// egress or `depends_on` (the spec is acyclic once validated); ties by name.
pub fn start_order(spec: &Spec) -> Vec<String> {
    let mut order = Vec::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while order.len() < spec.services.len() {
        let before = order.len();
        for (name, service) in &spec.services {
            if placed.contains(name.as_str()) {
                continue;
            }
            if service
                .dependencies()
                .into_keys()
                .all(|d| placed.contains(d) || d == name || !spec.services.contains_key(d))
            {
                placed.insert(name);
                order.push(name.clone());
            }
        }
        if order.len() == before {
            // A cycle (validation refuses those): place the rest as they come.
            order.extend(
                spec.services
                    .keys()
                    .filter(|n| !placed.contains(n.as_str()))
                    .cloned(),
            );
            break;
        }
    }
    order
}

/// What `name` waits for: each service it depends on and for what.
pub fn dependencies(spec: &Spec, name: &str) -> Vec<(String, Condition)> {
    spec.services[name]
        .dependencies()
        .into_iter()
        .map(|(d, c)| (d.to_string(), c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(observe: bool) -> Spec {
        let text = format!(
            r#"
name: shop
observe: {observe}
services:
  db: {{ command: [db], ingresses: {{ default: {{ protocol: tcp }}, admin: {{ protocol: http }} }} }}
  api:
    command: [api]
    ingresses: {{ default: {{ protocol: http }} }}
    egresses: {{ db: {{ service: db }}, db-admin: {{ service: db, ingress: admin }} }}
  web: {{ command: [web], egresses: {{ api: {{ service: api }} }} }}
"#
        );
        Spec::parse(&text).unwrap()
    }

    #[test]
    fn observe_puts_a_proxy_on_every_edge_and_repoints_the_egress() {
        let graph = build(&spec(true));
        let key = |s: &str, e: &str| (s.to_string(), e.to_string());
        assert_eq!(graph.egress_targets[&key("api", "db")], "db~proxy~api");
        assert_eq!(
            graph.egress_targets[&key("api", "db-admin")],
            "db~admin~proxy~api"
        );
        assert_eq!(graph.egress_targets[&key("web", "api")], "api~proxy~web");
        let admin = &graph.proxies["db~admin~proxy~api"];
        assert_eq!(
            (admin.target.as_str(), admin.ingress.as_str()),
            ("db", "admin")
        );
        assert_eq!(admin.protocol, Protocol::Http);
        assert_eq!(graph.proxies["db~proxy~api"].protocol, Protocol::Tcp);
    }

    #[test]
    fn the_test_node_reaches_every_ingress_through_a_proxy() {
        let graph = build(&spec(true));
        let test: BTreeSet<&str> = graph
            .proxies
            .values()
            .filter(|p| p.source == TEST_NODE)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            test,
            BTreeSet::from(["api~proxy~~test", "db~admin~proxy~~test", "db~proxy~~test"])
        );
        let key = |e: &str| (TEST_NODE.to_string(), e.to_string());
        assert_eq!(
            graph.egress_targets[&key("db/admin")],
            "db~admin~proxy~~test"
        );
        assert_eq!(graph.egress_targets[&key("db")], "db~proxy~~test");
        assert!(matches!(graph.nodes[TEST_NODE], Node::Test));
    }

    /// `db`'s ingress `admin` and a service `db-admin` are two edges of the
    /// `~test` node, each reaching its own target.
    #[test]
    fn test_edges_of_a_named_ingress_and_a_dashed_service_stay_apart() {
        let spec = Spec::parse(
            r#"
name: e
services:
  db: { command: [db], ingresses: { default: {}, admin: { protocol: http } } }
  db-admin: { command: [dba], ingresses: { default: { protocol: http } } }
"#,
        )
        .unwrap();
        let graph = build(&spec);
        let target = |e: &str| {
            let node = &graph.egress_targets[&(TEST_NODE.to_string(), e.to_string())];
            let p = &graph.proxies[node];
            (p.target.clone(), p.ingress.clone())
        };
        assert_eq!(target("db/admin"), ("db".into(), "admin".into()));
        assert_eq!(target("db-admin"), ("db-admin".into(), "default".into()));
        assert_eq!(graph.proxies.len(), 3);
    }

    #[test]
    fn without_observe_egresses_reach_services_directly() {
        let graph = build(&spec(false));
        assert!(graph.proxies.is_empty());
        assert_eq!(
            graph.egress_targets[&("api".to_string(), "db".to_string())],
            "db"
        );
    }

    #[test]
    fn start_order_puts_targets_first() {
        assert_eq!(start_order(&spec(true)), vec!["db", "api", "web"]);
        assert_eq!(
            dependencies(&spec(true), "api"),
            vec![("db".to_string(), Condition::Ready)]
        );
    }
}
