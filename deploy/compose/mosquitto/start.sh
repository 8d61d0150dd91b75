#!/bin/sh
# Entrypoint of the mosquitto service (compose.yaml). Hashes the plain `user:password` lines of
# the mqtt_users secret into Mosquitto's password file, so the plain passwords stay in
# secrets/ and a changed one needs only a restart; installs the ACL, CA, certificate and key
# owned by the `mosquitto` user, which Mosquitto switches to before reading them.
set -eu
dir=/mosquitto/data/security
umask 077
rm -rf "$dir"
mkdir -p "$dir"
cp /run/secrets/mqtt_users "$dir/passwd"
cp /run/secrets/mqtt_acl "$dir/acl"
cp /run/secrets/mqtt_ca "$dir/ca.pem"
cp /run/secrets/mqtt_server_cert "$dir/server.pem"
cp /run/secrets/mqtt_server_key "$dir/server.key"
# The healthcheck's own user, with a password made here and known only inside the container.
health=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)
printf '%s' "$health" >"$dir/health.password"
printf 'health:%s\n' "$health" >>"$dir/passwd"
printf '\nuser health\ntopic read $SYS/broker/uptime\n' >>"$dir/acl"
mosquitto_passwd -U "$dir/passwd"
chown -R mosquitto:mosquitto "$dir" /mosquitto/data
exec /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf
