{{/*
Names are fixed, not derived from the release name: the CRD, the fence policy (whose name the
operator reads in a refusal, src/api/names.ts) and the leader Lease are cluster-wide or
hard-wired, so the chart is installed once per cluster, like config/default.
*/}}

{{/* The labels Helm adds to every object it creates, on top of what config/ sets. */}}
{{- define "ssj-operator.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The operator's own labels, as in config/: the selector of its Pods, Service and PDB. */}}
{{- define "ssj-operator.selectorLabels" -}}
app.kubernetes.io/name: ssj-operator
{{- end }}

{{- define "ssj-operator.labels" -}}
{{ include "ssj-operator.selectorLabels" . }}
{{ include "ssj-operator.helmLabels" . }}
{{- end }}

{{- define "ssj-operator.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{ $image.repository }}@{{ $image.digest }}
{{- else -}}
{{ $image.repository }}:{{ $image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/*
The V8 heap (--max-old-space-size, MiB): heap.maxOldSpaceMegabytes, else half of the memory
limit, as config/manager sizes it; the rest of the limit is for what lives outside the heap
(buffers, TLS, the pg driver, code).
*/}}
{{- define "ssj-operator.heapMegabytes" -}}
{{- if .Values.heap.maxOldSpaceMegabytes -}}
{{ .Values.heap.maxOldSpaceMegabytes }}
{{- else -}}
{{- $limit := toString (((.Values.resources | default dict).limits | default dict).memory | default "") -}}
{{- $parts := regexFindAll "^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$" $limit -1 -}}
{{- if not $parts -}}
{{- fail (printf "resources.limits.memory %q: set an integer with a unit (512Mi, 1Gi), or heap.maxOldSpaceMegabytes" $limit) -}}
{{- end -}}
{{- $number := regexReplaceAll "[^0-9]" $limit "" | int64 -}}
{{- $unit := regexReplaceAll "^[0-9]+" $limit "" -}}
{{- $factors := dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- $bytes := mul $number (index $factors $unit) -}}
{{- div $bytes (mul 2 1048576) -}}
{{- end -}}
{{- end }}
