#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) for dev, demo and tests.
# The broker jars come from Maven Central (deploy/kafka/pom.xml); no Docker, no tarball.
#
#   deploy/kafka/kafka.sh fetch          download the broker classpath into .cache/kafka/libs
#   deploy/kafka/kafka.sh up             start (or reuse) a broker; prints KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<port>
#   deploy/kafka/kafka.sh down [--wipe]  stop it (pid file only); --wipe also deletes its data
#   deploy/kafka/kafka.sh status         say whether it runs (exit 0 if up, 1 if not)
#   deploy/kafka/kafka.sh logs [N]       last N (default 200) lines of the broker log
#
# Env: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1),
#      KAFKA_HEAP_OPTS (-Xms256m -Xmx1g), KAFKA_OPTS (extra JVM flags),
#      KAFKA_START_TIMEOUT (90 s), KAFKA_STOP_TIMEOUT (30 s), JAVA_HOME / JAVA.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd -P)"

POM="$SCRIPT_DIR/pom.xml"
TEMPLATE="$SCRIPT_DIR/server.properties.in"
CACHE_DIR="$REPO_ROOT/.cache"
M2_REPO="$CACHE_DIR/m2"
KAFKA_CACHE="$CACHE_DIR/kafka"
LIBS_DIR="$KAFKA_CACHE/libs"
STAMP="$LIBS_DIR/.complete"

KAFKA_PORT="${KAFKA_PORT:-9092}"
[[ "$KAFKA_PORT" =~ ^[0-9]+$ ]] || { echo "kafka.sh: error: KAFKA_PORT='$KAFKA_PORT' is not a port number" >&2; exit 1; }
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
KAFKA_OPTS="${KAFKA_OPTS:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

RUN_DIR="$REPO_ROOT/.kafka/$KAFKA_PORT"
DATA_DIR="$RUN_DIR/data"
PID_FILE="$RUN_DIR/kafka.pid"
LOG_FILE="$RUN_DIR/broker.log"
PROPS="$RUN_DIR/server.properties"
LOG4J_BROKER="$RUN_DIR/log4j2-broker.properties"
LOG4J_TOOLS="$RUN_DIR/log4j2-tools.properties"
CLIENT_PROPS="$RUN_DIR/check-client.properties"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
# Hooks for a script that sources this one (kafka-secure.sh): extra `format` arguments,
# and a step after the configs are written (before format and start).
FORMAT_ARGS=()
after_write_configs() { :; }

if [[ -n "${JAVA:-}" ]]; then
  :
elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
  JAVA="$JAVA_HOME/bin/java"
else
  JAVA="java"
fi
# Short-lived tool JVMs (format, readiness probe): start fast, stay small.
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -Djava.awt.headless=true)

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 )); }
is_port "$KAFKA_PORT" || die "KAFKA_PORT='$KAFKA_PORT' is not a port number"
is_port "$KAFKA_CONTROLLER_PORT" || die "KAFKA_CONTROLLER_PORT='$KAFKA_CONTROLLER_PORT' is not a port number"
[[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"

# ---------------------------------------------------------------- fetch

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

libs_complete() {
  [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$(pom_hash)" ]] \
    && compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null
}

cmd_fetch() {
  libs_complete && return 0
  mkdir -p "$KAFKA_CACHE"
  # Serialise concurrent fetches (parallel test sessions).
  exec 8>"$KAFKA_CACHE/.fetch.lock"
  flock -w 600 8 || die "timed out waiting for another fetch ($KAFKA_CACHE/.fetch.lock)"
  if libs_complete; then exec 8>&-; return 0; fi

  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka jars)"
  local tmp="$KAFKA_CACHE/libs.tmp.$$"
  rm -rf "$tmp"
  local mvn_args=(-q -B -Dstyle.color=never -f "$POM" -Dmaven.repo.local="$M2_REPO"
                  dependency:copy-dependencies -DoutputDirectory="$tmp")
  log "fetching Kafka broker jars with Maven into $LIBS_DIR ..."
  # Offline first (warm ~/.cache/m2, no network needed), then online.
  if ! mvn -o "${mvn_args[@]}" >/dev/null 2>&1; then
    rm -rf "$tmp"
    mvn "${mvn_args[@]}" >&2 || { rm -rf "$tmp"; die "maven fetch failed (see output above)"; }
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "maven fetch produced no kafka_2.13 jar"; }
  pom_hash >"$tmp/.complete"
  # Swap in atomically-ish; a running broker keeps its already-open jars.
  rm -rf "$LIBS_DIR.old"
  [[ -d "$LIBS_DIR" ]] && mv "$LIBS_DIR" "$LIBS_DIR.old"
  mv "$tmp" "$LIBS_DIR"
  rm -rf "$LIBS_DIR.old"
  log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1))"
  exec 8>&-
}

