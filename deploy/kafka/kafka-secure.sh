#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) with security on, for the security tests and for
# trying the ACLs: kafka.sh's broker, plus
#   - clients: SASL_SSL on 127.0.0.1:KAFKA_PORT, SCRAM-SHA-512 only;
#   - the controller listener: mutual TLS, only the broker's own certificate is let in;
#   - StandardAuthorizer, no ACL means no access; super users: User:admin (the SCRAM user
#     the broker itself and operators use) and the broker's certificate;
#   - SCRAM users admin + KAFKA_SCRAM_USERS, created when the storage is formatted;
#   - a self-signed CA and the broker's certificate (127.0.0.1, localhost), made with openssl.
# Everything generated lives in .kafka/<port>/ (gitignored): tls/ (keys 0600), secrets/ (0700).
#
#   deploy/kafka/kafka-secure.sh up                start (or reuse); prints KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<port>
#   deploy/kafka/kafka-secure.sh down [--wipe]     stop; --wipe also deletes data, users, keys, CA
#   deploy/kafka/kafka-secure.sh status | logs [N] | fetch     as kafka.sh
#   deploy/kafka/kafka-secure.sh env USER          export lines to connect as USER (for eval)
#   deploy/kafka/kafka-secure.sh client-config USER    path of a Java client config for USER
#                                                  (kafka-acls, kafka-console-consumer, ...)
#
# Env: KAFKA_PORT (9192), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1),
#      KAFKA_SCRAM_USERS ("monitor regulator"), and the rest of kafka.sh's.
set -euo pipefail

export KAFKA_PORT="${KAFKA_PORT:-9192}"
# shellcheck source=deploy/kafka/kafka.sh
source "$(dirname "${BASH_SOURCE[0]}")/kafka.sh"

SECURE_PROPS="$SCRIPT_DIR/secure.properties.in"
TLS_DIR="$RUN_DIR/tls"
SECRETS_DIR="$RUN_DIR/secrets"
MECHANISM="SCRAM-SHA-512"
BROKER_CN="reserve-monitor-broker"
read -r -a SCRAM_USERS <<<"admin ${KAFKA_SCRAM_USERS:-monitor regulator}"

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

valid_user() { [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; }

# ---------------------------------------------------------------- secrets and TLS

password_of() { cat "$SECRETS_DIR/$1.password"; }

# Random alphanumeric passwords: nothing to escape in JAAS or --add-scram syntax.
new_password() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32; }

ensure_secrets() {
  local user
  if [[ -f "$DATA_DIR/meta.properties" && ! -d "$SECRETS_DIR" ]]; then
    die "$DATA_DIR is formatted but $SECRETS_DIR is gone; start afresh with: $0 down --wipe"
  fi
  mkdir -p "$SECRETS_DIR"
  chmod 700 "$SECRETS_DIR"
  for user in "${SCRAM_USERS[@]}" keystore; do
    valid_user "$user" || die "bad user name '$user' in KAFKA_SCRAM_USERS"
    [[ -s "$SECRETS_DIR/$user.password" ]] && continue
    [[ "$user" == keystore || ! -f "$DATA_DIR/meta.properties" ]] \
      || die "user $user is not in the formatted storage (users are added at format time); $0 down --wipe"
    (umask 077 && new_password >"$SECRETS_DIR/$user.password")
  done
}

ensure_tls() {
  [[ -f "$TLS_DIR/broker.p12" && -f "$TLS_DIR/ca.pem" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (needed to make the local CA)"
  log "making a local CA and the broker certificate in $TLS_DIR"
  mkdir -p "$TLS_DIR"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  (
    umask 077
    cd "$TLS_DIR"
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 825 -sha256 \
      -subj "/CN=reserve-monitor local CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req "${ec[@]}" -keyout broker.key -out broker.csr -subj "/CN=$BROKER_CN"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
      "extendedKeyUsage=serverAuth,clientAuth" >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
      -sha256 -extfile broker.ext -out broker.pem
    openssl pkcs12 -export -name broker -in broker.pem -inkey broker.key -certfile ca.pem \
      -passout "file:$SECRETS_DIR/keystore.password" -out broker.p12
    rm -f broker.csr broker.ext ca.srl
    chmod 644 ca.pem   # the CA certificate is public: clients need it
  ) >/dev/null 2>&1 || die "openssl failed to make the certificates in $TLS_DIR"
}

# The Java client config of USER: SASL_SSL, SCRAM, trusting the local CA.
write_client_config() {
  local user="$1" file="$2"
  (
    umask 077
    rm -f "$file"   # a new file, so the umask applies: it holds a password
    cat >"$file" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=$MECHANISM
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$user" password="$(password_of "$user")";
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
EOF
  )
}

# kafka.sh hook: runs inside `up`, under its lock, after server.properties is written.
after_write_configs() {
  ensure_secrets
  ensure_tls
  # Later keys win in a .properties file: the secure listeners replace the plain ones.
  local esc_tls
  esc_tls="$(printf '%s' "$TLS_DIR" | sed 's/[\/&|]/\\&/g')"
  (
    umask 077
    sed -e "s|@PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@TLS_DIR@|$esc_tls|g" \
        -e "s|@BROKER_CN@|$BROKER_CN|g" \
        -e "s|@ADMIN_PASSWORD@|$(password_of admin)|g" \
        -e "s|@KEYSTORE_PASSWORD@|$(password_of keystore)|g" \
        "$SECURE_PROPS" >>"$PROPS"
    chmod 600 "$PROPS"
  )
  # the readiness probe connects as admin
  local probe
  probe="$(cat "$CLIENT_PROPS")"
  write_client_config admin "$CLIENT_PROPS"
  printf '%s\n' "$probe" >>"$CLIENT_PROPS"
  FORMAT_ARGS=()
  local user
  for user in "${SCRAM_USERS[@]}"; do
    FORMAT_ARGS+=(--add-scram "$MECHANISM=[name=$user,password=$(password_of "$user")]")
  done
}

# ---------------------------------------------------------------- commands

known_user() {
  valid_user "$1" && [[ -s "$SECRETS_DIR/$1.password" && "$1" != keystore ]] \
    || die "no SCRAM user '$1' on port $KAFKA_PORT (users: ${SCRAM_USERS[*]}; is the broker up?)"
}

cmd_env() {
  local user="${1:-}"
  known_user "$user"
  cat <<EOF
export KAFKA_BOOTSTRAP_SERVERS='$BOOTSTRAP'
export KAFKA_SECURITY_PROTOCOL='SASL_SSL'
export KAFKA_SASL_MECHANISM='$MECHANISM'
export KAFKA_SSL_CAFILE='$TLS_DIR/ca.pem'
export KAFKA_SASL_USERNAME='$user'
export KAFKA_SASL_PASSWORD='$(password_of "$user")'
EOF
}

cmd_client_config() {
  local user="${1:-}"
  known_user "$user"
  local file="$SECRETS_DIR/$user.properties"
  write_client_config "$user" "$file"
  echo "$file"
}

cmd_secure_down() {
  cmd_down "$@"
  if [[ " $* " == *" --wipe "* ]]; then
    log "wiping $TLS_DIR and $SECRETS_DIR"
    rm -rf "$TLS_DIR" "$SECRETS_DIR"
  fi
}

case "${1:-}" in
  fetch) shift; cmd_fetch "$@" ;;
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_secure_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  logs) shift; cmd_logs "$@" ;;
  env) shift; cmd_env "$@" ;;
  client-config) shift; cmd_client_config "$@" ;;
  -h|--help|help) usage ;;
  *) usage; exit 2 ;;
esac
