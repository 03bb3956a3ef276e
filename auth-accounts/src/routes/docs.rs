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
    modifiers(&Security, &SharedAnswers),
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

/// Makes the document say what the shared layers answer, so that it is true for every operation
/// (schemathesis checks every answer against it: `scripts/schemathesis`):
/// - a JSON body that does not parse is 400, one without `Content-Type: application/json` is
///   415, one with wrong or missing fields is 422 (`http::json`);
/// - a POST or DELETE carrying our cookies from a disallowed origin is 403 (`http::csrf`);
/// - `refresh` and `logout` take an optional body (the cookie is enough);
/// - `verify-link` needs `token` and `email` (400 without);
/// - every `email` member is an email address (an empty or malformed one is 422).
struct SharedAnswers;

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

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use utoipa::OpenApi;

    use super::ApiDoc;

    /// What schemathesis found undocumented on the first run (scripts/schemathesis).
    #[test]
    fn the_document_lists_what_the_shared_layers_answer() {
        let doc: Value = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        let login = op("/api/v1/auth/login", "post");
        for code in ["400", "403", "415", "422"] {
            assert!(login["responses"][code].is_object(), "login {code}");
        }
        // A GET carries no body and is not CSRF-checked.
        let me = op("/api/v1/auth/me", "get");
        assert!(me["responses"]["415"].is_null() && me["responses"]["403"].is_null());
        for path in ["/api/v1/auth/logout", "/api/v1/auth/refresh"] {
            assert_eq!(op(path, "post")["requestBody"]["required"], false, "{path}");
        }
        let link = op("/api/v1/auth/verify-link", "get");
        for p in link["parameters"].as_array().unwrap() {
            if p["name"] == "token" || p["name"] == "email" {
                assert_eq!(p["required"], true, "{p}");
            }
        }
        let email = &doc["components"]["schemas"]["EmailRequest"]["properties"]["email"];
        assert_eq!(email["format"], "email");
    }
}
