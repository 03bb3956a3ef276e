"""Checks of the deployment files that need more than a schema (run by scripts/check-deploy).

    check_deploy.py ROOT RENDERED_DIR ACCOUNTS_METRICS EDGE_METRICS OPENAPI_JSON

RENDERED_DIR holds `kubectl kustomize` output, one file per kustomization (NAME.yaml, NAME being
the directory with / replaced by -). The two metrics files are real expositions scraped from the
running binaries, OPENAPI_JSON accounts' own OpenAPI document: nothing here repeats a name the
services define, so a renamed metric, variable or route fails this check.

What is checked:
- every PromQL expression of deploy/prometheus/alerts.yaml and deploy/grafana/*.json parses, and
  each metric it reads is exported by the service it belongs to (auth_edge_* by the edge, the rest
  by accounts), with the labels it matches on; metrics of other exporters only from EXTERNAL;
- every environment variable the manifests give the auth containers is one the binary reads,
  and each container runs a subcommand that exists;
- the Ingresses publish only routes accounts serves, never the revocation feed, /metrics or the
  API docs, and every route to an application behind the edge drops client-sent identity headers,
  underscore spellings included;
- the Gateway API (Envoy Gateway) and Istio examples fit the structural schemas of their CRDs
  (crd_schemas.py, the validator has none), send every protected route to the edge's ext_authz
  gRPC port with fail-closed settings, drop underscore header names, and let the gateway reach
  the edge (ReferenceGrant, NetworkPolicy);
- the production overlay migrates by a Job only, rotates keys with a least-privilege Role, and
  every workload has requests, a PodDisruptionBudget and spread constraints; the embedded overlay
  runs one replica with the Recreate strategy;
- docs/configure.md documents every variable the binaries read.
"""

import json
import os
import re
import sys
from pathlib import Path

import promql_parser
import yaml

import crd_schemas

ROOT = Path(sys.argv[1])
RENDERED = Path(sys.argv[2])
ACCOUNTS_METRICS = Path(sys.argv[3])
EDGE_METRICS = Path(sys.argv[4])
OPENAPI = Path(sys.argv[5])

# Metrics of other exporters that the rules and the dashboard read on purpose.
EXTERNAL = {
    "up": "Prometheus itself (scrape health)",
    "kube_cronjob_status_last_successful_time": "kube-state-metrics (rotate-keys CronJob)",
}
# Labels Prometheus attaches to every scraped series (scrape-config.yaml), not the exporters.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "__name__"}
IDENTITY_HEADERS = ["X-User-Id", "X-Session-Id", "X-User-Role"]
IMAGE = "registry.example.com/smartbudget/auth"
SUBCOMMANDS = {
    "auth-accounts": {None, "worker", "migrate", "rotate-keys"},
    "auth-edge": {"forward-auth", "sidecar"},
}

checks = 0
failures = []


def check(ok, message):
    global checks
    checks += 1
    if not ok:
        failures.append(message)


# --- metrics ----------------------------------------------------------------------------------


def exposition(path):
    """Series names a scrape can contain, with the label names seen on each."""
    series = {}
    sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s")
    label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')
    suffixes = {
        "counter": ["", "_total", "_created"],
        "histogram": ["_bucket", "_count", "_sum", "_created"],
        "summary": ["", "_count", "_sum", "_created"],
        "gauge": [""],
        "unknown": [""],
    }
    for line in path.read_text().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            for suffix in suffixes.get(kind, [""]):
                series.setdefault(name + suffix, set())
        elif line and not line.startswith("#"):
            m = sample.match(line)
            if m:
                series.setdefault(m.group(1), set()).update(label.findall(m.group(2) or ""))
    return series


