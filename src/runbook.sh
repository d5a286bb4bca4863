# ---- the runbook's machinery (the same in every plan) -----------------------
# Every API call is scoped with --os-project-id. Reads are tried CBR_TRIES
# times (2, 4, 8 s apart) and then stop the script with their error: a probe
# that got no answer never reads as "absent", and nothing is created on one.
# Calls that change something (import, volume create, restore) are sent
# once; when one fails, the script asks the cloud whether it took effect
# before it sends it again.

STEP=0
BACKUP=-
STAGE=preflight
LAST_ERR=
OUT=
N_DONE=0
N_SKIPPED=0
RESTORE_FORCE=()
IMPORT_VIA=
OSC_PY=
B_STATUS=
TAKEN=
V_ID=
V_STATUS=
V_PROPS=
ERRF=$(mktemp "${TMPDIR:-/tmp}/cbr-runbook.XXXXXX")
trap 'rm -f "$ERRF"' EXIT
trap 'on_err $? "$BASH_COMMAND"' ERR

say() { printf 'cbr: %s\n' "$*"; }
warn() { printf 'cbr: %s\n' "$*" >&2; }

# The report of a failure, then exit: where, what, and how to go on.
on_err() {
  local rc=$1 cmd=$2
  # In a subshell ($(…)): the shell that waits for it reports.
  [ "$BASHPID" = "$$" ] || exit "$rc"
  trap - ERR
  warn "FAILED at step $STEP/$TOTAL (backup $BACKUP) while $STAGE"
  if [ -n "$LAST_ERR" ]; then
    warn "  error: $LAST_ERR"
  else
    warn "  command: $cmd (exit status $rc)"
  fi
  warn "  summary: $N_DONE step(s) done in this run, $N_SKIPPED found done before, step $STEP failed, $((TOTAL - STEP)) not started"
  warn "  fix it and re-run: finished steps are skipped (progress in $CBR_STATE)"
  exit "$rc"
}

fail() {
  LAST_ERR=$*
  return 1
}

# The stderr of the last call, on one line (its end: where a traceback
# says what went wrong).
errtext() { tr '\n' ' ' <"$ERRF" | tail -c 800; }

# osc PROJECT ARGS...: an openstack call that is safe to repeat (a read, a
# property set), tried CBR_TRIES times with backoff; its stdout in OUT.
osc() {
  local p=$1 try=1 delay=2
  shift
  while :; do
    if OUT=$(openstack --os-project-id "$p" "$@" 2>"$ERRF"); then
      LAST_ERR=
      return 0
    fi
    LAST_ERR="openstack --os-project-id $p $1 $2 $3 …: $(errtext)"
    [ "$try" -lt "$CBR_TRIES" ] || return 1
    warn "  $LAST_ERR (try $try of $CBR_TRIES, again in ${delay}s)"
    sleep "$delay"
    try=$((try + 1))
    delay=$((delay * 2))
  done
}

# once LABEL CMD...: a call that changes something, sent once; stdout in OUT.
once() {
  local label=$1
  shift
  if OUT=$("$@" 2>"$ERRF"); then
    LAST_ERR=
    return 0
  fi
  LAST_ERR="$label: $(errtext)"
  return 1
}

# find_backup PROJECT ID: B_STATUS is its status, empty when the project has
# no such backup (an answered list without it, never a failed call).
find_backup() {
  osc "$1" volume backup list -f value -c ID -c Status || fail "$LAST_ERR"
  B_STATUS=$(awk -v id="$2" '$1 == id { print $2 }' <<<"$OUT")
}

# find_volume PROJECT ID: the one volume whose property cbr-backup is ID
# (V_ID, V_STATUS, V_PROPS; V_ID empty when there is none). Two or more: stop.
find_volume() {
  local lines n
  osc "$1" volume list --long -f value -c ID -c Status -c Properties || fail "$LAST_ERR"
  # Properties read {'k': 'v', …} (openstackclient 10) or k='v', … (older).
  lines=$(grep -F -e "'cbr-backup': '$2'" -e "cbr-backup='$2'" <<<"$OUT" || true)
  n=$(grep -c . <<<"$lines" || true)
  V_ID='' V_STATUS='' V_PROPS=''
  if [ "$n" -gt 1 ]; then
    fail "$n volumes in project $1 carry the property cbr-backup=$2: $(awk '{ print $1 }' <<<"$lines" | tr '\n' ' ')— keep the one to restore into, delete the others, and re-run"
  fi
  [ "$n" -eq 1 ] || return 0
  read -r V_ID V_STATUS V_PROPS <<<"$lines"
}

