//! API documentation: the OpenAPI document (generated from the handlers' annotations), Swagger UI and
//! ReDoc. The two UIs are small HTML pages that load their scripts from a public CDN in the reader's
//! browser, which keeps megabytes of vendored JavaScript out of the binary.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{health, login, password, registration, sessions, tokens};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "auth-accounts", description = "Accounts API: registration, login, sessions, passwords, JWKS."),
    paths(
        registration::verify_email, registration::verify_link, registration::complete_registration,
        login::login, login::refresh, login::logout,
        password::reset_password, password::complete_reset, password::change_password,
        sessions::me, sessions::list, sessions::revoke, sessions::logout_others,
        tokens::validate_token, tokens::gateway_verify, tokens::jwks,
        health::health,
        health::live,
        health::ready,
    ),
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

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/openapi.json", get(openapi_json))
        .route("/api/v1/auth/docs", get(swagger))
        .route("/api/v1/auth/redoc", get(redoc))
}

async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(err) => crate::error::ApiError::internal(err).into_response(),
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
