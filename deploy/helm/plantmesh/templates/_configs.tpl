{{/*
The services' own config files, key for key what their loaders accept (ingest/config.py,
alerting/config.py, alerting/alarm_service/config.py, alerting/incidents/stage_config.py).
Scalars go through toJson: JSON scalars are YAML, and large integers stay integers.
*/}}

{{- define "plantmesh.config.ingest" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $role := .role -}}
# plantmesh ingest {{ $role }} (rendered by the Helm chart; see deploy/ingest/sample.yaml)
namespace: {{ $v.topicNamespace | toJson }}
{{- if eq $role "bridge" }}
mqtt:
  # Unique and stable per replica (the StatefulSet's pod name): the broker keeps each bridge's
  # persistent session under it, while the shared group below splits the load between them.
  {{- include "plantmesh.mqttSection" (dict "root" $root "dir" "mqtt" "creds" $v.bridge.mqttCredentials "clientId" "${PLANTMESH_POD_NAME}") | nindent 2 }}
{{- end }}
kafka:
  {{- include "plantmesh.kafkaSection" (dict "root" $root "component" $role "creds" (index $v $role).kafkaCredentials) | nindent 2 }}
{{- if eq $role "writer" }}
influxdb:
  {{- include "plantmesh.influxSection" (dict "root" $root "creds" $v.writer.influxdbCredentials) | nindent 2 }}
{{- end }}
bridge:
  shared_group: {{ $v.bridge.sharedGroup | toJson }}
  max_in_flight: {{ $v.bridge.maxInFlight | toJson }}
  session_expiry_s: {{ $v.bridge.sessionExpirySeconds | toJson }}
  max_payload_bytes: {{ $v.bridge.maxPayloadBytes | toJson }}
  drain_timeout_s: {{ $v.bridge.drainTimeoutSeconds | toJson }}
  # With others in the group, a bridge that stops (rolling update, scale-down) unsubscribes
  # first, so the broker parks no share in its session; a single bridge keeps its queue.
  leave_group_on_stop: {{ gt (int $v.bridge.replicas) 1 }}
  gateways: {{ if and $v.bridge.gateways (eq $role "bridge") }}"/etc/plantmesh/gateways/gateways.yaml"{{ else }}null{{ end }}
  metrics:
    listen: {{ printf "0.0.0.0:%v" (int $v.bridge.metricsPort) | toJson }}
writer:
  group_id: {{ $v.writer.groupId | toJson }}
  max_batch_readings: {{ $v.writer.maxBatchReadings | toJson }}
  max_poll_records: {{ $v.writer.maxPollRecords | toJson }}
  create_database: {{ $v.writer.createDatabase | toJson }}
  registry: {{ if $v.registry }}"registry.yaml"{{ else }}null{{ end }}
  validation:
    max_message_bytes: {{ $v.writer.validation.maxMessageBytes | toJson }}
    max_future_s: {{ $v.writer.validation.maxFutureSeconds | toJson }}
    max_past_s: {{ $v.writer.validation.maxPastSeconds | toJson }}
    max_series_per_plant: {{ $v.writer.validation.maxSeriesPerPlant | toJson }}
    duplicate_window: {{ $v.writer.validation.duplicateWindow | toJson }}
  pause_after_s: {{ $v.writer.pauseAfterSeconds | toJson }}
  gzip: {{ $v.writer.gzip | toJson }}
  completeness:
    enabled: {{ $v.writer.completeness.enabled | toJson }}
    gap_alert_after_s: {{ $v.writer.completeness.gapAlertAfterSeconds | toJson }}
    flush_interval_s: {{ $v.writer.completeness.flushIntervalSeconds | toJson }}
    forget_after_s: {{ $v.writer.completeness.forgetAfterSeconds | toJson }}
  metrics:
    listen: {{ printf "0.0.0.0:%v" (int $v.writer.metricsPort) | toJson }}
kafka_topics:
  {{- include "plantmesh.kafkaTopics" $root | nindent 2 }}
backoff:
  {{- include "plantmesh.backoff" $root | nindent 2 }}
{{- end -}}

{{- define "plantmesh.catalogue" -}}
{{- if .Values.issueTypes }}
catalogue: "issue-types.yaml"
{{- end }}
{{- end -}}

