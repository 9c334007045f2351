//! `POST /environments/{id}/services/{name}/restart|stop|start`: one
//! service of an environment the daemon runs, changed while the rest runs.
//!
//! The environment belongs to the task that runs it (see `daemon::run`);
//! a request is handed to that task over a channel and answered when it
//! has played out (the service ready again, stopped, or failed), so a
//! script can `restart` and then call the service at once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::daemon::Daemon;
use super::error;
use crate::environment::{Control, ControlError, Environment, Error};
use crate::orchestrate::ServiceState;

/// A request to the task running an environment, with where to answer.
pub(crate) struct ControlRequest {
    pub service: String,
    pub asked: Control,
    pub reply: oneshot::Sender<Result<ServiceState, Error>>,
}

pub(crate) type ControlSender = mpsc::UnboundedSender<ControlRequest>;

/// The route's handler.
pub(super) async fn control_service(
    State(daemon): State<Daemon>,
    Path((id, service, action)): Path<(String, String, String)>,
) -> Response {
    let asked = match action.as_str() {
        "restart" => Control::Restart,
        "stop" => Control::Stop,
        "start" => Control::Start,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no action {other:?}: restart, stop or start"),
            )
        }
    };
    let Some(hosted) = daemon.registry().get(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no environment {id:?}"));
    };
    let status = hosted.status();
    let Some(sender) = status.control else {
        let state = serde_json::to_value(status.state).unwrap_or_default();
        return error(
            StatusCode::CONFLICT,
            format!(
                "environment {id} is not up (it is {})",
                state.as_str().unwrap_or("?")
            ),
        );
    };
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest {
        service: service.clone(),
        asked,
        reply,
    };
    if sender.send(request).is_err() {
        return error(
            StatusCode::CONFLICT,
            format!("environment {id} is stopping"),
        );
    }
    match answer.await {
        Ok(Ok(state)) => Json(json!({
            "environment": id,
            "service": service,
            "action": asked.as_str(),
            "state": state,
        }))
        .into_response(),
        Ok(Err(Error::Control(ControlError::NoSuchService(_)))) => error(
            StatusCode::NOT_FOUND,
            format!("environment {id} has no service {service:?}"),
        ),
        Ok(Err(e)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(_) => error(
            StatusCode::CONFLICT,
            format!("environment {id} is stopping"),
        ),
    }
}

/// Serves requests for `environment` until `until` resolves; a request in
/// flight then is answered "stopping" (its reply is dropped).
pub(crate) async fn serve_requests<T>(
    environment: &Environment,
    requests: &mut mpsc::UnboundedReceiver<ControlRequest>,
    until: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(until);
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            done = &mut until => return done,
            Some(request) = requests.recv() => in_flight.push(async move {
                let result = match request.asked {
                    Control::Restart => environment.restart(&request.service).await,
                    Control::Stop => environment.stop_service(&request.service).await,
                    Control::Start => environment.start(&request.service).await,
                };
                let _ = request.reply.send(result);
            }),
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
}
