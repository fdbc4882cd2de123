{{/* Names ---------------------------------------------------------------------------------- */}}

{{- define "berth.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "berth.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "berth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "berth.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "berth.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "berth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: berth
{{- end -}}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Shards ---------------------------------------------------------------------------------
  "berth.shard" takes (dict "root" $ "shard" $shard) and returns, as YAML, the shard with
  shardDefaults filled in, its object name, and its whole KubeSchedulerConfiguration:
    name, fullname, replicas, resources, ..., config (the merged configuration),
    lease (leaderElection.resourceName), schedulerNames (every profile's)
*/}}
{{- define "berth.shard" -}}
{{- $root := .root -}}
{{- $s := mustMergeOverwrite (deepCopy $root.Values.shardDefaults) (deepCopy .shard) -}}
{{- $fullname := printf "%s-%s" (include "berth.fullname" $root) $s.name | trunc 63 | trimSuffix "-" -}}
{{- $base := dict
      "apiVersion" "kubescheduler.config.k8s.io/v1"
      "kind" "KubeSchedulerConfiguration"
      "leaderElection" (dict "leaderElect" true "resourceName" $fullname "resourceNamespace" $root.Release.Namespace)
      "profiles" (list (dict "schedulerName" $s.schedulerName)) -}}
{{- if $s.nodeSelector -}}
{{- $_ := set $base "nodeSelector" $s.nodeSelector -}}
{{- end -}}
{{- $config := mustMergeOverwrite $base (deepCopy ($s.config | default dict)) -}}
{{- $names := list -}}
{{- range $config.profiles -}}
{{- $names = append $names (.schedulerName | default "default-scheduler") -}}
{{- end -}}
{{- $_ := set $s "fullname" $fullname -}}
{{- $_ := set $s "config" $config -}}
{{- $_ := set $s "lease" $config.leaderElection.resourceName -}}
{{- $_ := set $s "schedulerNames" $names -}}
{{- toYaml $s -}}
{{- end -}}

{{/* Every shard, resolved, as a YAML list (see "berth.shard"). */}}
{{- define "berth.shards" -}}
{{- $out := list -}}
{{- range .Values.shards -}}
{{- $out = append $out (include "berth.shard" (dict "root" $ "shard" .) | fromYaml) -}}
{{- end -}}
{{- toYaml (dict "shards" $out) -}}
{{- end -}}

{{/* Fail early, with the field at fault, on values that would render a broken install. */}}
{{- define "berth.validate" -}}
{{- $seen := dict -}}
{{- $served := dict -}}
{{- if not .Values.shards -}}
{{- fail "shards: at least one shard is required" -}}
{{- end -}}
{{- range $i, $s := (include "berth.shards" . | fromYaml).shards -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" (toString $s.name)) -}}
{{- fail (printf "shards[%d].name: must be a lowercase DNS label (got %q)" $i (toString $s.name)) -}}
{{- end -}}
{{- if hasKey $seen $s.name -}}
{{- fail (printf "shards[%d].name: duplicate shard %q" $i $s.name) -}}
{{- end -}}
{{- $_ := set $seen $s.name true -}}
{{- if not $s.schedulerName -}}
{{- fail (printf "shards[%d].schedulerName: required" $i) -}}
{{- end -}}
{{- if ne $s.config.leaderElection.resourceNamespace $.Release.Namespace -}}
{{- fail (printf "shards[%d].config.leaderElection.resourceNamespace: must be the release namespace %q" $i $.Release.Namespace) -}}
{{- end -}}
{{- range $s.schedulerNames -}}
{{- if hasKey $served . -}}
{{- fail (printf "shards[%d]: schedulerName %q is already served by shard %q; two shards would compete for its pods" $i . (get $served .)) -}}
{{- end -}}
{{- $_ := set $served . $s.name -}}
{{- end -}}
{{- end -}}
{{- if .Values.webhook.enabled -}}
{{- range $i, $r := .Values.webhook.rules -}}
{{- if not (hasKey $served (toString $r.schedulerName)) -}}
{{- fail (printf "webhook.rules[%d].schedulerName: %q is not served by any shard (%s)" $i (toString $r.schedulerName) (keys $served | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.webhook.tls.existingSecret (not .Values.webhook.tls.caBundle) -}}
{{- fail "webhook.tls.caBundle: required with webhook.tls.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The pod security settings every berth container runs with. */}}
{{- define "berth.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "berth.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