# prop NAME: the value of volume property NAME in V_PROPS ('' when unset),
# in either form.
prop() {
  sed -n -e "s/.*'$1': '\\([^']*\\)'.*/\\1/p" -e "t" -e "s/\\(^\\|.* \\)$1='\\([^']*\\)'.*/\\2/p" <<<"$V_PROPS"
}

# wait_for backup|volume PROJECT ID WANT: poll until the status is WANT;
# stop on an error status or after CBR_WAIT_SECS, saying the last status.
wait_for() {
  local kind=$1 p=$2 id=$3 want=$4 waited=0 st pause why
  while :; do
    if [ "$kind" = backup ]; then
      osc "$p" volume backup show "$id" -f value -c status || fail "$LAST_ERR"
    else
      osc "$p" volume show "$id" -f value -c status || fail "$LAST_ERR"
    fi
    st=$OUT
    [ "$st" = "$want" ] && return 0
    case $st in
      error*)
        why=
        if [ "$kind" = backup ] && osc "$p" volume backup show "$id" -f value -c fail_reason; then
          why=" ($OUT)"
        fi
        fail "$kind $id is '$st'$why, not '$want'"
        ;;
    esac
    if [ "$waited" -ge "$CBR_WAIT_SECS" ]; then
      fail "$kind $id still '$st' after ${CBR_WAIT_SECS}s (CBR_WAIT_SECS), not '$want'"
    fi
    pause=$((waited < 30 ? 2 : 10))
    sleep "$pause"
    waited=$((waited + pause))
  done
}

# The python of the openstack executable (its shebang), for openstacksdk.
osc_python() {
  local exe line w
  exe=$(command -v openstack) || return 1
  IFS= read -r line <"$exe" || return 1
  case $line in '#!'*) ;; *) return 1 ;; esac
  read -r -a w <<<"${line#??}"
  case ${w[0]:-} in
    */env) printf '%s\n' "${w[1]:-}" ;;
    *) printf '%s\n' "${w[0]:-}" ;;
  esac
}

# POST backups/import_record through openstacksdk's own authenticated
# session (OS_* variables or OS_CLOUD), scoped to PROJECT: the same call
# `cinder backup-import` makes. For openstacksdk 4.18.0-4.22.0, whose
# Backup.import_record posts to the wrong URL.
SDK_IMPORT='
import sys
import openstack
from openstack import exceptions
project, service, url = sys.argv[1:4]
conn = openstack.connect(project_id=project)
r = conn.block_storage.post(
    "/backups/import_record",
    json={"backup-record": {"backup_service": service, "backup_url": url}},
)
exceptions.raise_from_response(r)
print(r.json()["backup"]["id"])
'

import_cmd() {
  local p=$1 svc=$2 url=$3
  case $IMPORT_VIA in
    cinder) once "cinder --os-project-id $p backup-import" cinder --os-project-id "$p" backup-import "$svc" "$url" ;;
    sdk) once "POST backups/import_record (openstacksdk, project $p)" "$OSC_PY" -c "$SDK_IMPORT" "$p" "$svc" "$url" ;;
    *) once "openstack --os-project-id $p volume backup record import" openstack --os-project-id "$p" volume backup record import "$svc" "$url" ;;
  esac
}

# import PROJECT ID SERVICE URL: send the import; when it fails, ask whether
# the backup is there anyway (a timeout after Cinder took it) before
# sending it again.
import_backup() {
  local p=$1 id=$2 svc=$3 url=$4 try=1 delay=2
  while :; do
    import_cmd "$p" "$svc" "$url" && return 0
    local err=$LAST_ERR
    find_backup "$p" "$id"
    if [ -n "$B_STATUS" ]; then
      say "  the import reported an error ($err) but backup $id is in project $p ($B_STATUS): going on"
      return 0
    fi
    case $err in
      *"already exists"*)
        fail "backup $id is already in the target cloud, but not in project $p (imported unscoped, into another project?): an admin's 'openstack volume backup show $id' says where; delete that copy (or move the plan's mapping) and re-run. ($err)"
        ;;
    esac
    [ "$try" -lt "$CBR_TRIES" ] || fail "import of $id into project $p: $err"
    warn "  import of $id failed and the backup is not in project $p: $err (try $try of $CBR_TRIES, again in ${delay}s)"
    sleep "$delay"
    try=$((try + 1))
    delay=$((delay * 2))
  done
}

