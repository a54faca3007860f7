{{/*
Names, labels and the per-service configuration every template shares.
*/}}

{{- define "stt-suite.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* `<release>-<chart>`, or the release alone when it already holds the chart name. */}}
{{- define "stt-suite.fullname" -}}
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

{{- define "stt-suite.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; `component` (router, or a service's name) is given by the caller. */}}
{{- define "stt-suite.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "stt-suite.chart" $root }}
{{ include "stt-suite.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: stt-suite
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "stt-suite.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "stt-suite.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- if gt (len .) 1 }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}
{{- end }}

{{- define "stt-suite.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stt-suite.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image, with the CUDA suffix when `gpus` (the second argument) is above 0. */}}
{{- define "stt-suite.image" -}}
{{- $root := index . 0 }}
{{- $tag := default $root.Chart.AppVersion $root.Values.image.tag }}
{{- if gt (int (index . 1)) 0 }}
{{- $tag = printf "%s%s" $tag $root.Values.image.cudaSuffix }}
{{- end }}
{{- printf "%s:%s" $root.Values.image.repository $tag }}
{{- end }}

{{/* The router's object names: `<fullname>-router`. */}}
{{- define "stt-suite.routerName" -}}
{{- printf "%s-router" (include "stt-suite.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A deep merge of two maps as JSON, the second's values winning, false and 0 included (sprig's
merge functions skip those, so `enabled: false` would not override a default `true`).
*/}}
{{- define "stt-suite.merge" -}}
{{- $out := deepCopy (index . 0) }}
{{- range $key, $value := index . 1 }}
{{- $base := index $out $key }}
{{- if and (kindIs "map" $value) (kindIs "map" $base) }}
{{- $_ := set $out $key (include "stt-suite.merge" (list $base $value) | fromJson) }}
{{- else }}
{{- $_ := set $out $key $value }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
The enabled language services, as JSON: name -> the entry over `serviceDefaults`, with
`name` (the backend name), `service` (what `stt serve` runs), `objectName` (of its
Deployment and Service), `prefix` (of its variables), `cache` (`modelCache` with the
entry's overrides) and `host` (the headless Service's DNS name).
*/}}
{{- define "stt-suite.services" -}}
{{- $root := . }}
{{- $out := dict }}
{{- range $name, $entry := .Values.services }}
{{- if and $entry (ternary $entry.enabled true (hasKey $entry "enabled")) }}
{{- $svc := include "stt-suite.merge" (list $root.Values.serviceDefaults $entry) | fromJson }}
{{- $_ := set $svc "name" $name }}
{{- $_ := set $svc "service" (default $name $entry.service) }}
{{- $_ := set $svc "prefix" (printf "%s_" (upper (default $name $entry.service))) }}
{{- $objectName := printf "%s-%s" (include "stt-suite.fullname" $root) (replace "_" "-" $name) | trunc 63 | trimSuffix "-" }}
{{- $_ := set $svc "objectName" $objectName }}
{{- $_ := set $svc "host" (printf "%s.%s.svc.%s" $objectName $root.Release.Namespace $root.Values.clusterDomain) }}
{{- $_ := set $svc "cache" (include "stt-suite.merge" (list $root.Values.modelCache (default dict $svc.modelCache)) | fromJson) }}
{{- $_ := set $svc "healthEntry" "" }}
{{- $_ := set $out $name $svc }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
Every model server the chart deploys, as JSON: the enabled language services, and the
diarization service when enabled, under the name `diarization` (its values over
`serviceDefaults`, `diarization: true`, no languages, its gRPC health entry
stt.v1.Diarization). Deployment, Service, autoscaling, disruption budget and model cache
are the same for all of them. (The schema keeps `diarization` out of `services`' names.)
*/}}
{{- define "stt-suite.modelServers" -}}
{{- $root := . }}
{{- $out := include "stt-suite.services" . | fromJson }}
{{- $d := .Values.diarization }}
{{- if $d.enabled }}
{{- $svc := include "stt-suite.merge" (list $root.Values.serviceDefaults (omit $d "enabled")) | fromJson }}
{{- $objectName := printf "%s-diarization" (include "stt-suite.fullname" $root) | trunc 63 | trimSuffix "-" }}
{{- $_ := set $svc "name" "diarization" }}
{{- $_ := set $svc "service" "diarization" }}
{{- $_ := set $svc "prefix" "DIARIZATION_" }}
{{- $_ := set $svc "languages" (list) }}
{{- $_ := set $svc "diarization" true }}
{{- $_ := set $svc "healthEntry" "stt.v1.Diarization" }}
{{- $_ := set $svc "objectName" $objectName }}
{{- $_ := set $svc "host" (printf "%s.%s.svc.%s" $objectName $root.Release.Namespace $root.Values.clusterDomain) }}
{{- $_ := set $svc "cache" (include "stt-suite.merge" (list $root.Values.modelCache (default dict $svc.modelCache)) | fromJson) }}
{{- $_ := set $out "diarization" $svc }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The diarization service's gRPC target (dns:/// over its headless Service); empty when off. */}}
{{- define "stt-suite.diarizationTarget" -}}
{{- with (include "stt-suite.modelServers" . | fromJson).diarization }}
{{- printf "dns:///%s:%d" .host (int $.Values.ports.grpc) }}
{{- end }}
{{- end }}

{{/*
The routing table from the enabled services: each language to its service, then to the
fallback when that is enabled; `extraRoutes` and `extraBackends` over it; the diarization
service's target when it is enabled.
*/}}
{{- define "stt-suite.routingTable" -}}
{{- $root := . }}
{{- $services := include "stt-suite.services" . | fromJson }}
{{- $fallback := $root.Values.router.fallback }}
{{- if not (hasKey $services $fallback) }}
{{- $fallback = "" }}
{{- end }}
{{- $backends := dict }}
{{- $routes := dict }}
{{- range $name, $svc := $services }}
{{- $_ := set $backends $name (printf "dns:///%s:%d" $svc.host (int $root.Values.ports.grpc)) }}
{{- range $svc.languages }}
{{- $chain := list $name }}
{{- if and $fallback (ne $fallback $name) }}
{{- $chain = append $chain $fallback }}
{{- end }}
{{- $_ := set $routes . $chain }}
{{- end }}
{{- end }}
{{- $backends = merge (deepCopy $root.Values.router.extraBackends) $backends }}
{{- $routes = merge (deepCopy $root.Values.router.extraRoutes) $routes }}
{{- $table := dict "backends" $backends "routes" $routes }}
{{- $detector := default $fallback $root.Values.router.detector }}
{{- if $detector }}
{{- $_ := set $table "detector" $detector }}
{{- end }}
{{- with include "stt-suite.diarizationTarget" $root }}
{{- $_ := set $table "diarization" . }}
{{- end }}
{{- toJson $table }}
{{- end }}

{{/* The pod-level fields every Deployment shares. */}}
{{- define "stt-suite.podCommon" -}}
serviceAccountName: {{ include "stt-suite.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ add .Values.drain.preStopSeconds .Values.drain.graceSeconds .Values.drain.exitSeconds }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The preStop hook: wait while the pod leaves its Services' endpoints, then SIGTERM. */}}
{{- define "stt-suite.preStop" -}}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ .Values.drain.preStopSeconds }}"]
{{- end }}

{{/*
Probes of a container: (list $root "<gRPC health entry>" startupFailureThreshold), or with a
fourth argument, the name of an HTTP port to probe instead (a server without gRPC). With TLS
on, /readyz and /healthz on the plain-text health port (see _security.tpl).
*/}}
{{- define "stt-suite.probes" -}}
{{- $root := index . 0 }}
{{- $entry := index . 1 }}
{{- $p := $root.Values.probes }}
{{- $ready := dict "grpc" (dict "port" (int $root.Values.ports.grpc) "service" $entry) }}
{{- $live := $ready }}
{{- $httpPort := "http" }}
{{- if gt (len .) 3 }}
{{- $httpPort = index . 3 }}
{{- end }}
{{- if $root.Values.tls.enabled }}
{{- $httpPort = ternary "worker-health" "health" (eq $httpPort "worker-http") }}
{{- end }}
{{- if or (eq $p.type "http") (gt (len .) 3) $root.Values.tls.enabled }}
{{- $ready = dict "httpGet" (dict "path" "/readyz" "port" $httpPort) }}
{{- $live = dict "httpGet" (dict "path" "/healthz" "port" $httpPort) }}
{{- end }}
startupProbe:
  {{- toYaml $ready | nindent 2 }}
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ index . 2 }}
readinessProbe:
  {{- toYaml $ready | nindent 2 }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
livenessProbe:
  {{- toYaml $live | nindent 2 }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
{{- end }}

{{/* Container ports. */}}
{{- define "stt-suite.containerPorts" -}}
ports:
  - name: grpc
    containerPort: {{ .Values.ports.grpc }}
    protocol: TCP
  - name: http
    containerPort: {{ .Values.ports.http }}
    protocol: TCP
  {{- include "stt-suite.healthContainerPort" (list . "health" .Values.ports.health) | nindent 2 }}
{{- end }}

{{/*
Variables every server reads besides its own settings: where the pod is (for traces), a
writable home on the read-only root, and OpenTelemetry's.
*/}}
{{- define "stt-suite.commonEnv" -}}
- name: HOME
  value: /tmp
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- with .Values.otel }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_INSECURE
  value: {{ .insecure | quote }}
{{- end }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .samplerArg | quote }}
{{- $attributes := list "k8s.pod.name=$(K8S_POD_NAME)" "k8s.namespace.name=$(K8S_NAMESPACE)" "k8s.node.name=$(K8S_NODE_NAME)" }}
{{- range $key, $value := .resourceAttributes }}
{{- $attributes = append $attributes (printf "%s=%s" $key $value) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- end }}
{{- end }}

{{/*
`settings:` entries as the variables a service reads: `<PREFIX><NAME>` in upper case. A list
joins with commas. Helm reads every number as a float, which prints a large integer in
exponent form (67108864 as 6.7108864e+07) that an integer setting refuses: whole numbers
print as integers.
*/}}
{{- define "stt-suite.settingsEnv" -}}
{{- $prefix := index . 0 }}
{{- range $key, $value := index . 1 }}
{{- $text := toString $value }}
{{- if kindIs "slice" $value }}
{{- $text = join "," $value }}
{{- else if and (kindIs "float64" $value) (eq (floor $value) $value) }}
{{- $text = printf "%d" (int64 $value) }}
{{- end }}
- name: {{ printf "%s%s" $prefix (upper $key) }}
  value: {{ $text | quote }}
{{- end }}
{{- end }}

{{/* The topology spread constraints, with the component's labelSelector filled in. */}}
{{- define "stt-suite.spread" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- range index . 2 }}
- {{ toYaml (merge (deepCopy .) (dict "labelSelector" (dict "matchLabels" (include "stt-suite.selectorLabels" (list $root $component) | fromYaml)))) | nindent 2 | trim }}
{{- end }}
{{- end }}

{{/*
A model server's variables, as its settings class reads them (`<PREFIX><SETTING>`):
(list $root $svc). The fetch init container gets the same, so it fetches what serve reads.
*/}}
{{- define "stt-suite.serveEnv" -}}
{{- $root := index . 0 }}
{{- $svc := index . 1 }}
{{- $p := $svc.prefix }}
{{- $device := default (ternary "cuda" "cpu" (gt (int $svc.gpus) 0)) $svc.device }}
- name: {{ $p }}HOST
  value: {{ $root.Values.listenAddress | quote }}
- name: {{ $p }}GRPC_PORT
  value: {{ $root.Values.ports.grpc | quote }}
- name: {{ $p }}HTTP_PORT
  value: {{ $root.Values.ports.http | quote }}
- name: {{ $p }}DRAIN_GRACE_S
  value: {{ $root.Values.drain.graceSeconds | quote }}
- name: {{ $p }}LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
{{- with $svc.model }}
- name: {{ $p }}MODEL
  value: {{ . | quote }}
{{- end }}
- name: {{ $p }}MAX_CONCURRENCY
  value: {{ int $svc.maxConcurrency | quote }}
- name: {{ $p }}MAX_QUEUE
  value: {{ int $svc.maxQueue | quote }}
- name: {{ $p }}DEVICE
  value: {{ $device | quote }}
{{- if not $svc.diarization }}
{{- /* Precision and a GPU memory cap are the language services' settings only. */}}
- name: {{ $p }}COMPUTE_TYPE
  value: {{ $svc.computeType | quote }}
- name: {{ $p }}GPU_MEMORY_FRACTION
  value: {{ $svc.gpuMemoryFraction | toString | quote }}
{{- end }}
- name: {{ $p }}CPU_THREADS
  value: {{ int $svc.cpuThreads | quote }}
{{- if eq $svc.service "whisper_en" }}
{{- /* Only whisper_en has a cache setting of its own; the CTC services use HF_HOME. */}}
- name: {{ $p }}MODEL_CACHE_DIR
  value: {{ printf "%s/stt-suite" $svc.cache.mountPath | quote }}
{{- end }}
{{- /* The fetch reads these too (its settings are serve's) but opens no certificate. */}}
{{- include "stt-suite.tlsEnv" (list $root $p $root.Values.ports.health) }}
{{- include "stt-suite.settingsEnv" (list $p $svc.settings) }}
- name: HF_HOME
  value: {{ printf "%s/huggingface" $svc.cache.mountPath | quote }}
{{- /* numba's compiled functions (librosa's, under Resemblyzer) go beside the models, not
under HOME: a restarted container reuses them (a warm-up of about 1 s instead of 15). */}}
- name: NUMBA_CACHE_DIR
  value: {{ printf "%s/numba" $svc.cache.mountPath | quote }}
{{ include "stt-suite.commonEnv" $root }}
{{- end }}

{{/* A model server container's mounts: a writable /tmp and the model cache. */}}
{{- define "stt-suite.serviceMounts" -}}
- name: tmp
  mountPath: /tmp
- name: model-cache
  mountPath: {{ .cache.mountPath }}
{{- end }}
