{{/*
Security: TLS on every server's ports and between them, the router's API keys, and the
probes that keep working while the ports serve TLS only.

With `tls.enabled` every pod mounts the `tls.secretName` Secret (kubernetes.io/tls: tls.crt,
tls.key, and ca.crt, the CA its certificates are checked against, as cert-manager writes it)
at /var/run/secrets/stt-suite/tls and serves TLS with it; the router calls the model servers, and the
workers the router, verifying against its ca.crt. With `tls.clientCASecret` (a Secret with
ca.crt) every server asks for a client certificate that CA signed, and each pod shows its own
tls.crt to the servers it calls. The kubelet's probes cannot speak TLS (its gRPC probe has no
TLS at all, its HTTPS probe shows no client certificate): each server then answers them on a
plain-text health port (`ports.health`) with /healthz and /readyz and nothing else, a port of
the pod that no Service exposes.
*/}}

{{- /* Beside /etc/stt-suite (the router's routing table), not inside that read-only mount. */}}
{{- define "stt-suite.tlsDir" -}}/var/run/secrets/stt-suite/tls{{- end }}
{{- define "stt-suite.clientCADir" -}}/var/run/secrets/stt-suite/client-ca{{- end }}
{{- define "stt-suite.keysDir" -}}/var/run/secrets/stt-suite/keys{{- end }}
{{- define "stt-suite.clientKeyDir" -}}/var/run/secrets/stt-suite/api-key{{- end }}

{{/* Refuses TLS and key values that cannot work. */}}
{{- define "stt-suite.checkSecurity" -}}
{{- $t := .Values.tls }}
{{- if and $t.enabled (not $t.secretName) }}
{{- fail "tls.enabled needs tls.secretName: a kubernetes.io/tls Secret (for example from a cert-manager Certificate)" }}
{{- end }}
{{- if and $t.clientCASecret (not $t.enabled) }}
{{- fail "tls.clientCASecret needs tls.enabled: mutual TLS is TLS with client certificates" }}
{{- end }}
{{- $k := .Values.apiKeys }}
{{- if and $k.clientSecretName (not $k.secretName) }}
{{- fail "apiKeys.clientSecretName needs apiKeys.secretName: the router asks for no key without a keys file" }}
{{- end }}
{{- if and $k.secretName .Values.jobs.enabled (not $k.clientSecretName) }}
{{- fail "apiKeys.secretName with jobs.enabled needs apiKeys.clientSecretName: the job workers call the router with a key of its keys file" }}
{{- end }}
{{- if and $k.secretName .Values.tests.enabled (not $k.clientSecretName) }}
{{- fail "apiKeys.secretName with tests.enabled needs apiKeys.clientSecretName: the test pod calls the router with a key of its keys file" }}
{{- end }}
{{- end }}

{{/* A server's TLS variables, by prefix (WHISPER_EN_, ROUTER_, WORKER_): (list $root prefix healthPort). */}}
{{- define "stt-suite.tlsEnv" -}}
{{- $root := index . 0 }}
{{- $p := index . 1 }}
{{- if $root.Values.tls.enabled }}
- name: {{ $p }}TLS_CERT_FILE
  value: {{ printf "%s/tls.crt" (include "stt-suite.tlsDir" $root) | quote }}
- name: {{ $p }}TLS_KEY_FILE
  value: {{ printf "%s/tls.key" (include "stt-suite.tlsDir" $root) | quote }}
{{- if $root.Values.tls.clientCASecret }}
- name: {{ $p }}TLS_CLIENT_CA_FILE
  value: {{ printf "%s/ca.crt" (include "stt-suite.clientCADir" $root) | quote }}
{{- end }}
- name: {{ $p }}HEALTH_PORT
  value: {{ index . 2 | quote }}
{{- end }}
{{- end }}

{{/*
A client's TLS variables, by prefix (ROUTER_BACKEND_TLS_, WORKER_TARGET_TLS_): the Secret's
ca.crt, and under mutual TLS the pod's own certificate as its client certificate.
*/}}
{{- define "stt-suite.tlsClientEnv" -}}
{{- $root := index . 0 }}
{{- $p := index . 1 }}
{{- if $root.Values.tls.enabled }}
- name: {{ $p }}CA_FILE
  value: {{ printf "%s/ca.crt" (include "stt-suite.tlsDir" $root) | quote }}
{{- if $root.Values.tls.clientCASecret }}
- name: {{ $p }}CERT_FILE
  value: {{ printf "%s/tls.crt" (include "stt-suite.tlsDir" $root) | quote }}
- name: {{ $p }}KEY_FILE
  value: {{ printf "%s/tls.key" (include "stt-suite.tlsDir" $root) | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The mounts of the TLS files; the Secrets are mounted whole so renewals reach the pod. */}}
{{- define "stt-suite.tlsMounts" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: {{ include "stt-suite.tlsDir" . }}
  readOnly: true
{{- if .Values.tls.clientCASecret }}
- name: client-ca
  mountPath: {{ include "stt-suite.clientCADir" . }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{- define "stt-suite.tlsVolumes" -}}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ .Values.tls.secretName }}
    defaultMode: 0440
{{- if .Values.tls.clientCASecret }}
- name: client-ca
  secret:
    secretName: {{ .Values.tls.clientCASecret }}
    items:
      - key: ca.crt
        path: ca.crt
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end }}

{{/* The router's keys file (ROUTER_API_KEYS_FILE) from its Secret. */}}
{{- define "stt-suite.keysEnv" -}}
{{- if .Values.apiKeys.secretName }}
- name: ROUTER_API_KEYS_FILE
  value: {{ printf "%s/keys" (include "stt-suite.keysDir" .) | quote }}
{{- end }}
{{- end }}

{{- define "stt-suite.keysMounts" -}}
{{- if .Values.apiKeys.secretName }}
- name: api-keys
  mountPath: {{ include "stt-suite.keysDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "stt-suite.keysVolumes" -}}
{{- with .Values.apiKeys }}
{{- if .secretName }}
- name: api-keys
  secret:
    secretName: {{ .secretName }}
    items:
      - key: {{ .secretKey }}
        path: keys
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end }}

{{/* The key the chart's own clients show the router (the workers, the test pod). */}}
{{- define "stt-suite.clientKeyMounts" -}}
{{- if .Values.apiKeys.clientSecretName }}
- name: api-key
  mountPath: {{ include "stt-suite.clientKeyDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "stt-suite.clientKeyVolumes" -}}
{{- with .Values.apiKeys }}
{{- if .clientSecretName }}
- name: api-key
  secret:
    secretName: {{ .clientSecretName }}
    items:
      - key: {{ .clientSecretKey }}
        path: key
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end }}

{{/* The health port of a container, where TLS is on: (list $root portName port). */}}
{{- define "stt-suite.healthContainerPort" -}}
{{- if (index . 0).Values.tls.enabled }}
- name: {{ index . 1 }}
  containerPort: {{ index . 2 }}
  protocol: TCP
{{- end }}
{{- end }}

{{/* The job URI policy both the router and the workers read (JOBS_URI_*), when jobs are on. */}}
{{- define "stt-suite.uriPolicyEnv" -}}
{{- if .Values.jobs.enabled }}
{{- with .Values.jobs.uriPolicy }}
{{- range $name, $entries := dict "FILE_ROOTS" .fileRoots "ALLOWED_PRIVATE_HOSTS" .allowedPrivateHosts "ALLOWED_HOSTS" .allowedHosts }}
{{- if $entries }}
- name: JOBS_URI_{{ $name }}
  value: {{ join "," $entries | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