# create_volume PROJECT ID SIZE NAME: a volume marked cbr-backup=ID; V_ID.
# When the call fails, look for the volume before asking again.
create_volume() {
  local p=$1 id=$2 size=$3 name=$4 try=1 delay=2
  while :; do
    if once "openstack --os-project-id $p volume create" openstack --os-project-id "$p" volume create --size "$size" \
      ${VOLUME_OPTS[@]+"${VOLUME_OPTS[@]}"} --property "cbr-backup=$id" -f value -c id -- "$name"; then
      V_ID=$OUT
      return 0
    fi
    local err=$LAST_ERR
    find_volume "$p" "$id"
    if [ -n "$V_ID" ]; then
      say "  volume create reported an error ($err) but volume $V_ID carries cbr-backup=$id: using it"
      return 0
    fi
    [ "$try" -lt "$CBR_TRIES" ] || fail "volume create for $id in project $p: $err"
    warn "  volume create for $id failed and no volume carries cbr-backup=$id: $err (try $try of $CBR_TRIES, again in ${delay}s)"
    sleep "$delay"
    try=$((try + 1))
    delay=$((delay * 2))
  done
}

# Has Cinder taken a restore of backup ID into VOLUME since the volume was
# marked cbr-restore=started? TAKEN=yes when the backup or the volume is
# being restored, when Cinder wrote src_backup_id=ID on the volume (it does
# when a restore finishes) or when the backup changed since the mark (its
# updated_at, kept in cbr-restore-from); TAKEN=no when none of that and
# both are available; else TAKEN=unknown. Also sets B_STATUS, V_STATUS,
# V_PROPS. (Always returns 0: a failed call stops the script.)
restore_taken() {
  local p=$1 id=$2 vid=$3 from
  find_backup "$p" "$id"
  find_volume "$p" "$id"
  [ "$V_ID" = "$vid" ] || fail "volume $vid no longer carries cbr-backup=$id"
  TAKEN=unknown
  from=$(prop cbr-restore-from)
  if [ "$B_STATUS" = restoring ] || [ "$V_STATUS" = restoring-backup ] ||
    [ "$(prop src_backup_id)" = "$id" ]; then
    TAKEN=yes
  elif [ -n "$from" ]; then
    osc "$p" volume backup show "$id" -f value -c updated_at || fail "$LAST_ERR"
    if [ "$OUT" != "$from" ]; then
      TAKEN=yes
    elif [ "$B_STATUS:$V_STATUS" = available:available ]; then
      TAKEN=no
    fi
  fi
}

# restore PROJECT ID VOLUME: exactly once. The volume is marked
# cbr-restore=started (with the backup's updated_at) before the call and
# cbr-restore=done after it.
restore_backup() {
  local p=$1 id=$2 vid=$3 try=1 delay=2 err
  STAGE="marking volume $vid cbr-restore=started"
  osc "$p" volume backup show "$id" -f value -c updated_at || fail "$LAST_ERR"
  osc "$p" volume set --property cbr-restore=started --property "cbr-restore-from=$OUT" "$vid" || fail "$LAST_ERR"
  # A restore sent now changes the backup at least a second after the
  # updated_at just read (Cinder keeps whole seconds).
  sleep 1
  STAGE="restoring backup $id into volume $vid"
  while :; do
    once "openstack --os-project-id $p volume backup restore" openstack --os-project-id "$p" volume backup restore ${RESTORE_FORCE[@]+"${RESTORE_FORCE[@]}"} "$id" "$vid" && break
    err=$LAST_ERR
    restore_taken "$p" "$id" "$vid"
    case $TAKEN in
      yes)
        say "  the restore call reported an error ($err) but Cinder took it (backup $B_STATUS, volume $V_STATUS): waiting for it"
        break
        ;;
      unknown) fail "restore of $id into $vid: $err; and then backup '$B_STATUS', volume '$V_STATUS': look at them before re-running" ;;
    esac
    [ "$try" -lt "$CBR_TRIES" ] || fail "restore of $id into $vid: $err"
    warn "  restore of $id failed and Cinder did not take it: $err (try $try of $CBR_TRIES, again in ${delay}s)"
    sleep "$delay"
    try=$((try + 1))
    delay=$((delay * 2))
  done
  finish_restore "$p" "$id" "$vid"
}

