{{/* Name of the chart, overridable. */}}
{{- define "leakwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-leakwatch, unless the release name already says leakwatch. */}}
{{- define "leakwatch.fullname" -}}
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

{{/* Labels that select a release's pods; add app.kubernetes.io/component per role. */}}
{{- define "leakwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "leakwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "leakwatch.labels" -}}
{{ include "leakwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "leakwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "leakwatch.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "leakwatch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Secret keys mounted as files, with the setting each one fills. */}}
{{- define "leakwatch.secretFiles" -}}
{{- $k := .Values.secrets.keys -}}
{{- $files := dict -}}
{{- $_ := set $files "DATABASE_URL_FILE" (required "secrets.keys.databaseURL is required" $k.databaseURL) -}}
{{- if $k.githubTokens }}{{ $_ := set $files "LEAKWATCH_GITHUB_TOKENS_FILE" $k.githubTokens }}{{ end -}}
{{- if $k.encryptionKey }}{{ $_ := set $files "LEAKWATCH_ENCRYPTION_KEY_FILE" $k.encryptionKey }}{{ end -}}
{{- if $k.webhookSigningKey }}{{ $_ := set $files "LEAKWATCH_WEBHOOK_SIGNING_KEY_FILE" $k.webhookSigningKey }}{{ end -}}
{{- if $k.oidcClientSecret }}{{ $_ := set $files "LEAKWATCH_OIDC_CLIENT_SECRET_FILE" $k.oidcClientSecret }}{{ end -}}
{{- toYaml $files -}}
{{- end -}}

{{/* Environment of every Leakwatch container. */}}
{{- define "leakwatch.env" -}}
- name: LEAKWATCH_AUTO_MIGRATE
  value: "false"
- name: LEAKWATCH_LOG_FORMAT
  value: json
- name: LEAKWATCH_HTTP_ADDR
  value: {{ printf ":%v" .Values.ports.http | quote }}
- name: LEAKWATCH_OPS_ADDR
  value: {{ printf ":%v" .Values.ports.ops | quote }}
{{- $base := .Values.baseURL -}}
{{- if and (not $base) .Values.ingress.enabled }}{{ $base = printf "https://%s" .Values.ingress.host }}{{ end }}
{{- if $base }}
- name: LEAKWATCH_BASE_URL
  value: {{ $base | quote }}
{{- end }}
{{- range $env, $key := (include "leakwatch.secretFiles" . | fromYaml) }}
- name: {{ $env }}
  value: {{ printf "/secrets/%s" $key | quote }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Volumes of every Leakwatch pod: the Secret, read-only, and a writable /tmp. */}}
{{- define "leakwatch.volumes" -}}
- name: secrets
  secret:
    secretName: {{ required "secrets.existingSecret is required" .Values.secrets.existingSecret }}
    defaultMode: 0440
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{- define "leakwatch.volumeMounts" -}}
- name: secrets
  mountPath: /secrets
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Pod placement and pull secrets shared by every pod. */}}
{{- define "leakwatch.podCommon" -}}
serviceAccountName: {{ include "leakwatch.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
