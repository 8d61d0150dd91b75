{{/*
The `kafka:`, `mqtt:` and `influxdb:` sections of the services' config files, and the secret
files they name. Secrets reach a pod only as files of one projected volume (plantmesh.secretDir);
the config names the file (password_file, token_file, ca_file), never the secret itself.
Called with (dict "root" $ "component" NAME "creds" CREDENTIALS ...).
*/}}

{{- define "plantmesh.secretSource" -}}
- secret:
    name: {{ .name | toJson }}
    items:
      - key: {{ .key | toJson }}
        path: {{ .path | toJson }}
{{- end -}}

{{- define "plantmesh.kafkaSasl" -}}
{{- has .root.Values.kafka.securityProtocol (list "SASL_PLAINTEXT" "SASL_SSL") -}}
{{- end -}}

{{- define "plantmesh.kafkaTls" -}}
{{- and .root.Values.kafka.caSecret (has .root.Values.kafka.securityProtocol (list "SSL" "SASL_SSL")) -}}
{{- end -}}

{{- define "plantmesh.kafkaCreds" -}}
{{- $protocol := .root.Values.kafka.securityProtocol -}}
{{- required (printf "%s.kafkaCredentials {username, existingSecret, passwordKey} is required with kafka.securityProtocol %s" .component $protocol) .creds | toJson -}}
{{- end -}}

{{- define "plantmesh.kafkaSection" -}}
{{- $kafka := .root.Values.kafka -}}
bootstrap: {{ required "kafka.bootstrap is required (host:port[,host:port...])" $kafka.bootstrap | toJson }}
client_id: {{ printf "plantmesh-%s" .component | toJson }}
security_protocol: {{ $kafka.securityProtocol | toJson }}
{{- if eq (include "plantmesh.kafkaSasl" .) "true" }}
{{- $creds := include "plantmesh.kafkaCreds" . | fromJson }}
username: {{ $creds.username | toJson }}
password_file: {{ printf "%s/kafka/password" (include "plantmesh.secretDir" .) | toJson }}
sasl_mechanism: {{ $kafka.saslMechanism | toJson }}
{{- end }}
{{- if eq (include "plantmesh.kafkaTls" .) "true" }}
ca_file: {{ printf "%s/kafka-ca/ca.crt" (include "plantmesh.secretDir" .) | toJson }}
{{- end }}
{{- end -}}

{{- define "plantmesh.kafkaSources" -}}
{{- if eq (include "plantmesh.kafkaSasl" .) "true" }}
{{- $creds := include "plantmesh.kafkaCreds" . | fromJson }}
{{ include "plantmesh.secretSource" (dict "name" $creds.existingSecret "key" (default "password" $creds.passwordKey) "path" "kafka/password") }}
{{- end }}
{{- if eq (include "plantmesh.kafkaTls" .) "true" }}
{{ include "plantmesh.secretSource" (dict "name" .root.Values.kafka.caSecret.name "key" .root.Values.kafka.caSecret.key "path" "kafka-ca/ca.crt") }}
{{- end }}
{{- end -}}

{{- define "plantmesh.kafkaTopics" -}}
{{- $topics := .Values.kafka.topics -}}
create: {{ $topics.create | toJson }}
partitions: {{ $topics.partitions | toJson }}
replication_factor: {{ $topics.replicationFactor | toJson }}
{{- end -}}

{{- define "plantmesh.backoff" -}}
initial_s: {{ .Values.backoff.initialSeconds | toJson }}
max_s: {{ .Values.backoff.maxSeconds | toJson }}
{{- end -}}

{{/* (dict "root" $ "dir" "mqtt" "creds" ... "clientId" ...) */}}
{{- define "plantmesh.mqttSection" -}}
{{- $mqtt := .root.Values.mqtt -}}
url: {{ required "mqtt.url is required (mqtt://host:1883 or mqtts://host:8883)" $mqtt.url | toJson }}
{{- if .clientId }}
client_id: {{ .clientId | toJson }}
{{- end }}
keepalive_s: {{ $mqtt.keepaliveSeconds | toJson }}
{{- with .creds }}
username: {{ .username | toJson }}
password_file: {{ printf "%s/%s/password" (include "plantmesh.secretDir" $) $.dir | toJson }}
{{- end }}
{{- if and $mqtt.caSecret (hasPrefix "mqtts:" $mqtt.url) }}
ca_file: {{ printf "%s/mqtt-ca/ca.crt" (include "plantmesh.secretDir" .) | toJson }}
{{- end }}
{{- end -}}

{{- define "plantmesh.mqttSources" -}}
{{- with .creds }}
{{ include "plantmesh.secretSource" (dict "name" .existingSecret "key" (default "password" .passwordKey) "path" (printf "%s/password" $.dir)) }}
{{- end }}
{{- $mqtt := .root.Values.mqtt -}}
{{- if and $mqtt.caSecret (hasPrefix "mqtts:" $mqtt.url) }}
{{ include "plantmesh.secretSource" (dict "name" $mqtt.caSecret.name "key" $mqtt.caSecret.key "path" "mqtt-ca/ca.crt") }}
{{- end }}
{{- end -}}

{{/* (dict "root" $ "creds" ... "required" BOOL) */}}
{{- define "plantmesh.influxSection" -}}
{{- $influx := .root.Values.influxdb -}}
url: {{ required "influxdb.url is required (http://host:8086)" $influx.url | toJson }}
bucket: {{ $influx.bucket | toJson }}
org: {{ $influx.org | toJson }}
timeout_s: {{ $influx.timeoutSeconds | toJson }}
{{- if .creds }}
token_file: {{ printf "%s/influxdb/token" (include "plantmesh.secretDir" .) | toJson }}
{{- end }}
{{- end -}}

{{- define "plantmesh.influxSources" -}}
{{- with .creds }}
{{ include "plantmesh.secretSource" (dict "name" .existingSecret "key" (default "token" .tokenKey) "path" "influxdb/token") }}
{{- end }}
{{- end -}}