# ---------------------------------------------------------------- process helpers

# Alive, not a zombie, and really our broker (guards against pid reuse).
pid_is_our_broker() {
  local pid="$1"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local state
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != "Z" && "$state" != "X" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "kafka.Kafka $PROPS" || return 1
}

read_pid() { [[ -f "$PID_FILE" ]] && tr -dc '0-9' <"$PID_FILE" || true; }

port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tail_log() {
  local n="${1:-200}"
  if [[ -f "$LOG_FILE" ]]; then tail -n "$n" "$LOG_FILE"; else log "no broker log at $LOG_FILE"; fi
}

# A real client round-trip (metadata + ListTopics) with the Kafka admin client from
# the same classpath, so it works before any Python venv exists.
broker_accepts_clients() {
  "$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$LOG4J_TOOLS" -cp "$LIBS_DIR/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
    --command-config "$CLIENT_PROPS" --list >/dev/null 2>&1
}

# ---------------------------------------------------------------- config rendering

write_configs() {
  mkdir -p "$RUN_DIR" "$DATA_DIR"
  [[ -f "$TEMPLATE" ]] || die "missing template $TEMPLATE"
  local esc_data
  esc_data="$(printf '%s' "$DATA_DIR" | sed 's/[\/&|]/\\&/g')"
  sed -e "s|@PORT@|$KAFKA_PORT|g" \
      -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$esc_data|g" \
      "$TEMPLATE" >"$PROPS.tmp"
  mv "$PROPS.tmp" "$PROPS"

  # Broker logs go to stdout, which is redirected (with stderr) into broker.log.
  cat >"$LOG4J_BROKER" <<'EOF'
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.target = SYSTEM_OUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.network.name = kafka.network.RequestChannel$
logger.network.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = INFO
EOF
  cat >"$LOG4J_TOOLS" <<'EOF'
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
  cat >"$CLIENT_PROPS" <<'EOF'
request.timeout.ms=5000
default.api.timeout.ms=8000
retry.backoff.ms=200
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=3000
EOF
  after_write_configs
}

