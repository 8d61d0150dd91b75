{{/*
The pod every service runs in: one container of the plantmesh image (entrypoint `plantmesh`),
non-root (uid 10001), read-only root filesystem, no capabilities, seccomp RuntimeDefault; the
config files at plantmesh.configDir, secrets as files at plantmesh.secretDir, state and /tmp on
emptyDirs. Called with (dict "root" $ "component" NAME "values" .Values.NAME "args" LIST
"sources" YAML "env" YAML "ports" YAML "probes" YAML "volumes" YAML "mounts" YAML).
*/}}
{{- define "plantmesh.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "plantmesh.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Environment variables taken from Secrets, for ${VAR} references in the config files. */}}
{{- define "plantmesh.secretEnv" -}}
{{- range . }}
- name: {{ .name | toJson }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret | toJson }}
      key: {{ .key | toJson }}
{{- end }}
{{- end -}}

{{- define "plantmesh.pod" -}}
{{- $root := .root -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "component" .component -}}
metadata:
  labels:
    {{- include "plantmesh.selectorLabels" $ctx | nindent 4 }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A changed config file rolls the pods.
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "plantmesh.serviceAccountName" $root }}
  automountServiceAccountToken: false  # no service talks to the Kubernetes API
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "plantmesh.podSecurityContext" . | nindent 4 }}
  terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
  {{- if $root.Values.spreadAcrossNodes }}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "plantmesh.selectorLabels" $ctx | nindent 10 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "plantmesh.image" $root | toJson }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      env:
        - name: PLANTMESH_LOG_LEVEL
          value: {{ $root.Values.logLevel | toJson }}
        - name: PLANTMESH_LOG_FORMAT
          value: {{ $root.Values.logFormat | toJson }}
        {{- with .env }}
        {{- . | trim | nindent 8 }}
        {{- end }}
        {{- with $values.secretEnv }}
        {{- include "plantmesh.secretEnv" . | trim | nindent 8 }}
        {{- end }}
      {{- with .ports }}
      ports:
        {{- . | nindent 8 }}
      {{- end }}
      {{- with .probes }}
      {{- . | nindent 6 }}
      {{- end }}
      resources:
        {{- toYaml $values.resources | nindent 8 }}
      securityContext:
        {{- include "plantmesh.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: {{ include "plantmesh.configDir" . }}
          readOnly: true
        {{- if .sources }}
        - name: secrets
          mountPath: {{ include "plantmesh.secretDir" . }}
          readOnly: true
        {{- end }}
        - name: state
          mountPath: {{ include "plantmesh.stateDir" . }}
        - name: tmp
          mountPath: /tmp
        {{- with .mounts }}
        {{- . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "plantmesh.component" (dict "root" $root "component" "config") }}
    {{- if .sources }}
    - name: secrets
      projected:
        defaultMode: 0440  # read by the group fsGroup gives the files
        sources:
          {{- .sources | trim | nindent 10 }}
    {{- end }}
    - name: state
      emptyDir: {}
    - name: tmp
      emptyDir: {}
    {{- with .volumes }}
    {{- . | nindent 4 }}
    {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* Startup, liveness and readiness probes: (dict "root" $ "port" NAME "live" PATH "ready" PATH). */}}
{{- define "plantmesh.probes" -}}
{{- $p := .root.Values.probes -}}
startupProbe:
  httpGet: {path: {{ .live }}, port: {{ .port }}}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.startupFailureThreshold }}
livenessProbe:
  httpGet: {path: {{ .live }}, port: {{ .port }}}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.failureThreshold }}
readinessProbe:
  httpGet: {path: {{ .ready }}, port: {{ .port }}}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.failureThreshold }}
{{- end -}}