def grafana_to_promql(expr):
    """Grafana's variables replaced by values PromQL accepts."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{?[a-zA-Z_]\w*\}?", "x", expr)
    return expr


def selectors(expr):
    """(metric name, {label names matched}) of every vector selector in an expression."""
    found = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            labels = set()
            name = node.name
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    name = m.value
                labels.add(m.name)
            found.append((name, labels))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def check_metrics():
    accounts = exposition(ACCOUNTS_METRICS)
    edge = exposition(EDGE_METRICS)
    check(any(n.startswith("auth_edge_") for n in edge), "the edge exposition has no auth_edge_ metric")
    check("http_requests_total" in accounts, "the accounts exposition has no http_requests_total")
    exprs = []
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            exprs.append((f"alerts.yaml {rule.get('alert') or rule.get('record')}", rule["expr"]))
    for path in sorted((ROOT / "deploy/grafana").glob("*.json")):
        dash = json.loads(path.read_text())
        panels = list(dash.get("panels", []))
        for p in list(panels):
            panels.extend(p.get("panels", []))
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    exprs.append((f"{path.name} panel {p.get('title')!r}", grafana_to_promql(t["expr"])))
        for var in dash.get("templating", {}).get("list", []):
            query = var.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            m = re.match(r"label_values\((.*),\s*\w+\)$", query or "")
            if m:
                exprs.append((f"{path.name} variable {var['name']}", grafana_to_promql(m.group(1))))
    check(len(exprs) >= 20, f"expected the alerts' and the dashboard's expressions, found {len(exprs)}")
    used = set()
    for where, expr in exprs:
        try:
            found = selectors(expr)
        except Exception as e:  # the parser's own error type varies by version
            check(False, f"{where}: does not parse as PromQL: {e}\n    {expr}")
            continue
        check(found, f"{where}: reads no metric")
        for name, labels in found:
            used.add(name)
            if name in EXTERNAL:
                continue
            exported = edge if name.startswith("auth_edge_") else accounts
            service = "the edge" if exported is edge else "accounts"
            check(name in exported, f"{where}: {name} is not exported by {service}")
            seen = exported.get(name) or set()
            if seen:
                for label in labels - TARGET_LABELS:
                    check(label in seen, f"{where}: {name} has no label {label!r} (it has {sorted(seen)})")
    # What the issue asks the dashboard and alerts to show, by the metric that shows it.
    for name in [
        "auth_edge_verifications_total",
        "auth_edge_verification_duration_seconds_bucket",
        "auth_edge_token_cache_hits_total",
        "auth_edge_revocation_last_message_age_seconds",
        "auth_edge_revocation_source_up",
        "auth_edge_keys_age_seconds",
        "auth_outbox_backlog",
        "auth_outbox_oldest_age_seconds",
        "auth_failed_logins_total",
        "auth_rate_limited_total",
        "http_requests_total",
    ]:
        check(name in used, f"neither the alerts nor the dashboard use {name}")
    print(f"  {len(exprs)} PromQL expressions, {len(used)} metrics, all exported")


# --- rendered manifests --------------------------------------------------------------------------


def rendered():
    out = {}
    for path in sorted(RENDERED.glob("*.yaml")):
        out[path.stem] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def names_in(source):
    """Quoted UPPER_CASE literals of a source: the variables a config module reads."""
    return {s for s in re.findall(r'"([A-Z][A-Z0-9_]{2,})"', source)}


def module_source(path, skip=()):
    """A module's text: `path.rs` and every file under `path/` (but the `skip` file stems)."""
    file = path.with_suffix(".rs")
    text = file.read_text() if file.is_file() else ""
    if path.is_dir():
        text += "".join(
            p.read_text() for p in sorted(path.rglob("*.rs")) if p.stem not in skip
        )
    return text


def variables():
    accounts = names_in(module_source(ROOT / "auth-accounts/src/config"))
    edge = names_in(module_source(ROOT / "auth-edge/src/config"))
    # REDIS_URL, LOG_*, JWT_ISSUER/AUDIENCE are shared names; the edge reads them in its modules.
    return {"auth-accounts": accounts, "auth-edge": edge}


