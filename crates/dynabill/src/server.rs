//! The HTTP server: bind, serve, and shut down cleanly on SIGTERM or Ctrl-C,
//! finishing the requests in flight.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use dynabill_app::App;
use dynabill_http::HttpOptions;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often expired idempotency keys are swept away.
const IDEMPOTENCY_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// A server running in the background, as tests and `serve` hold it.
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    housekeeping: JoinHandle<()>,
}

impl RunningServer {
    /// Binds `listen` (port 0 picks a free port) and starts serving `app`.
    pub async fn start(
        app: App,
        listen: SocketAddr,
        options: HttpOptions,
    ) -> anyhow::Result<RunningServer> {
        let housekeeping = spawn_housekeeping(app.clone());
        let router = dynabill_http::router(app, options);
        RunningServer::serve(listen, router, housekeeping).await
    }

    /// Binds `listen` and serves `GET /metrics` alone there.
    pub async fn start_metrics(app: App, listen: SocketAddr) -> anyhow::Result<RunningServer> {
        let router = dynabill_http::metrics_router(app);
        RunningServer::serve(listen, router, tokio::spawn(async {})).await
    }

    async fn serve(
        listen: SocketAddr,
        router: axum::Router,
        housekeeping: JoinHandle<()>,
    ) -> anyhow::Result<RunningServer> {
        let bound = TcpListener::bind(listen)
            .await
            .and_then(|listener| Ok((listener.local_addr()?, listener)));
        let (addr, listener) = match bound {
            Ok(bound) => bound,
            Err(e) => {
                housekeeping.abort();
                return Err(e).with_context(|| format!("binding {listen}"));
            }
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(RunningServer {
            addr,
            stop: Some(stop),
            task,
            housekeeping,
        })
    }

    /// Stops accepting connections, lets requests in flight finish, and returns.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = (&mut self.task).await;
        self.housekeeping.abort();
        served.context("server task")?.context("serving")?;
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Background chores that keep storage tidy, until the server stops.
fn spawn_housekeeping(app: App) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(IDEMPOTENCY_PURGE_EVERY);
        loop {
            every.tick().await;
            match app.purge_idempotency_keys().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired idempotency keys removed"),
                Err(e) => tracing::warn!(error = %e, "could not purge idempotency keys"),
            }
        }
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
