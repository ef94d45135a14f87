#!/usr/bin/env python3
"""The fleet's manifests stay consistent with each other and with the daemon: compose.yaml's
fleet profile, deploy/compose/nginx.conf and deploy/kubernetes/*.yaml.

The manifest checks always run. Then three daemons start on loopback ports (against a fake
Douban that blocks every listing) and deploy/compose/nginx.conf runs in front of them with
the real nginx: requests go through, a 503 answered by every replica stays a 503 and takes no
replica out, and stopping one replica leaves the others answering. Without nginx that part
is skipped (exit 77) once the manifest checks have passed.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest as dt  # noqa: E402

sys.path.insert(0, os.path.join(dt.REPO, "tests"))
from fake_upstream import FakeDouban  # noqa: E402

SKIP = 77
try:
    import yaml
except ImportError:
    print("FAIL: no PyYAML (deps/test.txt installs python3-yaml)")
    sys.exit(dt.MISSING)

checks = dt.Checks("deploy_manifests")
check = checks.check
moviesd = dt.moviesd_bin()
# The daemon reads every MOVIESD_* variable: none of the caller's may leak into its runs here.
clean_env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIESD_")}


def repo_file(*parts):
    return os.path.join(dt.REPO, *parts)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def seconds(text):
    """Compose durations as this project writes them: 30s, 1m30s, or a bare number."""
    if str(text).isdigit():
        return int(text)
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(text))
    if not m or not any(m.groups()):
        raise ValueError(f"duration {text!r}")
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


def env_dict(env):
    """A compose environment (mapping or KEY=VALUE list) or a k8s env list, as a dict."""
    if isinstance(env, dict):
        return {k: "" if v is None else str(v) for k, v in env.items()}
    out = {}
    for item in env or []:
        if isinstance(item, dict):
            out[item["name"]] = str(item.get("value", ""))
        else:
            k, _, v = str(item).partition("=")
            out[k] = v
    return out


def check_config(env, what):
    """`moviesd --check-config` with env added: the daemon would start with it."""
    r = subprocess.run([moviesd, "--check-config"], env={**clean_env, **env},
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"{what}: moviesd --check-config accepts its environment",
          r.stderr.strip())


# --- The daemon's own word: its settings and their defaults -------------------------------
table = subprocess.run([moviesd, "--settings-markdown"], capture_output=True, text=True,
                       check=True, env=clean_env, timeout=30).stdout
settings = {}  # MOVIESD_KEY -> default text
for key, envname, default in re.findall(r"^\| `([a-z_]+)` \| `--[a-z-]+` \| `(MOVIESD_[A-Z_]+)` \| "
                                        r"(?:`([^`]*)`|none) \|", table, re.M):
    settings[envname] = default
check(len(settings) >= 30 and "MOVIESD_EXPECTED_REPLICAS" in settings,
      "moviesd --settings-markdown lists the settings", f"{len(settings)} found")
known_env = set(settings) | {"MOVIESD_CONFIG"}  # MOVIESD_CONFIG names the file
drain_default = int(settings.get("MOVIESD_DRAIN_TIMEOUT", "0"))
check(drain_default > 0, "drain_timeout has a default", settings.get("MOVIESD_DRAIN_TIMEOUT"))

dockerfile = open(repo_file("Dockerfile"), encoding="utf-8").read()
user = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", dockerfile, re.M)
check(len(user) == 1 and user[0][0] != "0", "the image runs as a numeric non-root USER", user)
image_uid = int(user[0][0]) if user else None
image_gid = int(user[0][1]) if user and user[0][1] else None
final_base = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)[-1]

# --- compose.yaml ---------------------------------------------------------------------------
compose = yaml.safe_load(open(repo_file("compose.yaml"), encoding="utf-8"))
services = compose["services"]
single = services.get("moviesd", {})
check("profiles" not in single, "the single moviesd service has no profile (docker compose up -d)")
fleet = {n: s for n, s in services.items() if "fleet" in (s.get("profiles") or [])}
replicas = sorted(n for n, s in fleet.items() if s.get("image") == single.get("image"))
others = sorted(set(fleet) - set(replicas))
check(len(replicas) == 3, "the fleet profile has three moviesd replicas", replicas)
redis_names = [n for n in others if "redis" in str(fleet[n].get("image", ""))]
lb_names = [n for n in others if "nginx" in str(fleet[n].get("image", ""))]
check(len(redis_names) == 1 and len(lb_names) == 1 and len(others) == 2,
      "the fleet profile has one redis and one nginx load balancer besides", others)
redis_svc = redis_names[0] if redis_names else None
lb = lb_names[0] if lb_names else None

publishing = sorted(n for n, s in fleet.items() if s.get("ports"))
check(publishing == [lb], "in the fleet only the load balancer publishes a port", publishing)


def host_ports(svc):
    return {str(p).rsplit(":", 1)[0].split(":")[-1] for p in svc.get("ports") or []}


lb_ports = list(fleet.get(lb, {}).get("ports") or [])
check(len(lb_ports) == 1 and str(lb_ports[0]).startswith("127.0.0.1:"),
      "the load balancer publishes one loopback port", lb_ports)
clash = host_ports(fleet.get(lb, {})) & set().union(
    *[host_ports(s) for n, s in services.items() if "profiles" not in s])
check(not clash, "the load balancer's port is not one the default services publish", clash)

for name, svc in services.items():
    for key in env_dict(svc.get("environment")):
        if key.startswith("MOVIESD_"):
            check(key in known_env, f"compose {name}: {key} is a setting of the daemon")

# Settings that may never differ between the single service and a replica.
hardening = ["read_only", "cap_drop", "security_opt", "tmpfs", "pids_limit", "ulimits",
             "mem_limit", "stop_signal", "stop_grace_period"]
for name in replicas:
    svc = fleet[name]
    env = env_dict(svc.get("environment"))
    url = urllib.parse.urlsplit(env.get("MOVIESD_REDIS_URL", ""))
    check(url.scheme == "redis" and url.hostname == redis_svc and (url.port or 6379) == 6379,
          f"compose {name}: MOVIESD_REDIS_URL names the redis service",
          env.get("MOVIESD_REDIS_URL"))
    check(env.get("MOVIESD_EXPECTED_REPLICAS") == str(len(replicas)),
          f"compose {name}: MOVIESD_EXPECTED_REPLICAS is the number of replicas ({len(replicas)})",
          env.get("MOVIESD_EXPECTED_REPLICAS"))
    # Behind the load balancer every client has its address.
    check("MOVIESD_MAX_CONNECTIONS_PER_IP" not in env,
          f"compose {name}: no per-IP connection limit behind the load balancer")
    for key in hardening:
        check(svc.get(key) == single.get(key), f"compose {name}: {key} as the single service's",
              f"{svc.get(key)!r} != {single.get(key)!r}")
    check(seconds(svc.get("stop_grace_period", "10s")) > drain_default,
          f"compose {name}: stop_grace_period outlasts drain_timeout ({drain_default} s)")
    check(env.get("MOVIESD_LISTEN", "").endswith(":8080"), f"compose {name}: listens on 8080")
    check_config(env, f"compose {name}")

redis = fleet.get(redis_svc, {})
command = redis.get("command") or []


def no_persistence(args):
    """redis-server arguments that save no snapshot and keep no append-only file."""
    args = [str(a) for a in args or []]
    pairs = dict(zip(args, args[1:]))
    return pairs.get("--save", None) == "" and pairs.get("--appendonly") == "no"


check(no_persistence(command), "compose redis: no persistence (--save \"\" --appendonly no)",
      command)
check(redis.get("read_only") is True and redis.get("cap_drop") == ["ALL"],
      "compose redis: read-only, no capabilities")
check("redis-cli" in str(redis.get("healthcheck", {}).get("test"))
      and "ping" in str(redis.get("healthcheck", {}).get("test")),
      "compose redis: healthcheck redis-cli ping")

lbsvc = fleet.get(lb, {})
mounts = [str(v) for v in lbsvc.get("volumes") or []]
check(any(v.startswith("./deploy/compose/nginx.conf:") for v in mounts),
      "compose lb: mounts deploy/compose/nginx.conf", mounts)
deps = lbsvc.get("depends_on") or []
check(sorted(deps) == replicas, "compose lb: depends on every replica", deps)
for name in replicas:
    if isinstance(deps, dict) and deps.get(name, {}).get("condition") == "service_healthy":
        # podman drops an OCI image's HEALTHCHECK: the compose file must say it.
        test = fleet[name].get("healthcheck", {}).get("test") or []
        check("health" in test and any(str(t).endswith("moviesd") for t in test),
              f"compose {name}: a healthcheck of its own (moviesd health), which lb waits for",
              test)
check(lbsvc.get("read_only") is True and lbsvc.get("cap_drop") == ["ALL"],
      "compose lb: read-only, no capabilities")

# --- deploy/compose/nginx.conf --------------------------------------------------------------
nginx_conf = open(repo_file("deploy", "compose", "nginx.conf"), encoding="utf-8").read()
directives = re.sub(r"#[^\n]*", "", nginx_conf)  # what nginx reads, for the checks below
upstream = re.search(r"upstream\s+(\w+)\s*\{(.*?)\}", directives, re.S)
servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)([^;]*);", upstream.group(2) if upstream else "",
                     re.M)
check(sorted(s[0] for s in servers) == replicas and all(s[1] == "8080" for s in servers),
      "nginx.conf: the upstream is every replica on 8080", servers)
check(all("max_fails=" in s[2] and "fail_timeout=" in s[2] for s in servers),
      "nginx.conf: passive health (max_fails, fail_timeout) on every server")
check(upstream is not None and re.search(r"^\s*keepalive\s+\d+;", upstream.group(2), re.M),
      "nginx.conf: keepalive connections to the replicas")
for directive in [r"proxy_http_version 1\.1;", r'proxy_set_header Connection "";',
                  r"proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;",
                  r"proxy_next_upstream error timeout;"]:
    check(re.search(directive, directives), f"nginx.conf: {directive}")
# A 503 counted as a failure takes every replica out while Douban blocks them all.
check(not re.search(r"proxy_next_upstream[^;]*http_503", directives),
      "nginx.conf: a 503 does not count as a failed replica")
check(re.search(r"^\s*listen\s+8080;", directives, re.M)
      and any(str(p).endswith(":8080") for p in lb_ports),
      "nginx.conf listens on the port compose publishes")

# --- deploy/kubernetes ----------------------------------------------------------------------
k8s_dir = repo_file("deploy", "kubernetes")
docs = []
for f in sorted(os.listdir(k8s_dir)):
    if f.endswith(".yaml"):
        docs += load_all(os.path.join(k8s_dir, f))
check(not os.path.exists(os.path.join(k8s_dir, "README.md")), "deploy/kubernetes has no README")
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
deployments = by_kind.get("Deployment", {})
k8s_services = by_kind.get("Service", {})
check("moviesd" in deployments and "moviesd" in k8s_services,
      "deploy/kubernetes: a moviesd Deployment and Service")


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def service_links(svcs):
    """What the kubelet puts in a pod's environment for each Service, unless told not to."""
    env = {}
    for name, svc in svcs.items():
        n = name.upper().replace("-", "_")
        ports = svc["spec"]["ports"]
        env[f"{n}_SERVICE_HOST"] = "10.0.0.10"
        env[f"{n}_SERVICE_PORT"] = str(ports[0]["port"])
        env[f"{n}_PORT"] = f"tcp://10.0.0.10:{ports[0]['port']}"
        for p in ports:
            base = f"{n}_PORT_{p['port']}_TCP"
            env.update({base: f"tcp://10.0.0.10:{p['port']}", base + "_PROTO": "tcp",
                        base + "_PORT": str(p["port"]), base + "_ADDR": "10.0.0.10"})
            if p.get("name"):
                env[f"{n}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
    return env


dep = deployments.get("moviesd", {})
spec = dep.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
pod_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
containers = pod.get("containers") or [{}]
c = next((x for x in containers if x.get("image", "").startswith("moviesd")), containers[0])
env = env_dict(c.get("env"))
for key in env:
    if key.startswith("MOVIESD_"):
        check(key in known_env, f"k8s moviesd: {key} is a setting of the daemon")
check(str(spec.get("replicas")) == env.get("MOVIESD_EXPECTED_REPLICAS"),
      "k8s moviesd: replicas == MOVIESD_EXPECTED_REPLICAS",
      f"{spec.get('replicas')} vs {env.get('MOVIESD_EXPECTED_REPLICAS')}")
surge = spec.get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%")
check(str(surge) in ("0", "0%"), "k8s moviesd: a rollout never runs more pods than replicas", surge)
check(c.get("image") == "moviesd:latest", "k8s moviesd: image moviesd:latest", c.get("image"))
check(env.get("MOVIESD_LISTEN") == "0.0.0.0:8080", "k8s moviesd: MOVIESD_LISTEN=0.0.0.0:8080")
ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
check(8080 in ports.values(), "k8s moviesd: container port 8080", ports)

url = urllib.parse.urlsplit(env.get("MOVIESD_REDIS_URL", ""))
rsvc = k8s_services.get(url.hostname or "")
check(url.scheme == "redis" and rsvc is not None
      and any(p["port"] == (url.port or 6379) for p in rsvc["spec"]["ports"]),
      "k8s moviesd: MOVIESD_REDIS_URL names a Service and its port", env.get("MOVIESD_REDIS_URL"))
if rsvc is not None:
    backing = [d for d in deployments.values()
               if selects(rsvc["spec"].get("selector"),
                          d["spec"]["template"]["metadata"].get("labels", {}))]
    rpod = backing[0]["spec"]["template"]["spec"] if len(backing) == 1 else {}
    check(rpod and "redis" in rpod["containers"][0]["image"]
          and backing[0]["spec"]["replicas"] == 1,
          "k8s: the redis Service selects the one-replica redis Deployment")
    if rpod:
        rc = rpod["containers"][0]
        check(no_persistence(rc.get("args")), "k8s redis: no persistence", rc.get("args"))
        check(all("emptyDir" in v for v in rpod.get("volumes") or []),
              "k8s redis: no persistent volume")

msvc = k8s_services.get("moviesd", {}).get("spec", {})
check(msvc.get("type", "ClusterIP") == "ClusterIP" and selects(msvc.get("selector"), pod_labels),
      "k8s: the moviesd Service is a ClusterIP selecting the Deployment's pods")
svc_ports = msvc.get("ports") or [{}]
target = svc_ports[0].get("targetPort")
check(svc_ports[0].get("port") == 80 and (ports.get(target) == 8080 or target == 8080),
      "k8s: the moviesd Service maps port 80 to the container's 8080", svc_ports)
for pdb in by_kind.get("PodDisruptionBudget", {}).values():
    check(selects(pdb["spec"]["selector"].get("matchLabels"), pod_labels),
          f"k8s: PodDisruptionBudget {pdb['metadata']['name']} selects the moviesd pods")

probes = {}
for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
    probe = c.get(kind)
    if probe is None:
        continue
    get = probe.get("httpGet", {})
    port = get.get("port")
    check(port == 8080 or ports.get(port) == 8080, f"k8s moviesd: {kind} probes port 8080", port)
    probes[kind] = get.get("path")
check(probes.get("livenessProbe") == "/healthz" and probes.get("readinessProbe") == "/readyz"
      and probes.get("startupProbe") in (None, "/healthz"),
      "k8s moviesd: liveness /healthz, readiness /readyz", probes)

pre_stop = c.get("lifecycle", {}).get("preStop", {})
wait = 0
if "sleep" in pre_stop:
    wait = int(pre_stop["sleep"]["seconds"])
elif "exec" in pre_stop:
    cmd = pre_stop["exec"]["command"]
    check(cmd[0] in ("/bin/sleep", "sleep") and final_base.startswith("debian:"),
          "k8s moviesd: preStop runs sleep, which the image's base has", f"{cmd} on {final_base}")
    wait = int(cmd[1])
check(wait > 0, "k8s moviesd: preStop waits before SIGTERM", pre_stop)
grace = pod.get("terminationGracePeriodSeconds", 30)
check(grace > wait + drain_default,
      f"k8s moviesd: terminationGracePeriodSeconds outlasts preStop + drain_timeout "
      f"({wait} + {drain_default} s)", grace)

psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
check(psc.get("runAsNonRoot", csc.get("runAsNonRoot")) is True, "k8s moviesd: runAsNonRoot")
uid = csc.get("runAsUser", psc.get("runAsUser"))
check(uid is None or uid == image_uid, "k8s moviesd: runAsUser is the image's USER", uid)
gid = csc.get("runAsGroup", psc.get("runAsGroup"))
check(gid is None or gid == image_gid, "k8s moviesd: runAsGroup is the image's group", gid)
check(csc.get("readOnlyRootFilesystem") is True, "k8s moviesd: readOnlyRootFilesystem")
check(csc.get("allowPrivilegeEscalation") is False, "k8s moviesd: allowPrivilegeEscalation false")
check(csc.get("capabilities", {}).get("drop") == ["ALL"], "k8s moviesd: capabilities drop ALL")
check(csc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") == "RuntimeDefault",
      "k8s moviesd: seccompProfile RuntimeDefault")
res = c.get("resources", {})
check(res.get("requests") and res.get("limits", {}).get("memory"),
      "k8s moviesd: resource requests and a memory limit", res)
for name, d in deployments.items():
    for ct in d["spec"]["template"]["spec"]["containers"]:
        sc = ct.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True
              and sc.get("allowPrivilegeEscalation") is False
              and sc.get("capabilities", {}).get("drop") == ["ALL"],
              f"k8s {name}/{ct['name']}: read-only root, no privilege gain, no capabilities")

