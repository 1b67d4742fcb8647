{{/*
The chart name, or nameOverride.
*/}}
{{- define "job-template-run.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's resources (at most 63 characters).
*/}}
{{- define "job-template-run.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
`<name>-<version>` for the helm.sh/chart label.
*/}}
{{- define "job-template-run.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels of every resource.
*/}}
{{- define "job-template-run.labels" -}}
helm.sh/chart: {{ include "job-template-run.chart" . }}
{{ include "job-template-run.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the operator pod (immutable in the Deployment).
*/}}
{{- define "job-template-run.selectorLabels" -}}
app.kubernetes.io/name: {{ include "job-template-run.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "job-template-run.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "job-template-run.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image.
*/}}
{{- define "job-template-run.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The port of /healthz, /readyz and /metrics: the container is always started
with --listen=0.0.0.0:8080.
*/}}
{{- define "job-template-run.metricsPort" -}}
8080
{{- end }}

{{/*
The RBAC rules of the operator: exactly `PERMISSIONS` in
src/reconciler/permissions.rs (tests/helm_chart.rs compares them), plus `get`
on Secrets with callbacks.secretTokens (CALLBACK_SECRET_PERMISSION).
*/}}
{{- define "job-template-run.rules" -}}
# The controller lists and watches runs; status is replaced through the
# subresource, conditional on the run's resourceVersion; a finished run past
# its TTL or beyond its template's history limit is deleted.
- apiGroups: ["cellbytes.io"]
  resources: ["jobruns"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: ["cellbytes.io"]
  resources: ["jobruns/status"]
  verbs: ["update"]
# Templates are cached; a cache miss makes one GET. Their status (Valid) is
# written through the subresource by a merge patch.
- apiGroups: ["cellbytes.io"]
  resources: ["jobtemplates"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["cellbytes.io"]
  resources: ["jobtemplates/status"]
  verbs: ["patch"]
# Owned Jobs are cached; create, a GET after a 409 or before a failure, and
# patch to set or remove the operator's finalizer and to suspend a cancelled
# run's Job.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The pods of the operator's Jobs and the Job controller's FailedCreate Events
# are cached (they say why a run is stalled); never read one by one.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list", "watch"]
# The event recorder creates events and patches repeated ones.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.callbacks.secretTokens }}
# Callback tokens referenced by callbackTokenSecretRef.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
{{- end }}

{{/*
The name of the `helm test` hook's resources: ServiceAccount, Role,
RoleBinding, JobTemplate and Pod. Short enough for the runs the Pod creates
(`<name>-<5 characters>`) to name their Jobs whole.
*/}}
{{- define "job-template-run.testName" -}}
{{- printf "%s-test" (include "job-template-run.fullname" . | trunc 45 | trimSuffix "-") }}
{{- end }}

{{/*
The namespace of the `helm test` JobTemplate and JobRun: the release
namespace when the operator watches it (watchNamespaces empty or listing
it), else the first watched namespace.
*/}}
{{- define "job-template-run.testNamespace" -}}
{{- if or (not .Values.watchNamespaces) (has .Release.Namespace .Values.watchNamespaces) }}
{{- .Release.Namespace }}
{{- else }}
{{- first .Values.watchNamespaces }}
{{- end }}
{{- end }}

{{/*
Annotations of every `helm test` hook resource; `weight` orders them (the
ServiceAccount and RBAC first, the JobTemplate, then the Pod). Deleted before
the next `helm test` and once the test passed; a failed test's resources stay
for a look.
*/}}
{{- define "job-template-run.testHook" -}}
helm.sh/hook: test
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/*
The hardened security context of the test containers (the Pod's and the
test Job's).
*/}}
{{- define "job-template-run.testSecurityContext" -}}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}
