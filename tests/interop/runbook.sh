#!/usr/bin/env bash
# The runbook harness (issue 19): `cbr plan`'s migrate.sh, run unchanged with
# `bash migrate.sh` and the stock python-openstackclient as an operator runs
# it, against a real Keystone 30 and a real Cinder 29 on loopback, through a
# fault proxy in front of cinder-api. See README.md here ("The runbook
# harness") for the stack, the ports and the cases.
#
# env: CBR_BIN                 the cbr binary (default target/release/cbr, built when missing)
#      CBR_RUNBOOK_CASES       cases to run (default: all, see CASES below)
#      CBR_RUNBOOK_KS_PORT     Keystone (default 35000)
#      CBR_RUNBOOK_CINDER_PORT cinder-api (default 38776)
#      CBR_RUNBOOK_PROXY_PORT  the fault proxy, the catalog's volumev3 endpoint (default 38777)
#      CBR_RUNBOOK_OSC_OLD     the older client's pip requirement (default python-openstackclient==10.0.0)
#      CBR_RUNBOOK_RERUNS      re-runs allowed after a fault before giving up (default 3)
#      CBR_RUNBOOK_TIMEOUT     seconds one run of migrate.sh may take (default 600)
#      CBR_RUNBOOK_FAULT_BATCH the batch of the fault and kill cases: one (default: full-zlib alone,
#                              to fit CI's budget) or chain (full-zlib + incr1-zlib)
#      CBR_RUNBOOK_KEEP=1      keep the work directory (logs, databases, volumes) and say where
#      (argument `prepare`: make the venvs below and stop; tests/run.sh makes
#      them so while cargo compiles)
#      CBR_RUNBOOK_PATCH=FILE  SELF-TEST ONLY: a sed script applied to migrate.sh before it runs
#                              (to prove the stack with a hand-fixed script); every result is
#                              then marked "(patched)" and the last line says so
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
LAB=$ROOT/tests/interop
RS=$LAB/realstack
FIX=$ROOT/fixtures/cinder-29
CBR=${CBR_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/cbr}
KS_PORT=${CBR_RUNBOOK_KS_PORT:-35000}
CINDER_PORT=${CBR_RUNBOOK_CINDER_PORT:-38776}
PROXY_PORT=${CBR_RUNBOOK_PROXY_PORT:-38777}
ALL_CASES="main 504-show 504-restore 504-create drop-import kill preflight old-client"
CASES=" ${CBR_RUNBOOK_CASES:-$ALL_CASES} "
OSC_OLD_REQ=${CBR_RUNBOOK_OSC_OLD:-python-openstackclient==10.0.0}
RERUNS=${CBR_RUNBOOK_RERUNS:-3}
RUN_TIMEOUT=${CBR_RUNBOOK_TIMEOUT:-600}
VENVS=$ROOT/target/runbook-venvs
ADMIN_PW=runbook-admin
SRC=bcae33bdf5b84dc9ab9ca6518a438561   # the fixtures' source project
OTHER=77777777777777777777777777777777  # a second source project (full-bz2 rewritten into it)
ZSTD=f953a76b-dc56-43f9-8758-9be95e3dfd05   # full-zstd: "already on the target", skipped
T0=$(date +%s)
say() { echo "runbook: $*"; }
log() { echo "runbook [$(($(date +%s) - T0))s]: $*"; }
skip() { say "SKIPPED: $*"; exit 0; }
case_on() { case $CASES in *" $1 "*) return 0 ;; esac; return 1; }
for c in $CASES; do
  case " $ALL_CASES " in *" $c "*) ;; *) say "unknown case '$c' (cases: $ALL_CASES)"; exit 2 ;; esac
done

PREPARE=
[ "${1:-}" = prepare ] && PREPARE=1

# -- cbr ---------------------------------------------------------------------
if [ -z "$PREPARE" ] && [ ! -x "$CBR" ]; then
  log "building cbr (cargo build --release --locked)"
  cargo build --release --locked -q || { say "cannot build cbr"; exit 1; }
