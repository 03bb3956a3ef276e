//! CSRF defence for cookie-authenticated requests.
//!
//! A state-changing request (anything but GET/HEAD/OPTIONS) that carries one of our auth cookies must
//! come from an allowed origin: `Origin`, or failing that `Referer`, must match `FRONTEND_URL` or
//! `CORS_ALLOWED_ORIGINS`; neither header at all is refused too (OWASP: verify origin with standard
//! headers). Requests without our cookies (Bearer clients, first login) are not ambient-credentialed
//! and pass. Together with `SameSite=Lax` and CORS restricted to the same origins, this is the CSRF
//! defence.

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use auth_token::{ACCESS_COOKIE, REFRESH_COOKIE};

use crate::error::ApiError;
use crate::http::cookies;
use crate::state::AppState;

pub(crate) async fn check_origin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let has_auth_cookie = cookies::read(headers, ACCESS_COOKIE).is_some()
        || cookies::read(headers, REFRESH_COOKIE).is_some();
    if !has_auth_cookie {
        return next.run(req).await;
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            Some(
                url::Url::parse(referer)
                    .ok()?
                    .origin()
                    .ascii_serialization(),
            )
        });
    match origin {
        Some(origin) if state.config.is_origin_allowed(&origin) => next.run(req).await,
        Some(origin) => {
            tracing::warn!(origin, path = %req.uri().path(), "cross-site request with auth cookies refused");
            ApiError::Forbidden("Request origin is not allowed").into_response()
        }
        None => ApiError::Forbidden(
            "Origin or Referer header required for cookie-authenticated requests",
        )
        .into_response(),
    }
}