finish_restore() {
  local p=$1 id=$2 vid=$3
  STAGE="waiting for volume $vid to be restored from $id"
  wait_for volume "$p" "$vid" available
  wait_for backup "$p" "$id" available
  STAGE="marking volume $vid cbr-restore=done"
  osc "$p" volume set --property cbr-restore=done "$vid" || fail "$LAST_ERR"
}

state_done() { # ID MODE: is the step recorded as finished?
  [ -f "$CBR_STATE" ] || return 1
  id=$1 mode=$2 awk '$2 == ENVIRON["id"] && ($1 == "restored" || ($1 == "imported" && ENVIRON["mode"] == "import")) { f = 1 } END { exit !f }' "$CBR_STATE"
}

state_add() { printf '%s\n' "$*" >>"$CBR_STATE"; }

# One backup: check, import, wait; then (restore mode) find or create its
# volume, restore exactly once, mark it. Steps recorded in the state file
# as finished are skipped without asking the cloud (CBR_RECHECK=1 asks).
run_step() {
  local k=$1 id=$2 p=$3 svc=$4 url=$5 size=$6 name=$7 mode=$8 vid mark
  STEP=$k BACKUP=$id
  if [ "$CBR_RECHECK" != 1 ] && state_done "$id" "$mode"; then
    say "step $k/$TOTAL: backup $id already done (recorded in $CBR_STATE)"
    N_SKIPPED=$((N_SKIPPED + 1))
    return 0
  fi
  STAGE="looking for backup $id in project $p"
  find_backup "$p" "$id"
  if [ -z "$B_STATUS" ]; then
    say "step $k/$TOTAL: importing backup $id into project $p"
    STAGE="checking the record against the share (cbr check)"
    printf '%s\n' "$url" | cbr check --no-advice --target-service "$TARGET_SERVICE" --share "$CBR_SHARE" -
    STAGE="importing backup $id into project $p (via $IMPORT_VIA)"
    import_backup "$p" "$id" "$svc" "$url"
  else
    say "step $k/$TOTAL: backup $id already imported into project $p ($B_STATUS)"
  fi
  STAGE="waiting for backup $id to be available"
  wait_for backup "$p" "$id" available
  if [ "$mode" = import ]; then
    state_add "imported $id"
    say "step $k/$TOTAL: backup $id done: imported (not restored: --restore $RESTORE_MODE)"
    N_DONE=$((N_DONE + 1))
    return 0
  fi
  STAGE="looking for the volume of backup $id (property cbr-backup=$id)"
  find_volume "$p" "$id"
  if [ -z "$V_ID" ]; then
    STAGE="creating volume $name for backup $id"
    say "step $k/$TOTAL: creating volume $name for backup $id"
    create_volume "$p" "$id" "$size" "$name"
    find_volume "$p" "$id"
    [ -n "$V_ID" ] || fail "volume create answered but no volume carries cbr-backup=$id in project $p"
  fi
  vid=$V_ID
  mark=$(prop cbr-restore)
  case $mark in
    done)
      say "step $k/$TOTAL: backup $id already done: restored into volume $vid before (cbr-restore=done, volume $V_STATUS)"
      state_done "$id" restore || state_add "restored $id $vid"
      N_SKIPPED=$((N_SKIPPED + 1))
      return 0
      ;;
    started)
      STAGE="looking at an earlier restore of $id into $vid (cbr-restore=started)"
      restore_taken "$p" "$id" "$vid"
      if [ "$TAKEN" = yes ]; then
        say "step $k/$TOTAL: an earlier run's restore of $id into volume $vid reached Cinder (backup $B_STATUS, volume $V_STATUS, src_backup_id '$(prop src_backup_id)'): waiting for it, not restoring again"
        finish_restore "$p" "$id" "$vid"
      elif [ "$TAKEN" = no ]; then
        say "step $k/$TOTAL: volume $vid is marked cbr-restore=started but Cinder never took that restore (backup unchanged since the mark, no src_backup_id, both available): restoring"
        restore_backup "$p" "$id" "$vid"
      elif [ "$CBR_RESTORE_AGAIN" = 1 ]; then
        say "step $k/$TOTAL: volume $vid is '$V_STATUS', backup $id '$B_STATUS' after an earlier restore: restoring again (CBR_RESTORE_AGAIN=1)"
        restore_backup "$p" "$id" "$vid"
      else
        fail "volume $vid is '$V_STATUS' and backup $id '$B_STATUS' after an earlier restore (cbr-restore=started) and it cannot be told whether that restore ran: look at the volume; to restore again, make it available (openstack --os-project-id $p volume set --state available $vid) and re-run with CBR_RESTORE_AGAIN=1"
      fi
      ;;
    *)
      say "step $k/$TOTAL: restoring backup $id into volume $vid ($name)"
      STAGE="waiting for volume $vid to be available"
      wait_for volume "$p" "$vid" available
      restore_backup "$p" "$id" "$vid"
      ;;
  esac
  state_add "restored $id $vid"
  say "step $k/$TOTAL: backup $id done: restored into volume $vid"
  N_DONE=$((N_DONE + 1))
}