{{- define "plantmesh.config.alerting" -}}
{{- $v := .Values -}}
{{- $a := $v.alerting -}}
# plantmesh alerting rules (rendered by the Helm chart; see deploy/alerting/sample.yaml)
namespace: {{ $v.topicNamespace | toJson }}
kafka:
  {{- include "plantmesh.kafkaSection" (dict "root" . "component" "alerting" "creds" $a.kafkaCredentials) | nindent 2 }}
group_id: {{ $a.groupId | toJson }}
start_from: {{ $a.startFrom | toJson }}
kafka_topics:
  {{- include "plantmesh.kafkaTopics" . | nindent 2 }}
backoff:
  {{- include "plantmesh.backoff" . | nindent 2 }}
alert_log: {{ printf "%s/alerts.jsonl" (include "plantmesh.stateDir" .) | toJson }}
{{- include "plantmesh.catalogue" . }}
lateness_s: {{ $a.latenessSeconds | toJson }}
checkpoint_interval_s: {{ $a.checkpointIntervalSeconds | toJson }}
rules: {{- if $a.rules }}
  {{- toYaml $a.rules | nindent 2 }}
{{- else }} []
{{- end }}
{{- end -}}

{{- define "plantmesh.config.alarms" -}}
{{- $root := . -}}
{{- $v := .Values -}}
{{- $a := $v.alarms -}}
# plantmesh alarm service (rendered by the Helm chart; see deploy/alerting/alarms.yaml)
namespace: {{ $v.topicNamespace | toJson }}
kafka:
  {{- include "plantmesh.kafkaSection" (dict "root" . "component" "alarms" "creds" $a.kafkaCredentials) | nindent 2 }}
group_id: {{ $a.groupId | toJson }}
start_from: {{ $a.startFrom | toJson }}
kafka_topics:
  {{- include "plantmesh.kafkaTopics" . | nindent 2 }}
backoff:
  {{- include "plantmesh.backoff" . | nindent 2 }}
database:
  url: "${PLANTMESH_DATABASE_URL}"  # the pod's environment, from the Secret
  pool_size: {{ $v.postgresql.poolSize | toJson }}
migrate: {{ eq $a.migrations "start" | toJson }}
{{- include "plantmesh.catalogue" . }}
escalation: {{ if $a.escalation }}"escalation.yaml"{{ else }}null{{ end }}
lifecycle:
  max_shelve_s: {{ $a.lifecycle.maxShelveSeconds | toJson }}
  re_alarm_after_s: {{ $a.lifecycle.reAlarmAfterSeconds | toJson }}
api:
  enabled: true
  host: "0.0.0.0"
  port: {{ $a.port | toJson }}
{{- if $a.influxdb.enabled }}
influxdb:
  {{- include "plantmesh.influxSection" (dict "root" . "creds" $a.influxdb.credentials) | nindent 2 }}
{{- end }}
{{- if $a.andon.enabled }}
andon:
  mqtt:
    {{- include "plantmesh.mqttSection" (dict "root" $root "dir" "andon-mqtt" "creds" $a.andon.mqttCredentials "clientId" "") | nindent 4 }}
  topic_prefix: {{ $a.andon.topicPrefix | toJson }}
{{- end }}
incidents: {{ $a.incidents | toJson }}
tick_s: {{ $a.tickSeconds | toJson }}
max_delivery_attempts: {{ $a.maxDeliveryAttempts | toJson }}
registry: {{ if $v.registry }}"registry.yaml"{{ else }}null{{ end }}
{{- with $a.scorecards }}
scorecards:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "plantmesh.config.incidents" -}}
{{- $v := .Values -}}
{{- $i := $v.incidents -}}
# plantmesh network-incident stage (rendered by the Helm chart; see deploy/alerting/incidents.yaml)
namespace: {{ $v.topicNamespace | toJson }}
kafka:
  {{- include "plantmesh.kafkaSection" (dict "root" . "component" "incidents" "creds" $i.kafkaCredentials) | nindent 2 }}
group_id: {{ $i.groupId | toJson }}
start_from: {{ $i.startFrom | toJson }}
kafka_topics:
  {{- include "plantmesh.kafkaTopics" . | nindent 2 }}
backoff:
  {{- include "plantmesh.backoff" . | nindent 2 }}
correlation: "correlation.yaml"
{{- include "plantmesh.catalogue" . }}
registry: {{ if $v.registry }}"registry.yaml"{{ else }}null{{ end }}
tick_s: {{ $i.tickSeconds | toJson }}
checkpoint_interval_s: {{ $i.checkpointIntervalSeconds | toJson }}
{{- end -}}
