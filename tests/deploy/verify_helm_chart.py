#!/usr/bin/env python3
"""Static checks of the spanrelay Helm chart, without helm or a cluster.

usage: verify_helm_chart.py CHART_DIR SPANRELAYD

Helm is not a build dependency, so this reads the chart the way a reviewer
would: Chart.yaml and values.yaml parse and carry what the chart needs; every
.Values path written in a template exists in values.yaml; template actions
are balanced; the daemon configuration held in values.yaml (and in each
examples/values-*.yaml laid over it) passes `spanrelayd --check-config`; the
pod's grace period covers the flush; the Dockerfile exposes the ports the
chart declares; the native-sidecar example is a pod with a restartable init
container. Each failed check prints what is wrong; the exit status is 1 when
any check failed.
"""

import os
import re
import subprocess
import sys
import tempfile

import yaml

CHECKS = []


def check(name):
    def register(fn):
        CHECKS.append((name, fn))
        return fn

    return register


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def merge_values(base, override):
    """Helm's coalescing: maps merge key by key, a null removes the key."""
    out = dict(base)
    for key, value in (override or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def dig(tree, *keys, default=None):
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return default
        tree = tree[key]
    return tree


DURATION_UNITS_MS = {"h": 3600000, "m": 60000, "s": 1000, "ms": 1}


def duration_ms(text):
    """spanrelayd durations: whole numbers with h, m, s, ms, e.g. 1m30s."""
    text = str(text)
    if not re.fullmatch(r"([0-9]+(h|ms|m|s))+", text):
        raise ValueError(f"cannot read the duration {text!r}")
    return sum(int(n) * DURATION_UNITS_MS[u] for n, u in re.findall(r"([0-9]+)(h|ms|m|s)", text))


def endpoint_port(endpoint):
    match = re.search(r":([0-9]+)$", str(endpoint or ""))
    return int(match.group(1)) if match else None


def is_loopback(endpoint):
    host = re.sub(r":[0-9]+$", "", str(endpoint))
    return host.startswith("127.") or host in ("localhost", "[::1]")


class Chart:
    def __init__(self, chart_dir, daemon):
        self.dir = os.path.abspath(chart_dir)
        self.daemon = daemon
        self.repo = os.path.dirname(os.path.dirname(self.dir))
        self.templates_dir = os.path.join(self.dir, "templates")
        self.examples_dir = os.path.join(self.dir, "examples")
        self.meta = load_yaml(os.path.join(self.dir, "Chart.yaml"))
        self.values = load_yaml(os.path.join(self.dir, "values.yaml"))

    def templates(self):
        """(name, text) of every file under templates/."""
        for name in sorted(os.listdir(self.templates_dir)):
            path = os.path.join(self.templates_dir, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    yield name, f.read()

    def example_values(self):
        """[(label, merged values)]: values.yaml alone, then each examples/values-*.yaml over it."""
        out = [("values.yaml", self.values)]
        if os.path.isdir(self.examples_dir):
            for name in sorted(os.listdir(self.examples_dir)):
                if name.startswith("values-") and name.endswith(".yaml"):
                    override = load_yaml(os.path.join(self.examples_dir, name))
                    out.append((f"examples/{name}", merge_values(self.values, override)))
        return out


# --- Chart.yaml and values.yaml ------------------------------------------------


@check("Chart.yaml has the required fields")
def check_chart_yaml(chart):
    meta, problems = chart.meta, []
    if not isinstance(meta, dict):
        return ["Chart.yaml is not a map"]
    if meta.get("apiVersion") != "v2":
        problems.append(f"apiVersion must be v2 (Helm 3), got {meta.get('apiVersion')!r}")
    if meta.get("name") != os.path.basename(chart.dir):
        problems.append(f"name {meta.get('name')!r} differs from the chart directory {os.path.basename(chart.dir)!r}")
    if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+([-+].*)?", str(meta.get("version", ""))):
        problems.append(f"version must be SemVer 2, got {meta.get('version')!r}")
    if not isinstance(meta.get("appVersion"), str) or not meta["appVersion"]:
        problems.append("appVersion must be a quoted, non-empty string (image.tag defaults to it)")
    if meta.get("type", "application") != "application":
        problems.append(f"type must be application, got {meta.get('type')!r}")
    cmake = os.path.join(chart.repo, "CMakeLists.txt")
    if os.path.exists(cmake):
        with open(cmake, encoding="utf-8") as f:
            match = re.search(r"project\(\s*spanrelay\s+VERSION\s+([0-9.]+)", f.read())
        if match and match.group(1) != meta.get("appVersion"):
            problems.append(f"appVersion {meta.get('appVersion')!r} differs from the daemon's version {match.group(1)} (CMakeLists.txt)")
    return problems


REQUIRED_VALUES = [
    "mode", "image.repository", "image.tag", "image.pullPolicy", "config", "config.exporter",
    "config.telemetry.metrics.endpoint", "config.service.shutdown_timeout", "upstreamSecret.name",
    "upstreamSecret.mountPath", "socketDir.hostPath", "socketDir.mountPath", "spool.volume",
    "resources", "podSecurityContext", "securityContext", "terminationGracePeriodSeconds",
    "preStopSleepSeconds", "probes.liveness", "probes.readiness", "serviceAccount.create",
    "podAnnotations", "podLabels", "priorityClassName", "nodeSelector", "tolerations", "affinity",
    "updateStrategy", "service.internalTrafficPolicy", "serviceMonitor.enabled", "prometheusRule.enabled",
]


@check("values.yaml has the required keys and a locked-down securityContext")
def check_values_yaml(chart):
    values, problems = chart.values, []
    if not isinstance(values, dict):
        return ["values.yaml is not a map"]
    for path in REQUIRED_VALUES:
        if dig(values, *path.split("."), default=KeyError) is KeyError:
            problems.append(f"values.yaml lacks {path}")
    if values.get("mode") not in ("daemonset", "sidecar"):
        problems.append(f"mode must be daemonset or sidecar, got {values.get('mode')!r}")
    if values.get("serviceMonitor", {}).get("enabled") is not False:
        problems.append("serviceMonitor.enabled must default to false (needs the Prometheus Operator CRDs)")
    if values.get("prometheusRule", {}).get("enabled") is not False:
        problems.append("prometheusRule.enabled must default to false")
    if dig(values, "service", "internalTrafficPolicy") != "Local":
        problems.append("service.internalTrafficPolicy must default to Local (each app reaches its own node's relay)")
    sc = values.get("securityContext") or {}
    expected = {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
    }
    for key, want in expected.items():
        if sc.get(key) is not want:
            problems.append(f"securityContext.{key} must be {want}")
    if not isinstance(sc.get("runAsUser"), int) or sc.get("runAsUser") == 0:
        problems.append("securityContext.runAsUser must be a non-zero uid")
    if "ALL" not in (dig(sc, "capabilities", "drop") or []):
        problems.append("securityContext.capabilities.drop must contain ALL")
    if dig(sc, "seccompProfile", "type") != "RuntimeDefault":
        problems.append("securityContext.seccompProfile.type must be RuntimeDefault")
    return problems


# --- Templates -------------------------------------------------------------------

ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
COMMENT = re.compile(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", re.S)
VALUES_PATH = re.compile(r"\bValues((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
# dig "k1" "k2" ... DEFAULT <...>Values.path
DIG = re.compile(r'\bdig((?:\s+"[^"]*")+)\s+(?:[$.\w]*\.)?Values((?:\.[A-Za-z_]\w*)+)')
FILES_GET = re.compile(r'\.Files\.Get\s+"([^"]+)"')


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def lookup(values, path):
    """True when the dotted path exists in values (every step a map key)."""
    node = values
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


@check("every .Values path used in a template exists in values.yaml")
def check_values_paths(chart):
    problems = []
    for name, text in chart.templates():
        text = COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for action in ACTION.finditer(text):
            body = action.group(1)
            for match in VALUES_PATH.finditer(body):
                path = match.group(1).lstrip(".").split(".")
                if not lookup(chart.values, path):
                    problems.append(f"templates/{name}:{line_of(text, action.start())}: .Values.{'.'.join(path)} is not in values.yaml")
            for match in DIG.finditer(body):
                keys = QUOTED.findall(match.group(1))[:-1]  # the last quoted argument is the default
                base = match.group(2).lstrip(".").split(".")
                if not lookup(chart.values, base + keys):
                    problems.append(f"templates/{name}:{line_of(text, action.start())}: dig path {'.'.join(base + keys)} is not in values.yaml")
    return problems


@check("template actions are balanced and every if/with/range/define/block has its end")
def check_template_structure(chart):
    problems = []
    for name, text in chart.templates():
        where = f"templates/{name}"
        stripped = COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        if "/*" in "".join(ACTION.findall(stripped)):
            problems.append(f"{where}: a comment is not closed as */}}")
        opens, closes = stripped.count("{{"), stripped.count("}}")
        if opens != closes:
            problems.append(f"{where}: {opens} '{{{{' but {closes} '}}}}'")
            continue
        stack = []
        for action in ACTION.finditer(stripped):
            body = action.group(1)
            line = line_of(stripped, action.start())
            if "{{" in body:
                problems.append(f"{where}:{line}: '{{{{' inside an action (unclosed action before it?)")
                break
            words = body.strip().lstrip("-").strip().rstrip("-").split()
            keyword = words[0] if words else ""
            if keyword in ("if", "with", "range", "define", "block"):
                if keyword == "define" and stack:
                    problems.append(f"{where}:{line}: define inside {stack[-1][0]} (line {stack[-1][1]})")
                stack.append((keyword, line))
            elif keyword == "else":
                if not stack or stack[-1][0] not in ("if", "with", "range"):
                    problems.append(f"{where}:{line}: else outside if/with/range")
            elif keyword == "end":
                if not stack:
                    problems.append(f"{where}:{line}: end without an open block")
                else:
                    stack.pop()
        for keyword, line in stack:
            problems.append(f"{where}:{line}: {keyword} has no end")
    return problems


@check("plain YAML files parse (templates without actions, examples/, files/)")
def check_plain_yaml(chart):
    problems, paths = [], []
    for name, text in chart.templates():
        if name.endswith((".yaml", ".yml")) and "{{" not in text:
            paths.append(os.path.join(chart.templates_dir, name))
    for sub in ("examples", "files"):
        folder = os.path.join(chart.dir, sub)
        if os.path.isdir(folder):
            paths += [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith((".yaml", ".yml"))]
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                list(yaml.safe_load_all(f))
        except (OSError, yaml.YAMLError) as error:
            problems.append(f"{os.path.relpath(path, chart.dir)}: {error}")
    return problems


@check("files read with .Files.Get exist in the chart (alert rules included)")
def check_files_get(chart):
    problems = []
    for name, text in chart.templates():
        for match in FILES_GET.finditer(text):
            path = os.path.join(chart.dir, match.group(1))
            if not os.path.isfile(path):  # follows symlinks, as helm does
                problems.append(f"templates/{name}: .Files.Get {match.group(1)!r}: no such file (or a dangling symlink)")
                continue
            rules = load_yaml(path)
            groups = rules.get("groups") if isinstance(rules, dict) else None
            if "alert" in match.group(1) and not (isinstance(groups, list) and groups and all(
                    isinstance(r, dict) and "expr" in r and ("alert" in r or "record" in r)
                    for g in groups for r in (g.get("rules") or []))):
                problems.append(f"{match.group(1)}: not a Prometheus rule file (groups[].rules[] with alert/record and expr)")
    return problems


@check("the chart's contract is in the templates")
def check_contract(chart):
    text = "\n".join(t for _, t in chart.templates())
    wanted = {
        "checksum/config": "a checksum/config pod annotation (config changes roll the pods)",
        "kind: DaemonSet": "the DaemonSet",
        "internalTrafficPolicy:": "the Service's internalTrafficPolicy",
        "restartPolicy: Always": "the native sidecar container (restartPolicy: Always)",
        "path: /healthz": "the liveness probe on /healthz",
        "path: /readyz": "the readiness probe on /readyz",
        "preStop:": "the preStop hook",
        "terminationGracePeriodSeconds:": "terminationGracePeriodSeconds",
        "kind: ServiceMonitor": "the optional ServiceMonitor",
        "kind: ConfigMap": "the ConfigMap with the daemon's configuration",
        'define "spanrelay.sidecarContainer"': "the spanrelay.sidecarContainer helper",
    }
    problems = [f"missing: {why} ({needle!r})" for needle, why in wanted.items() if needle not in text]
    for helper in ("spanrelay.name", "spanrelay.fullname", "spanrelay.labels", "spanrelay.selectorLabels"):
        if f'define "{helper}"' not in text:
            problems.append(f"templates/_helpers.tpl does not define {helper}")
    for name in ("NOTES.txt", "_helpers.tpl"):
        if not os.path.isfile(os.path.join(chart.templates_dir, name)):
            problems.append(f"templates/{name} is missing")
    if not os.path.isfile(os.path.join(chart.dir, ".helmignore")):
        problems.append(".helmignore is missing")
    return problems


# --- The daemon configuration ----------------------------------------------------

ENV_REF = re.compile(r"(?<!\$)\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
FILE_REF = re.compile(r"(?<!\$)\$\{file:([^}]+)\}")


def stand_in_for(key_path, exporter_type):
    """A value for an unset ${env:NAME} that the key it appears under accepts."""
    last = key_path[-1] if key_path else ""
    if last == "endpoint":
        if key_path[0] == "exporter":
            return "http://upstream.invalid:4318" if exporter_type == "otlp_http" else "upstream.invalid:4317"
        return "127.0.0.1:0"
    if re.search(r"timeout|interval|wait|elapsed|threshold", last):
        return "1s"
    if re.search(r"size|limit|bytes", last):
        return "1MiB"
    return "placeholder"


def environment_for(config, values):
    """The environment spanrelayd needs to expand config's ${env:...} references."""
    env = {e["name"]: str(e["value"]) for e in values.get("extraEnv") or [] if isinstance(e, dict) and "value" in e}
    exporter_type = dig(config, "exporter", "type")
    stubbed = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + [str(k)])
        elif isinstance(node, list):
            for v in node:
                walk(v, path)
        elif isinstance(node, str):
            for name, default in ENV_REF.findall(node):
                if name not in env and not default:
                    env[name] = stand_in_for(path, exporter_type)
                    stubbed.append(name)

    walk(config, [])
    return env, stubbed


def rendered_config(values):
    """values.config as the chart renders it: upstreamSecret.headers become ${file:...} headers."""
    config = dict(values.get("config") or {})
    headers = dig(values, "upstreamSecret", "headers") or {}
    if headers and isinstance(config.get("exporter"), dict):
        exporter = dict(config["exporter"])
        merged = dict(exporter.get("headers") or {})
        mount = str(dig(values, "upstreamSecret", "mountPath")).rstrip("/")
        for name, source in headers.items():
            merged[name] = f"{source.get('prefix') or ''}${{file:{mount}/{source.get('key')}}}"
        exporter["headers"] = merged
        config["exporter"] = exporter
    return config


@check("the daemon config in values.yaml (and examples/values-*.yaml) passes spanrelayd --check-config")
def check_daemon_config(chart):
    if not (os.path.isfile(chart.daemon) and os.access(chart.daemon, os.X_OK)):
        return [f"{chart.daemon}: not an executable spanrelayd"]
    problems = []
    for label, values in chart.example_values():
        config = rendered_config(values)
        with tempfile.TemporaryDirectory() as tmp:
            # Secrets are not here: point each ${file:...} at a stand-in file.
            stand_ins = {}

            def to_stand_in(match):
                path = stand_ins.setdefault(match.group(1), os.path.join(tmp, f"file{len(stand_ins)}"))
                with open(path, "w", encoding="utf-8") as f:
                    f.write("placeholder\n")
                return "${file:" + path + "}"

            text = FILE_REF.sub(to_stand_in, yaml.safe_dump(config, sort_keys=False))
            config_path = os.path.join(tmp, "spanrelay.yaml")
            with open(config_path, "w", encoding="utf-8") as f:
                f.write(text)
            env, stubbed = environment_for(config, values)
            run = subprocess.run([chart.daemon, "--config", config_path, "--check-config"],
                                 env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                                 capture_output=True, text=True, timeout=60)
            if run.returncode != 0:
                note = f" (stand-ins for unset variables: {', '.join(stubbed)})" if stubbed else ""
                problems.append(f"{label}: config: spanrelayd --check-config exited {run.returncode}{note}: "
                                f"{(run.stderr or run.stdout).strip().replace(config_path, '<config>')}")
    return problems


@check("the chart's ports, socket paths and spool agree with its config")
def check_config_vs_chart(chart):
    problems = []
    for label, values in chart.example_values():
        config = values.get("config") or {}
        metrics = dig(config, "telemetry", "metrics", "endpoint", default="127.0.0.1:8888")
        if not endpoint_port(metrics):
            problems.append(f"{label}: config.telemetry.metrics.endpoint {metrics!r} has no fixed port (probes need it)")
        elif is_loopback(metrics):
            problems.append(f"{label}: config.telemetry.metrics.endpoint {metrics!r} is loopback: the kubelet probes the pod IP")
        if values.get("mode") == "daemonset" and dig(values, "service", "enabled"):
            for receiver, default in (("grpc", "127.0.0.1:4317"), ("http", "127.0.0.1:4318")):
                endpoint = dig(config, "receivers", "otlp", receiver, "endpoint", default=default)
                if endpoint and is_loopback(endpoint):
                    problems.append(f"{label}: receivers.otlp.{receiver}.endpoint {endpoint!r} is loopback, unreachable through the Service")
        socket_dir = str(dig(values, "socketDir", "mountPath")).rstrip("/")
        for receiver in ("grpc", "http"):
            socket = dig(config, "receivers", "otlp", receiver, "unix_socket")
            if socket and os.path.dirname(socket) != socket_dir:
                problems.append(f"{label}: receivers.otlp.{receiver}.unix_socket {socket!r} is not in socketDir.mountPath {socket_dir!r}")
        spool = dig(config, "exporter", "queue", "spool", "dir")
        if spool and not str(spool).startswith("/"):
            problems.append(f"{label}: exporter.queue.spool.dir {spool!r} must be absolute (the spool volume is mounted there)")
    return problems


@check("terminationGracePeriodSeconds exceeds preStopSleepSeconds + service.shutdown_timeout")
def check_grace_period(chart):
    problems = []
    for label, values in chart.example_values():
        shutdown = dig(values, "config", "service", "shutdown_timeout", default="10s")
        try:
            needed_ms = duration_ms(shutdown) + 1000 * int(values.get("preStopSleepSeconds") or 0)
        except ValueError as error:
            problems.append(f"{label}: config.service.shutdown_timeout: {error}")
            continue
        grace = values.get("terminationGracePeriodSeconds")
        if not isinstance(grace, int) or grace * 1000 <= needed_ms:
            problems.append(f"{label}: terminationGracePeriodSeconds {grace!r} must exceed preStopSleepSeconds + "
                            f"shutdown_timeout ({needed_ms / 1000:g}s), or the kubelet kills the flush")
    return problems


# --- Dockerfile and the sidecar example -------------------------------------------


def chart_ports(values):
    config = values.get("config") or {}
    endpoints = [dig(config, "receivers", "otlp", "grpc", "endpoint", default="127.0.0.1:4317"),
                 dig(config, "receivers", "otlp", "http", "endpoint", default="127.0.0.1:4318"),
                 dig(config, "telemetry", "metrics", "endpoint", default="127.0.0.1:8888")]
    return {endpoint_port(e) for e in endpoints if e}


@check("the Dockerfile exposes the chart's ports and runs spanrelayd as the chart's user")
def check_dockerfile(chart):
    path = os.path.join(chart.repo, "Dockerfile")
    if not os.path.isfile(path):
        return [f"{path}: missing"]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    instructions = [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    problems = []
    exposed = {int(p.split("/")[0]) for line in instructions if line.upper().startswith("EXPOSE ")
               for p in line.split()[1:]}
    wanted = chart_ports(chart.values)
    if exposed != wanted:
        problems.append(f"Dockerfile EXPOSE {sorted(exposed)} != the ports of values.yaml's config {sorted(wanted)}")
    if not any(re.fullmatch(r'ENTRYPOINT\s+\[\s*"/usr/bin/spanrelayd"\s*\]', line) for line in instructions):
        problems.append('Dockerfile: no ENTRYPOINT ["/usr/bin/spanrelayd"]')
    users = [line.split()[1] for line in instructions if line.upper().startswith("USER ")]
    uid = str(dig(chart.values, "securityContext", "runAsUser"))
    if not users or users[-1].split(":")[0] != uid:
        problems.append(f"Dockerfile: the last USER {users[-1] if users else None!r} is not securityContext.runAsUser {uid}")
    if str(dig(chart.values, "image", "repository")) not in text:
        problems.append(f"Dockerfile does not name the chart's image {dig(chart.values, 'image', 'repository')!r}")
    if "SPANRELAY_BUILD_TESTS=OFF" not in text:
        problems.append("Dockerfile does not configure with -DSPANRELAY_BUILD_TESTS=OFF")
    return problems


def pod_spec(doc):
    if not isinstance(doc, dict):
        return None
    if doc.get("kind") == "Pod":
        return doc.get("spec")
    return dig(doc, "spec", "template", "spec") or dig(doc, "spec", "jobTemplate", "spec", "template", "spec")


@check("examples/ holds a pod with spanrelayd as a native sidecar")
def check_sidecar_example(chart):
    path = os.path.join(chart.examples_dir, "sidecar-pod.yaml")
    if not os.path.isfile(path):
        return [f"{os.path.relpath(path, chart.dir)}: missing"]
    with open(path, encoding="utf-8") as f:
        specs = [s for s in (pod_spec(d) for d in yaml.safe_load_all(f)) if s]
    if not specs:
        return ["examples/sidecar-pod.yaml: no Pod or pod template"]
    problems = []
    for spec in specs:
        sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        if not sidecars:
            problems.append("examples/sidecar-pod.yaml: no initContainer with restartPolicy: Always")
            continue
        sidecar = sidecars[0]
        if not str(sidecar.get("image", "")).startswith(str(dig(chart.values, "image", "repository")) + ":"):
            problems.append(f"sidecar image {sidecar.get('image')!r} is not the chart's image.repository")
        volumes = {v.get("name") for v in spec.get("volumes") or []}
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            for mount in container.get("volumeMounts") or []:
                if mount.get("name") not in volumes:
                    problems.append(f"container {container.get('name')}: volumeMount {mount.get('name')!r} has no volume")
        probes = {dig(sidecar, p, "httpGet", "path") for p in ("livenessProbe", "readinessProbe")}
        if probes != {"/healthz", "/readyz"}:
            problems.append(f"sidecar probes {sorted(map(str, probes))} are not /healthz and /readyz")
        apps = spec.get("containers") or []
        if not any(e.get("name") == "OTEL_EXPORTER_OTLP_ENDPOINT" for c in apps for e in c.get("env") or []):
            problems.append("no application container sets OTEL_EXPORTER_OTLP_ENDPOINT")
    return problems


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        chart = Chart(argv[1], argv[2])
    except (OSError, yaml.YAMLError) as error:
        print(f"FAIL Chart.yaml / values.yaml do not load: {error}")
        return 1
    failed = 0
    for name, fn in CHECKS:
        try:
            problems = fn(chart)
        except Exception as error:  # a check that crashes is a failed check, with its reason
            problems = [f"{type(error).__name__}: {error}"]
        print(f"{'FAIL' if problems else 'ok  '} {name}")
        for problem in problems:
            print(f"     - {problem}")
        failed += bool(problems)
    print(f"{len(CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
