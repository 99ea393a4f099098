{{/*
Renders one of the chart's copies of a file in config/ (config/helm/sync.sh keeps them equal to
their sources) as config/default does with the operator in the release namespace: every
namespace the file names (the object's own, a ServiceAccount subject's, a policy binding's
paramRef) becomes the release namespace, and Helm's labels are added. Nothing else changes, so
each object is the one config/default installs.
Arguments: (dict "root" $ "path" "files/...yaml"), and optionally "labels" (more labels for
every object) and "keep" (objects whose app.kubernetes.io/component is this value get
helm.sh/resource-policy: keep, so that `helm uninstall` leaves them).
*/}}
{{- define "ssj-operator.fromSource" -}}
{{- $root := .root -}}
{{- $path := .path -}}
{{- $namespace := $root.Release.Namespace -}}
{{- $extraLabels := .labels | default dict -}}
{{- $keep := .keep | default "" -}}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($root.Files.Get $path) -1 }}
{{- $object := fromYaml $doc }}
{{- if hasKey $object "Error" }}
{{- fail (printf "%s: %s" $path $object.Error) }}
{{- end }}
{{- if $object }}
{{- $metadata := $object.metadata }}
{{- if hasKey $metadata "namespace" }}
{{- $_ := set $metadata "namespace" $namespace }}
{{- end }}
{{- $labels := merge (dict) ($metadata.labels | default dict) (include "ssj-operator.helmLabels" $root | fromYaml) $extraLabels }}
{{- $_ := set $metadata "labels" $labels }}
{{- if and $keep (eq (index $labels "app.kubernetes.io/component" | default "") $keep) }}
{{- $_ := set $metadata "annotations" (merge ($metadata.annotations | default dict) (dict "helm.sh/resource-policy" "keep")) }}
{{- end }}
{{- range $subject := $object.subjects | default list }}
{{- if hasKey $subject "namespace" }}
{{- $_ := set $subject "namespace" $namespace }}
{{- end }}
{{- end }}
{{- if and (kindIs "map" $object.spec) (kindIs "map" ($object.spec | default dict).paramRef) }}
{{- if hasKey $object.spec.paramRef "namespace" }}
{{- $_ := set $object.spec.paramRef "namespace" $namespace }}
{{- end }}
{{- end }}
---
# From config/{{ trimPrefix "files/" $path }}
{{ toYaml $object }}
{{- end }}
{{- end }}
{{- end }}
