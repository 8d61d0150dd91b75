#!/usr/bin/env bash
# The secrets and site files of deploy/compose, in secrets/ beside this script (never committed):
#
#   ./make-secrets.sh [--mqtt-host NAME]... [GATEWAY:PLANT]...
#
# It makes what is missing and keeps what exists, so running it again only adds gateways.
#   postgres_password, influx_admin_password, influx_admin_token, webhook_secret,
#   mqtt_bridge_password, mqtt_alarms_password   random, one line each
#   gateways.list                                 GATEWAY PLANT, one a line (delete a line to
#                                                 revoke a gateway, then run this again)
#   gateways/GATEWAY.password                     copy to the gateway: its mqtt.password_file
#   mqtt_users, mqtt_acl, gateways.json           Mosquitto's users and ACL and the bridge's
#                                                 gateway registry, rewritten at every run
#   mqtt-ca.pem (give it to the gateways: mqtt.ca_file), mqtt-ca.key, mqtt-server.pem,
#   mqtt-server.key                               the broker's CA and its certificate for every
#                                                 --mqtt-host (default: this machine's name)
# Afterwards: `docker compose up -d`, or with the broker running `docker compose restart
# mosquitto bridge`. PLANTMESH_SECRETS_DIR writes elsewhere (the tests use it).
set -euo pipefail

dir=${PLANTMESH_SECRETS_DIR:-$(cd "$(dirname "$0")" && pwd)/secrets}
hosts=()
new_gateways=()
while [ $# -gt 0 ]; do
  case $1 in
    --mqtt-host) hosts+=("${2:?--mqtt-host needs a name}"); shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *:*) new_gateways+=("$1"); shift ;;
    *) echo "make-secrets: expected --mqtt-host NAME or GATEWAY:PLANT, not '$1'" >&2; exit 2 ;;
  esac
done

# The contracts' names: safe in topics, Mosquitto's files and JSON alike.
name_ok() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]]; }

umask 077
mkdir -p "$dir/gateways"
chmod 0700 "$dir"
# The directory keeps the host's other users out. Files a plantmesh container (uid 10001, no
# capabilities) reads are 0444, because Compose mounts secret files with their host owner and
# mode; the servers' entrypoints read theirs as root, so those stay 0400.
replace() {  # FILE MODE < content: a new file put in place (the old one may be read-only)
  cat >"$dir/.new"
  chmod "$2" "$dir/.new"
  mv -f "$dir/.new" "$dir/$1"
}
secret() {  # FILE MODE: a random secret, unless FILE has one already
  [ -s "$dir/$1" ] || openssl rand -hex 24 >"$dir/$1"
  chmod "$2" "$dir/$1"
}
for name in influx_admin_password influx_admin_token; do secret "$name" 0400; done
for name in postgres_password webhook_secret mqtt_bridge_password mqtt_alarms_password; do
  secret "$name" 0444
done

touch "$dir/gateways.list"
for spec in ${new_gateways[@]+"${new_gateways[@]}"}; do
  gateway=${spec%%:*}
  plant=${spec#*:}
  if ! name_ok "$gateway" || ! name_ok "$plant"; then
    echo "make-secrets: '$spec': names are letters, digits, _ . - (at most 64)" >&2
    exit 2
  fi
  case $gateway in bridge | alarms | health)
    echo "make-secrets: '$gateway' is a service's own MQTT user" >&2
    exit 2
    ;;
  esac
  known=$(awk -v g="$gateway" '$1 == g {print $2}' "$dir/gateways.list")
  if [ -z "$known" ]; then
    echo "$gateway $plant" >>"$dir/gateways.list"
  elif [ "$known" != "$plant" ]; then
    echo "make-secrets: $gateway is already a gateway of $known (gateways.list)" >&2
    exit 2
  fi
done

# Rewritten from gateways.list every time, so a gateway taken out of it loses its access.
users="bridge:$(cat "$dir/mqtt_bridge_password")"$'\n'"alarms:$(cat "$dir/mqtt_alarms_password")"
acl="# Written by make-secrets.sh from gateways.list: edits are overwritten.
# A user without a block here may do nothing.

user bridge
topic read plantmesh/v1/+/+/+/+/readings
topic read plantmesh/v1/+/_gateway/+/status
topic read +/plantmesh/v1/+/+/+/+/readings
topic read +/plantmesh/v1/+/_gateway/+/status

user alarms
topic write plantmesh/v1/andon/#
"
registry=""
while read -r gateway plant; do
  [ -n "$gateway" ] || continue
  secret "gateways/$gateway.password" 0400
  users+=$'\n'"$gateway:$(cat "$dir/gateways/$gateway.password")"
  acl+="
user $gateway
topic write plantmesh/v1/$plant/+/+/+/readings
topic write plantmesh/v1/$plant/_gateway/$gateway/status
"
  registry+="${registry:+, }{\"name\": \"$gateway\", \"plant\": \"$plant\", \"namespace\": \"\"}"
done <"$dir/gateways.list"
printf '%s\n' "$users" | replace mqtt_users 0400
printf '%s' "$acl" | replace mqtt_acl 0400
printf '{"gateways": [%s]}\n' "$registry" | replace gateways.json 0444

if [ ! -s "$dir/mqtt-ca.pem" ]; then
  openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes -subj "/CN=plantmesh MQTT CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/mqtt-ca.key" -out "$dir/mqtt-ca.pem" 2>/dev/null
  rm -f "$dir/mqtt-server.pem"  # a new CA needs a new server certificate
fi
if [ ! -s "$dir/mqtt-server.pem" ]; then
  [ ${#hosts[@]} -gt 0 ] || hosts=("$(hostname -f 2>/dev/null || hostname)")
  san=""
  for host in "${hosts[@]}"; do
    if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then kind=IP; else kind=DNS; fi
    san+="${san:+,}$kind:$host"
  done
  openssl req -newkey rsa:3072 -sha256 -nodes -subj "/CN=${hosts[0]}" \
    -keyout "$dir/mqtt-server.key" -out "$dir/mqtt-server.csr" 2>/dev/null
  openssl x509 -req -in "$dir/mqtt-server.csr" -CA "$dir/mqtt-ca.pem" -CAkey "$dir/mqtt-ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 -out "$dir/mqtt-server.pem" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") 2>/dev/null
  rm -f "$dir/mqtt-server.csr"
  echo "make-secrets: MQTT server certificate for $san"
elif [ ${#hosts[@]} -gt 0 ]; then
  echo "make-secrets: keeping the existing mqtt-server.pem (delete it to issue one for ${hosts[*]})"
fi
chmod 0400 "$dir/mqtt-ca.key" "$dir/mqtt-server.key"
chmod 0444 "$dir/mqtt-ca.pem" "$dir/mqtt-server.pem"
echo "make-secrets: $dir ($(grep -c . "$dir/gateways.list" || true) gateway(s))"
