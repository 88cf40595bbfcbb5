{{/*
Names and labels.
*/}}
{{- define "spanrelay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, at most 63 characters (a DNS label). A release whose
name already contains the chart name is not repeated ("spanrelay", not
"spanrelay-spanrelay").
*/}}
{{- define "spanrelay.fullname" -}}
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

{{- define "spanrelay.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "spanrelay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spanrelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "spanrelay.labels" -}}
helm.sh/chart: {{ include "spanrelay.chart" . }}
{{ include "spanrelay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: trace-relay
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "spanrelay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "spanrelay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "spanrelay.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{/*
The daemon's YAML: .Values.config, plus one ${file:...} header per entry of
upstreamSecret.headers (the token stays in the Secret; the ConfigMap holds the
reference, which spanrelayd expands at start-up).
*/}}
{{- define "spanrelay.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if .Values.upstreamSecret.headers }}
{{- if not .Values.upstreamSecret.name }}
{{- fail "upstreamSecret.headers needs upstreamSecret.name (the Secret to mount)" }}
{{- end }}
{{- if not (kindIs "map" $config.exporter) }}
{{- fail "upstreamSecret.headers needs a config.exporter section to add the headers to" }}
{{- end }}
{{- $headers := default (dict) $config.exporter.headers }}
{{- range $header, $source := .Values.upstreamSecret.headers }}
{{- $key := required (printf "upstreamSecret.headers.%s.key: the Secret key holding the value" $header) $source.key }}
{{- $path := printf "%s/%s" (trimSuffix "/" $.Values.upstreamSecret.mountPath) $key }}
{{- $_ := set $headers $header (printf "%s${file:%s}" (default "" $source.prefix) $path) }}
{{- end }}
{{- $_ := set $config.exporter "headers" $headers }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
The TCP port of a "host:port" endpoint from the config ("" when the endpoint
is empty, i.e. the listener is disabled). Called with (list "key.path" value).
*/}}
{{- define "spanrelay.endpointPort" -}}
{{- $key := index . 0 }}
{{- $endpoint := index . 1 | default "" | toString }}
{{- if $endpoint }}
{{- if contains "${" $endpoint }}
{{- fail (printf "config.%s: the chart needs a literal host:port here to declare the container port (got %q)" $key $endpoint) }}
{{- end }}
{{- $port := regexFind ":[0-9]+$" $endpoint | trimPrefix ":" }}
{{- if or (not $port) (eq (atoi $port) 0) }}
{{- fail (printf "config.%s: expected host:port with a fixed port, got %q" $key $endpoint) }}
{{- end }}
{{- atoi $port }}
{{- end }}
{{- end }}

{{/* True ("true") when a "host:port" endpoint listens on loopback only. */}}
{{- define "spanrelay.isLoopback" -}}
{{- $host := regexReplaceAll ":[0-9]+$" (toString .) "" }}
{{- if or (hasPrefix "127." $host) (eq $host "localhost") (eq $host "[::1]") }}true{{ end }}
{{- end }}

{{/*
A spanrelayd duration ("10s", "1m30s", "250ms") in milliseconds.
*/}}
{{- define "spanrelay.durationMillis" -}}
{{- $text := toString . }}
{{- if not (regexMatch "^([0-9]+(h|ms|m|s))+$" $text) }}
{{- fail (printf "cannot read the duration %q (write e.g. 10s or 1m30s)" $text) }}
{{- end }}
{{- $total := 0 }}
{{- range $part := regexFindAll "[0-9]+(h|ms|m|s)" $text -1 }}
{{- $count := regexFind "^[0-9]+" $part | atoi }}
{{- $unit := regexReplaceAll "^[0-9]+" $part "" }}
{{- $total = add $total (mul $count (get (dict "h" 3600000 "m" 60000 "s" 1000 "ms" 1) $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{- define "spanrelay.grpcSocket" -}}
{{- dig "receivers" "otlp" "grpc" "unix_socket" "" .Values.config }}
{{- end }}

{{- define "spanrelay.httpSocket" -}}
{{- dig "receivers" "otlp" "http" "unix_socket" "" .Values.config }}
{{- end }}

{{- define "spanrelay.spoolDir" -}}
{{- dig "exporter" "queue" "spool" "dir" "" .Values.config }}
{{- end }}

{{- define "spanrelay.spoolHostPath" -}}
{{- default (printf "/var/lib/spanrelay/%s/%s" .Release.Namespace (include "spanrelay.fullname" .)) .Values.spool.hostPath }}
{{- end }}

{{/* spool.volume, resolved: sidecar mode always uses an emptyDir. */}}
{{- define "spanrelay.spoolVolumeType" -}}
{{- if eq .Values.mode "sidecar" }}emptyDir{{ else }}{{ .Values.spool.volume }}{{ end }}
{{- end }}

{{/*
Checks that fail the render with a message instead of producing a pod that
crash-loops or a Service that points nowhere. Renders nothing.
*/}}
{{- define "spanrelay.validate" -}}
{{- if not (has .Values.mode (list "daemonset" "sidecar")) }}
{{- fail (printf "mode must be daemonset or sidecar, got %q" (toString .Values.mode)) }}
{{- end }}
{{- if not (has .Values.spool.volume (list "hostPath" "emptyDir")) }}
{{- fail (printf "spool.volume must be hostPath or emptyDir, got %q" (toString .Values.spool.volume)) }}
{{- end }}
{{- if not (kindIs "map" .Values.config) }}
{{- fail "config must be a map (the spanrelayd configuration)" }}
{{- end }}
{{- /* The metrics endpoint carries the probes: it must exist and listen on the pod IP. */}}
{{- $metrics := dig "telemetry" "metrics" "endpoint" "127.0.0.1:8888" .Values.config | toString }}
{{- if not (include "spanrelay.endpointPort" (list "telemetry.metrics.endpoint" $metrics)) }}
{{- fail "config.telemetry.metrics.endpoint must be set: the liveness and readiness probes use /healthz and /readyz on it" }}
{{- end }}
{{- if include "spanrelay.isLoopback" $metrics }}
{{- fail (printf "config.telemetry.metrics.endpoint is %q: the kubelet probes and Prometheus connect to the pod IP, listen on 0.0.0.0 instead" $metrics) }}
{{- end }}
{{- /* Listeners behind the Service must not be loopback-only. */}}
{{- if and (eq .Values.mode "daemonset") .Values.service.enabled }}
{{- range $receiver := list "grpc" "http" }}
{{- $endpoint := dig "receivers" "otlp" $receiver "endpoint" (printf "127.0.0.1:%s" (ternary "4317" "4318" (eq $receiver "grpc"))) $.Values.config | toString }}
{{- if and $endpoint (include "spanrelay.isLoopback" $endpoint) }}
{{- fail (printf "config.receivers.otlp.%s.endpoint is %q: the Service cannot reach a loopback listener; use 0.0.0.0 (or service.enabled: false)" $receiver $endpoint) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Unix sockets must be created inside the shared socket directory. */}}
{{- range $socket := list (include "spanrelay.grpcSocket" .) (include "spanrelay.httpSocket" .) }}
{{- if and $socket (ne (dir $socket) (trimSuffix "/" $.Values.socketDir.mountPath)) }}
{{- fail (printf "unix socket %q is not in socketDir.mountPath %q, which is the directory shared with the applications" $socket $.Values.socketDir.mountPath) }}
{{- end }}
{{- end }}
{{- $spoolDir := include "spanrelay.spoolDir" . }}
{{- if and $spoolDir (not (hasPrefix "/" $spoolDir)) }}
{{- fail (printf "config.exporter.queue.spool.dir must be an absolute path (the spool volume is mounted there), got %q" $spoolDir) }}
{{- end }}
{{- /* The grace period must cover the preStop sleep and the whole flush. */}}
{{- $shutdown := dig "service" "shutdown_timeout" "10s" .Values.config | toString }}
{{- if not (contains "${" $shutdown) }}
{{- $neededMillis := add (mul .Values.preStopSleepSeconds 1000) (include "spanrelay.durationMillis" $shutdown | atoi) }}
{{- if le (mul .Values.terminationGracePeriodSeconds 1000 | int64) ($neededMillis | int64) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds (%v) + config.service.shutdown_timeout (%s), or the kubelet kills spanrelayd before its flush ends" .Values.terminationGracePeriodSeconds .Values.preStopSleepSeconds $shutdown) }}
{{- end }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (ne .Values.mode "daemonset") }}
{{- fail "serviceMonitor needs mode daemonset (it selects the chart's Service); in sidecar mode scrape the application pods' metrics port with your own PodMonitor" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.service.enabled) }}
{{- fail "serviceMonitor.enabled needs service.enabled (the ServiceMonitor selects the Service)" }}
{{- end }}
{{- end }}

{{/*
The spanrelay container, shared by the DaemonSet and the sidecar snippet.
Called with (dict "root" $ "sidecar" true|false). Volume names are prefixed
with "spanrelay-" so the sidecar snippet does not collide with the
application's own volumes.
*/}}
{{- define "spanrelay.container" -}}
{{- $root := .root }}
{{- $config := $root.Values.config }}
{{- $grpcEndpoint := dig "receivers" "otlp" "grpc" "endpoint" "127.0.0.1:4317" $config | toString }}
{{- $httpEndpoint := dig "receivers" "otlp" "http" "endpoint" "127.0.0.1:4318" $config | toString }}
{{- $grpcPort := include "spanrelay.endpointPort" (list "receivers.otlp.grpc.endpoint" $grpcEndpoint) }}
{{- $httpPort := include "spanrelay.endpointPort" (list "receivers.otlp.http.endpoint" $httpEndpoint) }}
{{- $metricsPort := include "spanrelay.endpointPort" (list "telemetry.metrics.endpoint" (dig "telemetry" "metrics" "endpoint" "127.0.0.1:8888" $config)) }}
{{- /* A loopback listener (sidecar mode) is not a port of the pod: declare none. */}}
{{- if include "spanrelay.isLoopback" $grpcEndpoint }}{{ $grpcPort = "" }}{{ end }}
{{- if include "spanrelay.isLoopback" $httpEndpoint }}{{ $httpPort = "" }}{{ end }}
{{- $spoolDir := include "spanrelay.spoolDir" $root }}
{{- $hasSockets := or (include "spanrelay.grpcSocket" $root) (include "spanrelay.httpSocket" $root) -}}
name: spanrelay
image: {{ include "spanrelay.image" $root | quote }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
{{- if .sidecar }}
# A native sidecar: started before the application containers, kept running
# alongside them, stopped after them (Kubernetes >= 1.29).
restartPolicy: Always
{{- end }}
args:
  - --config
  - /etc/spanrelay/spanrelay.yaml
{{- with $root.Values.extraEnv }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
ports:
  {{- if $grpcPort }}
  - name: otlp-grpc
    containerPort: {{ $grpcPort }}
    protocol: TCP
  {{- end }}
  {{- if $httpPort }}
  - name: otlp-http
    containerPort: {{ $httpPort }}
    protocol: TCP
  {{- end }}
  - name: metrics
    containerPort: {{ $metricsPort }}
    protocol: TCP
startupProbe:
  httpGet:
    path: /readyz
    port: metrics
  {{- toYaml $root.Values.probes.startup | nindent 2 }}
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  {{- toYaml $root.Values.probes.liveness | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  {{- toYaml $root.Values.probes.readiness | nindent 2 }}
{{- if and (not .sidecar) $root.Values.preStopSleepSeconds }}
lifecycle:
  # Keep serving while the endpoint is removed from the Service; SIGTERM
  # (flush within service.shutdown_timeout) follows.
  preStop:
    exec:
      command: ["/bin/sleep", "{{ $root.Values.preStopSleepSeconds }}"]
{{- end }}
{{- with $root.Values.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: spanrelay-config
    mountPath: /etc/spanrelay
    readOnly: true
  {{- if $hasSockets }}
  - name: spanrelay-sockets
    mountPath: {{ $root.Values.socketDir.mountPath }}
  {{- end }}
  {{- if $spoolDir }}
  - name: spanrelay-spool
    mountPath: {{ $spoolDir }}
  {{- end }}
  {{- if $root.Values.upstreamSecret.name }}
  - name: spanrelay-upstream-secret
    mountPath: {{ $root.Values.upstreamSecret.mountPath }}
    readOnly: true
  {{- end }}
  {{- with $root.Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
The native sidecar container for an application pod's initContainers, for the
NOTES snippet. Called with the root context, or from a parent chart with
(dict "Values" .Values.spanrelay "Release" .Release "Chart" (dict "Name" "spanrelay" "AppVersion" "<version>")).
*/}}
{{- define "spanrelay.sidecarContainer" -}}
{{- include "spanrelay.container" (dict "root" . "sidecar" true) }}
{{- end }}

{{/*
The pod volumes the container mounts. Called with (dict "root" $ "sidecar" bool).
*/}}
{{- define "spanrelay.volumes" -}}
{{- $root := .root }}
{{- $spoolDir := include "spanrelay.spoolDir" $root }}
{{- $hasSockets := or (include "spanrelay.grpcSocket" $root) (include "spanrelay.httpSocket" $root) -}}
- name: spanrelay-config
  configMap:
    name: {{ include "spanrelay.fullname" $root }}
{{- if $hasSockets }}
- name: spanrelay-sockets
  {{- if .sidecar }}
  emptyDir: {}
  {{- else }}
  hostPath:
    path: {{ $root.Values.socketDir.hostPath }}
    type: DirectoryOrCreate
  {{- end }}
{{- end }}
{{- if $spoolDir }}
- name: spanrelay-spool
  {{- if eq (include "spanrelay.spoolVolumeType" $root) "hostPath" }}
  hostPath:
    path: {{ include "spanrelay.spoolHostPath" $root }}
    type: DirectoryOrCreate
  {{- else }}
  emptyDir:
    {{- toYaml $root.Values.spool.emptyDir | nindent 4 }}
  {{- end }}
{{- end }}
{{- with $root.Values.upstreamSecret.name }}
- name: spanrelay-upstream-secret
  secret:
    secretName: {{ . }}
    # Readable by spanrelayd whatever the pod's fsGroup (sidecar mode).
    defaultMode: 0444
{{- end }}
{{- with $root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
