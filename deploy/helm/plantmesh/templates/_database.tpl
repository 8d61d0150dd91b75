{{/*
PLANTMESH_DATABASE_URL, the variable the alarm service's config (`database.url`) and
`plantmesh alerting db upgrade` read. Either the Secret holds the whole URL (urlKey), or the URL
is made here around the Secret's password with Kubernetes' $(VAR) expansion, so the password is
never written into a rendered object.
*/}}
{{- define "plantmesh.databaseEnv" -}}
{{- $pg := .Values.postgresql -}}
{{- $secret := required "postgresql.existingSecret is required with the alarm service (a Secret with the database password or URL)" $pg.existingSecret -}}
{{- $query := ternary (printf "?ssl=%s" $pg.sslMode) "" (ne $pg.sslMode "") -}}
{{- if $pg.urlKey }}
- name: PLANTMESH_DATABASE_URL_BASE
  valueFrom:
    secretKeyRef: {name: {{ $secret | toJson }}, key: {{ $pg.urlKey | toJson }}}
- name: PLANTMESH_DATABASE_URL
  value: {{ printf "$(PLANTMESH_DATABASE_URL_BASE)%s" $query | toJson }}
{{- else }}
- name: PLANTMESH_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret | toJson }}, key: {{ $pg.passwordKey | toJson }}}
- name: PLANTMESH_DATABASE_URL
  value: {{ printf "postgresql://%s:$(PLANTMESH_DATABASE_PASSWORD)@%s:%v/%s%s" $pg.username (required "postgresql.host is required unless postgresql.urlKey is set" $pg.host) (int $pg.port) $pg.database $query | toJson }}
{{- end }}
{{- if $pg.caSecret }}
- name: PGSSLROOTCERT  # asyncpg's CA for ssl=verify-ca / verify-full
  value: {{ printf "%s/postgresql-ca/ca.crt" (include "plantmesh.secretDir" .) | toJson }}
{{- end }}
{{- end -}}

{{- define "plantmesh.databaseSources" -}}
{{- with .Values.postgresql.caSecret }}
{{ include "plantmesh.secretSource" (dict "name" .name "key" .key "path" "postgresql-ca/ca.crt") }}
{{- end }}
{{- end -}}
