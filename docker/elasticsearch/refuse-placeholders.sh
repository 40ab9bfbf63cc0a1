#!/bin/sh
# Entry point of the compose services built from this image: refuses to start while a
# secret still holds the placeholder of .env.example, then runs the given command.
for name in ELASTIC_PASSWORD KIBANA_PASSWORD KIBANA_ENCRYPTION_KEY; do
  eval "value=\${$name:-}"
  case "$value" in
    change-me*) echo "$name in .env is still the placeholder of .env.example: set a real one" >&2
                exit 2 ;;
  esac
done
exec "$@"
