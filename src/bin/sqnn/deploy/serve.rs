//! `sqnn serve`.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sqnn::deploy::server::{self, State};
use sqnn::deploy::{KeyStore, ServerConfig, Tokens};
use sqnn::{Error, Result};

use super::ServeArgs;

pub fn serve(a: &ServeArgs) -> Result<ExitCode> {
    let addr: SocketAddr = a.listen.parse().map_err(|_| {
        Error::param(
            "listen",
            format!("{:?} is not an address such as 127.0.0.1:8080", a.listen),
        )
    })?;
    let (tokens, fresh) = match &a.tokens {
        Some(p) => (Tokens::from_file(p)?, None),
        None => {
            let (t, token) = Tokens::random();
            (t, Some(token))
        }
    };
    let mib = |m: usize, name: &'static str| {
        m.checked_mul(1 << 20)
            .filter(|&b| b > 0)
            .ok_or_else(|| Error::param(name, "must be between 1 and 2^40 MiB"))
    };
    let config = ServerConfig {
        workers: a.workers,
        queue: a.queue,
        max_samples: a.max_samples,
        max_key_bytes: mib(a.max_key_mib, "max_key_mib")?,
        max_batch_bytes: mib(a.max_batch_mib, "max_batch_mib")?,
        timeout: Duration::from_secs(a.timeout),
        cache_bytes: a.cache_mib.saturating_mul(1 << 20),
        ..ServerConfig::new(a.circuits.clone(), tokens)
    };
    let store = KeyStore::local(&a.store, config.cache_bytes)?;
    let state = Arc::new(State::new(config, store)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Backend(format!("cannot start the server's runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::param("listen", format!("cannot listen on {addr}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::Backend(format!("no local address: {e}")))?;
        let mut out = std::io::stdout().lock();
        // The first line is for scripts and tests: the address actually bound.
        let _ = writeln!(out, "listening on http://{bound}");
        if let Some(token) = &fresh {
            let _ = writeln!(
                out,
                "token (shown once; pass --tokens FILE to choose tokens): {token}"
            );
        }
        let _ = out.flush();
        drop(out);
        for c in state.circuits() {
            // A circuit without bootstraps takes well under a millisecond.
            let prec = if c.predicted_ms_per_sample < 10.0 {
                2
            } else {
                0
            };
            eprintln!(
                "serving {} ({} features, {} bootstraps per sample, default set {}, {} reads, \
                 {:.prec$} ms per sample predicted; plan {})",
                c.name,
                c.features,
                c.bootstraps,
                c.parameter_set,
                c.mode,
                c.predicted_ms_per_sample,
                c.plan
            );
        }
        if !bound.ip().is_loopback() {
            eprintln!(
                "note: plain HTTP on {bound}: put a TLS proxy in front of it (see SECURITY.md)"
            );
        }
        server::serve(listener, state, shutdown()).await?;
        eprintln!("stopped: every request in flight was answered");
        Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("shutting down: draining requests in flight");
}
