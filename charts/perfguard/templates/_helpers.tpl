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

{{/* The full name with a suffix (`dict "context" . "suffix" "-peering"`), uncut: the kinds
named so (Roles, ClusterRoles, ConfigMaps, AnalysisTemplates) take names far longer than 63
characters, and cutting them renamed objects on upgrade (a Rollout's templateName left
pointing at nothing). */}}
{{- define "perfguard.suffixedName" -}}
{{- printf "%s%s" (include "perfguard.fullname" .context) .suffix }}
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
{{- $generated := printf "%s-hash-key" (include "perfguard.fullname" .) | trunc 63 | trimSuffix "-" }}
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

{{/* The analysis ClusterRole's name, as it always was (cut to 63), except where that cut
dropped the whole suffix and gave the operator's own ClusterRole's name (a full name of 62-63
characters): then the full name is cut to make room for the suffix. */}}
{{- define "perfguard.analysisClusterRoleName" -}}
{{- $fullname := include "perfguard.fullname" . }}
{{- $name := printf "%s-analysis-reader" $fullname | trunc 63 | trimSuffix "-" }}
{{- if eq $name $fullname }}
{{- $name = printf "%s-analysis-reader" (regexReplaceAll "-+$" ($fullname | trunc 47) "") }}
{{- end }}
{{- $name }}
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
