#!/usr/bin/env bash
# Checks the live engine's protocol model (live.pml, beside this script) with
# spin: generates a verifier per run (spin -a), compiles pan.c with gcc in a
# temporary directory, runs it, and reads pan's "errors: N".
#
#   bash docs/protocol/check.sh            every run below (about 25 s on 2 cores)
#   bash docs/protocol/check.sh --main     only the runs that must hold
#   JOBS=1 bash docs/protocol/check.sh     one pan at a time (default: up to 2)
#
# Runs that must hold (errors: 0, search complete):
#   safety            assertions (ownership, one request at a time per slot, no ring
#                     overflow = no lost message) and no invalid end state (no deadlock),
#                     from each starting configuration (START, MAXSUB: see live.pml)
#   block_progress    [] <> block_done                          (pan -a -f: weak fairness)
#   compile_answer    [] (compile_requested -> <> compile_answered)
#   failed_replaced   [] (failed(i) -> <> !failed(i)), each slot i
# (compile_answer also from START=2, where a save must wait for an idle worker).
# Runs that must FAIL (they show the checks are not vacuous):
#   BUG               the audio thread waits for its worker without a deadline
#   and (unless --main) variants with the other choices where the spec was
#   ambiguous (see live.pml's header). live_exclusive must HOLD: it failed for
#   the first design and holds since the taint (LIVE runs on a copy after a
#   missed deadline until the late worker answers or is killed).
#
# Exits 0 only if every run ended as expected; prints one line per run. On an
# unexpected result it keeps the working directory (pan's output, the trail).
set -uo pipefail

src=${BASH_SOURCE[0]}
case "$src" in */*) here=${src%/*} ;; *) here=. ;; esac
here=$(cd "$here" && pwd)
model="$here/live.pml"
main_only=0
for a in "$@"; do
  case "$a" in
    --main) main_only=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$src"; exit 0 ;;
    *) echo "check.sh: unknown argument: $a" >&2; exit 2 ;;
  esac
done

for tool in spin gcc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check.sh: $tool is not installed: run scripts/setup.sh (Debian: apt-get install spin gcc)" >&2
    exit 2
  fi
done
[ -f "$model" ] || { echo "check.sh: no model at $model" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/clavm-spin.XXXXXX")
keep=0
cleanup() { if [ "$keep" -eq 0 ]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# name | expect (hold or fail) | spin -D flags | what: safety, or an ltl name | description
checks=(
  "failed_replaced|hold||failed_replaced|4. a failed worker is always replaced"
  "compile_answer_backup|hold|-DSTART=2|compile_answer|3. the same, starting with a backup (a save waits for a worker)"
  "compile_answer|hold||compile_answer|3. every compile request is answered"
  "block_progress|hold||block_progress|2. the audio thread finishes every block"
  "safety|hold||safety|1. no deadlock (invalid end state), assertions"
  "safety_silent_start|hold|-DSTART=0 -DMAXSUB=3|safety|1. the same, from silence, three saves"
  "safety_backup_three|hold|-DSTART=2 -DMAXSUB=3|safety|1. the same, starting with a backup, three saves"
  "BUG_safety|fail|-DBUG|safety|BUG: audio waits without a deadline: deadlock expected"
  "BUG_block_progress|fail|-DBUG|block_progress|BUG: audio waits without a deadline: a block never ends"
)
if [ "$main_only" -eq 0 ]; then
  checks+=(
    "promote_failed_backup|fail|-DPROMOTE_FAILED_BACKUP|safety|variant: a backup that failed is made active anyway"
    "no_ctl_replace|fail|-DNO_CTL_REPLACE|failed_replaced|variant: control keeps a worker that failed its own Compile/TestRun"
    "no_ctl_deadline|fail|-DNO_CTL_DEADLINE|compile_answer|variant: control waits for Compile/TestRun without a deadline"
    "ready_first|fail|-DREADY_FIRST|safety|variant: a fresh worker says ready before reading its baseline"
    "small_ring|fail|-DSTART=0 -DMAXSUB=3 -DA2C_CAP=5|safety|variant: audio->control ring of 5"
    "live_exclusive|hold|-DLIVE_EXCLUSIVE|safety|LIVE is exclusive: after a missed deadline the others run on a copy (taint)"
  )
fi

# One verifier per set of -D flags and kind (safety, or ltl for every ltl run):
# built in $tmp/build-<key>, where spin -a writes its pan.* files.
build_key() { # defs kind
  local k="$1-$2"
  k=${k//[^A-Za-z0-9_=-]/_}
  echo "build$k"
}

build_one() { # defs kind opt
  local defs=$1 kind=$2 opt=$3 dir
  dir="$tmp/$(build_key "$defs" "$kind")"
  mkdir -p "$dir" && cd "$dir" || return 1
  cp "$model" live.pml
  # shellcheck disable=SC2086
  spin $defs -a live.pml >build.log 2>&1 || return 1
  if [ "$kind" = safety ]; then
    gcc -w "$opt" -DSAFETY -DNOCLAIM -o pan pan.c >>build.log 2>&1 || return 1
  else
    gcc -w "$opt" -DNFAIR=3 -o pan pan.c >>build.log 2>&1 || return 1
  fi
  rm -f pan.c pan.b pan.h pan.m pan.p pan.t
}

run_one() { # name defs what
  local name=$1 defs=$2 what=$3 kind=ltl bdir
  [ "$what" = safety ] && kind=safety
  bdir="$tmp/$(build_key "$defs" "$kind")"
  mkdir -p "$tmp/$name" && cd "$tmp/$name" || return 1
  if [ ! -x "$bdir/pan" ]; then
    { echo "spin -a or gcc failed:"; cat "$bdir/build.log"; } >pan.out 2>&1
    return 1
  fi
  cp "$bdir/live.pml" live.pml   # for replaying a trail here
  local start=$SECONDS
  if [ "$kind" = safety ]; then
    "$bdir/pan" -m100000 >pan.out 2>&1
  else
    "$bdir/pan" -a -f -m100000 -N "$what" >pan.out 2>&1
  fi
  echo $((SECONDS - start)) >seconds
}

jobs=${JOBS:-2}
cores=$(nproc 2>/dev/null || echo 1)
[ "$jobs" -gt "$cores" ] && jobs=$cores
[ "$jobs" -lt 1 ] && jobs=1

# Runs "$@" in the background, at most $jobs at a time.
running=0
spawn() {
  "$@" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
}

t0=$SECONDS
declare -A built=()
for c in "${checks[@]}"; do
  IFS='|' read -r name expect defs what desc <<<"$c"
  kind=ltl; [ "$what" = safety ] && kind=safety
  key=$(build_key "$defs" "$kind")
  [ -n "${built[$key]:-}" ] && continue
  built[$key]=1
  opt=-O1; [ "$expect" = fail ] && opt=-O0   # these stop at the first error: compile fast
  spawn build_one "$defs" "$kind" "$opt"
done
wait; running=0
for c in "${checks[@]}"; do
  IFS='|' read -r name expect defs what desc <<<"$c"
  spawn run_one "$name" "$defs" "$what"
done
wait

failures=0
printf '%-5s %-22s %-40s %s\n' "" "run" "model" "result"
for c in "${checks[@]}"; do
  IFS='|' read -r name expect defs what desc <<<"$c"
  out="$tmp/$name/pan.out"
  cfg=${defs:-"(default: START=1 MAXSUB=2)"}
  errors=$(grep -o 'errors: [0-9]*' "$out" 2>/dev/null | head -1 | awk '{print $2}')
  states=$(grep -o '^ *[0-9.e+]* states, stored' "$out" 2>/dev/null | head -1 | awk '{print $1}')
  secs=$(cat "$tmp/$name/seconds" 2>/dev/null || echo '?')
  first=$(grep -m1 '^pan:1: ' "$out" 2>/dev/null | sed 's/^pan:1: //')
  incomplete=0
  if grep -qE 'Search not completed|max search depth too small|too many processes|out of memory' "$out" 2>/dev/null; then
    incomplete=1
  fi
  # the run must have checked what it claims to check
  claimed=1
  if [ "$what" != safety ]; then
    grep -Eq "never claim[[:space:]]+\\+ \\($what\\)" "$out" 2>/dev/null || claimed=0
    grep -Eq 'acceptance[[:space:]]+cycles[[:space:]]+\+ \(fairness enabled\)' "$out" 2>/dev/null || claimed=0
  else
    grep -Eq 'invalid end states[[:space:]]+\+' "$out" 2>/dev/null || claimed=0
  fi

  if [ -z "$errors" ] || [ "$claimed" -eq 0 ]; then
    status=ERROR; detail="pan did not run as expected"
  elif [ "$expect" = hold ]; then
    if [ "$errors" = 0 ] && [ "$incomplete" -eq 0 ]; then
      status=ok; detail="holds: errors: 0, $states states, ${secs}s"
    elif [ "$errors" = 0 ]; then
      status=FAIL; detail="search incomplete ($states states)"
    else
      status=FAIL; detail="errors: $errors: $first"
    fi
  else
    if [ "$errors" != 0 ]; then
      status=ok; detail="violated, as expected: $first"
    else
      status=FAIL; detail="expected a violation, spin found none (errors: 0, $states states)"
    fi
  fi
  [ "$status" = ok ] || failures=$((failures + 1))
  printf '%-5s %-22s %-40s %s\n' "$status" "$name" "$cfg" "$desc: $detail"
  if [ "$status" != ok ]; then
    sed 's/^/      | /' "$out" 2>/dev/null | head -40
  fi
done

echo "spin model $model: ${#checks[@]} runs, $failures unexpected, $((SECONDS - t0))s"
if [ "$failures" -gt 0 ]; then
  keep=1
  echo "pan's output and trails kept in $tmp (replay a trail there: spin -t -p [same -D flags] live.pml)" >&2
  exit 1
fi
exit 0
