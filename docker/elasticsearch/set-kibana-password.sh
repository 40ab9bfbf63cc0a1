#!/bin/sh
# Kibana signs in to Elasticsearch as the built-in kibana_system user, which has no
# password until one is set. Run once, after Elasticsearch is healthy, before Kibana.
# A cluster that just turned healthy may still refuse (security index not ready): the
# request is retried for up to five minutes.
set -eu
: "${ELASTIC_PASSWORD:?ELASTIC_PASSWORD is not set (see .env.example)}"
: "${KIBANA_PASSWORD:?KIBANA_PASSWORD is not set (see .env.example)}"
url="${ELASTICSEARCH_URL:-http://elasticsearch:9200}"
attempts="${KIBANA_PASSWORD_ATTEMPTS:-60}"
case "$KIBANA_PASSWORD" in
  *[\"\\]*) echo "KIBANA_PASSWORD must not contain \" or \\" >&2; exit 2 ;;
esac
n=1
until curl --fail --silent --show-error -u "elastic:${ELASTIC_PASSWORD}" \
    -H 'Content-Type: application/json' -X POST \
    "${url}/_security/user/kibana_system/_password" \
    -d "{\"password\":\"${KIBANA_PASSWORD}\"}" >/dev/null; do
  if [ "$n" -ge "$attempts" ]; then
    echo "kibana_system password not set after $n attempts" >&2
    exit 1
  fi
  n=$((n + 1))
  sleep "${KIBANA_PASSWORD_RETRY_SECONDS:-5}"
done
echo "kibana_system password set"
