//! API documentation: the OpenAPI document, Swagger UI and ReDoc.
//!
//! The document is not a list kept by hand: every API route is registered with `utoipa-axum`'s
//! `routes!`, which adds the handler's `#[utoipa::path]` to the document as it adds the route, so
//! a served route cannot be missing from it. This module only adds the title and the security
//! schemes ([`ApiDoc`]), what the shared layers answer for every operation ([`SharedAnswers`]),
//! and serves the finished document. The two UIs are small HTML pages that load their scripts from a public CDN in the reader's
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
pub(crate) struct ApiDoc;

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

/// Makes the document say what the shared layers answer, so that it is true for every operation
/// (schemathesis checks every answer against it: `scripts/schemathesis`). Applied by
/// [`crate::routes::api`] to the finished document, once every route has added its operation:
/// - a JSON body that does not parse is 400, one without `Content-Type: application/json` is
///   415, one with wrong or missing fields is 422 (`http::json`);
/// - a POST or DELETE carrying our cookies from a disallowed origin is 403 (`http::csrf`);
/// - `refresh` and `logout` take an optional body (the cookie is enough);
/// - `verify-link` needs `token` and `email` (400 without);
/// - every `email` member is an email address (an empty or malformed one is 422).
pub(crate) struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
        use utoipa::openapi::{Content, Ref, RefOr, Required, ResponseBuilder, Schema};

        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let optional_body = path.ends_with("/refresh") || path.ends_with("/logout");
            let unsafe_methods = [item.post.as_mut(), item.delete.as_mut()];
            for op in unsafe_methods.into_iter().flatten() {
                op.responses
                    .responses
                    .entry("403".into())
                    .or_insert_with(|| {
                        error("Cookie-authenticated request from an origin that is not allowed")
                    });
            }
            let all = [item.get.as_mut(), item.post.as_mut(), item.delete.as_mut()];
            for op in all.into_iter().flatten() {
                if let Some(body) = op.request_body.as_mut() {
                    if optional_body {
                        body.required = Some(Required::False);
                    }
                    let responses = &mut op.responses.responses;
                    for (code, why) in [
                        ("400", "The body is not JSON"),
                        ("415", "Content-Type is not application/json"),
                        ("422", "A field is missing or invalid"),
                    ] {
                        responses.entry(code.into()).or_insert_with(|| error(why));
                    }
                }
                if path.ends_with("/verify-link") {
                    for param in op.parameters.iter_mut().flatten() {
                        if param.parameter_in == ParameterIn::Query
                            && (param.name == "token" || param.name == "email")
                        {
                            param.required = Required::True;
                        }
                    }
                }
            }
        }
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for schema in components.schemas.values_mut() {
            let RefOr::T(Schema::Object(object)) = schema else {
                continue;
            };
            if let Some(RefOr::T(Schema::Object(email))) = object.properties.get_mut("email") {
                email.format = Some(SchemaFormat::KnownFormat(KnownFormat::Email));
            }
        }
    }
}

/// The docs routes (not themselves part of the document). `document` is filled in once the whole
/// API router, and with it the document, is built.
pub(crate) fn router(document: Arc<OnceLock<String>>, production: bool) -> OpenApiRouter<AppState> {
    let router =
        OpenApiRouter::new().route("/openapi.json", get(move || openapi_json(document.clone())));
    // The two UI pages load their scripts from a CDN: served in development only, so a
    // production origin that holds session cookies never runs third-party script.
    if production {
        router
    } else {
        router
            .route("/docs", get(swagger))
            .route("/redoc", get(redoc))
    }
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
