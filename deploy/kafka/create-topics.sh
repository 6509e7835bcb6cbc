#!/bin/sh
# Create Tributary's topics with their settings; idempotent (--if-not-exists), so the job can
# run on every deploy. Runs in the apache/kafka image (compose `topics`, k8s Job
# `tributary-topics`). The settings come from contracts.topic_config; tests/deploy checks that
# this file agrees with it. An existing topic is left as it is: change one with
# kafka-configs.sh --alter.
#
#   KAFKA_BOOTSTRAP_SERVERS      required
#   TRIBUTARY_TOPIC_PARTITIONS   partitions per topic (default 6; the services' own default)
#   TOPIC_REPLICATION_FACTOR     default 1 (single broker); 3 on a production cluster
#   TOPIC_MIN_INSYNC_REPLICAS    optional, e.g. 2 with replication factor 3 (producers use acks=all)
#   KAFKA_TOPICS                 path of kafka-topics.sh (default /opt/kafka/bin/kafka-topics.sh)
#   KAFKA_COMMAND_CONFIG         optional: client properties file for a TLS/SASL broker
#                                (security.protocol, sasl.mechanism, sasl.jaas.config, ssl.*)
set -eu

: "${KAFKA_BOOTSTRAP_SERVERS:?set KAFKA_BOOTSTRAP_SERVERS}"
PARTITIONS="${TRIBUTARY_TOPIC_PARTITIONS:-6}"
REPLICATION_FACTOR="${TOPIC_REPLICATION_FACTOR:-1}"
KAFKA_TOPICS="${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"
# Services send messages up to 4 MiB (contracts.topic_config.MAX_MESSAGE_BYTES).
MAX_MESSAGE_BYTES=4194304

# kafka-topics.sh against the broker, with the client properties when given.
topics() {
  if [ -n "${KAFKA_COMMAND_CONFIG:-}" ]; then
    "$KAFKA_TOPICS" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --command-config "$KAFKA_COMMAND_CONFIG" "$@"
  else
    "$KAFKA_TOPICS" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" "$@"
  fi
}

# create TOPIC CLEANUP_POLICY RETENTION_MS
create() {
  if [ -n "${TOPIC_MIN_INSYNC_REPLICAS:-}" ]; then
    isr="--config min.insync.replicas=${TOPIC_MIN_INSYNC_REPLICAS}"
  else
    isr=""
  fi
  # shellcheck disable=SC2086  # $isr is empty or one option pair
  topics --create --if-not-exists \
    --topic "$1" --partitions "$PARTITIONS" --replication-factor "$REPLICATION_FACTOR" \
    --config "cleanup.policy=$2" --config "retention.ms=$3" \
    --config "max.message.bytes=$MAX_MESSAGE_BYTES" $isr
  echo "topic $1: cleanup.policy=$2 retention.ms=$3"
}

# The event log is the source of truth: rebuilds and replays read these from offset 0,
# so they are kept forever (-1).
create imports.records.v1 delete -1
create imports.events.v1 delete -1
create imports.validated-records.v1 delete -1
# Latest snapshot per flow / latest record per API key: compaction keeps the last per key.
create flows.status.v1 compact -1
create access.api-keys.v1 compact -1
# Dead letters are never dropped (and never compacted: two poison messages can share a key).
create imports.records.v1.dlq delete -1
create imports.events.v1.dlq delete -1
create imports.validated-records.v1.dlq delete -1
create flows.status.v1.dlq delete -1
create access.api-keys.v1.dlq delete -1

topics --list
