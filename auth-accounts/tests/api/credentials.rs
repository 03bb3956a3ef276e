//! The shared table of credential cases (`auth_token::credential_cases`), run against `/me` and
//! `/gateway-verify`. The edge runs the same table against its forward-auth server, so a request
//! means the same caller (or the same 401) at both services.

use auth_token::credential_cases::{Case, Expect, CASES};
use reqwest::StatusCode;

use crate::helpers::{assert_error, email, json_body, spawn_app, Backend, PASSWORD};

both!(every_credential_case_means_the_same_caller_as_at_the_edge);

async fn every_credential_case_means_the_same_caller_as_at_the_edge(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.register(&email("cred-a"), PASSWORD).await;
    let b = app.register(&email("cred-b"), PASSWORD).await;
    // A plain client: no cookie store, no default headers.
    let client = reqwest::Client::new();
    let mut sent = 0;
    for case in CASES.iter().filter(|c| c.travels_over_http()) {
        let request = |path: &str| {
            let mut request = client.get(app.url(path));
            for value in Case::with_tokens(case.authorization, &a.access, &b.access) {
                request = request.header("authorization", value);
            }
            for value in Case::with_tokens(case.cookies, &a.access, &b.access) {
                request = request.header("cookie", value);
            }
            request
        };
        let me = request("me").send().await.unwrap();
        let gateway = request("gateway-verify").send().await.unwrap();
        let name = case.name;
        match case.expect {
            Expect::HeaderA | Expect::CookieA | Expect::CookieB => {
                let user = if case.expect == Expect::CookieB {
                    &b
                } else {
                    &a
                };
                assert_eq!(me.status(), StatusCode::OK, "{name}");
                assert_eq!(
                    json_body(me).await["userId"],
                    user.user_id.as_str(),
                    "{name}"
                );
                assert_eq!(gateway.status(), StatusCode::OK, "{name}");
                assert_eq!(
                    gateway.headers()["x-user-id"],
                    user.user_id.as_str(),
                    "{name}"
                );
            }
            Expect::Missing | Expect::Refused => {
                let detail = assert_error(me, StatusCode::UNAUTHORIZED, "me").await;
                let expected = if case.expect == Expect::Missing {
                    "Not authenticated"
                } else {
                    "Malformed credentials"
                };
                assert_eq!(detail, expected, "{name}");
                assert_eq!(gateway.status(), StatusCode::UNAUTHORIZED, "{name}");
                assert!(gateway.headers().get("x-user-id").is_none(), "{name}");
            }
        }
        sent += 1;
    }
    assert!(sent >= 25, "only {sent} cases sent");
}
