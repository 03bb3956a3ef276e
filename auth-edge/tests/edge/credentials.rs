//! The shared table of credential cases (`auth_token::credential_cases`), run against the real
//! forward-auth server. Accounts runs the same table against `/auth/me`, so a request means the
//! same caller (or the same 401) at both services.

use auth_token::credential_cases::{Case, Expect, CASES};
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn every_credential_case_means_the_same_caller_as_in_accounts() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let edge = spawn_edge(edge_config(&fake)).await;
    let (user_a, user_b) = (claims(), claims());
    let (token_a, token_b) = (sign(&user_a, key_a()), sign(&user_b, key_a()));
    let client = client();
    let mut sent = 0;
    for case in CASES.iter().filter(|c| c.travels_over_http()) {
        let mut request = client.get(edge.url("/orders/1"));
        for value in Case::with_tokens(case.authorization, &token_a, &token_b) {
            request = request.header("authorization", value);
        }
        for value in Case::with_tokens(case.cookies, &token_a, &token_b) {
            request = request.header("cookie", value);
        }
        let r = request.send().await.unwrap();
        let name = case.name;
        match case.expect {
            Expect::HeaderA | Expect::CookieA | Expect::CookieB => {
                let user = if case.expect == Expect::CookieB {
                    &user_b
                } else {
                    &user_a
                };
                assert_eq!(r.status(), StatusCode::OK, "{name}");
                assert_eq!(r.headers()["x-user-id"], user.sub.as_str(), "{name}");
            }
            Expect::Missing => {
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
                assert_eq!(
                    r.headers()["www-authenticate"],
                    "Bearer realm=\"auth\"",
                    "{name}"
                );
            }
            Expect::Refused => {
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
                assert_eq!(
                    r.headers()["www-authenticate"],
                    "Bearer realm=\"auth\", error=\"invalid_token\"",
                    "{name}"
                );
                assert!(r.headers().get("x-user-id").is_none(), "{name}");
            }
        }
        sent += 1;
    }
    assert!(sent >= 25, "only {sent} cases sent");
}
