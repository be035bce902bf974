#!/usr/bin/env bash
# scripts/cluster-local.sh: the compose profile "cluster" (README "Scaling out")
# run as plain processes on loopback, for a machine without Docker and as a
# check of docker-compose.yml itself: the three NATS nodes get exactly the
# command lines of nats1..nats3 and the replicas exactly the environment of
# sf1..sf3 (read from docker-compose.yml; only host names become 127.0.0.1
# ports, and the database a fresh one on the local PostgreSQL).
#
# Then it does what the README says happens: instances spread over the three
# replicas, any replica answers, `kill -9` of a replica moves its instances
# to the survivors within about 4/3 of the lease TTL (requests in the gap get
# 503 + Retry-After, an idempotent retry afterwards gets the first message
# id), and killing a NATS node loses nothing. It prints what it measured.
#
#   scripts/cluster-local.sh                 # 9 sandbox instances, default TTL (10 s)
#   INSTANCES=30 TTL=3s scripts/cluster-local.sh
#
# Needs: Go, python3 with PyYAML (Debian: python3-yaml), curl, PostgreSQL on
# 127.0.0.1:5432 where it may create a database (PGADMIN_URL).
set -euo pipefail
cd "$(dirname "$0")/.."

INSTANCES=${INSTANCES:-9}
TTL=${TTL:-}
PGADMIN_URL=${PGADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
work=$(mktemp -d /tmp/statusflow-cluster.XXXXXX)
pids=()
keep=""
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "${db:-}" ]; then psql -q "$PGADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; fi
	if [ -n "$keep" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

say() { printf '%s  %s\n' "$(date +%T)" "$*"; }

for port in 14221 14222 14223 16221 16222 16223 18221 18222 18223 18081 18082 18083; do
	if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "port $port is in use (an earlier run still going?)"; exit 1; fi
done
say "building statusflow and nats-server (the version go.mod pins) into $work"
go build -o "$work/statusflow" .
go build -o "$work/nats-server" github.com/nats-io/nats-server/v2

export STATUSFLOW_ACCOUNT_TOKEN=${STATUSFLOW_ACCOUNT_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export STATUSFLOW_NATS_PASSWORD=${STATUSFLOW_NATS_PASSWORD:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
db=sfcluster_$$
psql -q "$PGADMIN_URL" -c "CREATE DATABASE $db" >/dev/null
pgurl="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"

# Ports on loopback: NATS client 14221+i, routes 16221+i, monitoring 18221+i;
# replicas' HTTP 18081+i (compose publishes 8081..8083).
python3 - "$work" "$pgurl" <<'PY'
import os, re, shlex, sys, yaml
work, pgurl = sys.argv[1], sys.argv[2]
doc = yaml.safe_load(open("docker-compose.yml"))
svc = doc["services"]
def interp(s):
    # ${VAR}, ${VAR:-default}, ${VAR:?message} as compose does
    def rep(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        v = os.environ.get(name, "")
        if op == ":?" and not v: sys.exit(f"compose needs {name}: {arg}")
        if op == ":-" and not v: return arg or ""
        return v
    return re.sub(r"\$\{([A-Z_0-9]+)(?:(:[-?])([^}]*))?\}", rep, str(s))
hosts = {}
for i in (1, 2, 3):
    hosts[f"nats{i}:4222"] = f"127.0.0.1:{14220+i}"
    hosts[f"nats{i}:6222"] = f"127.0.0.1:{16220+i}"
def local(s):
    for k, v in hosts.items(): s = s.replace(k, v)
    return s
for i in (1, 2, 3):
    n = svc[f"nats{i}"]
    assert "cluster" in n.get("profiles", []), f"nats{i} is not in profile cluster"
    args = [local(interp(a)) for a in n["command"]]
    # container paths and ports become this machine's
    args = [f"{work}/nats{i}" if a == "/data" else a for a in args]
    args = [f"nats://127.0.0.1:{16220+i}" if a == "nats://0.0.0.0:6222" else a for a in args]
    args = [str(18220+i) if a == "8222" else a for a in args]
    args += ["-a", "127.0.0.1", "-p", str(14220+i)]
    open(f"{work}/nats{i}.args", "w").write("\n".join(args) + "\n")
    s = svc[f"sf{i}"]
    assert "cluster" in s.get("profiles", []), f"sf{i} is not in profile cluster"
    env = {k: local(interp(v)) for k, v in s["environment"].items()}
    assert env.get("STATUSFLOW_CLUSTER_REPLICA") == f"sf{i}", env
    env["STATUSFLOW_DATABASE_URL"] = pgurl
    env["STATUSFLOW_ADDR"] = f"127.0.0.1:{18080+i}"
    env["STATUSFLOW_DATA_DIR"] = f"{work}/sf{i}"
    if os.environ.get("TTL"): env["STATUSFLOW_CLUSTER_LEASE_TTL"] = os.environ["TTL"]
    open(f"{work}/sf{i}.env", "w").write("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
PY

declare -A sfpid natspid
start_nats() {
	local i=$1
	mapfile -t args <"$work/nats$i.args"
	"$work/nats-server" "${args[@]}" >"$work/nats$i.log" 2>&1 &
	natspid[$i]=$!
	pids+=($!)
}
start_sf() {
	local i=$1
	mkdir -p "$work/sf$i"
	(source "$work/sf$i.env" && exec "$work/statusflow") >"$work/sf$i.log" 2>&1 &
	sfpid[$i]=$!
	pids+=($!)
}
for i in 1 2 3; do start_nats "$i"; done
for i in 1 2 3; do
	until curl -sf "http://127.0.0.1:$((18220 + i))/healthz" >/dev/null; do sleep 0.5; done
done
say "NATS cluster up (nats1..nats3, compose's command lines)"
for i in 1 2 3; do start_sf "$i"; done
for i in 1 2 3; do
	for _ in $(seq 240); do curl -sf "http://127.0.0.1:$((18080 + i))/healthz" >/dev/null && break; sleep 0.5; done
	curl -sf "http://127.0.0.1:$((18080 + i))/healthz" >/dev/null || { tail -20 "$work/sf$i.log"; exit 1; }
done
say "replicas up (sf1..sf3, compose's environment)"

auth=(-H "Authorization: Bearer $STATUSFLOW_ACCOUNT_TOKEN" -H "Content-Type: application/json")
api() { curl -s "${auth[@]}" "$@"; }
sf() { echo "http://127.0.0.1:$((18080 + $1))"; }

for n in $(seq "$INSTANCES"); do
	api -X POST "$(sf $(((n % 3) + 1)))/api/instance/new" -d "{\"name\":\"shop$n\",\"engine\":\"sandbox\"}" >/dev/null
done
sleep 2
owners() {
	api "$(sf "$1")/api/cluster" | python3 -c '
import json, sys, collections
r = json.load(sys.stdin)
if "data" not in r: sys.exit(f"GET /api/cluster: {r}")
d = r["data"]
c = collections.Counter(i["owner"] or "-" for i in d["instances"])
print(" ".join(f"{k}:{c[k]}" for k in sorted(c)), "| replicas:", ",".join(r["id"] for r in d["replicas"]))'
}
say "created $INSTANCES sandbox instances; owners: $(owners 1)"

# Placement spreads them (one move per replica per TTL/3).
ttl_s=$(api "$(sf 1)/api/cluster" | python3 -c 'import json,sys; t=json.load(sys.stdin)["data"]["leaseTtl"]; print(t)')
say "lease TTL $ttl_s; waiting for placement to settle"
sleep 15
say "owners after placement: $(owners 2)"

# Publish through every replica, for every instance.
publish() { # replica instance key -> "code messageId"
	curl -s -o "$work/out.json" -w '%{http_code}' "${auth[@]}" -H "Idempotency-Key: $3" \
		-X POST "$(sf "$1")/api/message/status/$2" -d '{"type":"text","message":"hello from the cluster","backgroundColor":"#336699"}'
	printf ' %s\n' "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print((d.get("data") or {}).get("messageId") or d.get("error",{}).get("status",""))' "$work/out.json")"
}
ok=0
for n in $(seq "$INSTANCES"); do for r in 1 2 3; do
	read -r code _ < <(publish "$r" "shop$n" "warm-$n-$r")
	[ "$code" = 200 ] && ok=$((ok + 1))
done; done
say "published through every replica: $ok of $((INSTANCES * 3)) answered 200"

victim=$(api "$(sf 1)/api/cluster" | python3 -c '
import json, sys, collections
d = json.load(sys.stdin)["data"]
c = collections.Counter(i["owner"] for i in d["instances"] if i["owner"])
print(c.most_common(1)[0][0])')
vi=${victim#sf}
survivor=$(( vi % 3 + 1 ))
inst=$(api "$(sf "$survivor")/api/cluster" | python3 -c "
import json, sys
d = json.load(sys.stdin)['data']
print(next(i['instance'] for i in d['instances'] if i['owner'] == '$victim'))")
read -r code first < <(publish "$survivor" "$inst" "before-kill")
say "through sf$survivor, $inst (owned by $victim): $code, message $first"

say "kill -9 $victim (pid ${sfpid[$vi]})"
t0=$(date +%s.%N)
kill -9 "${sfpid[$vi]}"
gap=0
while :; do
	left=$(api "$(sf "$survivor")/api/cluster" | python3 -c "
import json, sys
d = json.load(sys.stdin)['data']
print(sum(1 for i in d['instances'] if i['owner'] in ('$victim', '')))")
	[ "$left" = 0 ] && break
	code=$(curl -s -o /dev/null -D "$work/h" -w '%{http_code}' "${auth[@]}" -X POST "$(sf "$survivor")/api/message/status/$inst" \
		-H "Idempotency-Key: gap-$gap" -d '{"type":"text","message":"in the gap"}')
	if [ "$code" = 503 ] && [ $gap = 0 ]; then say "in the gap: 503, $(grep -i '^retry-after' "$work/h" | tr -d '\r')"; fi
	gap=$((gap + 1))
	sleep 0.5
done
t1=$(date +%s.%N)
say "all of $victim's instances owned by survivors after $(python3 -c "print(f'{$t1-$t0:.1f}')") s (TTL $ttl_s); owners: $(owners "$survivor")"
read -r code again < <(publish "$survivor" "$inst" "before-kill")
say "idempotent retry of the first request: $code, message $again ($([ "$again" = "$first" ] && echo same || echo DIFFERENT))"
ok=0
for n in $(seq "$INSTANCES"); do
	read -r code _ < <(publish "$survivor" "shop$n" "after-kill-$n")
	[ "$code" = 200 ] && ok=$((ok + 1))
done
say "after the failover: $ok of $INSTANCES instances published through sf$survivor"

# The worst NATS node to lose: the leader of the lease bucket's stream
# (nats-server elects a new one after 4-9 s of missed heartbeats, and no
# lease can be renewed or taken meanwhile).
leader=$(curl -s "http://127.0.0.1:18221/jsz?accounts=true&streams=true" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for a in d.get("account_details", []):
    for st in a.get("stream_detail", []):
        if st["name"] == "KV_statusflow_leases":
            print(st["cluster"]["leader"])')
li=${leader#nats}
[ -n "$li" ] || li=2
say "kill -9 nats$li (leader of the lease bucket KV_statusflow_leases)"
kill -9 "${natspid[$li]}"
t0=$(date +%s.%N)
declare -A codes=()
pending=$(seq "$INSTANCES")
while [ -n "$pending" ]; do
	next=""
	for n in $pending; do
		read -r code _ < <(publish "$survivor" "shop$n" "after-nats-$n")
		codes[$code]=$((${codes[$code]:-0} + 1))
		[ "$code" = 200 ] || next="$next $n"
	done
	pending=$next
	[ -z "$pending" ] && break
	if python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $t0 > 90 else 1)"; then break; fi
	sleep 1
done
t1=$(date +%s.%N)
summary=$(for c in "${!codes[@]}"; do printf '%s:%s ' "$c" "${codes[$c]}"; done)
say "with nats$li dead: every instance published through sf$survivor after $(python3 -c "print(f'{$t1-$t0:.1f}')") s (answers by HTTP status, retries included: $summary); owners: $(owners "$survivor")"
bad=$(for c in "${!codes[@]}"; do [ "$c" = 200 ] || [ "$c" = 503 ] || echo "$c"; done)
if [ "$again" != "$first" ] || [ -n "$pending" ] || [ -n "$bad" ]; then
	say "FAILED"
	keep=1
	exit 1
fi
say "done"
