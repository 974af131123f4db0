{{/* Chart name, possibly overridden. */}}
{{- define "mindrouter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "mindrouter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mindrouter.cp" -}}{{ include "mindrouter.fullname" . }}-controlplane{{- end -}}
{{- define "mindrouter.cpHeadless" -}}{{ include "mindrouter.fullname" . }}-controlplane-headless{{- end -}}
{{- define "mindrouter.dp" -}}{{ include "mindrouter.fullname" . }}-dataplane{{- end -}}
{{- define "mindrouter.agent" -}}{{ include "mindrouter.fullname" . }}-nodeagent{{- end -}}

{{/* Labels of every resource. */}}
{{- define "mindrouter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "mindrouter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "controlplane"). */}}
{{- define "mindrouter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mindrouter.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of one component's resources. */}}
{{- define "mindrouter.componentLabels" -}}
{{ include "mindrouter.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image reference: (dict "ctx" $ "image" .Values.controlPlane.image). */}}
{{- define "mindrouter.image" -}}
{{- $repo := .image.repository -}}
{{- with .ctx.Values.imageRegistry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}{{ end -}}
{{- printf "%s:%s" $repo (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{- define "mindrouter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mindrouter.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding cluster-token and admin-api-key. */}}
{{- define "mindrouter.secretName" -}}
{{- default (printf "%s-secrets" (include "mindrouter.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "mindrouter.agentSecretName" -}}
{{- default (printf "%s-agent-secrets" (include "mindrouter.fullname" .)) .Values.nodeAgent.existingAgentSecret -}}
{{- end -}}

{{/* Whether the chart's own Secret is needed (cluster token, admin key or DSN kept by the chart). */}}
{{- define "mindrouter.ownSecret" -}}
{{- if or (not .Values.secrets.existingSecret) .Values.database.dsn -}}true{{- end -}}
{{- end -}}

{{/* Replicas of the control plane: the database must be shared for more than one. */}}
{{- define "mindrouter.cpReplicas" -}}
{{- if and (gt (int .Values.controlPlane.replicas) 1) (ne .Values.database.driver "mysql") -}}
{{- fail "controlPlane.replicas > 1 needs database.driver=mysql: replicas share one MariaDB (SQLite is one file in one pod)" -}}
{{- end -}}
{{- .Values.controlPlane.replicas -}}
{{- end -}}

{{/* The control plane's gRPC addresses, every replica by its stable DNS name, comma-separated:
     data planes and node agents find the leader among them. */}}
{{- define "mindrouter.cpAddrs" -}}
{{- $addrs := list -}}
{{- $cp := include "mindrouter.cp" . -}}
{{- $hl := include "mindrouter.cpHeadless" . -}}
{{- range $i := until (int .Values.controlPlane.replicas) -}}
{{- $addrs = append $addrs (printf "%s-%d.%s.%s.svc:%d" $cp $i $hl $.Release.Namespace (int $.Values.controlPlane.grpcPort)) -}}
{{- end -}}
{{- join "," $addrs -}}
{{- end -}}

{{/* The name clients expect in the control plane's certificate. */}}
{{- define "mindrouter.tlsServerName" -}}
{{- default (printf "%s.%s.svc" (include "mindrouter.cp" .) .Release.Namespace) .Values.tls.serverName -}}
{{- end -}}

{{/* Environment shared by every process. */}}
{{- define "mindrouter.commonEnv" -}}
- name: MINDROUTER_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: MINDROUTER_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/* Default affinity: spread one component's replicas over nodes. */}}
{{- define "mindrouter.spread" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "mindrouter.selectorLabels" . | nindent 12 }}
{{- end -}}