# Before any change: everything this runbook needs, every problem in one
# message.
preflight() {
  local problems=() p v sdk
  STAGE=preflight
  if ! command -v openstack >/dev/null 2>&1; then
    problems+=("the openstack client (python-openstackclient) is not on PATH")
  fi
  if ! v=$(cbr --version 2>&1); then
    problems+=("cbr does not run here ($v): put it on PATH")
  fi
  if [ -z "$CBR_SHARE" ]; then
    problems+=("no share: the plan was made without --share; set CBR_SHARE to the backup share's path on this host (for cbr check)")
  elif [ ! -d "$CBR_SHARE" ]; then
    problems+=("the share $CBR_SHARE is not a directory on this host: mount it, or set CBR_SHARE to where it is")
  fi
  if [ -n "${OS_APPLICATION_CREDENTIAL_ID:-}${OS_APPLICATION_CREDENTIAL_NAME:-}" ] ||
    [[ ${OS_AUTH_TYPE:-} == *applicationcredential* ]]; then
    problems+=("application credentials are scoped to one project and cannot be rescoped with --os-project-id: run this with a user's password credentials (OS_USERNAME/OS_PASSWORD) that hold a role in every target project")
  fi
  if command -v openstack >/dev/null 2>&1; then
    OSC_VERSION=$(openstack --version 2>&1 | head -n 1)
    if openstack volume backup restore --help 2>/dev/null | grep -q -e '--force'; then
      RESTORE_FORCE=(--force)
    fi
    if command -v cinder >/dev/null 2>&1 && cinder --version >/dev/null 2>&1; then
      IMPORT_VIA=cinder
    elif OSC_PY=$(osc_python) && [ -n "$OSC_PY" ] &&
      sdk=$("$OSC_PY" -c 'import openstack.version as v; print(v.__version__)' 2>/dev/null); then
      IMPORT_VIA=sdk
      OSC_VERSION="$OSC_VERSION (openstacksdk $sdk)"
    else
      IMPORT_VIA=openstack
      case $OSC_VERSION in
        'openstack 10.0.'* | 'openstack '[0-9].*) ;;
        *) problems+=("no working import: $OSC_VERSION imports through openstacksdk, whose 4.18.0-4.22.0 post to the wrong URL, and its python could not be found to post the import directly: install python-cinderclient (cinder on PATH)") ;;
      esac
    fi
    for p in "${PROJECTS[@]}"; do
      if ! osc "$p" token issue -f value -c project_id; then
        problems+=("cannot scope the credentials to project $p: $LAST_ERR (does the user hold a role there? openstack role add --user USER --project $p member)")
      elif [ "$OUT" != "$p" ]; then
        problems+=("asked for a token of project $p, got one of project $OUT: the credentials cannot be rescoped (application credentials?)")
      fi
    done
  fi
  if [ "${#problems[@]}" -gt 0 ]; then
    warn "preflight: ${#problems[@]} problem(s); nothing was changed:"
    for p in "${problems[@]}"; do warn "  - $p"; done
    warn "fix them and run it again"
    trap - ERR
    exit 1
  fi
  say "preflight: $OSC_VERSION; import via $IMPORT_VIA; restore ${RESTORE_FORCE[*]:-without --force}; share $CBR_SHARE; progress in $CBR_STATE"
  say "preflight: credentials scope to all ${#PROJECTS[@]} target project(s)"
}

finish() {
  STEP=$TOTAL
  say "done: $TOTAL step(s): $N_DONE done in this run, $N_SKIPPED found done before"
}
