{{/*
Job audio in object stores (gs://, s3://): the buckets the router and the workers may read
(JOBS_URI_ALLOWED_BUCKETS), and the workers' credentials from a Secret, mounted read-only and
named by the variables the libraries read (GOOGLE_APPLICATION_CREDENTIALS for a Google
service-account key, AWS_SHARED_CREDENTIALS_FILE for an AWS credentials file). Without a
Secret the libraries use the pod's own identity (workload identity, IRSA).
*/}}
{{- define "stt-suite.objectStoreDir" -}}
/var/run/secrets/stt-suite/object-store
{{- end }}

{{/* The variables of a server: (list $root withCredentials). */}}
{{- define "stt-suite.objectStoreEnv" -}}
{{- $o := (index . 0).Values.jobs.objectStore }}
{{- $dir := include "stt-suite.objectStoreDir" (index . 0) }}
{{- with $o.allowedBuckets }}
- name: JOBS_URI_ALLOWED_BUCKETS
  value: {{ join "," . | quote }}
{{- end }}
{{- if and (index . 1) $o.credentialsSecret }}
{{- with $o.googleCredentialsKey }}
- name: GOOGLE_APPLICATION_CREDENTIALS
  value: {{ printf "%s/%s" $dir . | quote }}
{{- end }}
{{- with $o.awsCredentialsKey }}
- name: AWS_SHARED_CREDENTIALS_FILE
  value: {{ printf "%s/%s" $dir . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The workers' mount of the credentials Secret, when one is named. */}}
{{- define "stt-suite.objectStoreMount" -}}
{{- if .Values.jobs.objectStore.credentialsSecret }}
- name: object-store-credentials
  mountPath: {{ include "stt-suite.objectStoreDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The volume of the credentials Secret, in a pod that runs a worker. */}}
{{- define "stt-suite.objectStoreVolume" -}}
{{- with .Values.jobs.objectStore.credentialsSecret }}
- name: object-store-credentials
  secret:
    secretName: {{ . }}
{{- end }}
{{- end }}