# The kubelet adds the Services' links to the environment unless enableServiceLinks is false:
# the daemon must start with everything its pod would get.
links = service_links(k8s_services) if pod.get("enableServiceLinks", True) is not False else {}
check_config({**links, **env}, "k8s moviesd" + (" (with the Services' links)" if links else ""))

# --- The probe paths, asked of real daemons, and nginx.conf in front of them ---------------


def get(url, timeout=10):
    """(status, headers, body) of a GET; status 0 when the connection itself failed."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (OSError, ValueError):
        return 0, {}, b""


def start_daemon(upstream):
    proc = dt.Process([moviesd, "--listen", "127.0.0.1:0", "--upstream", upstream,
                       "--min-request-interval-ms", "0", "--retries", "0",
                       "--expected-replicas", str(len(replicas) or 3)], env=clean_env)
    line = proc.stderr.wait_for("listening on 127.0.0.1:", 15)
    if line is None:
        proc.kill()
        raise RuntimeError("moviesd did not start:\n" + proc.stderr.text())
    return proc, int(re.search(r"listening on 127\.0\.0\.1:(\d+)", line).group(1))


fake = FakeDouban()
# Douban refusing every listing: a cold city is answered 503 upstream_blocked by any replica.
fake.add_fault(r"^/cinema/later/", 403)
fake.start()
daemons = []
nginx = None
tmp = tempfile.mkdtemp(prefix="moviesd-lb-")
# nginx started as root runs its workers as nobody, which must reach its temporary files.
os.chmod(tmp, 0o755)
skipped = None
try:
    for _ in range(3):
        daemons.append(start_daemon(fake.base_url))
    for kind, path in sorted(probes.items()):
        for proc, port in daemons:
            status = get(f"http://127.0.0.1:{port}{path}")[0]
            check(status == 200, f"the daemon answers the {kind}'s {path} with 200", status)

    nginx_bin = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if nginx_bin is None:
        skipped = "no nginx installed: deploy/compose/nginx.conf not run"
    else:
        lb_port = dt.free_port()
        names = iter(daemons)
        conf = re.sub(r"(^\s*server\s+)[\w.-]+:8080",
                      lambda m: f"{m.group(1)}127.0.0.1:{next(names)[1]}", nginx_conf, flags=re.M)
        conf = re.sub(r"^(\s*listen\s+)8080;", rf"\g<1>127.0.0.1:{lb_port};", conf, flags=re.M)
        # The container's tmpfs /tmp becomes this run's directory.
        conf = conf.replace("/tmp/", tmp + "/")
        conf_path = os.path.join(tmp, "nginx.conf")
        with open(conf_path, "w", encoding="utf-8") as f:
            f.write(conf)
        t = subprocess.run([nginx_bin, "-t", "-e", "stderr", "-p", tmp, "-c", conf_path],
                           capture_output=True, text=True, timeout=30, env=clean_env)
        check(t.returncode == 0, "nginx -t accepts deploy/compose/nginx.conf", t.stderr.strip())
        nginx = dt.Process([nginx_bin, "-e", "stderr", "-p", tmp, "-c", conf_path,
                            "-g", "daemon off;"], env=clean_env)
        base = f"http://127.0.0.1:{lb_port}"
        check(dt.wait_http(base + "/healthz", 15), "GET /healthz through nginx: 200",
              nginx.stderr.text())
        ok = [get(base + "/readyz")[0] for _ in range(6)]
        check(ok == [200] * 6, "GET /readyz through nginx, six times: 200", ok)

        # Every replica answers a cold city 503 while blocked: the client gets that 503 with
        # its Retry-After, and no replica is taken out for it.
        blocked = [get(base + "/movies?city=beijing") for _ in range(8)]
        check(all(s == 503 and b'"upstream_blocked"' in body and h.get("Retry-After")
                  for s, h, body in blocked),
              "a blocked cold city through nginx, eight times: 503 upstream_blocked, Retry-After",
              [(s, body[:80]) for s, h, body in blocked])
        after = [get(base + "/healthz")[0] for _ in range(6)]
        check(after == [200] * 6, "after those 503s, GET /healthz through nginx: 200", after)

        stopped, _ = daemons[0]
        status = stopped.terminate(timeout=drain_default + 5)
        check(status == 0, "the first replica stops on SIGTERM with exit 0", status)
        after = [get(base + "/healthz")[0] for _ in range(9)]
        check(after == [200] * 9, "one replica stopped, GET /healthz through nginx: 200", after)
finally:
    if nginx is not None:
        nginx.proc.send_signal(signal.SIGQUIT)  # nginx's graceful stop
        if nginx.wait(10) is None:
            print("nginx had to be killed")
    for proc, _ in daemons:
        proc.terminate()
    fake.stop()
    shutil.rmtree(tmp, ignore_errors=True)

result = checks.finish()
if result == 0 and skipped:
    print("SKIP:", skipped)
    sys.exit(SKIP)
sys.exit(result)
