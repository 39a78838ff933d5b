#!/usr/bin/env bash
# The whole benchmark in one command, on this machine, in one run: each bench starts what it
# needs (isulad from this checkout, dockerd, podman, a local registry, each on temporary
# roots), loads the same offline busybox archive into each engine, measures, stops it again;
# then bench/summary.mjs writes bench/results/summary.{tsv,md,svg}. See bench/README.md.
#
#   bench/run.sh [--quick] [--only STEPS] [--with STEPS] [--soak] [--soak-cycles N]
#                [--engines isula,podman,docker] [--isula-runtimes runc,io.containerd.runc.v2,lcr]
#                [--serial N] [--parallel N] [--few N] [--many N] [--sequential]
#   npm run bench [-- OPTIONS]
#
# Steps, in this order (default: the first seven; network, cri and soak are opt-in):
#   floor      runc floor, serial 10 / parallel 100            (bench/floor.sh)
#   ptcr       ptcr workload, serial 10 / parallel 100         (bench/ptcr.sh)
#   footprint  daemon and monitor memory, idle / 10 / 100      (bench/footprint.sh)
#   startup    client start-up with hyperfine                  (bench/startup.sh)
#   streams    exec and logs                                   (bench/streams.sh)
#   load       isula load vs podman load, hyperfine            (bench/load.sh)
#   pull       cold pull from the local registry               (bench/pull.sh)
#   network    run -d / rm -f with default networking          (bench/network.sh; opt-in)
#   cri        1/10/50 pods through CRI vs containerd 1.6 CRI  (bench/cri.sh; opt-in)
#   soak       isulad RSS over 2000 run/rm -f cycles           (bench/soak.sh; opt-in: --soak)
#
# --quick        small sizes, a smoke run of the plumbing (serial 3, parallel 10, soak 100 cycles…)
# --only a,b     run just these steps (any of the above, opt-in ones included)
# --with a,b     the default steps plus these (--with network,soak)
# --soak         = --with soak (its 2000 cycles add several minutes: outside the 15-min budget)
# --soak-cycles N  cycles for soak (implies --soak unless --only is given)
# --dry-run      print what each step would run, run nothing (no install, no summary)
# --engines …    engines for ptcr, footprint, startup, streams, pull, network (floor is runc
#                alone, soak isula alone, load always isula and podman)
# --serial N, --parallel N, --few N, --many N
#                override the sizes of floor/ptcr (serial, parallel) and footprint (few, many)
# --isula-runtimes a,b  ptcr and footprint run isula once per runtime listed, each on its own
#                isulad (runc: the plain isula engine; io.containerd.<x>.v<N>: @isula/driver-kata
#                with containerd-shim-<x>-v<N>; lcr: @isula/driver-lxc), in place of `isula`
#                in --engines; the summary adds a table per runtime (default: runc)
# --sequential   ptcr runs one engine after the other; by default (since 2026-12-03) its
#                engines' daemons run at once and the calls alternate between them, so that a
#                machine whose load moves during the run loads each engine alike (--interleave,
#                the old way to ask for that, is still accepted)
#
# A failed step is reported and the run goes on to the next and to the summary; the exit
# status is non-zero if any step (or the summary) failed. Ctrl-C ends the current step (each
# bench cleans up on SIGINT), skips the rest and still writes the summary. Everything printed
# is also kept in bench/results/run.log; bench/results/run.json records the steps and times.
set -uo pipefail # not -e: a step's failure is recorded, not fatal

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
RESULTS=$BENCH/results
NODE=${ISULA_PREFIX:-/usr/local/lib/isula}/node/bin/node
ALL_STEPS=(floor ptcr footprint startup streams load pull network cri soak) # the order of a run
DEFAULT_STEPS=(floor ptcr footprint startup streams load pull)

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 2; }
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }

QUICK=0 DRY=0 ONLY='' WITH='' ENGINES=isula,podman,docker SOAK_CYCLES='' RUNTIMES=runc
SET_SERIAL='' SET_PARALLEL='' SET_FEW='' SET_MANY='' INTERLEAVE=()
ARGS="$*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --dry-run) DRY=1 ;;
    --only) need "$@"; ONLY=$2; shift ;;
    --only=*) ONLY=${1#*=} ;;
    --with) need "$@"; WITH="${WITH:+$WITH,}$2"; shift ;;
    --with=*) WITH="${WITH:+$WITH,}${1#*=}" ;;
    --soak) WITH="${WITH:+$WITH,}soak" ;;
    --soak-cycles) need "$@"; SOAK_CYCLES=$2; WITH="${WITH:+$WITH,}soak"; shift ;;
    --soak-cycles=*) SOAK_CYCLES=${1#*=}; WITH="${WITH:+$WITH,}soak" ;;
    --engines) need "$@"; ENGINES=$2; shift ;;
    --engines=*) ENGINES=${1#*=} ;;
    --isula-runtimes) need "$@"; RUNTIMES=$2; shift ;;
    --isula-runtimes=*) RUNTIMES=${1#*=} ;;
    --interleave) INTERLEAVE=() ;;
    --sequential) INTERLEAVE=(--sequential) ;;
    --serial | --parallel | --few | --many)
      need "$@"; [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer"
      case $1 in --serial) SET_SERIAL=$2 ;; --parallel) SET_PARALLEL=$2 ;; --few) SET_FEW=$2 ;; --many) SET_MANY=$2 ;; esac
      shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

# --- what to run, how big -------------------------------------------------------------------

if [ -n "$ONLY" ]; then IFS=, read -ra wanted <<<"$ONLY"; else IFS=, read -ra extra <<<"$WITH"; wanted=("${DEFAULT_STEPS[@]}" "${extra[@]}"); fi
for w in "${wanted[@]}"; do
  [[ " ${ALL_STEPS[*]} " == *" $w "* ]] || die "unknown step '$w' (steps: ${ALL_STEPS[*]})"
done
STEPS=()
for s in "${ALL_STEPS[@]}"; do [[ " ${wanted[*]} " == *" $s "* ]] && STEPS+=("$s"); done
[ ${#STEPS[@]} -gt 0 ] || die "no step to run"
IFS=, read -ra engs <<<"$ENGINES"
[ ${#engs[@]} -gt 0 ] || die "--engines is empty"
for e in "${engs[@]}"; do case $e in isula | podman | docker) ;; *) die "unknown engine '$e' (isula, podman, docker)" ;; esac; done
# ptcr and footprint: `isula` in --engines becomes one engine per --isula-runtimes entry (runc is
# the plain `isula`, another runtime R the engine `isula-R` of bench/engines.mjs).
IFS=, read -ra rts <<<"$RUNTIMES"
[ ${#rts[@]} -gt 0 ] || die "--isula-runtimes is empty"
isula_engs=()
for r in "${rts[@]}"; do
  case $r in
    runc) isula_engs+=(isula) ;;
    lcr | lxc | io.containerd.*.v[0-9]*) isula_engs+=("isula-$r") ;;
    *) die "unknown isula runtime '$r' (runc, lcr, lxc, io.containerd.<x>.v<N>)" ;;
  esac
done
RT_ENGINES=''
for e in "${engs[@]}"; do
  if [ "$e" = isula ]; then for ie in "${isula_engs[@]}"; do RT_ENGINES+="${RT_ENGINES:+,}$ie"; done
  else RT_ENGINES+="${RT_ENGINES:+,}$e"; fi
done
[[ ",$ENGINES," == *,isula,* ]] || for ie in "${isula_engs[@]}"; do RT_ENGINES="$ie${RT_ENGINES:+,}$RT_ENGINES"; done

if [ $QUICK = 1 ]; then
  SERIAL=3 PARALLEL=10 FEW=3 MANY=10 STARTUP=(--warmup 1 --runs 5 --containers 3)
  STREAM_RUNS=5 LOAD_RUNS=3 PULL_RUNS=2 NET_RUNS=3 CRI_PODS=1,3 SOAK_DEFAULT=100
else
  SERIAL=10 PARALLEL=100 FEW=10 MANY=100 STARTUP=(--warmup 3 --runs 20 --containers 10)
  STREAM_RUNS=20 LOAD_RUNS=10 PULL_RUNS=5 NET_RUNS=10 CRI_PODS=1,10,50 SOAK_DEFAULT=2000
fi
SERIAL=${SET_SERIAL:-$SERIAL} PARALLEL=${SET_PARALLEL:-$PARALLEL} FEW=${SET_FEW:-$FEW} MANY=${SET_MANY:-$MANY}
[ "$MANY" -gt "$FEW" ] || die "--many ($MANY) must be above --few ($FEW)"
SOAK_CYCLES=${SOAK_CYCLES:-$SOAK_DEFAULT}
[[ $SOAK_CYCLES =~ ^[1-9][0-9]*$ ]] || die "--soak-cycles must be a positive integer"
# soak samples every SOAK_EVERY cycles and compares the last sample with the first after start.
if [ "$SOAK_CYCLES" -ge 200 ] && [ $((SOAK_CYCLES % 100)) = 0 ]; then SOAK_EVERY=100
elif [ $((SOAK_CYCLES % 10)) = 0 ]; then SOAK_EVERY=$((SOAK_CYCLES / 10))
else SOAK_EVERY=$SOAK_CYCLES; fi

# --- preflight: root, the build, the tools ---------------------------------------------------

[ $DRY = 1 ] || [ "$(id -u)" = 0 ] || die "run me as root (the benches mount overlays, run runc and the daemons)"
for f in packages/core/dist/src/bin/isulad.js packages/cli/dist/isula.cjs; do
  [ -f "$ROOT/$f" ] || die "$f is missing: run ./scripts/quickstart.sh (or npm run build) first"
done
[ -x "$NODE" ] || die "$NODE is missing: run ./scripts/quickstart.sh first"
mkdir -p "$RESULTS"

# Everything printed goes to the terminal and to run.log (tee ignores Ctrl-C: the steps get it).
TEE_PID=''
if [ $DRY = 0 ]; then
  exec > >(trap '' INT TERM; exec tee "$RESULTS/run.log") 2>&1
  TEE_PID=$!
fi

INTERRUPTED=0
trap 'INTERRUPTED=1; echo; echo "bench/run.sh: interrupted: the rest is skipped, the summary still written" >&2' INT TERM

now_ns() { date +%s%N; }
fmt_ms() { # 83412 -> 1m23.4s
  local ms=$1
  if [ "$ms" -ge 60000 ]; then printf '%dm%02d.%ds' $((ms / 60000)) $((ms % 60000 / 1000)) $((ms % 1000 / 100))
  else printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100)); fi
}