fi
CBR=$(cd "$(dirname "$CBR")" && pwd)/$(basename "$CBR")
command -v python3 >/dev/null || skip "no python3 on this machine"
command -v curl >/dev/null || skip "no curl on this machine"

# -- venvs (reused when present) ---------------------------------------------
# keystone: Keystone 30 + waitress (pure Python WSGI server: nothing to
# compile, and it keeps keep-alive connections properly, unlike uWSGI's
# --http-socket). cinder: Cinder 29 (target/interop-venv when complete).
# osc-current: the stock python-openstackclient 10.5.0 (openstacksdk 4.22.0,
# whose `volume backup record import` is broken), nothing else added.
# osc-old: an older client that imports through python-cinderclient.
mkvenv() {  # NAME CHECK_PYTHON_CODE PIP_ARGS...
  local name=$1 code=$2 t; shift 2
  "$VENVS/$name/bin/python" -c "$code" 2>/dev/null && return 0
  t=$(date +%s)
  log "installing $* into $VENVS/$name"
  rm -rf "${VENVS:?}/$name"
  mkdir -p "$VENVS"
  python3 -m venv "$VENVS/$name" || skip "python3 -m venv failed"
  "$VENVS/$name/bin/pip" install -q --disable-pip-version-check "$@" > "$VENVS/$name.pip.log" 2>&1 \
    || skip "pip could not install $* ($(grep -m1 -iE 'error|could not' "$VENVS/$name.pip.log" || tail -1 "$VENVS/$name.pip.log"))"
  "$VENVS/$name/bin/python" -c "$code" || skip "$name venv is incomplete after pip install $*"
  log "venv $name ready in $(($(date +%s) - t))s"
}
mkvenv keystone 'import keystone, waitress, keystoneclient' keystone==30.0.0 waitress
if "$ROOT/target/interop-venv/bin/python" -c 'import importlib.metadata as m, cinder, cinderclient; assert m.version("cinder") == "29.0.0"' 2>/dev/null \
   && [ -f "$ROOT/target/interop-venv/etc/cinder/api-paste.ini" ]; then
  CV=$ROOT/target/interop-venv
else
  mkvenv cinder 'import importlib.metadata as m, cinder, cinderclient; assert m.version("cinder") == "29.0.0"' cinder==29.0.0 python-cinderclient
  CV=$VENVS/cinder
fi
mkvenv osc-current 'import importlib.metadata as m; assert m.version("python-openstackclient") == "10.5.0"' python-openstackclient==10.5.0
if case_on old-client; then
  mkvenv osc-old "import importlib.metadata as m; assert m.version('python-openstackclient') == '${OSC_OLD_REQ##*==}'" "$OSC_OLD_REQ"
fi
[ -n "$PREPARE" ] && { log "venvs ready"; exit 0; }
ver() { "$1/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$2" 2>/dev/null; }
say "stack keystone $(ver "$VENVS/keystone" keystone), cinder $(ver "$CV" cinder), python-openstackclient $(ver "$VENVS/osc-current" python-openstackclient) (openstacksdk $(ver "$VENVS/osc-current" openstacksdk))"

