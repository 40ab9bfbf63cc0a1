#!/bin/sh
# Kibana signs in to Elasticsearch as the built-in kibana_system user, which has no
# password until one is set. Run once, after Elasticsearch is healthy, before Kibana.
set -eu
: "${ELASTIC_PASSWORD:?ELASTIC_PASSWORD is not set (see .env.example)}"
: "${KIBANA_PASSWORD:?KIBANA_PASSWORD is not set (see .env.example)}"
url="${ELASTICSEARCH_URL:-http://elasticsearch:9200}"
case "$KIBANA_PASSWORD" in
  *[\"\\]*) echo "KIBANA_PASSWORD must not contain \" or \\" >&2; exit 2 ;;
esac
curl --fail --silent --show-error -u "elastic:${ELASTIC_PASSWORD}" \
  -H 'Content-Type: application/json' -X POST \
  "${url}/_security/user/kibana_system/_password" \
  -d "{\"password\":\"${KIBANA_PASSWORD}\"}" >/dev/null
echo "kibana_system password set"