RUN_T0=$(now_ns)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "==> bench/run.sh $ARGS"
echo "    $(hostname), $(nproc) cores, $(uname -r), $("$NODE" --version), $STARTED"
echo "    steps: ${STEPS[*]}$([ $QUICK = 1 ] && echo ' (quick sizes)'); engines: $ENGINES$([ "$RUNTIMES" = runc ] || echo "; ptcr/footprint engines: $RT_ENGINES")"

# Extra tools the selected steps need beyond ./scripts/quickstart.sh (which installs the engine's
# own packages): hyperfine (startup, load), Debian's docker-registry, jq, curl (pull). The peers
# themselves (podman, docker.io) are installed by bench/peers.sh, sourced by every step.
tools=()
for s in "${STEPS[@]}"; do
  case $s in
    startup | load) tools+=(hyperfine) ;;
    pull) tools+=(docker-registry:/usr/bin/docker-registry jq curl skopeo umoci) ;;
  esac
done
missing=()
for t in "${tools[@]}"; do
  pkg=${t%%:*} bin=${t#*:}
  [ "$bin" = "$t" ] && bin=$pkg
  if [[ $bin == /* ]]; then [ -x "$bin" ]; else command -v "$bin" >/dev/null; fi || [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ] && [ $DRY = 1 ]; then
  echo "    (would install: ${missing[*]})"
elif [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing the bench tools: ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
    echo "bench/run.sh: could not install ${missing[*]}; the steps that need them will fail" >&2
fi

# --- the steps ---------------------------------------------------------------------------------

x() { if [ $DRY = 1 ]; then echo "    ${*#"$ROOT/"}"; else "$@"; fi; }
step_floor() { x "$BENCH/floor.sh" --serial "$SERIAL" --parallel "$PARALLEL"; }
step_ptcr() { x "$BENCH/ptcr.sh" --engines "$RT_ENGINES" --serial "$SERIAL" --parallel "$PARALLEL" ${INTERLEAVE[@]+"${INTERLEAVE[@]}"}; }
step_footprint() { x "$BENCH/footprint.sh" --engines "$RT_ENGINES" --few "$FEW" --many "$MANY"; }
step_startup() { x "$BENCH/startup.sh" --engines "$ENGINES" "${STARTUP[@]}"; }
step_streams() { x "$BENCH/streams.sh" --engines "$ENGINES" --runs "$STREAM_RUNS"; }
step_load() {
  [ "$ENGINES" = isula,podman,docker ] || echo "    (load compares isula and podman whatever --engines says)"
  x env RUNS="$LOAD_RUNS" "$BENCH/load.sh" "$RESULTS"
}
step_pull() {
  # pull.sh starts the registry and leaves it running: stop it again if this run started it.
  local was_running=0 rc
  "$BENCH/registry.sh" status >/dev/null 2>&1 && was_running=1
  x "$BENCH/pull.sh" --engines "$ENGINES" --runs "$PULL_RUNS"
  rc=$?
  [ $was_running = 1 ] || x "$BENCH/registry.sh" stop || true
  return $rc
}
step_network() { x "$BENCH/network.sh" --engines "$ENGINES" --runs "$NET_RUNS"; }
step_cri() { x "$BENCH/cri.sh" --pods "$CRI_PODS" --results "$RESULTS"; }
step_soak() { x "$BENCH/soak.sh" --cycles "$SOAK_CYCLES" --every "$SOAK_EVERY"; }

NAMES=() STATUS=() CODES=() MS=()
FAILED=0
i=0
for s in "${STEPS[@]}"; do
  i=$((i + 1))
  if [ $INTERRUPTED = 1 ]; then NAMES+=("$s") STATUS+=(skipped) CODES+=('') MS+=(0); continue; fi
  echo
  echo "==> [$i/${#STEPS[@]}] $s  ($(date +%H:%M:%S))"
  t0=$(now_ns)
  "step_$s"
  rc=$?
  ms=$((($(now_ns) - t0) / 1000000))
  if [ $rc = 0 ]; then st=ok; else st=FAILED; FAILED=$((FAILED + 1)); fi
  [ $INTERRUPTED = 1 ] && [ $rc != 0 ] && st=interrupted
  NAMES+=("$s") STATUS+=("$st") CODES+=("$rc") MS+=("$ms")
  echo "<== $s: $st$([ $rc = 0 ] || echo " (exit $rc)") in $(fmt_ms "$ms")"
done
TOTAL_MS=$((($(now_ns) - RUN_T0) / 1000000))
[ $DRY = 0 ] || exit 0

# --- run.json, the step table, the summary -----------------------------------------------------

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
{
  printf '{"started":%s,"finished":%s,"host":%s,"args":%s,"quick":%s,"engines":%s,"total_ms":%d,"steps":[' \
    "$(json_str "$STARTED")" "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$(json_str "$(hostname)")" "$(json_str "$ARGS")" \
    "$([ $QUICK = 1 ] && echo true || echo false)" "$(json_str "$ENGINES")" "$TOTAL_MS"
  for j in "${!NAMES[@]}"; do
    [ "$j" = 0 ] || printf ','
    printf '{"step":"%s","status":"%s","exit":%s,"ms":%d}' "${NAMES[$j]}" "${STATUS[$j]}" "${CODES[$j]:-null}" "${MS[$j]}"
  done
  printf ']}\n'
} >"$RESULTS/run.json"

echo
echo "==> summary"
"$NODE" "$BENCH/summary.mjs" --results "$RESULTS"
src=$?
[ $src = 0 ] || { echo "bench/run.sh: bench/summary.mjs failed (exit $src)" >&2; FAILED=$((FAILED + 1)); }

echo
echo "==> steps"
for j in "${!NAMES[@]}"; do
  printf '    %-10s %-12s %10s\n' "${NAMES[$j]}" "${STATUS[$j]}$([ -n "${CODES[$j]}" ] && [ "${CODES[$j]}" != 0 ] && echo " ($((CODES[j])))")" \
    "$([ "${STATUS[$j]}" = skipped ] && echo - || fmt_ms "${MS[$j]}")"
done
printf '    %-10s %-12s %10s\n' total "" "$(fmt_ms "$TOTAL_MS")"
echo "results: $RESULTS/summary.md, summary.tsv, summary.svg (log: run.log)"
[ $FAILED = 0 ] || echo "bench/run.sh: $FAILED failed" >&2

# Let tee write the last lines before the shell exits.
exec >&- 2>&-
[ -z "$TEE_PID" ] || wait "$TEE_PID" 2>/dev/null
if [ $INTERRUPTED = 1 ]; then exit 130; fi
[ $FAILED = 0 ]
