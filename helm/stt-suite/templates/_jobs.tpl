{{/*
Jobs: the job store the router and the workers share, and the worker container.
*/}}

{{/*
The job store, as JSON: `mode` is "postgresql" (the chart's own PostgreSQL), "external"
(`jobs.database`), "embedded" (SQLite in the router's pod) or "" (jobs off); with a database,
`secretName` and `secretKey` say where its URL is. Refuses what cannot work: a database given
twice, PostgreSQL with jobs off, and SQLite behind more than one router or worker (one file,
one machine).
*/}}
{{- define "stt-suite.jobStore" -}}
{{- $j := .Values.jobs }}
{{- $db := $j.database }}
{{- $pg := .Values.postgresql }}
{{- $out := dict "mode" "" }}
{{- if not $j.enabled }}
{{- if $pg.enabled }}
{{- fail "postgresql.enabled needs jobs.enabled: the database is the job store" }}
{{- end }}
{{- else }}
{{- $given := 0 }}
{{- range (list $db.url $db.existingSecret $pg.enabled) }}
{{- if . }}
{{- $given = add1 $given }}
{{- end }}
{{- end }}
{{- if gt $given 1 }}
{{- fail "jobs.database.url, jobs.database.existingSecret and postgresql.enabled each name the job store's database: set one" }}
{{- end }}
{{- if $pg.enabled }}
{{- $out = dict "mode" "postgresql" "secretName" (include "stt-suite.postgresqlName" .) "secretKey" "url" }}
{{- else if $db.existingSecret }}
{{- $out = dict "mode" "external" "secretName" $db.existingSecret "secretKey" $db.existingSecretKey }}
{{- else if $db.url }}
{{- $out = dict "mode" "external" "secretName" (printf "%s-database" (include "stt-suite.fullname" .)) "secretKey" "url" }}
{{- else }}
{{- $out = dict "mode" "embedded" }}
{{- $r := .Values.router }}
{{- if or (gt (int $r.replicas) 1) $r.autoscaling.enabled }}
{{- fail "the embedded SQLite job store serves one router: set router.replicas=1 and router.autoscaling.enabled=false, or give the jobs a PostgreSQL database (jobs.database.url, jobs.database.existingSecret or postgresql.enabled)" }}
{{- end }}
{{- $w := .Values.worker }}
{{- if or (gt (int $w.replicas) 1) $w.autoscaling.enabled }}
{{- fail "the embedded SQLite job store serves one worker, in the router's pod: set worker.replicas=1 and worker.autoscaling.enabled=false, or give the jobs a PostgreSQL database" }}
{{- end }}
{{- if has (int $j.embedded.workerHttpPort) (list (int .Values.ports.grpc) (int .Values.ports.http)) }}
{{- fail "jobs.embedded.workerHttpPort must differ from ports.grpc and ports.http: the worker shares the router's pod" }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The chart's PostgreSQL: its StatefulSet, Service and Secret. */}}
{{- define "stt-suite.postgresqlName" -}}
{{- printf "%s-postgresql" (include "stt-suite.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The workers' object names: `<fullname>-worker`. */}}
{{- define "stt-suite.workerName" -}}
{{- printf "%s-worker" (include "stt-suite.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A number as a setting reads it: whole numbers without a fraction or an exponent. */}}
{{- define "stt-suite.number" -}}
{{- if eq (floor .) (float64 .) }}{{ printf "%d" (int64 .) }}{{ else }}{{ toString . }}{{ end }}
{{- end }}

{{/*
The job store's variables of a server, by prefix (ROUTER_, WORKER_): (list $root prefix).
The URL comes from its Secret; the data directory is the embedded store's volume.
*/}}
{{- define "stt-suite.storeEnv" -}}
{{- $root := index . 0 }}
{{- $p := index . 1 }}
{{- $store := include "stt-suite.jobStore" $root | fromJson }}
{{- if eq $store.mode "embedded" }}
- name: {{ $p }}DATA_DIR
  value: {{ $root.Values.jobs.embedded.mountPath | quote }}
{{- else if $store.mode }}
- name: {{ $p }}DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $store.secretName }}
      key: {{ $store.secretKey }}
{{- end }}
{{- if $store.mode }}
- name: {{ $p }}RESULT_TTL_S
  value: {{ include "stt-suite.number" $root.Values.jobs.resultTtlSeconds | quote }}
{{- end }}
{{- end }}

{{/*
A pod annotation that rolls the pods when the URL the chart keeps in its Secret changes.
*/}}
{{- define "stt-suite.databaseChecksum" -}}
{{- $store := include "stt-suite.jobStore" . | fromJson }}
{{- if and (eq $store.mode "external") .Values.jobs.database.url }}
checksum/database: {{ .Values.jobs.database.url | sha256sum }}
{{- end }}
{{- end }}

{{/*
The worker container (`stt worker`): (list $root). In its own Deployment it serves HTTP on
the `http` port and calls the router's Service; in the router's pod (the embedded store) on
`worker-http` (jobs.embedded.workerHttpPort), calling the router beside it.
*/}}
{{- define "stt-suite.workerContainer" -}}
{{- $root := index . 0 }}
{{- $w := $root.Values.worker }}
{{- $embedded := eq (include "stt-suite.jobStore" $root | fromJson).mode "embedded" }}
{{- $port := ternary (int $root.Values.jobs.embedded.workerHttpPort) (int $root.Values.ports.http) $embedded }}
{{- $portName := ternary "worker-http" "http" $embedded }}
{{- $router := printf "dns:///%s.%s.svc.%s:%d" (include "stt-suite.routerName" $root) $root.Release.Namespace $root.Values.clusterDomain (int $root.Values.router.service.grpcPort) }}
- name: worker
  image: {{ include "stt-suite.image" (list $root 0) }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  args: ["worker"]
  ports:
    - name: {{ $portName }}
      containerPort: {{ $port }}
      protocol: TCP
    {{- $healthPort := ternary (int $root.Values.jobs.embedded.workerHealthPort) (int $root.Values.ports.health) $embedded }}
    {{- with include "stt-suite.healthContainerPort" (list $root (ternary "worker-health" "health" $embedded) $healthPort) }}
    {{- . | nindent 4 }}
    {{- end }}
  env:
    - name: WORKER_HOST
      value: {{ $root.Values.listenAddress | quote }}
    - name: WORKER_HTTP_PORT
      value: {{ $port | quote }}
    - name: WORKER_DRAIN_GRACE_S
      value: {{ $root.Values.drain.graceSeconds | quote }}
    - name: WORKER_LOG_LEVEL
      value: {{ $root.Values.logLevel | quote }}
    # Each chunk goes through the router's Recognize, and a job's speakers through its
    # Diarize: its routes, failover and limits apply.
    - name: WORKER_TARGET
      value: {{ ternary (printf "localhost:%d" (int $root.Values.ports.grpc)) $router $embedded | quote }}
    {{- with include "stt-suite.tlsEnv" (list $root "WORKER_" $healthPort) }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with include "stt-suite.tlsClientEnv" (list $root "WORKER_TARGET_TLS_") }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with include "stt-suite.uriPolicyEnv" $root }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- if $root.Values.apiKeys.clientSecretName }}
    - name: WORKER_API_KEY_FILE
      value: {{ printf "%s/key" (include "stt-suite.clientKeyDir" $root) | quote }}
    {{- end }}
    {{- include "stt-suite.storeEnv" (list $root "WORKER_") | trim | nindent 4 }}
    {{- with include "stt-suite.objectStoreEnv" (list $root true) }}
    {{- . | trim | nindent 4 }}
    {{- end }}
    {{- with include "stt-suite.settingsEnv" (list "WORKER_" $w.settings) }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- include "stt-suite.commonEnv" $root | trim | nindent 4 }}
    {{- with $w.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- /* No gRPC server: the probes ask /readyz (the voice activity detector is loaded, not
  draining) and /healthz. */}}
  {{- include "stt-suite.probes" (list $root "" 30 $portName) | trim | nindent 2 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $w.resources | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    {{- with include "stt-suite.tlsMounts" $root }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with include "stt-suite.clientKeyMounts" $root }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- if $embedded }}
    - name: jobs-data
      mountPath: {{ $root.Values.jobs.embedded.mountPath }}
    {{- end }}
    {{- with include "stt-suite.objectStoreMount" $root }}
    {{- . | trim | nindent 4 }}
    {{- end }}
{{- end }}
