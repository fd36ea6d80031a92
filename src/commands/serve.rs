//! `gridsearch serve`: load the models, bring the catalogue's index up to date, then serve the
//! upload page until Ctrl-C or SIGTERM (then exit within a few seconds, whatever clients do).

use super::index::{embedding_source, update_index};
use super::Exit;
use crate::cli::ServeArgs;
use crate::error::InputError;
use crate::inference::ModelSet;
use crate::serve::{router, serve, AllowedHosts, AppState, Catalogue, Guards};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

/// How long work still running after the server stopped (a prediction) may delay the exit.
const WORK_GRACE: Duration = Duration::from_secs(1);

pub fn run(args: &ServeArgs, quiet: bool) -> anyhow::Result<Exit> {
    // Options and the port first: a mistake should not cost the wait for models and catalogue.
    let guards = Guards {
        hosts: AllowedHosts::new(args.host, &args.allow_host).map_err(InputError::new)?,
        max_requests: usize::from(args.max_requests),
    };
    let address = SocketAddr::new(args.host, args.port);
    let listener = std::net::TcpListener::bind(address).map_err(|e| {
        InputError::new(format!(
            "{address}: cannot listen ({e}): choose another --port (0: any free one)"
        ))
    })?;
    listener.set_nonblocking(true)?;
    let device = crate::model::select_device(args.device.device.as_deref())?;
    let models = ModelSet::load(&args.models, &device)?;
    let catalogue = match &args.catalogue {
        None => None,
        Some(dir) => {
            let source = embedding_source(&args.embedding)?;
            let (index, embedder) = update_index(dir, &args.index, source, &device, quiet)?;
            Some(Catalogue {
                index,
                embedder,
                k: usize::from(args.k),
            })
        }
    };
    let state = AppState {
        models,
        catalogue,
        device,
        max_upload_mb: args.max_upload_mb,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        crate::outln!("listening on http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        serve(listener, router(state, guards), stop_requested()).await;
        anyhow::Ok(Exit::Ok)
    });
    // A prediction still running on a blocking thread is not waited for past this.
    runtime.shutdown_timeout(WORK_GRACE);
    served
}

/// Ctrl-C, or SIGTERM where there is one.
async fn stop_requested() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