# -- work dir, processes, cleanup -------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cbr-runbook.XXXXXX")
PGIDS=()
stop_group() {  # PGID: TERM the process group, then KILL after 10 s
  local g=$1
  kill -0 -- "-$g" 2>/dev/null || return 0
  kill -TERM -- "-$g" 2>/dev/null
  for _ in $(seq 1 40); do kill -0 -- "-$g" 2>/dev/null || return 0; sleep 0.25; done
  kill -KILL -- "-$g" 2>/dev/null
  for _ in $(seq 1 20); do kill -0 -- "-$g" 2>/dev/null || return 0; sleep 0.25; done
}
# shellcheck disable=SC2329  # (the EXIT trap calls it)
cleanup() {
  local g
  for g in "${PGIDS[@]}"; do stop_group "$g"; done
  if [ "${CBR_RUNBOOK_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# start LOG CMD...: CMD in a process group of its own (setsid); its pgid in $started
start() {
  local out=$1; shift
  setsid "$@" > "$out" 2>&1 < /dev/null &
  started=$!
  PGIDS+=("$started")
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$KS_PORT" "$CINDER_PORT" "$PROXY_PORT"; do
  port_free "$p" || { say "port 127.0.0.1:$p is in use (set CBR_RUNBOOK_*_PORT)"; say "0 passed, 1 failed"; exit 1; }
done
pass=0; fail=0
PATCH=${CBR_RUNBOOK_PATCH:-}
[ -z "$PATCH" ] || { PATCH=$(cd "$(dirname "$PATCH")" && pwd)/$(basename "$PATCH"); say "NOTE: SELF-TEST: migrate.sh is patched with $PATCH (not the runbook cbr wrote)"; }
ok() { echo "runbook: ok   $*${PATCH:+ (patched)}"; pass=$((pass + 1)); }
bad() { echo "runbook: FAIL $*${PATCH:+ (patched)}"; fail=$((fail + 1)); }
finish() { say "$pass passed, $fail failed${PATCH:+ (SELF-TEST: migrate.sh patched with $PATCH)}"; [ "$fail" -eq 0 ] && exit 0; exit 1; }
render() {  # TEMPLATE OUT NAME=VALUE...
  local in=$1 out=$2 kv args=(); shift 2
  for kv in "$@"; do args+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
  sed "${args[@]}" "$in" > "$out"
}

# -- Keystone (once per harness run) -----------------------------------------
KSRUN=$WORK/ks
mkdir -p "$KSRUN"/{log,keystone}
render "$RS/keystone.conf.in" "$KSRUN/keystone.conf" "KSRUN=$KSRUN"
KM=("$VENVS/keystone/bin/keystone-manage" --config-file "$KSRUN/keystone.conf")
# Keystone's database and keys are kept beside the venvs after the first
# run (keyed by the ports, which are in the catalog): db_sync and bootstrap
# take about a minute on a busy machine. Each run works on a copy.
KSCACHE=$VENVS/keystone-state-$KS_PORT-$PROXY_PORT
if [ -f "$KSCACHE/keystone/keystone.db" ]; then
  cp -r "$KSCACHE/keystone/." "$KSRUN/keystone/"
  log "keystone: state from $KSCACHE"
else
  log "keystone: db_sync, fernet_setup, credential_setup, bootstrap"
  { "${KM[@]}" db_sync && "${KM[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" \
    && "${KM[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" \
    && "${KM[@]}" bootstrap --bootstrap-password "$ADMIN_PW" --bootstrap-region-id RegionOne \
         --bootstrap-admin-url "http://127.0.0.1:$KS_PORT/v3/" --bootstrap-internal-url "http://127.0.0.1:$KS_PORT/v3/" \
         --bootstrap-public-url "http://127.0.0.1:$KS_PORT/v3/"; } > "$KSRUN/log/manage.log" 2>&1 \
    || { bad "keystone-manage failed: $(tail -1 "$KSRUN/log/manage.log")"; finish; }
  NEW_KS=1
fi
start "$KSRUN/log/waitress.log" env OS_KEYSTONE_CONFIG_FILES="$KSRUN/keystone.conf" \
  "$VENVS/keystone/bin/python" "$RS/keystone_wsgi.py" "$KS_PORT"
KS_PGID=$started
for _ in $(seq 1 120); do curl -fsS "http://127.0.0.1:$KS_PORT/v3" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fsS "http://127.0.0.1:$KS_PORT/v3" >/dev/null 2>&1 || { bad "keystone did not come up: $(tail -3 "$KSRUN/log/waitress.log")"; finish; }
KSETUP=("$VENVS/keystone/bin/python" "$RS/ksetup.py" "http://127.0.0.1:$KS_PORT/v3" "$ADMIN_PW")
"${KSETUP[@]}" setup "http://127.0.0.1:$PROXY_PORT/v3/%(project_id)s" > "$KSRUN/ids.env" 2> "$KSRUN/log/ksetup.log" \
  || { bad "keystone setup failed: $(tail -1 "$KSRUN/log/ksetup.log")"; finish; }
# shellcheck disable=SC1091
. "$KSRUN/ids.env"
if [ "${NEW_KS:-0}" = 1 ]; then
  rm -rf "$KSCACHE.tmp" && mkdir -p "$KSCACHE.tmp" && cp -r "$KSRUN/keystone" "$KSCACHE.tmp/" \
    && rm -rf "$KSCACHE" && mv "$KSCACHE.tmp" "$KSCACHE"
fi
log "keystone up on :$KS_PORT (waitress, pgid $KS_PGID): target-a $TARGET_A, target-b $TARGET_B"

# -- Cinder (a fresh one per case) -------------------------------------------
CINDER_ETC=$CV/etc/cinder
CINDER_PGID=
PROXY_PGID=
render "$RS/cinder.conf.in" "$WORK/template.conf" "RUN=$WORK/template" "CINDER_ETC=$CINDER_ETC" \
  "CINDER_PORT=$CINDER_PORT" "KS_PORT=$KS_PORT" "SHARE=$WORK/template/share"
mkdir -p "$WORK/template"/{log,cinder}
# Cinder's empty database, made once (kept beside the venvs); each case starts from a copy.
CDBCACHE=$VENVS/cinder-29-empty.db
if [ -f "$CDBCACHE" ]; then
  cp "$CDBCACHE" "$WORK/template/cinder/cinder.db"
else
  log "cinder-manage db sync"
  "$CV/bin/cinder-manage" --config-file "$WORK/template.conf" db sync > "$WORK/template/log/dbsync.log" 2>&1 \
    || { bad "cinder-manage db sync failed: $(tail -1 "$WORK/template/log/dbsync.log")"; finish; }
  cp "$WORK/template/cinder/cinder.db" "$CDBCACHE.tmp" && mv "$CDBCACHE.tmp" "$CDBCACHE"
fi
token() {
  curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' "http://127.0.0.1:$KS_PORT/v3/auth/tokens" -d \
    "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$ADMIN_PW\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" \
    | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p'
}
stop_cinder() {
  [ -n "$CINDER_PGID" ] && stop_group "$CINDER_PGID"
  [ -n "$PROXY_PGID" ] && stop_group "$PROXY_PGID"
  CINDER_PGID=; PROXY_PGID=
}
# cinder_up CASE: a fresh Cinder (database from the template, a fresh copy of
# the share, no volumes) and a fresh fault proxy; sets R (the case's dir).
cinder_up() {
  local c=$1 tok
  stop_cinder
  R=$WORK/$c
  mkdir -p "$R"/{log,cinder/lock,volumes,backup-mnt,home}
  cp "$WORK/template/cinder/cinder.db" "$R/cinder/cinder.db"
  cp -r "$FIX/share" "$R/share"
  render "$RS/cinder.conf.in" "$R/cinder.conf" "RUN=$R" "CINDER_ETC=$CINDER_ETC" \
    "CINDER_PORT=$CINDER_PORT" "KS_PORT=$KS_PORT" "SHARE=$R/share"
  : > "$R/proxy.log"; echo '[]' > "$R/faults.json"
  for _ in $(seq 1 40); do port_free "$CINDER_PORT" && port_free "$PROXY_PORT" && break; sleep 0.25; done
  start "$R/log/cinder-stdout.log" env PYTHONPATH="$RS" PYTHONDONTWRITEBYTECODE=1 "$CV/bin/python" "$RS/cinderstack.py" --config-file "$R/cinder.conf"
  CINDER_PGID=$started
  start "$R/log/proxy.log" python3 "$RS/faultproxy.py" "$PROXY_PORT" "$CINDER_PORT" "$R/proxy.log" "$R/faults.json"
  PROXY_PGID=$started
  tok=$(token)
  [ -n "$tok" ] || { echo "no token from keystone"; return 1; }
  # ready: cinder-api answers, the scheduler knows the file backend's pool,
  # and cinder-volume and cinder-backup are up (bounded: 120 s)
  for _ in $(seq 1 240); do
    kill -0 "$CINDER_PGID" 2>/dev/null || { echo "cinder died: $(tail -3 "$R/log/cinder-stdout.log")"; return 1; }
    if curl -fsS -H "X-Auth-Token: $tok" "http://127.0.0.1:$CINDER_PORT/v3/$ADMIN_PROJECT/scheduler-stats/get_pools" 2>/dev/null | grep -q '"name"' \
       && curl -fsS -H "X-Auth-Token: $tok" "http://127.0.0.1:$CINDER_PORT/v3/$ADMIN_PROJECT/os-services" 2>/dev/null \
          | python3 -c 'import json,sys; s=json.load(sys.stdin)["services"]; up={x["binary"] for x in s if x["state"]=="up"}; sys.exit(0 if {"cinder-volume","cinder-backup","cinder-scheduler"} <= up else 1)' 2>/dev/null \
       && curl -fsS "http://127.0.0.1:$PROXY_PORT/" >/dev/null 2>&1; then
      : > "$R/proxy.log"
      return 0
    fi
    sleep 0.5
  done
  echo "cinder not ready after 120 s: $(tail -3 "$R/log/cinder.log")"
  return 1
}

# -- the batches -------------------------------------------------------------
"$CBR" rewrite -q --project-id "$OTHER" --emit export-json "$FIX/records/full-bz2.export.json" > "$WORK/full-bz2.other.json" \
  || { bad "cbr rewrite --project-id $OTHER full-bz2 failed"; finish; }
printf '[{"ID": "%s", "Name": "already here", "Status": "available"}]\n' "$ZSTD" > "$WORK/target-backups.json"
# plan CASE BATCH: $R/migrate.sh and $R/plan.json. BATCH "two": full-zlib +
# incr1-zlib -> target-a, full-bz2 (source project OTHER) -> target-b,
# full-zstd skipped (already on the target). BATCH "chain": full-zlib +
# incr1-zlib -> target-a, full-zstd skipped. BATCH "one": full-zlib ->
# target-a, full-zstd skipped.
plan() {
  local args=(--share "$R/share" --map-project "$SRC=$TARGET_A" --target-backups "$WORK/target-backups.json")
  local recs=("$FIX/records/full-zlib.export.json" "$FIX/records/full-zstd.export.json")
  [ "$2" = one ] || recs+=("$FIX/records/incr1-zlib.export.json")
  if [ "$2" = two ]; then args+=(--map-project "$OTHER=$TARGET_B"); recs+=("$WORK/full-bz2.other.json"); fi
  "$CBR" plan "${args[@]}" "${recs[@]}" > "$R/migrate.sh" 2> "$R/plan.stderr" \
    && "$CBR" plan --format json "${args[@]}" "${recs[@]}" > "$R/plan.json" 2>> "$R/plan.stderr" || return 1
  [ -z "$PATCH" ] || sed -i -f "$PATCH" "$R/migrate.sh"
}
# runbook OSC_VENV N: `bash migrate.sh`, unchanged, as an operator runs it:
# the client's venv and cbr on PATH, admin password credentials in OS_*, a
# HOME of its own (no clouds.yaml). Output in $R/run-N.{out,err}; rc in $rc.
renv() {  # OSC_VENV: the operator's environment in RENV (an env -i command)
  RENV=(env -i HOME="$R/home" LANG=C.UTF-8 PATH="$1/bin:$(dirname "$CBR"):/usr/local/bin:/usr/bin:/bin"
    OS_AUTH_URL="http://127.0.0.1:$KS_PORT/v3" OS_USERNAME=admin OS_PASSWORD="$ADMIN_PW" OS_PROJECT_NAME=admin
    OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne
    OS_INTERFACE=public CBR_WAIT_SECS="${CBR_WAIT_SECS:-300}")
}
runbook() {
  local t=$SECONDS
  renv "$1"
  (cd "$R" && "${RENV[@]}" timeout -k 10 "$RUN_TIMEOUT" bash migrate.sh > "run-$2.out" 2> "run-$2.err" < /dev/null)
  rc=$?
  echo "  run $2: exit $rc after $((SECONDS - t))s; last line: $(tail -1 "$R/run-$2.err" 2>/dev/null | cut -c1-300)"
}
lines() { wc -l < "$R/proxy.log" | tr -d ' '; }
writes() { python3 "$RS/verify.py" writes "$R/proxy.log" "${1:-0}"; }
verify() {  # LABEL: one ok/FAIL per backup of the plan
  local l
  while IFS= read -r l; do
    case $l in "ok "*) ok "${l#ok }" ;; "FAIL "*) bad "${l#FAIL }" ;; *) echo "  $l" ;; esac
  done < <(python3 "$RS/verify.py" check "$1" "$R/cinder/cinder.db" "$R/volumes" "$R/proxy.log" "$R/plan.json" "$FIX/manifest.json" 2>&1)
}
# rerun_until_ok LABEL OSC_VENV: re-run (at most RERUNS times) until exit 0
rerun_until_ok() {
  local n=1
  while [ "$rc" -ne 0 ] && [ "$n" -le "$RERUNS" ]; do n=$((n + 1)); runbook "$2" "$n"; done
  if [ "$rc" -eq 0 ]; then ok "$1: migrate.sh exits 0 after $((n - 1)) re-run(s)"
  else bad "$1: migrate.sh still exits $rc after $RERUNS re-runs: $(tail -1 "$R/run-$n.err" | cut -c1-300)"; fi
}
show_errors() {  # the distinct error lines of the runs (not the trace)
  cat "$R"/run-*.err 2>/dev/null | grep -v '^+' | sort | uniq -c | sort -rn | head -5 | cut -c1-300 | sed 's/^/  stderr: /'
}
case_start() {  # CASE BATCH
  log "== case $1"
  if ! cinder_up "$1" > "$WORK/up.log" 2>&1; then bad "$1: the stack did not start: $(tail -1 "$WORK/up.log")"; return 1; fi
  if ! plan "$1" "$2"; then bad "$1: cbr plan failed: $(tail -1 "$R/plan.stderr")"; return 1; fi
  log "  cinder fresh (pgid $CINDER_PGID), proxy :$PROXY_PORT, plan: $(tail -1 "$R/plan.stderr")"
}
# fault RULE_ID METHOD PATH_RE ACTION: the proxy fails the first match once
fault() { printf '[{"id": "%s", "method": "%s", "path": "%s", "action": "%s", "times": 1}]\n' "$@" > "$R/faults.json"; }
fired_check() {  # CASE: did the fault fire?
  local f
  f=$(python3 "$RS/verify.py" fired "$R/proxy.log")
  if [ -n "$f" ]; then ok "$1: fault fired: $f"; else bad "$1: the fault never fired (no request matched $(cat "$R/faults.json"))"; fi
}
OSC=$VENVS/osc-current
FB=${CBR_RUNBOOK_FAULT_BATCH:-one}
case $FB in one|chain) ;; *) say "CBR_RUNBOOK_FAULT_BATCH must be one or chain"; exit 2 ;; esac
UUID='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

