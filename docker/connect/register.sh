#!/bin/sh
# Registers docker/connect/customer-connector.json as connector cdc-customer
# (PUT /connectors/cdc-customer/config) and waits until the connector and its
# task are RUNNING.  POSIX sh + curl only: it is the one-shot `register`
# service of docker/docker-compose.yml (curlimages/curl).  The native stack
# does the same in docker/lib/connect.sh (`docker/stack register`).
#   CONNECT_URL     default http://connect:8083
#   CONNECTOR_JSON  default /connector.json
#   TIMEOUT         seconds, default 300
set -eu
url=${CONNECT_URL:-http://connect:8083}/connectors/cdc-customer
json=${CONNECTOR_JSON:-/connector.json}
timeout=${TIMEOUT:-300}
out=$(mktemp)
start=$(date +%s)
expired() { [ $(($(date +%s) - start)) -ge "$timeout" ]; }

# 409 = the worker is rebalancing, 5xx/000 = not up yet: try again.
while :; do
    code=$(curl -s -o "$out" -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
        --data-binary "@$json" "$url/config") || code=000
    case $code in
        200|201) echo "register: PUT $url/config -> $code"; break ;;
        409|000|5*) ;;
        *) echo "register: PUT $url/config -> HTTP $code: $(cat "$out")" >&2; exit 1 ;;
    esac
    if expired; then echo "register: Kafka Connect did not accept the config (last HTTP $code)" >&2; exit 1; fi
    sleep 2
done

# RUNNING = the connector and every task (there is one) report RUNNING.
while :; do
    status=$(curl -s "$url/status" || true)
    n_running=$(printf '%s' "$status" | grep -o '"state":"RUNNING"' | wc -l)
    case $status in
        *'"tasks":[{'*) if [ "$n_running" -ge 2 ] && ! printf '%s' "$status" | grep -Eq '"state":"(FAILED|PAUSED|UNASSIGNED)"'; then
                            echo "register: cdc-customer RUNNING"; exit 0
                        fi ;;
    esac
    case $status in
        *'"state":"FAILED"'*) echo "register: cdc-customer FAILED: $status" >&2; exit 1 ;;
    esac
    if expired; then echo "register: cdc-customer not RUNNING: $status" >&2; exit 1; fi
    sleep 2
done
