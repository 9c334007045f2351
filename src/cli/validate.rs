//! `tapmesh validate SPEC`: every problem in a spec, each with its path.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::spec::Spec;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The spec file (YAML or JSON).
    spec: PathBuf,
}

/// Prints a summary of a valid spec, or every problem (exit status 1).
pub fn run(args: ValidateArgs) -> Result<bool> {
    match Spec::from_path(&args.spec) {
        Ok(spec) => {
            let graph = crate::graph::build(&spec);
            let edges = spec.edges().count();
            println!(
                "{} is valid: environment {:?}, {} services, {} edges ({} proxies with observe {})",
                args.spec.display(),
                spec.name,
                spec.services.len(),
                edges,
                graph.proxies.len(),
                if spec.observe {
                    "on, ~test included"
                } else {
                    "off"
                },
            );
            Ok(true)
        }
        Err(errors) => {
            eprintln!(
                "{}: {} problem{}",
                args.spec.display(),
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            );
            println!("{errors}");
            Ok(false)
        }
    }
}
