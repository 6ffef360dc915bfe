//! The tower [`Layer`] and [`Service`] that mount the engine in front of
//! any HTTP service (an axum `Router`, for one).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body::Body as HttpBody;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowHeaders, AllowOrigin, Cors, CorsLayer};

use crate::engine::{Engine, EngineInner};
use crate::transport::{self, BoxError};

/// Wraps a service with an engine: requests to the engine's path go to the
/// engine, every other request to the wrapped service.
#[derive(Clone, Debug)]
pub struct EngineLayer {
    engine: Engine,
}

impl EngineLayer {
    /// A layer for `engine` (also available as [`Engine::layer`]).
    pub fn new(engine: Engine) -> Self {
        EngineLayer { engine }
    }
}

impl<S> Layer<S> for EngineLayer {
    type Service = EngineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EngineService::new(self.engine.clone(), inner)
    }
}

/// Answers a request that reaches no engine: 404.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut res = Response::new(Body::from("Not Found"));
        *res.status_mut() = http::StatusCode::NOT_FOUND;
        std::future::ready(Ok(res))
    }
}

/// The engine in front of an inner service; see [`EngineLayer`].
///
/// HTTP servers clone the service for every request (hyper calls it
/// through a shared reference), so the engine's side is one `Arc`.
#[derive(Clone, Debug)]
pub struct EngineService<S> {
    /// The engine behind CORS; cross-origin browser requests go through
    /// CORS, the others straight to the engine inside.
    engine: Arc<Cors<EngineCore>>,
    inner: S,
}

impl<S> EngineService<S> {
    /// The engine in front of `inner`.
    pub fn new(engine: Engine, inner: S) -> Self {
        EngineService {
            engine: Arc::new(cors_layer(&engine).layer(EngineCore(engine.0))),
            inner,
        }
    }

    fn core(&self) -> &Arc<EngineInner> {
        &self.engine.get_ref().0
    }

    fn is_engine_path(&self, path: &str) -> bool {
        // `/socket.io/` and `/socket.io` both reach the engine.
        let own = self.core().config.path.as_str();
        path == own || Some(path) == own.strip_suffix('/')
    }
}

impl EngineService<NotFound> {
    /// The engine alone: anything outside its path gets 404.
    pub fn standalone(engine: Engine) -> Self {
        Self::new(engine, NotFound)
    }
}

/// CORS for polling from other origins, driven by the same origin policy
/// that guards handshakes: an allowed origin is mirrored back (so cookies
/// may be sent with `withCredentials`), others get no CORS headers.
fn cors_layer(engine: &Engine) -> CorsLayer {
    let policy = engine.0.config.allowed_origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, parts| {
            policy.check(Some(origin), parts.headers.get(header::HOST))
                == crate::origin::OriginCheck::Allowed
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(true)
        .max_age(std::time::Duration::from_secs(86_400))
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, ResB> Service<Request<B>> for EngineService<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResB: HttpBody<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness of the inner service is awaited per request below, since
        // most requests of a gateway never reach it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self.is_engine_path(req.uri().path()) {
            // A request without an `Origin` header is not a cross-origin
            // browser request, and CORS headers mean nothing to its client
            // (Node, Python and Rust clients, same-origin pages): it skips
            // the CORS layer. The engine checks origins itself either way.
            if req.headers().contains_key(header::ORIGIN) {
                // Always ready (see `EngineCore`).
                infallible(Cors::clone(&*self.engine).call(req))
            } else {
                let engine = self.core().clone();
                Box::pin(async move { Ok(transport::handle(engine, req).await) })
            }
        } else {
            let inner = self.inner.clone();
            Box::pin(async move {
                let res = inner.oneshot(req).await?;
                Ok(res.map(Body::new))
            })
        }
    }
}

/// The engine's answer as the service's future (the engine never fails).
fn infallible<E>(
    res: impl Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
) -> BoxFuture<Response<Body>, E> {
    Box::pin(async move {
        match res.await {
            Ok(res) => Ok(res),
            Err(never) => match never {},
        }
    })
}

/// The engine as a plain service, behind CORS.
#[derive(Clone)]
pub(crate) struct EngineCore(Arc<EngineInner>);

impl std::fmt::Debug for EngineCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineCore")
    }
}

impl<B> Service<Request<B>> for EngineCore
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Response<Body>, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let engine = self.0.clone();
        Box::pin(async move { Ok(transport::handle(engine, req).await) })
    }
}