if case_on main; then
  if case_start main two; then
    runbook "$OSC" 1
    if [ "$rc" -eq 0 ]; then ok "main: migrate.sh exits 0"; else bad "main: migrate.sh exits $rc"; show_errors; fi
    verify main
    n=$(lines)
    runbook "$OSC" 2
    w=$(writes "$n")
    if [ "$rc" -eq 0 ] && [ -z "$w" ]; then ok "main: a re-run exits 0 and changes nothing (no POST/PUT/DELETE)"
    else bad "main: the re-run exits $rc and made $(printf '%s' "$w" | grep -c .) change request(s)${w:+: $(echo "$w" | head -3 | tr '\n' ';')}"; fi
    verify main-rerun
  fi
fi

# fault_case CASE RULE_METHOD RULE_PATH ACTION
fault_case() {
  if case_start "$1" "$FB"; then
    fault "$1" "$2" "$3" "$4"
    runbook "$OSC" 1
    fired_check "$1"
    rerun_until_ok "$1" "$OSC"
    [ "$rc" -eq 0 ] || show_errors
    verify "$1"
  fi
}
case_on 504-show && fault_case 504-show GET "^/v3/[^/]+/volumes/$UUID([?]|\$)" 504
case_on 504-restore && fault_case 504-restore POST "/backups/$UUID/restore\$" forward-504
case_on 504-create && fault_case 504-create POST "^/v3/[^/]+/volumes\$" forward-504
case_on drop-import && fault_case drop-import POST "/backups/import_record\$" forward-drop

