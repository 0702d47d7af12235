//! HTTPS for `discord.com`: a throw-away CA, a certificate for `discord.com` and
//! `gateway.discord.gg` signed by it, a direct TLS listener and an HTTP CONNECT proxy that
//! terminates TLS itself. Both hand their TLS streams to the same axum app as the plain listener.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Hosts the test certificate is valid for.
pub const TLS_HOSTS: &[&str] = &["discord.com", "gateway.discord.gg", "localhost"];

/// The test CA and the server configuration using a certificate it signed.
pub(crate) struct TestPki {
    pub(crate) ca_pem: String,
    pub(crate) acceptor: TlsAcceptor,
}

pub(crate) fn generate() -> Result<TestPki, String> {
    generate_inner().map_err(|e| e.to_string())
}

fn generate_inner() -> Result<TestPki, Box<dyn std::error::Error>> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Deckhand Discord double test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf_params = CertificateParams::new(
        TLS_HOSTS
            .iter()
            .map(|h| (*h).to_string())
            .collect::<Vec<_>>(),
    )?;
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "discord.com");
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TestPki {
        ca_pem: ca_cert.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}

/// An axum listener fed with TLS streams by the accept tasks below.
pub(crate) struct ChannelListener {
    pub(crate) rx: mpsc::UnboundedReceiver<(TlsStream<TcpStream>, SocketAddr)>,
    pub(crate) addr: SocketAddr,
}

impl axum::serve::Listener for ChannelListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

type Sink = mpsc::UnboundedSender<(TlsStream<TcpStream>, SocketAddr)>;

/// Accept TCP, handshake TLS, pass on.
pub(crate) async fn accept_tls(listener: TcpListener, acceptor: TlsAcceptor, sink: Sink) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let sink = sink.clone();
        tokio::spawn(async move {
            match acceptor.accept(tcp).await {
                Ok(tls) => {
                    let _ = sink.send((tls, peer));
                }
                Err(e) => tracing::debug!("discord double: TLS handshake failed: {e}"),
            }
        });
    }
}

/// An HTTP CONNECT proxy that only "connects" to `discord.com:443` / `gateway.discord.gg:443`
/// — by terminating TLS itself with the test certificate.
pub(crate) async fn accept_connect(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    sink: Sink,
    targets: Arc<std::sync::Mutex<Vec<String>>>,
) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let sink = sink.clone();
        let targets = targets.clone();
        tokio::spawn(async move {
            if let Err(e) = handle_connect(tcp, peer, acceptor, sink, targets).await {
                tracing::debug!("discord double: CONNECT failed: {e}");
            }
        });
    }
}

async fn handle_connect(
    mut tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    sink: Sink,
    targets: Arc<std::sync::Mutex<Vec<String>>>,
) -> io::Result<()> {
    // Read the request head byte by byte: the client sends nothing else before our 200.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(io::Error::other("CONNECT head too long"));
        }
        let b = tcp.read_u8().await?;
        head.push(b);
    }
    let head = String::from_utf8_lossy(&head);
    let first = head.lines().next().unwrap_or_default();
    let mut parts = first.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    targets.lock().expect("poisoned").push(target.to_string());
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
    if method != "CONNECT" {
        tcp.write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    if !TLS_HOSTS.contains(&host) {
        tcp.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    let tls = acceptor.accept(tcp).await?;
    let _ = sink.send((tls, peer));
    Ok(())
}