def pod_spec(doc):
    kind = doc["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc["spec"]["template"]["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def containers(spec):
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def check_containers(docs, known):
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    ran = []
    for doc in docs:
        spec = pod_spec(doc)
        if not spec:
            continue
        for c in containers(spec):
            if c["image"].split(":")[0] != IMAGE:
                continue
            check(re.fullmatch(re.escape(IMAGE) + r":[\w.-]+", c["image"]),
                  f"{doc['kind']}/{doc['metadata']['name']}: image {c['image']} has no tag (images: in the kustomization)")
            cmd = c.get("command", []) + c.get("args", [])
            where = f"{doc['kind']}/{doc['metadata']['name']} container {c['name']}"
            check(cmd and cmd[0] in SUBCOMMANDS, f"{where}: runs {cmd}, not auth-accounts or auth-edge")
            if not cmd or cmd[0] not in SUBCOMMANDS:
                continue
            binary, sub = cmd[0], (cmd[1] if len(cmd) > 1 else None)
            check(sub in SUBCOMMANDS[binary], f"{where}: {binary} has no subcommand {sub!r}")
            ran.append((binary, sub))
            names = {e["name"] for e in c.get("env", [])}
            for src in c.get("envFrom", []):
                ref = src.get("configMapRef")
                if ref:
                    check(ref["name"] in configmaps, f"{where}: no ConfigMap {ref['name']} in the output")
                    names |= set(configmaps.get(ref["name"], {}))
            for name in sorted(names):
                check(name in known[binary], f"{where}: {name} is read by nobody ({binary})")
    return ran


def accounts_env(docs, container_doc="auth-accounts"):
    """Accounts' effective plain settings (its ConfigMap, then its env)."""
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == container_doc)
    c = dep["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for src in c.get("envFrom", []):
        if "configMapRef" in src:
            env.update(configmaps[src["configMapRef"]["name"]])
    env.update({e["name"]: e.get("value") for e in c.get("env", [])})
    return env


def ingress_paths(docs):
    """(ingress, path, pathType, backend service) of every Ingress rule."""
    for d in docs:
        if d["kind"] != "Ingress":
            continue
        for rule in d["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                yield d, p["path"], p["pathType"], p["backend"]["service"]["name"]


def reaches(path, path_type, target):
    if path_type == "Exact":
        return target == path
    prefix = path.rstrip("/")
    return target == prefix or target.startswith(prefix + "/") or prefix == ""


def variants(header):
    """Every spelling a CGI/WSGI/PHP application reads as `header`: each '-' may be '_'."""
    parts = header.split("-")
    out = {parts[0]}
    for part in parts[1:]:
        out = {v + sep + part for v in out for sep in "-_"}
    return out


def canonical(name):
    """Go's CanonicalMIMEHeaderKey: Traefik and Caddy match header names through it."""
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


def check_ingresses(name, docs, openapi_paths, feed_path):
    forbidden = [feed_path, "/metrics", "/api/v1/auth/docs", "/api/v1/auth/openapi.json",
                 "/api/v1/auth/redoc", "/api/v1/auth/gateway-verify"]
    middlewares = {(d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"]
                   for d in docs if d["kind"] == "Middleware"}
    needed = {canonical(v) for h in IDENTITY_HEADERS for v in variants(h)}

    def strips_identity(spec):
        headers = spec.get("headers", {}).get("customRequestHeaders", {})
        return needed <= {canonical(k) for k, v in headers.items() if v == ""}

    def sets_identity(spec):
        got = {h.lower() for h in spec.get("forwardAuth", {}).get("authResponseHeaders", [])}
        return {h.lower() for h in IDENTITY_HEADERS} <= got

    def check_chain(where, namespace, chain):
        """Traefik middlewares in order: identity stripped before the forward-auth answer sets it."""
        specs = [middlewares.get((namespace, m)) for m in chain]
        check(all(specs), f"{where}: middleware not in the output: {chain}")
        auth = [i for i, s in enumerate(specs) if s and "forwardAuth" in s]
        strip = [i for i, s in enumerate(specs) if s and strips_identity(s)]
        check(strip, f"{where}: no middleware removes every spelling of the identity headers")
        if auth:
            check(strip and strip[0] < auth[0], f"{where}: identity headers stripped after forwardAuth")
            check(sets_identity(specs[auth[0]]), f"{where}: forwardAuth does not set {IDENTITY_HEADERS}")

    for d, path, path_type, service in ingress_paths(docs):
        where = f"{name}: Ingress {d['metadata']['namespace']}/{d['metadata']['name']} {path}"
        for f in forbidden:
            check(not reaches(path, path_type, f), f"{where} publishes {f}")
        if service == "auth-accounts":
            check(any(reaches(path, path_type, p) for p in openapi_paths),
                  f"{where}: accounts serves no such route (OpenAPI document)")
        annotations = d["metadata"].get("annotations", {})
        cls = d["spec"].get("ingressClassName")
        if cls == "traefik":
            chain = [m.strip().removesuffix("@kubernetescrd") for m in
                     annotations.get("traefik.ingress.kubernetes.io/router.middlewares", "").split(",") if m.strip()]
            ns = d["metadata"]["namespace"]
            chain = [m.removeprefix(ns + "-") for m in chain]
            check_chain(where, ns, chain)
        elif cls == "nginx":
            auth_url = annotations.get("nginx.ingress.kubernetes.io/auth-url")
            if auth_url:
                got = {h.strip().lower() for h in
                       annotations.get("nginx.ingress.kubernetes.io/auth-response-headers", "").split(",")}
                check({h.lower() for h in IDENTITY_HEADERS} <= got,
                      f"{where}: auth-response-headers does not set {IDENTITY_HEADERS}")
            # ingress-nginx drops underscore spellings while enable-underscores-in-headers is
            # false (its default); snippets that could change that are not used.
            check(not any("snippet" in k for k in annotations), f"{where}: configuration snippets")
        else:
            check(False, f"{where}: unknown ingress class {cls}")
    for d in docs:
        if d["kind"] == "IngressRoute":
            ns = d["metadata"]["namespace"]
            for route in d["spec"]["routes"]:
                where = f"{name}: IngressRoute {ns}/{d['metadata']['name']} {route['match']}"
                for p in re.findall(r"PathPrefix\(`([^`]*)`\)", route["match"]):
                    for f in forbidden:
                        check(not reaches(p, "Prefix", f), f"{where} publishes {f}")
                check_chain(where, ns, [m["name"] for m in route.get("middlewares", [])])


def check_workloads(name, docs):
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for dep in deployments:
        where = f"{name}: Deployment {dep['metadata']['namespace']}/{dep['metadata']['name']}"
        labels = dep["spec"]["selector"]["matchLabels"]
        check(any(p["metadata"]["namespace"] == dep["metadata"]["namespace"]
                  and p["spec"]["selector"]["matchLabels"].items() <= labels.items() for p in pdbs),
              f"{where}: no PodDisruptionBudget")
        spec = dep["spec"]["template"]["spec"]
        if dep["spec"].get("replicas", 1) > 1:
            check(spec.get("topologySpreadConstraints"), f"{where}: no topologySpreadConstraints")
        for c in containers(spec):
            check(c.get("resources", {}).get("requests"), f"{where}: container {c['name']} has no requests")
    namespaces = {d["metadata"].get("namespace") for d in deployments}
    for ns in namespaces:
        check(any(d["kind"] == "NetworkPolicy" and d["metadata"]["namespace"] == ns
                  and d["spec"]["podSelector"] == {} and "Ingress" in d["spec"]["policyTypes"]
                  and not d["spec"].get("ingress") for d in docs),
              f"{name}: no default-deny NetworkPolicy in namespace {ns}")


def edge_grpc_port():
    """The port of the auth-edge Service named grpc (deploy/kustomize/base)."""
    docs = yaml.safe_load_all((ROOT / "deploy/kustomize/base/edge-forward-auth.yaml").read_text())
    service = next(d for d in docs if d and d["kind"] == "Service" and d["metadata"]["name"] == "auth-edge")
    return next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")


def admits(docs, namespace, port):
    """A NetworkPolicy in namespace auth lets pods of `namespace` reach the edge on `port`."""
    return any(
        d["kind"] == "NetworkPolicy" and d["metadata"].get("namespace") == "auth"
        and d["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == "auth-edge"
        and any(any(f.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                    == namespace for f in rule.get("from", []))
                and any(p.get("port") == port for p in rule.get("ports", []))
                for rule in d["spec"].get("ingress", []))
        for d in docs)


def check_crds(name, docs):
    """Every CRD object fits its structural schema; the ext_authz examples are wired safely."""
    for d in docs:
        found = crd_schemas.crd_problems(d)
        if found is not None:
            check(not found, f"{name}: {d['kind']} {d['metadata'].get('name')}: {found}")
    grpc_port = edge_grpc_port()
    edge_host = "auth-edge.auth.svc.cluster.local"
    by_kind = lambda kind: [d for d in docs if d["kind"] == kind]  # noqa: E731
    for policy in by_kind("SecurityPolicy"):
        ns = policy["metadata"]["namespace"]
        where = f"{name}: SecurityPolicy {ns}/{policy['metadata']['name']}"
        ext = policy["spec"].get("extAuth", {})
        refs = ext.get("grpc", {}).get("backendRefs", [])
        check(refs == [{"name": "auth-edge", "namespace": "auth", "port": grpc_port}],
              f"{where}: extAuth must be gRPC to auth/auth-edge:{grpc_port}: {refs}")
        check(ext.get("failOpen") is False, f"{where}: failOpen must be false")
        check("headersToExtAuth" not in ext,
              f"{where}: headersToExtAuth set: the edge would not see underscore spellings to remove")
        check(any(g["metadata"]["namespace"] == "auth"
                  and {"group": "gateway.envoyproxy.io", "kind": "SecurityPolicy", "namespace": ns}
                  in g["spec"]["from"]
                  and any(t.get("kind") == "Service" and t.get("name", "auth-edge") == "auth-edge"
                          for t in g["spec"]["to"])
                  for g in by_kind("ReferenceGrant")), f"{where}: no ReferenceGrant in auth")
        for target in policy["spec"]["targetRefs"]:
            route = next((r for r in by_kind(target["kind"]) if r["metadata"]["name"] == target["name"]
                          and r["metadata"]["namespace"] == ns), None)
            check(route, f"{where}: target {target} not in the output")
            for parent in (route or {}).get("spec", {}).get("parentRefs", []):
                check(any(c["metadata"]["namespace"] == ns
                          and c["spec"].get("headers", {}).get("withUnderscoresAction") in ("DropHeader", "RejectRequest")
                          and any(t["kind"] == "Gateway" and t["name"] == parent["name"] for t in c["spec"]["targetRefs"])
                          for c in by_kind("ClientTrafficPolicy")),
                      f"{where}: Gateway {parent['name']} lets header names with underscores through")
        check(admits(docs, "envoy-gateway-system", grpc_port),
              f"{name}: no NetworkPolicy admits envoy-gateway-system to the edge's gRPC port")
    for policy in by_kind("AuthorizationPolicy"):
        ns = policy["metadata"]["namespace"]
        where = f"{name}: AuthorizationPolicy {ns}/{policy['metadata']['name']}"
        spec = policy["spec"]
        check(spec.get("action") == "CUSTOM" and spec.get("rules"), f"{where}: action CUSTOM with rules")
        meshes = [yaml.safe_load(c["data"]["mesh"]) for c in by_kind("ConfigMap")
                  if c["metadata"]["name"] == "istio" and "mesh" in c.get("data", {})]
        providers = {p["name"]: p for m in meshes for p in m.get("extensionProviders", [])}
        provider = providers.get(spec.get("provider", {}).get("name"))
        check(provider, f"{where}: provider {spec.get('provider')} is not an extension provider of the mesh config")
        if provider:
            check(not crd_schemas.problems(provider, crd_schemas.MESH_EXTENSION_PROVIDER),
                  f"{where}: {crd_schemas.problems(provider, crd_schemas.MESH_EXTENSION_PROVIDER)}")
            grpc = provider.get("envoyExtAuthzGrpc", {})
            check(grpc.get("service") == edge_host and grpc.get("port") == grpc_port
                  and grpc.get("failOpen") is False,
                  f"{where}: provider must be envoyExtAuthzGrpc to {edge_host}:{grpc_port}, failOpen false")
        check(admits(docs, ns, grpc_port), f"{name}: no NetworkPolicy admits {ns} to the edge's gRPC port")


def check_production(docs, ran):
    env = accounts_env(docs)
    check(env.get("MIGRATE_ON_START") == "false", "production: replicas must not migrate at start")
    check(env.get("RUN_WORKERS") == "false", "production: RUN_WORKERS must be false beside the worker")
    check(env.get("ENV") == "prod", "production: ENV=prod")
    check(("auth-accounts", "migrate") in ran, "production: no `auth-accounts migrate` Job")
    check(("auth-accounts", "worker") in ran, "production: no worker Deployment")
    check(("auth-accounts", "rotate-keys") in ran, "production: no rotate-keys CronJob")
    for d in docs:
        spec = pod_spec(d)
        if spec and d["kind"] != "Job":
            for c in containers(spec):
                check(c.get("command", [])[1:2] != ["migrate"], f"production: {d['metadata']['name']} migrates")
    cron = next(d for d in docs if d["kind"] == "CronJob" and d["metadata"]["name"] == "auth-rotate-keys")
    sa = pod_spec(cron)["serviceAccountName"]
    bindings = [b for b in docs if b["kind"] == "RoleBinding"
                and any(s["kind"] == "ServiceAccount" and s["name"] == sa for s in b["subjects"])]
    check(len(bindings) == 1, "production: the rotate-keys ServiceAccount has one RoleBinding")
    role = next(r for r in docs if r["kind"] == "Role" and r["metadata"]["name"] == bindings[0]["roleRef"]["name"])
    for rule in role["rules"]:
        check(rule["resources"] == ["secrets"], f"production: rotate-keys may touch {rule['resources']}")
        check(set(rule.get("resourceNames", [])) == {"auth-signing-keys", "auth-signing-keys-retired"},
              f"production: rotate-keys is not limited to the key Secrets: {rule.get('resourceNames')}")
        check(set(rule["verbs"]) <= {"get", "patch", "update"}, f"production: rotate-keys verbs {rule['verbs']}")
    # The key rotation writes what accounts reads.
    acc = accounts_env(docs)
    check(acc.get("JWT_RETIRED_KEYS_DIR") and acc.get("JWT_PRIVATE_KEY_PATH", "").startswith("/etc/auth/keys/"),
          "production: accounts reads its keys from the Secret mounts")


def check_embedded(docs, ran):
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "auth-accounts")
    check(dep["spec"]["replicas"] == 1, "embedded: one accounts replica (SQLite)")
    check(dep["spec"]["strategy"] == {"type": "Recreate"}, "embedded: Recreate strategy")
    check(accounts_env(docs)["DATABASE_URL"].startswith("sqlite:"), "embedded: SQLite")
    check(("auth-accounts", "migrate") not in ran and ("auth-accounts", "worker") not in ran,
          "embedded: no separate migration Job or worker")


def check_docs(known):
    text = (ROOT / "docs/configure.md").read_text()
    not_variables = {"HS256", "RS256", "PS256", "ES256", "JSON"}
    # The config modules only: the old-service aliases (auth-accounts/src/config/legacy_env.rs)
    # have their own table in docs/migrate-from-smartbudget.md.
    documented = {
        "auth-accounts": names_in(
            module_source(ROOT / "auth-accounts/src/config", skip=("legacy_env", "legacy_tests"))
        ),
        "auth-edge": names_in(module_source(ROOT / "auth-edge/src/config")),
    }
    check(len(documented["auth-accounts"]) > 40 and len(documented["auth-edge"]) > 15,
          f"too few variables found in the config modules: {documented}")
    for binary, names in documented.items():
        check(names <= known[binary], f"{binary}: config names not among the known ones")
        for name in sorted(names - not_variables):
            check(f"`{name}`" in text, f"docs/configure.md does not document {name} ({binary})")


def anchors(path):
    """GitHub's heading anchors of a Markdown file."""
    out = set()
    inside = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def check_links():
    """Relative links of the docs, the READMEs and the changelog reach a file (and its heading);
    every alert's runbook is a heading of docs/troubleshooting.md."""
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "SECURITY.md", ROOT / "auth-edge/README.md",
             ROOT / "deploy/kustomize/README.md"] + sorted((ROOT / "docs").rglob("*.md"))
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            check(dest.exists(), f"{page.relative_to(ROOT)}: link to a missing file: {target}")
            if anchor and dest.suffix == ".md" and dest.exists():
                check(anchor in anchors(dest), f"{page.relative_to(ROOT)}: no heading #{anchor} in {file or page.name}")
    headings = anchors(ROOT / "docs/troubleshooting.md")
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            runbook = rule.get("annotations", {}).get("runbook", "")
            check(runbook == f"docs/troubleshooting.md#{rule['alert'].lower()}"
                  and rule["alert"].lower() in headings, f"alert {rule['alert']}: runbook {runbook!r}")


def main():
    check_metrics()
    check_links()
    known = variables()
    served = json.loads(OPENAPI.read_text())
    openapi_paths = sorted(served["paths"])
    check(len(openapi_paths) > 10, f"OpenAPI document lists {len(openapi_paths)} paths")
    # The committed reference document is exactly what the service serves (compared as JSON).
    committed_path = ROOT / "docs/openapi.json"
    if os.environ.get("AUTH_WRITE_OPENAPI") == "1":
        committed_path.write_text(json.dumps(served, indent=2, ensure_ascii=False) + "\n")
    committed = json.loads(committed_path.read_text()) if committed_path.is_file() else None
    check(committed == served,
          "docs/openapi.json equals the served document (regenerate: "
          "AUTH_WRITE_OPENAPI=1 scripts/check-deploy)")
    feed = re.search(r'REVOCATION_STREAM_PATH: &str = "([^"]+)"',
                     (ROOT / "shared/src/revocation_feed.rs").read_text())
    check(feed, "REVOCATION_STREAM_PATH not found in shared/src/revocation_feed.rs")
    feed_path = feed.group(1) if feed else "/api/v1/auth/revocations/stream"
    out = rendered()
    check({"overlays-embedded", "overlays-production"} <= set(out), f"rendered: {sorted(out)}")
    crd_schemas.self_test()
    check({"examples-envoy-gateway", "examples-istio"} <= set(out), f"rendered: {sorted(out)}")
    for name, docs in out.items():
        check_crds(name, docs)
        ran = check_containers(docs, known)
        check_ingresses(name, docs, openapi_paths, feed_path)
        check_workloads(name, docs)
        if name == "overlays-production":
            check_production(docs, ran)
        if name == "overlays-embedded":
            check_embedded(docs, ran)
        print(f"  {name}: {len(docs)} objects checked")
    check_docs(known)
    for f in failures:
        print(f"FAIL {f}")
    print(f"check_deploy: {checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


main()