if case_on kill; then
  if case_start kill "$FB"; then
    renv "$OSC"
    cd "$R" && start run-1.err "${RENV[@]}" bash migrate.sh && cd "$ROOT" || exit 2
    pg=$started   # the script's process group (setsid)
    killed=0
    for _ in $(seq 1 600); do
      if [ "$(python3 "$RS/verify.py" seen "$R/proxy.log" POST '/restore$')" -gt 0 ]; then
        kill -KILL -- "-$pg" 2>/dev/null && killed=1
        { wait "$pg"; } 2>/dev/null   # reap it without bash's "Killed" line
        break
      fi
      kill -0 "$pg" 2>/dev/null || break
      sleep 0.5
    done
    if [ "$killed" = 1 ]; then
      ok "kill: migrate.sh killed (SIGKILL to its process group) after its first restore POST: $(python3 "$RS/verify.py" seen "$R/proxy.log" POST '/restore$') restore POST(s) so far"
      rc=1
    else
      bad "kill: the script was not killed mid-restore: no restore POST seen (it exited, or 300 s passed): $(grep -v '^+' "$R/run-1.err" | tail -1 | cut -c1-300)"
      rc=1
      stop_group "$pg"
    fi
    rerun_until_ok kill "$OSC"
    [ "$rc" -eq 0 ] || show_errors
    verify kill
  fi
