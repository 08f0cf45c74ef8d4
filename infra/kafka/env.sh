# Ports, paths and JVM settings of the local Kafka broker and Connect worker.
# Sourced by infra/kafka/* and infra/connect/*, after infra/lib.sh.
#   OPTIMA_BI_KAFKA_PORT (19092)       broker listener, 127.0.0.1
#   OPTIMA_BI_KAFKA_CONTROLLER_PORT (19093)  KRaft controller listener
#   OPTIMA_BI_CONNECT_PORT (18083)     Kafka Connect REST API
#   OPTIMA_BI_KAFKA_HEAP (512m), OPTIMA_BI_CONNECT_HEAP (768m)

KAFKA_PORT="${OPTIMA_BI_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${OPTIMA_BI_KAFKA_CONTROLLER_PORT:-19093}"
CONNECT_PORT="${OPTIMA_BI_CONNECT_PORT:-18083}"
KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
CONNECT_URL="http://127.0.0.1:$CONNECT_PORT"

KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
CONNECT_DIR="$STATE_DIR/connect"
CONNECT_PLUGINS="$CONNECT_DIR/plugins"

# A small machine runs the whole stack beside the tests: keep the JVMs lean.
JVM_COMMON=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$INFRA_ROOT/kafka/log4j2.properties")

# port_open PORT: something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive FILE: the pid in FILE is a running process.
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# fail_with_log WHAT LOGFILE: report a service that did not come up, with its log tail.
fail_with_log() {
    log "$1 failed to start; last lines of $2:"
    tail -n 60 "$2" >&2 || true
    exit 1
}

# maven_copy POM OUTDIR [ARGS...]: resolve a pom's dependencies from Maven Central
# (cached in ~/.m2) and copy the jars into OUTDIR, once.
maven_copy() {
    local pom=$1 out=$2 stamp
    shift 2
    stamp="$out/.resolved-$(sha256sum "$pom" | cut -c1-16)"
    [ -f "$stamp" ] && return 0
    command -v mvn >/dev/null || { log "mvn is required (apt-get install maven)"; exit 1; }
    log "resolving $(basename "$(dirname "$pom")") jars with Maven (first time takes minutes)"
    rm -rf "$out"
    mkdir -p "$out"
    if ! mvn -q -B -f "$pom" dependency:copy-dependencies "-DoutputDirectory=$out" "$@" \
        >"$out.mvn.log" 2>&1; then
        fail_with_log "Maven resolution of $pom" "$out.mvn.log"
    fi
    touch "$stamp"
}
