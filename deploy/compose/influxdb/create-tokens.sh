#!/bin/bash
# Run once by the influxdb image, right after its first setup (/docker-entrypoint-initdb.d, as
# root, with the operator's CLI config and DOCKER_INFLUXDB_INIT_BUCKET_ID set). Makes a
# write-only token for the ingest writer and a read-write one for the alarm service, each on
# the plantmesh bucket only, in the influx-tokens volume those services mount read-only as
# their `token_file` (uid 10001: the plantmesh images' user).
set -euo pipefail
out=/var/lib/plantmesh-tokens
umask 077

token() {  # NAME PERMISSION-FLAGS...: prints only the new token (third column)
  local name=$1
  shift
  influx auth create --org "$DOCKER_INFLUXDB_INIT_ORG" --user "$DOCKER_INFLUXDB_INIT_USERNAME" \
    --description "plantmesh-$name" --hide-headers "$@" | cut -f 3
}

bucket=$DOCKER_INFLUXDB_INIT_BUCKET_ID
token writer --write-bucket "$bucket" >"$out/writer.token"
token alarms --write-bucket "$bucket" --read-bucket "$bucket" >"$out/alarms.token"
for name in writer alarms; do
  test -s "$out/$name.token"
  chown 10001:10001 "$out/$name.token"
  chmod 0400 "$out/$name.token"
done
