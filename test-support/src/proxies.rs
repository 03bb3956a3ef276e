//! Real proxies in front of the edge, each from a generated configuration in its temp dir on a
//! random loopback port: nginx `auth_request` (with the login-redirect recipe), Caddy
//! `forward_auth`, Envoy `ext_authz` (HTTP service and gRPC); Traefik lives in the edge suite. Each forwards the identity headers the edge sets to the upstream.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use crate::fs::TempDir;
use crate::net::free_port;
use crate::process::{binary, cache_dir, Peer};

/// The identity headers the edge sets, as the proxies' configurations list them.
pub const IDENTITY_HEADERS: &str = "X-User-Id X-Session-Id X-User-Role";

/// Caddy lines deleting every underscore spelling of the identity headers (Caddy forwards
/// them, and CGI/WSGI/PHP applications read `X_User_Id` as `X-User-Id`). Header names are
/// case-insensitive in Caddy, so one line per spelling of the separators is enough.
pub const CADDY_DROP_UNDERSCORED: &str = "request_header -X_User_Id
    request_header -X-User_Id
    request_header -X_User-Id
    request_header -X_Session_Id
    request_header -X-Session_Id
    request_header -X_Session-Id
    request_header -X_User_Role
    request_header -X-User_Role
    request_header -X_User-Role";

/// Caddy lines forwarding CORS preflights without asking the edge, with every identity header
/// deleted: Caddy 2.6's `copy_headers` writes the literal placeholder
/// (`{http.reverse_proxy.header.X-User-Id}`) into a header the edge's answer lacks, so an
/// anonymous answer must not go through it.
pub const CADDY_PREFLIGHT: &str = "@preflight {
        method OPTIONS
        header Origin *
        header Access-Control-Request-Method *
    }
    handle @preflight {
        request_header -X-User-Id
        request_header -X-Session-Id
        request_header -X-User-Role
        reverse_proxy UPSTREAM
    }";

/// nginx with `auth_request` to the edge's gateway-verify path (the old gateway config), and the
/// README's login recipe: the edge answers a navigation with 401 and `X-Auth-Edge-Location`
/// (asked for by `X-Auth-Edge-Redirect-Status: 401`), which `error_page 401` turns into the 302.
pub async fn start_nginx(edge: SocketAddr, upstream: SocketAddr) -> Peer {
    let nginx = binary("AUTH_TEST_NGINX", "nginx", &[]);
    let dir = TempDir::new("nginx");
    let port = free_port();
    let d = dir.path().display().to_string();
    let conf = format!(
        r#"
worker_processes 1;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream edge {{ server {edge}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location = /_auth {{
            internal;
            proxy_pass http://edge/api/v1/auth/gateway-verify;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Auth-Edge-Redirect-Status 401;
        }}
        location / {{
            auth_request /_auth;
            auth_request_set $user $upstream_http_x_user_id;
            auth_request_set $session $upstream_http_x_session_id;
            auth_request_set $role $upstream_http_x_user_role;
            auth_request_set $auth_login $upstream_http_x_auth_edge_location;
            auth_request_set $auth_challenge $upstream_http_www_authenticate;
            error_page 401 = @login;
            proxy_set_header X-User-Id $user;
            proxy_set_header X-Session-Id $session;
            proxy_set_header X-User-Role $role;
            proxy_pass http://{upstream};
        }}
        location @login {{
            add_header Cache-Control no-store always;
            if ($auth_login) {{
                return 302 $auth_login;
            }}
            add_header WWW-Authenticate $auth_challenge always;
            return 401;
        }}
    }}
}}
"#
    );
    let conf_path = dir.write("nginx.conf", &conf);
    let mut cmd = Command::new(nginx);
    cmd.arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir.path())
        .arg("-g")
        .arg(format!("daemon off; pid {d}/nginx.pid;"));
    Peer::spawn("nginx", port, dir, cmd).wait_listening().await
}

/// Caddy with `forward_auth` and `copy_headers`; no admin endpoint, no automatic HTTPS, all
/// state in the temp dir.
pub async fn start_caddy(edge: SocketAddr, upstream: SocketAddr) -> Peer {
    let caddy = binary("AUTH_TEST_CADDY", "caddy", &[]);
    let dir = TempDir::new("caddy");
    let port = free_port();
    let caddyfile = format!(
        r#"{{
    admin off
    auto_https off
    storage file_system {d}/data
}}