random_cluster_id() {
  # Same shape as org.apache.kafka.common.Uuid: 16 random bytes, base64url, no padding,
  # never starting with '-'.
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* && ${#id} -eq 22 ]] && { printf '%s' "$id"; return; }
  done
}

format_storage_if_needed() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    log "reusing formatted storage in $DATA_DIR (cluster $(sed -n 's/^cluster.id=//p' "$DATA_DIR/meta.properties"))"
    return 0
  fi
  local cid
  cid="$(random_cluster_id)"
  log "formatting $DATA_DIR (cluster id $cid)"
  local out
  if ! out="$("$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$LOG4J_TOOLS" -cp "$LIBS_DIR/*" \
        kafka.tools.StorageTool format --config "$PROPS" --cluster-id "$cid" "${FORMAT_ARGS[@]}" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "storage format failed"
  fi
  printf '%s\n' "$out" >>"$LOG_FILE"
}

# ---------------------------------------------------------------- up / down

wait_until_ready() {
  local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while (( SECONDS < deadline )); do
    if ! pid_is_our_broker "$pid"; then
      log "broker process $pid exited during startup; last lines of $LOG_FILE:"
      tail_log 60 >&2
      rm -f "$PID_FILE"
      exit 1
    fi
    if port_answers "$KAFKA_PORT" && broker_accepts_clients; then
      return 0
    fi
    sleep 0.5
  done
  log "broker (pid $pid) not ready on $BOOTSTRAP after ${KAFKA_START_TIMEOUT}s; last lines of $LOG_FILE:"
  tail_log 60 >&2
  log "it is left running for inspection; stop it with: KAFKA_PORT=$KAFKA_PORT $0 down"
  exit 1
}

cmd_up() {
  cmd_fetch
  mkdir -p "$RUN_DIR"
  # One up/down at a time per port. The lock fd is closed for the broker (9>&-).
  exec 9>"$RUN_DIR/.lock"
  flock -w $((KAFKA_START_TIMEOUT + 60)) 9 || die "timed out waiting for another kafka.sh on port $KAFKA_PORT"

  local pid
  pid="$(read_pid)"
  if [[ -n "$pid" ]] && pid_is_our_broker "$pid"; then
    if port_answers "$KAFKA_PORT"; then
      log "reusing running broker (pid $pid) on $BOOTSTRAP"
      echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
      return 0
    fi
    # Ours but not answering yet (still starting): wait for it rather than start another.
    [[ -f "$CLIENT_PROPS" && -f "$LOG4J_TOOLS" ]] || write_configs
    log "broker (pid $pid) is running but not answering yet; waiting"
    wait_until_ready "$pid"
    echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
    return 0
  fi
  rm -f "$PID_FILE"

  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_answers "$p"; then
      die "port $p on 127.0.0.1 is already in use by something not started by this script (pick another KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
    fi
  done

  write_configs
  # Keep the previous run's log for post-mortems.
  [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  : >"$LOG_FILE"
  format_storage_if_needed

  log "starting broker on $BOOTSTRAP (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT), log: $LOG_FILE"
  # shellcheck disable=SC2086  # heap/extra opts are intentionally word-split
  (
    cd "$RUN_DIR"
    exec setsid nohup "$JAVA" $KAFKA_HEAP_OPTS \
      -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$LOG4J_BROKER" -Dkafka.logs.dir="$RUN_DIR" \
      $KAFKA_OPTS \
      -cp "$LIBS_DIR/*" kafka.Kafka "$PROPS"
  ) </dev/null >>"$LOG_FILE" 2>&1 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  sleep 0.3
  wait_until_ready "$pid"
  log "broker ready (pid $pid) after ${SECONDS}s"
  echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
}

cmd_down() {
  local wipe=0 arg
  for arg in "$@"; do
    case "$arg" in
      --wipe) wipe=1 ;;
      *) die "down: unknown option '$arg'" ;;
    esac
  done
  [[ -d "$RUN_DIR" ]] || { log "nothing running on port $KAFKA_PORT"; return 0; }
  exec 9>"$RUN_DIR/.lock"
  flock -w $((KAFKA_STOP_TIMEOUT + 60)) 9 || die "timed out waiting for another kafka.sh on port $KAFKA_PORT"

  local pid
  pid="$(read_pid)"
  if [[ -n "$pid" ]] && pid_is_our_broker "$pid"; then
    log "stopping broker pid $pid (SIGTERM, up to ${KAFKA_STOP_TIMEOUT}s)"
    kill -TERM "$pid" 2>/dev/null || true
    local ticks=$((KAFKA_STOP_TIMEOUT * 5))   # 0.2 s each
    while pid_is_our_broker "$pid" && (( ticks-- > 0 )); do sleep 0.2; done
    if pid_is_our_broker "$pid"; then
      log "broker pid $pid still alive after ${KAFKA_STOP_TIMEOUT}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      ticks=50
      while pid_is_our_broker "$pid" && (( ticks-- > 0 )); do sleep 0.2; done
    fi
    log "stopped"
  else
    log "nothing running on port $KAFKA_PORT"
  fi
  rm -f "$PID_FILE"
  if (( wipe )); then
    log "wiping $DATA_DIR"
    rm -rf "$DATA_DIR"
  fi
}

cmd_status() {
  local pid
  pid="$(read_pid)"
  if [[ -n "$pid" ]] && pid_is_our_broker "$pid" && port_answers "$KAFKA_PORT"; then
    log "running (pid $pid) on $BOOTSTRAP"
    echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
    return 0
  fi
  log "not running on port $KAFKA_PORT"
  return 1
}

cmd_logs() {
  local n="${1:-200}"
  [[ "$n" =~ ^[0-9]+$ ]] || die "logs: N must be a number"
  tail_log "$n"
}

# Sourced (by kafka-secure.sh): define the functions, run nothing.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

case "${1:-}" in
  fetch) shift; cmd_fetch "$@" ;;
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  logs) shift; cmd_logs "$@" ;;
  -h|--help|help) usage ;;
  *) usage; exit 2 ;;
esac
