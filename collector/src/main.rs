//! `gatetrace-collector` binary: configuration, JSON logs on stderr, signals; the work is in
//! the library.

use gatetrace_collector::sinks::otlp;
use gatetrace_collector::{Collector, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load(std::env::args_os()).unwrap_or_else(|e| e.exit());
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .init();
    let sink = otlp::exporter(&config.otlp)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "gatetrace-collector listening");
    let collector = Collector::start(config, sink).await?;
    collector.serve(listener, shutdown_signal()).await?;
    tracing::info!("gatetrace-collector stopped");
    Ok(())
}

/// Resolves on SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: draining, flushing spans, writing the checkpoint");
}