http://127.0.0.1:{port} {{
    {CADDY_DROP_UNDERSCORED}
    {CADDY_PREFLIGHT}
    handle {{
        forward_auth {edge} {{
            uri /api/v1/auth/gateway-verify
            copy_headers {IDENTITY_HEADERS}
        }}
        reverse_proxy {upstream}
    }}
}}
"#,
        CADDY_PREFLIGHT = CADDY_PREFLIGHT.replace("UPSTREAM", &upstream.to_string()),
        d = dir.path().display()
    );
    let path = dir.write("Caddyfile", &caddyfile);
    let mut cmd = Command::new(caddy);
    cmd.arg("run")
        .arg("--config")
        .arg(&path)
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"));
    Peer::spawn("caddy", port, dir, cmd).wait_listening().await
}

/// Envoy with the ext_authz HTTP filter pointing at the edge.
pub async fn start_envoy(edge: SocketAddr, upstream: SocketAddr) -> Peer {
    let filter = r#"
              http_service:
                server_uri: { uri: "http://EDGE", cluster: edge, timeout: 2s }
                authorization_response:
                  allowed_upstream_headers:
                    patterns: [{ exact: x-user-id }, { exact: x-session-id }, { exact: x-user-role }]
                  allowed_client_headers:
                    patterns: [{ exact: www-authenticate }, { exact: location }, { exact: cache-control }]"#
        .replace("EDGE", &edge.to_string());
    run_envoy(&filter, "", edge, upstream).await
}

/// Envoy with the ext_authz gRPC filter (`envoy_grpc` to an HTTP/2 cluster) pointing at the
/// edge's gRPC listener.
pub async fn start_envoy_grpc(grpc: SocketAddr, upstream: SocketAddr) -> Peer {
    let filter = r#"
              grpc_service:
                envoy_grpc: { cluster_name: edge }
                timeout: 2s"#;
    let edge_cluster_extra = r#"
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }"#;
    run_envoy(filter, edge_cluster_extra, grpc, upstream).await
}

/// The Envoy path to use: `$AUTH_TEST_ENVOY`, PATH, or the test venv.
pub fn envoy_binary() -> PathBuf {
    binary(
        "AUTH_TEST_ENVOY",
        "envoy",
        &[cache_dir().join("venv/bin/envoy")],
    )
}

async fn run_envoy(
    ext_authz: &str,
    edge_cluster_extra: &str,
    edge: SocketAddr,
    upstream: SocketAddr,
) -> Peer {
    let envoy = envoy_binary();
    let dir = TempDir::new("envoy");
    let port = free_port();
    let config = format!(
        r#"
static_resources:
  listeners:
  - name: ingress
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          common_http_protocol_options: {{ headers_with_underscores_action: DROP_HEADER }}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: upstream }}
          http_filters:
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              failure_mode_allow: false
              allowed_headers:
                patterns: [{{ exact: cookie }}, {{ exact: authorization }}, {{ exact: origin }}, {{ exact: referer }}, {{ exact: sec-fetch-site }}, {{ exact: accept }}, {{ prefix: sec-fetch- }}, {{ exact: access-control-request-method }}, {{ exact: x-forwarded-proto }}]{ext_authz}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: edge
    type: STATIC
    connect_timeout: 1s{edge_cluster_extra}
    load_assignment:
      cluster_name: edge
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: {edge_ip}, port_value: {edge_port} }} }} }} }}] }}]
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: {up_ip}, port_value: {up_port} }} }} }} }}] }}]
"#,
        edge_ip = edge.ip(),
        edge_port = edge.port(),
        up_ip = upstream.ip(),
        up_port = upstream.port(),
    );
    let path = dir.write("envoy.yaml", &config);
    let mut cmd = Command::new(envoy);
    cmd.arg("-c")
        .arg(&path)
        .arg("--disable-hot-restart")
        .arg("--concurrency")
        .arg("1")
        .arg("--log-level")
        .arg("warn");
    Peer::spawn("envoy", port, dir, cmd).wait_listening().await
}
