//! `deckhand-sandbox`: starts the cloud sandbox, seeds the realistic estate, prints the endpoints
//! and serves until Ctrl-C. Flags: `--port N`, `--lro-delay-ms N`, `--empty` (no seeding).

use std::time::Duration;

use deckhand_sandbox::{Sandbox, SandboxOptions};

#[tokio::main]
async fn main() {
    let mut opts = SandboxOptions::default();
    let mut seed = true;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), val) {
            ("--port", Some(p)) => {
                opts.port = p as u16;
                i += 1;
            }
            ("--lro-delay-ms", Some(ms)) => {
                opts.lro_delay = Duration::from_millis(ms);
                i += 1;
            }
            ("--empty", _) => seed = false,
            (other, _) => {
                eprintln!(
                    "usage: deckhand-sandbox [--port N] [--lro-delay-ms N] [--empty]  (unknown argument {other:?})"
                );
                std::process::exit(2);
            }
        }
        i += 1;
    }
    let sandbox = match Sandbox::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("deckhand-sandbox: {e}");
            std::process::exit(1);
        }
    };
    println!("deckhand cloud sandbox: a local fake of Azure and AKS. No real cloud is touched.");
    if seed {
        match sandbox.seed_realistic_estate().await {
            Ok(e) => {
                println!(
                    "seeded: resource group {} ({}), registry {} ({}), cluster {}",
                    e.resource_group, e.location, e.registry, e.login_server, e.cluster
                );
                if let Ok(kc) = sandbox.kubeconfig(&e.resource_group, &e.cluster) {
                    let path = std::env::temp_dir().join("deckhand-sandbox.kubeconfig");
                    if std::fs::write(&path, kc).is_ok() {
                        println!("kubeconfig:       {}", path.display());
                    }
                }
            }
            Err(e) => eprintln!("seeding failed: {e}"),
        }
    }
    println!("ARM endpoint:     {}", sandbox.arm_endpoint());
    println!("authority host:   {}", sandbox.authority_host());
    println!("tenant id:        {}", sandbox.tenant_id());
    println!("subscription id:  {}", sandbox.subscription_id());
    println!("client id:        {}", sandbox.client_id());
    println!("client secret:    {}", sandbox.client_secret());
    println!("control API:      {}", sandbox.control_url());
    let _ = tokio::signal::ctrl_c().await;
}
