//! Run the Discord double standalone, e.g. to point a locally started bot at it.
//! Prints its addresses, writes the test CA to a file, then logs requests and gateway frames.

use std::time::Duration;

use deckhand_discord_double::DiscordDouble;

#[tokio::main]
async fn main() {
    let double = DiscordDouble::start().await;
    let ca = std::env::temp_dir().join(format!("discord-double-ca-{}.pem", std::process::id()));
    if let Err(e) = std::fs::write(&ca, double.ca_pem()) {
        eprintln!("cannot write CA: {e}");
    }
    println!(
        "REST base (serenity HttpBuilder::proxy): {}",
        double.base_url()
    );
    println!(
        "gateway:                                 {}",
        double.gateway_url()
    );
    println!(
        "HTTPS CONNECT proxy for discord.com:     {}",
        double.https_proxy_url()
    );
    println!(
        "direct TLS listener:                     {}",
        double.tls_addr()
    );
    println!("test CA PEM:                             {}", ca.display());
    let (mut seen_requests, mut seen_frames) = (0, 0);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = tokio::time::sleep(Duration::from_millis(200)) => {},
        }
        let requests = double.requests();
        for r in &requests[seen_requests..] {
            println!("{r}");
        }
        seen_requests = requests.len();
        let frames = double.frames();
        for f in &frames[seen_frames..] {
            println!("{f}");
        }
        seen_frames = frames.len();
    }
}
