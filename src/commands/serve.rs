//! `gridsearch serve`: load the models, bring the catalogue's index up to date, then serve the
//! upload page until Ctrl-C or SIGTERM.

use super::index::{embedding_source, update_index};
use super::Exit;
use crate::cli::ServeArgs;
use crate::error::InputError;
use crate::inference::ModelSet;
use crate::serve::{router, AppState, Catalogue};
use std::io::Write;
use std::net::SocketAddr;

pub fn run(args: &ServeArgs, quiet: bool) -> anyhow::Result<Exit> {
    // The port first: a busy one should not cost the wait for models and catalogue.
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
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        crate::outln!("listening on http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        axum::serve(listener, router(state))
            .with_graceful_shutdown(stop_requested())
            .await?;
        Ok(Exit::Ok)
    })
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
