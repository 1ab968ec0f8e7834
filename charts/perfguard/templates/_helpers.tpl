{{/*
Names and labels shared by every template.
*/}}

{{- define "perfguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name. It names the Service, so it must be a DNS-1035 label: Helm takes
release names that are not (`1pg`, `pg.prod`, `2024-perfguard`), and the API server would
refuse the Service half-way through the install. Such a release is refused here, naming
fullnameOverride (held to a DNS-1035 label by the schema). */}}
{{- define "perfguard.fullname" -}}
{{- $fullname := "" }}
{{- if .Values.fullnameOverride }}
{{- $fullname = .Values.fullnameOverride | trunc 63 }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- $fullname = .Release.Name | trunc 63 }}
{{- else }}
{{- $fullname = printf "%s-%s" .Release.Name $name | trunc 63 }}
{{- end }}
{{- end }}
{{- $fullname = regexReplaceAll "-+$" $fullname "" }}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $fullname) }}
{{- fail (printf "the release's full name %q is not a DNS-1035 label (lower-case letters, digits and '-', starting with a letter, at most 63 characters), and it names the Service and the other objects: set fullnameOverride to one, e.g. --set fullnameOverride=perfguard-%s" $fullname (regexReplaceAll "[^a-z0-9]+" (lower .Release.Name) "-" | trunc 40 | trimAll "-")) }}
{{- end }}
{{- $fullname }}
{{- end }}

{{/* The full name with a suffix (`dict "context" . "suffix" "-hash-key"`), at most 63
characters and never another object's name: the full name is cut first to leave room for the
whole suffix (cutting the joined name instead dropped the suffix of a 62-63 character full
name, and `<fullname>-analysis-reader` became the operator's own ClusterRole's name). Names
with different suffixes end differently, so they differ; one equal to the full name itself
(a full name already ending in the suffix, cut) is cut one character shorter. */}}
{{- define "perfguard.suffixedName" -}}
{{- $fullname := include "perfguard.fullname" .context }}
{{- $base := regexReplaceAll "-+$" ($fullname | trunc (int (sub 63 (len .suffix)))) "" }}
{{- if eq (printf "%s%s" $base .suffix) $fullname }}
{{- $base = regexReplaceAll "-+$" ($base | trunc (int (sub (len $base) 1))) "" }}
{{- end }}
{{- printf "%s%s" $base .suffix }}
{{- end }}

{{- define "perfguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "perfguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "perfguard.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "perfguard.labels" -}}
helm.sh/chart: {{ include "perfguard.chart" . | quote }}
{{ include "perfguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/part-of: perfguard
{{- end }}

{{- define "perfguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "perfguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding EnvParity's HMAC key (data key `key`): the existing one, or the one the
chart creates. Neither would leave the operator reading a Secret nothing creates, and every
EnvParity Unverified (HashKeyUnavailable): refused. */}}
{{- define "perfguard.hashKeySecretName" -}}
{{- $hashKey := .Values.envParity.hashKeySecret }}
{{- $generated := include "perfguard.suffixedName" (dict "context" . "suffix" "-hash-key") }}
{{- if $hashKey.existingSecret }}
{{- $hashKey.existingSecret }}
{{- else if $hashKey.create }}
{{- $generated }}
{{- else }}
{{- fail (printf "envParity.hashKeySecret.create=false needs envParity.hashKeySecret.existingSecret: the name of a Secret in namespace %s holding EnvParity's hash key (data key `key`, at least 16 bytes). Without it the operator would read %s/%s, which nothing creates, and every EnvParity would be Unverified (HashKeyUnavailable)." .Release.Namespace .Release.Namespace $generated) }}
{{- end }}
{{- end }}

{{/* Kopf peering is on when asked for, or whenever more than one replica runs. */}}
{{- define "perfguard.peeringEnabled" -}}
{{- if or .Values.peering.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "perfguard.peeringName" -}}
{{- default (include "perfguard.fullname" .) .Values.peering.name }}
{{- end }}

{{- define "perfguard.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Label matchers selecting the operator's own scrape target in PromQL. */}}
{{- define "perfguard.operatorSelector" -}}
{{- if .Values.prometheusRule.operatorSelector }}
{{- .Values.prometheusRule.operatorSelector }}
{{- else }}
{{- printf "job=%q, namespace=%q" (include "perfguard.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{- define "perfguard.analysisClusterRoleName" -}}
{{- include "perfguard.suffixedName" (dict "context" . "suffix" "-analysis-reader") }}
{{- end }}

{{/* A duration in prometheus-operator's form (1m30s, 2d, 0; the schema checks the form) in
milliseconds. */}}
{{- define "perfguard.durationMilliseconds" -}}
{{- $units := dict "y" 31536000000 "w" 604800000 "d" 86400000 "h" 3600000 "m" 60000 "s" 1000 "ms" 1 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|[ywdhms])" . -1 }}
{{- $total = add $total (mul (regexFind "^[0-9]+" . | int64) (get $units (regexReplaceAll "^[0-9]+" . ""))) }}
{{- end }}
{{- $total }}
{{- end }}
