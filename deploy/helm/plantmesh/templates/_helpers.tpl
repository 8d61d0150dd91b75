{{/* Names and labels. */}}
{{- define "plantmesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "plantmesh.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name; kept short enough for a StatefulSet's pod names. */}}
{{- define "plantmesh.component" -}}
{{- printf "%s-%s" (include "plantmesh.fullname" .root | trunc 40 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "plantmesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "plantmesh.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "plantmesh.labels" -}}
{{ include "plantmesh.selectorLabels" . }}
app.kubernetes.io/part-of: plantmesh
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "plantmesh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "plantmesh.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "plantmesh.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where the rendered config files and the mounted secrets are, inside every pod. */}}
{{- define "plantmesh.configDir" -}}/etc/plantmesh/config{{- end -}}
{{- define "plantmesh.secretDir" -}}/etc/plantmesh/secrets{{- end -}}
{{- define "plantmesh.stateDir" -}}/var/lib/plantmesh{{- end -}}
