{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "kubetune.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name of every object: "<release>" when it already contains the chart name. */}}
{{- define "kubetune.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "kubetune.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kubetune.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kubetune.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetune.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kubetune.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kubetune.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubetune
{{- end }}

{{- define "kubetune.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubetune.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubetune.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "kubetune.trainerImage" -}}
{{- printf "%s:%s" (default "ghcr.io/kubetune/trainer" .Values.trainerImage.repository) (default .Chart.AppVersion .Values.trainerImage.tag) }}
{{- end }}

{{- define "kubetune.kubetuneImage" -}}
{{- printf "%s:%s" (default .Values.image.repository .Values.kubetuneImage.repository) (default (default .Chart.AppVersion .Values.image.tag) .Values.kubetuneImage.tag) }}
{{- end }}

{{- define "kubetune.readinessPath" -}}
{{- if .Values.readinessProbe.path }}{{ .Values.readinessProbe.path }}
{{- else if .Values.leaderElection.enabled }}/healthz
{{- else }}/readyz
{{- end }}
{{- end }}

{{/*
What the operator does in each namespace it watches, derived from the code:
  operator/kubetune/clients/kube.py (KINDS) and every kube.* call in operator/kubetune/controllers/,
  plus kopf's own needs (watching, progress annotations on the objects, Events).
The trainer's per-job Role (controllers/finetunejob/builders.py: get its FineTuneJob, get/patch
its status) is a subset of these rules, so creating and binding it needs neither escalate nor
bind. Children carry blockOwnerDeletion owner references, hence update on the owners' finalizers
subresource.
No secrets: trainer and TGI pods read them through env/volumes; the operator never does.
*/}}
{{- define "kubetune.namespacedRules" -}}
- apiGroups: ["kubetune.io"]
  resources: ["finetunejobs", "modeldeployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["kubetune.io"]
  resources: ["adapters"]
  verbs: ["get", "list", "watch", "create"]
- apiGroups: ["kubetune.io"]
  resources: ["finetunejobs/status", "adapters/status", "modeldeployments/status"]
  verbs: ["get", "patch"]
- apiGroups: ["kubetune.io"]
  resources: ["finetunejobs/finalizers", "modeldeployments/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch"]
- apiGroups: [""]
  resources: ["configmaps", "serviceaccounts"]
  verbs: ["get", "create"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["events"]
  # list/watch: the Job controller's FailedCreate Events say why a child Job has no pods
  verbs: ["create", "patch", "list", "watch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "create", "patch"]
# Kueue (docs/queues.md): read a queued training Job's Workload and LocalQueue; patch the
# Workload's spec.active when the FineTuneJob is suspended or resumed. Harmless where Kueue is
# not installed.
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["workloads"]
  verbs: ["get", "list", "patch"]
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["localqueues"]
  verbs: ["get"]
{{- end }}

{{/* One NetworkPolicy egress rule to `.to` on `.ports`; nothing when `.to` is empty (an empty
`to` would allow every destination). */}}
{{- define "kubetune.egressRule" }}
{{- if .to }}
    - to:
        {{- toYaml .to | nindent 8 }}
      {{- with .ports }}
      ports:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end }}
