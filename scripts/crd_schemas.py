"""Structural schemas of the CRD kinds the manifests use, for which kubernetes-validate has none
(imported by check_deploy.py; validate_manifests.py skips exactly these kinds).

Each schema lists, per object, the fields the CRD's OpenAPI schema defines there (the subset of
the published CRDs that matters for these manifests: every field a manifest uses must be listed,
so a misspelt or misplaced field fails), their types, the allowed values of enums, and the
required fields (`REQUIRED`). Sources, by version:
- Gateway API v1.2 standard channel: Gateway, HTTPRoute (gateway.networking.k8s.io/v1),
  ReferenceGrant (v1beta1);
- Envoy Gateway v1.4: SecurityPolicy, ClientTrafficPolicy (gateway.envoyproxy.io/v1alpha1);
- Istio 1.24: AuthorizationPolicy (security.istio.io/v1) and the mesh configuration's
  `extensionProviders[].envoyExtAuthzGrpc` (istio.mesh.v1alpha1.MeshConfig).

This is weaker than the real CRD schemas (no patterns, no CEL rules) and stronger than skipping.
"""

REQUIRED = "__required__"


def enum(*values):
    return ("enum", values)


METADATA = {"name": str, "namespace": str, "labels": dict, "annotations": dict, REQUIRED: ["name"]}
PARENT_REF = {"group": str, "kind": str, "namespace": str, "name": str, "sectionName": str,
              "port": int, REQUIRED: ["name"]}
BACKEND_REF = {"group": str, "kind": str, "namespace": str, "name": str, "port": int,
               "weight": int, REQUIRED: ["name"]}
EXT_AUTH_BACKEND_REF = {k: v for k, v in BACKEND_REF.items() if k != "weight"}
POLICY_TARGET_REF = {"group": str, "kind": str, "name": str, "sectionName": str,
                     REQUIRED: ["group", "kind", "name"]}


def top(spec):
    return {"apiVersion": str, "kind": str, "metadata": METADATA, "spec": spec,
            REQUIRED: ["apiVersion", "kind", "metadata", "spec"]}


SCHEMAS = {
    ("gateway.networking.k8s.io/v1", "Gateway"): top({
        "gatewayClassName": str,
        "listeners": [{
            "name": str, "hostname": str, "port": int,
            "protocol": enum("HTTP", "HTTPS", "TLS", "TCP", "UDP"),
            "tls": {"mode": enum("Terminate", "Passthrough"),
                    "certificateRefs": [{"group": str, "kind": str, "name": str, "namespace": str,
                                         REQUIRED: ["name"]}],
                    "options": dict},
            "allowedRoutes": {"namespaces": dict, "kinds": list},
            REQUIRED: ["name", "port", "protocol"],
        }],
        "addresses": list, "infrastructure": dict,
        REQUIRED: ["gatewayClassName", "listeners"],
    }),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): top({
        "parentRefs": [PARENT_REF],
        "hostnames": [str],
        "rules": [{
            "name": str,
            "matches": [{
                "path": {"type": enum("Exact", "PathPrefix", "RegularExpression"), "value": str},
                "headers": list, "queryParams": list, "method": str,
            }],
            "filters": list, "backendRefs": [dict(BACKEND_REF, filters=list)], "timeouts": dict,
        }],
    }),
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"): top({
        "from": [{"group": str, "kind": str, "namespace": str, REQUIRED: ["group", "kind", "namespace"]}],
        "to": [{"group": str, "kind": str, "name": str, REQUIRED: ["group", "kind"]}],
        REQUIRED: ["from", "to"],
    }),
    ("gateway.envoyproxy.io/v1alpha1", "SecurityPolicy"): top({
        "targetRefs": [POLICY_TARGET_REF], "targetSelectors": list,
        "extAuth": {
            "grpc": {"backendRef": EXT_AUTH_BACKEND_REF, "backendRefs": [EXT_AUTH_BACKEND_REF],
                     "backendSettings": dict},
            "http": {"backendRef": EXT_AUTH_BACKEND_REF, "backendRefs": [EXT_AUTH_BACKEND_REF],
                     "backendSettings": dict,
                     "path": str, "headersToBackend": [str]},
            "headersToExtAuth": [str], "bodyToExtAuth": dict, "failOpen": bool,
            "recomputeRoute": bool, "contextExtensions": list,
        },
        "cors": dict, "basicAuth": dict, "apiKeyAuth": dict, "jwt": dict, "oidc": dict,
        "authorization": dict,
    }),
    ("gateway.envoyproxy.io/v1alpha1", "ClientTrafficPolicy"): top({
        "targetRefs": [POLICY_TARGET_REF], "targetSelectors": list,
        "headers": {
            "withUnderscoresAction": enum("Allow", "RejectRequest", "DropHeader"),
            "enableEnvoyHeaders": bool, "disableRateLimitHeaders": bool, "preserveXRequestID": bool,
            "xForwardedClientCert": dict, "earlyRequestHeaders": dict, "requestID": str,
        },
        "clientIPDetection": dict, "tls": dict, "path": dict, "http1": dict, "http2": dict,
        "http3": dict, "timeout": dict, "connection": dict, "tcpKeepalive": dict,
        "enableProxyProtocol": bool, "healthCheck": dict,
    }),
    ("security.istio.io/v1", "AuthorizationPolicy"): top({
        "selector": {"matchLabels": dict}, "targetRef": dict, "targetRefs": list,
        "action": enum("ALLOW", "DENY", "AUDIT", "CUSTOM"),
        "provider": {"name": str, REQUIRED: ["name"]},
        "rules": [{
            "from": list,
            "to": [{"operation": {
                "hosts": [str], "notHosts": [str], "ports": [str], "notPorts": [str],
                "methods": [str], "notMethods": [str], "paths": [str], "notPaths": [str],
            }}],
            "when": list,
        }],
    }),
}

