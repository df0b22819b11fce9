{{- define "sparkhist.fullname" -}}
{{- if contains "sparkhist" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-sparkhist" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sparkhist.selectorLabels" -}}
app.kubernetes.io/name: sparkhist
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sparkhist.labels" -}}
{{ include "sparkhist.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sparkhist.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sparkhist.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sparkhist.hadoopConfigMap" -}}
{{- if .Values.hadoop.configMap -}}
{{- .Values.hadoop.configMap -}}
{{- else if .Values.hadoop.files -}}
{{- printf "%s-hadoop" (include "sparkhist.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Memory of the container in MiB: the budgets plus the process and its workers. */}}
{{- define "sparkhist.memoryMi" -}}
{{- $m := .Values.memory -}}
{{- add $m.budgetMi $m.responseCacheMi $m.baseMi (mul $m.workerMi .Values.indexWorkers) -}}
{{- end -}}

{{- define "sparkhist.checks" -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- if not .Values.persistence.enabled -}}
{{- fail "replicaCount > 1 (a hot standby) needs persistence.enabled: the standby shares the writer's store" -}}
{{- end -}}
{{- if and (not .Values.persistence.existingClaim) (not (has "ReadWriteMany" .Values.persistence.accessModes)) -}}
{{- fail "replicaCount > 1 (a hot standby) needs persistence.accessModes [ReadWriteMany]; with ReadWriteOnce run replicaCount: 1" -}}
{{- end -}}
{{- end -}}
{{- if gt (int .Values.replicaCount) 2 -}}
{{- fail "replicaCount: 1 (writer) or 2 (writer and hot standby)" -}}
{{- end -}}
{{- if not (has .Values.auth.mode (list "none" "header" "kerberos")) -}}
{{- fail "auth.mode: none, header or kerberos" -}}
{{- end -}}
{{- if and (eq .Values.auth.mode "kerberos") (or (not .Values.auth.kerberos.principal) (not .Values.auth.kerberos.keytabSecret)) -}}
{{- fail "auth.mode kerberos needs auth.kerberos.principal and auth.kerberos.keytabSecret" -}}
{{- end -}}
{{- if and .Values.kerberos.enabled (or (not .Values.kerberos.principal) (not .Values.kerberos.keytabSecret)) -}}
{{- fail "kerberos.enabled needs kerberos.principal and kerberos.keytabSecret" -}}
{{- end -}}
{{- end -}}
