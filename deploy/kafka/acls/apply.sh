#!/usr/bin/env bash
# The Kafka ACLs of one Reserve Monitor deployment (topic prefix + application id):
#
#   the monitor principal    reads its four input topics, writes its four output topics,
#                            creates the eight contract topics when missing (as a worker
#                            does on start), uses its consumer group (the application id)
#                            owns its internal topics (its tasks' changelogs: every topic
#                            named "<app id>-...") and its tasks' transactional ids
#                            ("<app id>-task-<n>": one transactional producer per task);
#   the regulator principal  reads <prefix>reserve.breaches with its own consumer group,
#                            and nothing else: no input topic, no reserve.alerts, no writes.
#
# Everything else is refused by the broker's authorizer (allow.everyone.if.no.acl.found=false).
#
#   deploy/kafka/acls/apply.sh --bootstrap HOST:PORT --command-config FILE [--remove]
#
# --command-config: the Java client config of a principal allowed to alter ACLs (a super
# user), e.g. `deploy/kafka/kafka-secure.sh client-config admin`. --remove takes them away.
# Env: RESERVE_MONITOR_TOPIC_PREFIX (''), RESERVE_MONITOR_APP_ID (reserve-monitor),
#      MONITOR_PRINCIPAL (User:monitor), REGULATOR_PRINCIPAL (User:regulator),
#      REGULATOR_GROUP (regulator), KAFKA_ACLS (the kafka-acls command; default
#      kafka-acls.sh on PATH, else org.apache.kafka.tools.AclCommand from .cache/kafka/libs).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd -P)"
PREFIX="${RESERVE_MONITOR_TOPIC_PREFIX:-}"
APP_ID="${RESERVE_MONITOR_APP_ID:-reserve-monitor}"
MONITOR="${MONITOR_PRINCIPAL:-User:monitor}"
REGULATOR="${REGULATOR_PRINCIPAL:-User:regulator}"
REGULATOR_GROUP="${REGULATOR_GROUP:-regulator}"

die() { printf 'acls/apply.sh: error: %s\n' "$*" >&2; exit 1; }

bootstrap="" config="" action="--add"
while (( $# )); do
  case "$1" in
    --bootstrap) bootstrap="${2:-}"; shift 2 ;;
    --command-config) config="${2:-}"; shift 2 ;;
    --remove) action="--remove"; shift ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -n "$bootstrap" ]] || die "--bootstrap is required"
[[ -f "$config" ]] || die "--command-config FILE is required (a super user's client config)"

if [[ -n "${KAFKA_ACLS:-}" ]]; then
  read -r -a acls <<<"$KAFKA_ACLS"
elif command -v kafka-acls.sh >/dev/null; then
  acls=(kafka-acls.sh)
else
  libs="$REPO_ROOT/.cache/kafka/libs"
  compgen -G "$libs/kafka-tools-*.jar" >/dev/null \
    || die "no kafka-acls.sh on PATH and no jars in $libs (run deploy/kafka/kafka.sh fetch)"
  acls=(java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
        -Dlog4j2.configurationFile="$REPO_ROOT/deploy/kafka/acls/log4j2-quiet.properties"
        -cp "$libs/*" org.apache.kafka.tools.AclCommand)
fi

topics() { local name; for name in "$@"; do printf -- '--topic\n%s\n' "$PREFIX$name"; done; }
mapfile -t INPUTS < <(topics exchange.trades exchange.wallet-balances exchange.ledger market.prices)
mapfile -t OUTPUTS < <(topics reserve.alerts reserve.breaches reserve.adequacy reserve.deadletter)

# One grant: PRINCIPAL, then operations and resources as kafka-acls takes them.
grant() {
  local principal="$1"; shift
  local force=(); [[ "$action" == --remove ]] && force=(--force)
  "${acls[@]}" --bootstrap-server "$bootstrap" --command-config "$config" \
    "$action" "${force[@]}" --allow-principal "$principal" "$@" >/dev/null
}

# The grants are independent: run them side by side (each is a JVM start).
pids=()
grant "$MONITOR" --operation Read --operation Describe "${INPUTS[@]}" --group "$APP_ID" &
pids+=($!)
grant "$MONITOR" --operation Write --operation Describe "${OUTPUTS[@]}" &
pids+=($!)
grant "$MONITOR" --operation Create "${INPUTS[@]}" "${OUTPUTS[@]}" &
pids+=($!)
grant "$MONITOR" --operation All --resource-pattern-type prefixed --topic "$APP_ID-" &
pids+=($!)
grant "$MONITOR" --operation Write --operation Describe --resource-pattern-type prefixed \
  --transactional-id "$APP_ID-task-" &
pids+=($!)
grant "$REGULATOR" --operation Read --operation Describe \
  --topic "${PREFIX}reserve.breaches" --group "$REGULATOR_GROUP" &
pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
(( failed == 0 )) || die "kafka-acls failed (see above); some ACLs may be in place"

verb=$([[ "$action" == --add ]] && echo granted || echo removed)
printf 'acls/apply.sh: %s the ACLs of %s (topic prefix %q, app id %s) and %s (group %s)\n' \
  "$verb" "$MONITOR" "$PREFIX" "$APP_ID" "$REGULATOR" "$REGULATOR_GROUP" >&2
