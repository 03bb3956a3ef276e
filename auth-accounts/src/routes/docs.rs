//! API documentation: the OpenAPI document, Swagger UI and ReDoc.
//!
//! The document is not a list kept by hand: every API route is registered with `utoipa-axum`'s
//! `routes!`, which adds the handler's `#[utoipa::path]` to the document as it adds the route, so
//! a served route cannot be missing from it. This module only adds the title and the security
//! schemes ([`ApiDoc`]) and serves the finished document. The two UIs are small HTML pages that load their scripts from a public CDN in the reader's
//! browser, which keeps megabytes of vendored JavaScript out of the binary.

use std::sync::{Arc, OnceLock};

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "auth-accounts", description = "Accounts API: registration, login, sessions, passwords, JWKS."),
    modifiers(&Security),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("access_token"))),
        );
    }
}

/// The docs routes (not themselves part of the document). `document` is filled in once the whole
/// API router, and with it the document, is built.
pub fn router(document: Arc<OnceLock<String>>) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/openapi.json", get(move || openapi_json(document.clone())))
        .route("/docs", get(swagger))
        .route("/redoc", get(redoc))
}

async fn openapi_json(document: Arc<OnceLock<String>>) -> Response {
    match document.get() {
        Some(json) => ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response(),
        None => {
            crate::error::ApiError::internal("the OpenAPI document was not built").into_response()
        }
    }
}

async fn swagger() -> Html<&'static str> {
    Html(
        r##"<!doctype html>
<html><head><meta charset="utf-8"><title>auth-accounts API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js" crossorigin></script>
<script>window.ui = SwaggerUIBundle({ url: "/api/v1/auth/openapi.json", dom_id: "#swagger-ui" });</script>
</body></html>"##,
    )
}

async fn redoc() -> Html<&'static str> {
    Html(
        r##"<!doctype html>
<html><head><meta charset="utf-8"><title>auth-accounts API</title></head>
<body><redoc spec-url="/api/v1/auth/openapi.json"></redoc>
<script src="https://cdn.redoc.ly/redoc/latest/bundles/redoc.standalone.js"></script>
</body></html>"##,
    )
}
