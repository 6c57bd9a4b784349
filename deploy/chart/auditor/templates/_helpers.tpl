{{/* Names and labels shared by every template. */}}
{{- define "auditor.fullname" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "auditor.labels" -}}
app.kubernetes.io/name: auditor
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "auditor.selector" -}}
app.kubernetes.io/name: auditor
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "auditor.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "auditor.reportLabels" -}}
app.kubernetes.io/name: auditor-cluster-report
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: cluster-report
{{- end -}}

{{- define "auditor.reportSecret" -}}
{{- .Values.reportAuth.secretName | default (printf "%s-report-token" (include "auditor.fullname" .)) -}}
{{- end -}}
