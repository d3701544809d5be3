//! `dqwatch daemon`: load, bind, handle signals, run the daemon; map the end to an exit code.

use super::exit::Exit;
use super::load;
use crate::clock::SystemClock;
use crate::daemon;
use crate::engine::Engine;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Runs `dqwatch daemon` until a stop signal.
pub async fn cmd(config_flag: Option<&Path>, listen: Option<&str>) -> Exit {
    let path = match crate::engine::load::locate(config_flag, &load::env) {
        Ok(p) => p,
        Err(e) => {
            load::print_diagnostics(&e.0);
            return Exit::Invalid;
        }
    };
    let engine = match Engine::load(&path, &load::env) {
        Ok(l) => l,
        Err(e) => {
            load::print_diagnostics(&e.0);
            return Exit::Invalid;
        }
    };
    let addr = listen.map_or_else(|| engine.config.daemon.listen.clone(), str::to_string);
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: cannot listen on {addr}: {e}\n  hint: pass --listen 127.0.0.1:PORT or change [daemon] listen"
            );
            return Exit::Invalid;
        }
    };
    let local = listener.local_addr().map_or(addr, |a| a.to_string());
    tracing::info!(listen = %local, checks = engine.checks.len(), "Daemon started.");
    eprintln!(
        "dqwatch daemon: {} checks, http://{local}/",
        engine.checks.len()
    );
    let shutdown = CancellationToken::new();
    let reload = Arc::new(Notify::new());
    if let Err(e) = daemon::signals(shutdown.clone(), Arc::clone(&reload)) {
        eprintln!("error: cannot handle signals: {e}");
        return Exit::CheckFailed;
    }
    match daemon::run(
        engine,
        path,
        listener,
        shutdown,
        Arc::new(SystemClock),
        reload,
    )
    .await
    {
        Ok(()) => {
            tracing::info!("Daemon stopped.");
            Exit::Clean
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::CheckFailed
        }
    }
}
