"""Validates rendered Kubernetes manifests against the API schemas (run by scripts/check-deploy).

    validate_manifests.py FILE...

`kubernetes-validate --strict` (unknown fields are errors) for the oldest Kubernetes version the
manifests need (1.30: native sidecars, `preStop.sleep`) and the validator's newest. Every built-in
object must pass. The validator has no schemas for CRDs: the Traefik, Gateway API, Envoy Gateway and
Istio kinds are skipped explicitly, by kind and API group, and any other kind without a schema
fails, so a typo in `apiVersion` or `kind` cannot pass as "unknown CRD". (check_deploy.py checks
the Traefik kinds' content, and the others against the structural schemas of crd_schemas.py.) It
also proves that the validator rejects broken manifests.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

CRD_KINDS = {
    "Middleware": "traefik.io/",
    "IngressRoute": "traefik.io/",
    "Gateway": "gateway.networking.k8s.io/",
    "HTTPRoute": "gateway.networking.k8s.io/",
    "ReferenceGrant": "gateway.networking.k8s.io/",
    "SecurityPolicy": "gateway.envoyproxy.io/",
    "ClientTrafficPolicy": "gateway.envoyproxy.io/",
    "AuthorizationPolicy": "security.istio.io/",
}
VERSIONS = ["1.30.0", None]


def validate(files, version):
    cmd = [sys.executable, "-m", "kubernetes_validate", "--strict"]
    if version:
        cmd += ["-k", version]
    out = subprocess.run(cmd + [str(f) for f in files], capture_output=True, text=True)
    return out.returncode == 0, out.stdout + out.stderr


def main():
    files = [Path(f) for f in sys.argv[1:]]
    kinds = [d["kind"] for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    builtin = sum(1 for k in kinds if k not in CRD_KINDS)
    crds = len(kinds) - builtin
    for kind in ["Deployment", "Service", "Ingress", "NetworkPolicy", "PodDisruptionBudget", "Job",
                 "CronJob", "Role", "RoleBinding", "ServiceAccount", "ConfigMap"]:
        assert kind in kinds, f"no {kind} among the rendered manifests"
    for version in VERSIONS:
        label = version or "default"
        ok, output = validate(files, version)
        assert ok, f"kubernetes-validate {label} failed:\n{output}"
        passed = sum(1 for line in output.splitlines() if " passed for resource " in line)
        assert passed == builtin, f"{label}: {passed} of {builtin} built-in objects validated:\n{output}"
        skipped = [line for line in output.splitlines() if "Couldn't find schema" in line]
        assert len(skipped) == crds, f"{label}: {len(skipped)} skipped, {crds} CRD objects:\n{output}"
        for line in skipped:
            assert any(f"for kind {k} with api version {g}" in line for k, g in CRD_KINDS.items()), \
                f"{label}: a kind without a schema that is not an expected CRD: {line}"
        assert "ERROR" not in output, f"{label}:\n{output}"
        print(f"  kubernetes {label}: {passed} objects valid, {len(skipped)} CRD objects skipped")
    # The validator really rejects: an unknown field (strict mode) and a wrong type.
    with tempfile.TemporaryDirectory() as tmp:
        broken = {
            "unknown.yaml": "apiVersion: v1\nkind: Service\nmetadata: { name: x }\nspec:\n  portz: []\n",
            "type.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: x }\nspec:\n  replicas: two\n"
                         "  selector: { matchLabels: { a: b } }\n  template:\n    metadata: { labels: { a: b } }\n"
                         "    spec: { containers: [{ name: c, image: i }] }\n",
        }
        for name, text in broken.items():
            path = Path(tmp) / name
            path.write_text(text)
            ok, output = validate([path], None)
            assert not ok and "ERROR" in output, f"{name} passed:\n{output}"
    print(f"validate_manifests: {builtin} objects in {len(files)} files valid for {len(VERSIONS)} versions")


main()
