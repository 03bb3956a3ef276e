//! The few protobuf messages of `envoy.service.auth.v3.Authorization/Check` the edge uses,
//! written by hand with `prost` derives instead of generated from the `.proto` files: no
//! `protoc`, no build script, and only the fields we read or write.
//!
//! Field numbers and types follow envoy's `api/envoy/service/auth/v3/external_auth.proto`,
//! `attribute_context.proto`, `api/envoy/config/core/v3/base.proto`,
//! `api/envoy/type/v3/http_status.proto` and `google/rpc/status.proto`. Fields left out are
//! skipped when decoding (protobuf's unknown-field rule) and never sent.

use std::collections::HashMap;

/// `envoy.service.auth.v3.CheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckRequest {
    /// `attributes = 1`.
    #[prost(message, optional, tag = "1")]
    pub attributes: Option<AttributeContext>,
}

/// `envoy.service.auth.v3.AttributeContext` (only `request = 4`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeContext {
    /// `request = 4`.
    #[prost(message, optional, tag = "4")]
    pub request: Option<Request>,
}

/// `envoy.service.auth.v3.AttributeContext.Request` (only `http = 2`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    /// `http = 2`.
    #[prost(message, optional, tag = "2")]
    pub http: Option<HttpRequest>,
}

/// `envoy.service.auth.v3.AttributeContext.HttpRequest` (the fields the edge reads).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpRequest {
    /// `method = 2`.
    #[prost(string, tag = "2")]
    pub method: String,
    /// `headers = 3`: lower-case names; repeated headers joined by Envoy.
    #[prost(map = "string, string", tag = "3")]
    pub headers: HashMap<String, String>,
    /// `path = 4`: the request target, query included.
    #[prost(string, tag = "4")]
    pub path: String,
    /// `host = 5`: the request's `:authority` / `Host` (sent even when `allowed_headers`
    /// leaves the header out).
    #[prost(string, tag = "5")]
    pub host: String,
    /// `scheme = 6`: `http` or `https`, the original request's.
    #[prost(string, tag = "6")]
    pub scheme: String,
    /// `header_map = 13`: used instead of `headers` when the filter sets `encode_raw_headers`.
    #[prost(message, optional, tag = "13")]
    pub header_map: Option<HeaderMap>,
}

/// `envoy.config.core.v3.HeaderMap`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderMap {
    /// `headers = 1`.
    #[prost(message, repeated, tag = "1")]
    pub headers: Vec<HeaderValue>,
}

/// `envoy.config.core.v3.HeaderValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderValue {
    /// `key = 1`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// `value = 2`.
    #[prost(string, tag = "2")]
    pub value: String,
    /// `raw_value = 3`: what Envoy fills in with `encode_raw_headers`.
    #[prost(bytes = "vec", tag = "3")]
    pub raw_value: Vec<u8>,
}

/// `envoy.config.core.v3.HeaderValueOption.HeaderAppendAction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum HeaderAppendAction {
    /// `APPEND_IF_EXISTS_OR_ADD = 0`: the proto default, which would keep a client's value
    /// next to ours; never used by the edge.
    AppendIfExistsOrAdd = 0,
    /// `ADD_IF_ABSENT = 1`.
    AddIfAbsent = 1,
    /// `OVERWRITE_IF_EXISTS_OR_ADD = 2`: replaces every existing value.
    OverwriteIfExistsOrAdd = 2,
    /// `OVERWRITE_IF_EXISTS = 3`.
    OverwriteIfExists = 3,
}

/// `envoy.config.core.v3.HeaderValueOption` (without the deprecated `append = 2`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderValueOption {
    /// `header = 1`.
    #[prost(message, optional, tag = "1")]
    pub header: Option<HeaderValue>,
    /// `append_action = 3`.
    #[prost(enumeration = "HeaderAppendAction", tag = "3")]
    pub append_action: i32,
}

impl HeaderValueOption {
    /// A header that replaces any value of the same name.
    pub fn overwrite(key: &str, value: &str) -> HeaderValueOption {
        HeaderValueOption {
            header: Some(HeaderValue {
                key: key.to_owned(),
                value: value.to_owned(),
                raw_value: Vec::new(),
            }),
            append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        }
    }
}

/// `google.rpc.Status` (without `details = 3`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// `code = 1`: a `google.rpc.Code`; 0 is OK.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// `message = 2`.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `envoy.type.v3.HttpStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpStatus {
    /// `code = 1` (an `envoy.type.v3.StatusCode` enum whose values are the HTTP codes).
    #[prost(int32, tag = "1")]
    pub code: i32,
}

/// `envoy.service.auth.v3.DeniedHttpResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeniedHttpResponse {
    /// `status = 1`.
    #[prost(message, optional, tag = "1")]
    pub status: Option<HttpStatus>,
    /// `headers = 2`: sent to the client.
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<HeaderValueOption>,
    /// `body = 3`.
    #[prost(string, tag = "3")]
    pub body: String,
}

/// `envoy.service.auth.v3.OkHttpResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OkHttpResponse {
    /// `headers = 2`: set on the upstream request.
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<HeaderValueOption>,
    /// `headers_to_remove = 5`: removed from the upstream request, after `headers` are set.
    #[prost(string, repeated, tag = "5")]
    pub headers_to_remove: Vec<String>,
}

/// `envoy.service.auth.v3.CheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckResponse {
    /// `status = 1`: OK allows the request; anything else denies it.
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    /// `oneof http_response { denied_response = 2; ok_response = 3; }`.
    #[prost(oneof = "HttpResponse", tags = "2, 3")]
    pub http_response: Option<HttpResponse>,
}

/// `CheckResponse.http_response`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HttpResponse {
    /// `denied_response = 2`.
    #[prost(message, tag = "2")]
    DeniedResponse(DeniedHttpResponse),
    /// `ok_response = 3`.
    #[prost(message, tag = "3")]
    OkResponse(OkHttpResponse),
}
