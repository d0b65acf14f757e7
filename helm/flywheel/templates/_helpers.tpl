{{/*
Names and labels only. Anything with behaviour lives in the template that uses it.
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "flywheel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified prefix for object names: <release>-<chart> unless the release already says it. */}}
{{- define "flywheel.fullname" -}}
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

{{/* Object names of the three workloads. The InferenceService keeps the model's name. */}}
{{- define "flywheel.predictor.name" -}}
{{- .Values.model.name -}}
{{- end -}}
{{- define "flywheel.predictionService.name" -}}
{{- printf "%s-prediction-service" (include "flywheel.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "flywheel.monitor.name" -}}
{{- printf "%s-monitor" (include "flywheel.fullname" .) | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* "true" when the monitor job takes rollout steps: enabled, and KServe can split traffic
(Knative/Serverless mode). Only then does it need the Kubernetes API. */}}
{{- define "flywheel.monitor.rollout" -}}
{{- if and .Values.monitor.enabled .Values.monitor.rollout.enabled (has .Values.kserve.deploymentMode (list "Knative" "Serverless")) -}}
true
{{- end -}}
{{- end -}}

{{/* ServiceAccount names. */}}
{{- define "flywheel.predictor.serviceAccountName" -}}
{{- printf "%s-predictor" (include "flywheel.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "flywheel.predictionService.serviceAccountName" -}}
{{- include "flywheel.predictionService.name" . -}}
{{- end -}}
{{- define "flywheel.monitor.serviceAccountName" -}}
{{- include "flywheel.monitor.name" . -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "flywheel.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "flywheel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flywheel
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select this release's pods; add app.kubernetes.io/component per workload. */}}
{{- define "flywheel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flywheel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Image name of a component: repository@digest when pinned, else repository:tag. */}}
{{- define "flywheel.image" -}}
{{- $image := index .root.Values.images .component -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}