fi

if case_on preflight; then
  if case_start preflight two; then
    "${KSETUP[@]}" revoke target-b 2>> "$R/log/ksetup.log" || bad "preflight: could not revoke admin's role on target-b"
    runbook "$OSC" 1
    w=$(writes 0)
    if [ "$rc" -ne 0 ] && [ -z "$w" ]; then ok "preflight: admin without a role in target-b: migrate.sh exits $rc before any change (no POST/PUT/DELETE)"
    else bad "preflight: admin without a role in target-b: migrate.sh exits $rc after $(printf '%s' "$w" | grep -c .) change request(s)${w:+: $(echo "$w" | head -3 | tr '\n' ';')}"; fi
    msg=$(grep -v '^+' "$R/run-1.err" "$R/run-1.out" 2>/dev/null | grep -iE "$TARGET_B|target-b" | head -3)
    if [ -n "$msg" ]; then ok "preflight: the message names target-b: $(echo "$msg" | head -1 | cut -c1-300)"
    else bad "preflight: no message names target-b ($TARGET_B); stderr ends: $(tail -1 "$R/run-1.err" | cut -c1-300)"; fi
    "${KSETUP[@]}" grant target-b 2>> "$R/log/ksetup.log" || bad "preflight: could not give admin's role on target-b back"
  fi
fi

if case_on old-client; then
  OLD=$VENVS/osc-old
  if case_start old-client two; then
    echo "  older client: python-openstackclient $(ver "$OLD" python-openstackclient), openstacksdk $(ver "$OLD" openstacksdk), python-cinderclient $(ver "$OLD" python-cinderclient)"
    runbook "$OLD" 1
    w=$(writes 0)
    if [ "$rc" -eq 0 ]; then
      ok "old-client: migrate.sh exits 0 with python-openstackclient $(ver "$OLD" python-openstackclient)"
      verify old-client
    elif [ -z "$w" ] && [ -s "$R/run-1.err" ]; then
      ok "old-client: refused up front (exit $rc, no change): $(grep -v '^+' "$R/run-1.err" | tail -1 | cut -c1-300)"
    else
      bad "old-client: exits $rc after $(printf '%s' "$w" | grep -c .) change request(s): $(tail -1 "$R/run-1.err" | cut -c1-300)"
      show_errors
    fi
  fi
fi
stop_cinder
log "done"
finish
