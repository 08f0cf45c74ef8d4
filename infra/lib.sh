# Shared helpers for the infra scripts: where state lives, how to wait.
# Sourced, not run.
set -euo pipefail

INFRA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# runuser, initdb's helpers and apt's tools live in the sbin folders, which a
# minimal environment (a CI runner, cron) may leave out of PATH.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac
PROJECT_ROOT="$(dirname "$INFRA_ROOT")"
# Data, logs and pid files of every local service, ignored by git.
STATE_DIR="${OPTIMA_BI_INFRA_DIR:-$PROJECT_ROOT/.infra}"
mkdir -p "$STATE_DIR"

log() { printf '[infra] %s\n' "$*" >&2; }

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND until it succeeds.
wait_for() {
    local what=$1 limit=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "$what did not come up within ${limit}s"
            return 1
        fi
        sleep 0.5
    done
}

# ensure_apt PACKAGE... : install Debian packages that are missing.
ensure_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