# istio.mesh.v1alpha1.MeshConfig.ExtensionProvider with its gRPC ext_authz provider.
MESH_EXTENSION_PROVIDER = {
    "name": str,
    "envoyExtAuthzGrpc": {"service": str, "port": int, "timeout": str, "failOpen": bool,
                          "statusOnError": str, "includeRequestBodyInCheck": dict,
                          REQUIRED: ["service", "port"]},
    "envoyExtAuthzHttp": dict,
    REQUIRED: ["name"],
}


def problems(value, schema, path="$"):
    """Where `value` does not fit `schema` (an empty list when it does)."""
    if isinstance(schema, tuple) and schema[0] == "enum":
        return [] if value in schema[1] else [f"{path}: {value!r} is not one of {list(schema[1])}"]
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [p for i, item in enumerate(value) for p in problems(item, schema[0], f"{path}[{i}]")]
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        out = [f"{path}.{k}: unknown field" for k in value if k not in schema or k == REQUIRED]
        out += [f"{path}.{k}: required" for k in schema.get(REQUIRED, []) if k not in value]
        for k, v in value.items():
            if k in schema and k != REQUIRED:
                out += problems(v, schema[k], f"{path}.{k}")
        return out
    if schema is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, schema)
    return [] if ok else [f"{path}: expected {schema.__name__}, got {type(value).__name__}"]


def crd_problems(doc):
    """The problems of one CRD object, or None when its kind has no schema here."""
    schema = SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
    return None if schema is None else problems(doc, schema)


def self_test():
    """The schemas really reject: an unknown field, a wrong type, a bad enum value, a missing one."""
    good = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "x"}, "spec": {"action": "CUSTOM", "provider": {"name": "p"}}}
    assert crd_problems(good) == [], crd_problems(good)
    for broken in [
        {**good, "spec": {"action": "CUSTOM", "providr": {"name": "p"}}},
        {**good, "spec": {"action": "custom"}},
        {**good, "spec": {"rules": [{"to": [{"operation": {"paths": "/a"}}]}]}},
        {**good, "spec": {"provider": {}}},
        {**good, "metadata": {"name": "x", "namespace": 1}},
    ]:
        assert crd_problems(broken), f"accepted: {broken}"
