// A plain node:http app traced with the official OpenTelemetry JS SDK, for
// bench/app-overhead/run.sh: how much does exporting spans cost the app?
//
// usage: node app.mjs --mode otlp|sdk-only|noop [--endpoint URL]
//          --ready-file FILE --stats-out FILE
//
//   otlp      BatchSpanProcessor (the SDK defaults: queue 2048, batch 512,
//             5 s delay) + OTLP/HTTP protobuf exporter to --endpoint
//             (http://HOST:PORT/v1/traces)
//   sdk-only  the SDK records every span, but no exporter / batch processor
//   noop      no tracer provider registered: the API's no-op tracer
//
// Each request makes one SERVER span and 2-4 INTERNAL/CLIENT children with
// about 10 attributes each, then answers a small JSON body.
//
// The server listens on 127.0.0.1, port 0; once bound it writes
// {"port":N} to --ready-file (atomically). On SIGTERM it stops serving,
// flushes the SDK (bounded), writes its span counts as JSON to --stats-out
// and exits 0:
//   ended     spans ended (counted by a span processor of ours, onEnd)
//   exported  spans in export calls whose result was SUCCESS
//   failed    spans in export calls whose result was FAILED
//   pending   spans in export calls with no result yet at exit
//   dropped   ended - exported - failed - pending: what the batch
//             processor dropped (its queue was full) or still held at exit
import { createServer } from 'node:http';
import { renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE =
  'usage: node app.mjs --mode otlp|sdk-only|noop [--endpoint URL] --ready-file FILE --stats-out FILE';

function usageError(message) {
  process.stderr.write(`app: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      mode: { type: 'string' },
      endpoint: { type: 'string' },
      'ready-file': { type: 'string' },
      'stats-out': { type: 'string' },
    },
    strict: true,
  }));
} catch (error) {
  usageError(error.message);
}
if (!['otlp', 'sdk-only', 'noop'].includes(values.mode)) usageError('bad --mode');
if (values.mode === 'otlp' && !values.endpoint) usageError('--mode otlp needs --endpoint');
if (!values['ready-file'] || !values['stats-out']) usageError('--ready-file and --stats-out are required');

// The SDK reads OTEL_* variables (batch limits, endpoints, sampler): the bench
// measures the SDK's defaults, so the calling environment must not change them.
for (const name of Object.keys(process.env)) {
  if (name.startsWith('OTEL_')) delete process.env[name];
}

const api = await import('@opentelemetry/api');
const { ExportResultCode } = await import('@opentelemetry/core');
const { resourceFromAttributes } = await import('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');

api.diag.setLogger(new api.DiagConsoleLogger(), api.DiagLogLevel.ERROR);

const counts = { ended: 0, exported: 0, failed: 0, pending: 0 };

// Counts every ended span; placed before the batch processor so that spans the
// batch processor drops are counted here too.
class CountingSpanProcessor {
  onStart() {}
  onEnd() {
    counts.ended += 1;
  }
  forceFlush() {
    return Promise.resolve();
  }
  shutdown() {
    return Promise.resolve();
  }
}

// Wraps the OTLP exporter to count the result of every export call.
class CountingExporter {
  constructor(inner) {
    this.inner = inner;
  }
  export(spans, resultCallback) {
    counts.pending += spans.length;
    this.inner.export(spans, (result) => {
      counts.pending -= spans.length;
      if (result.code === ExportResultCode.SUCCESS) {
        counts.exported += spans.length;
      } else {
        counts.failed += spans.length;
      }
      resultCallback(result);
    });
  }
  forceFlush() {
    return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve();
  }
  shutdown() {
    return this.inner.shutdown();
  }
}

let provider = null;
let tracer;
if (values.mode === 'noop') {
  tracer = api.trace.getTracer('app-overhead');  // no provider registered: no-op spans
} else {
  const spanProcessors = [new CountingSpanProcessor()];
  if (values.mode === 'otlp') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
    const exporter = new CountingExporter(new OTLPTraceExporter({ url: values.endpoint }));
    spanProcessors.push(new BatchSpanProcessor(exporter));  // SDK default settings
  }
  provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'app-overhead-bench',
      'service.version': '1.0.0',
      'host.name': 'bench-host',
      'deployment.environment.name': 'bench',
    }),
    spanProcessors,
  });
  tracer = provider.getTracer('app-overhead', '1.0.0');
}

const CHILD_KINDS = [api.SpanKind.INTERNAL, api.SpanKind.CLIENT];
let requestNumber = 0;

function childAttributes(n, i) {
  return {
    'db.system': 'postgresql',
    'db.operation.name': i % 2 ? 'SELECT' : 'UPDATE',
    'db.collection.name': `table_${i}`,
    'server.address': 'db.internal',
    'server.port': 5432,
    'app.request.number': n,
    'app.child.index': i,
    'app.cache.hit': n % 3 === 0,
    'app.rows': (n * 7 + i) % 100,
    'app.ratio': (n % 100) / 100,
  };
}

function handle(request, response) {
  const n = ++requestNumber;
  const root = tracer.startSpan('GET /work', {
    kind: api.SpanKind.SERVER,
    attributes: {
      'http.request.method': request.method,
      'url.path': request.url,
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'network.protocol.version': '1.1',
      'user_agent.original': request.headers['user-agent'] ?? '',
      'http.route': '/work',
      'app.request.number': n,
      'app.tenant': `tenant-${n % 17}`,
      'app.feature.enabled': n % 2 === 0,
    },
  });
  const parentContext = api.trace.setSpan(api.context.active(), root);
  const children = 2 + (n % 3);  // 2, 3 or 4 children
  let sum = 0;
  for (let i = 0; i < children; ++i) {
    const child = tracer.startSpan(
      `step ${i}`, { kind: CHILD_KINDS[i % 2], attributes: childAttributes(n, i) }, parentContext);
    for (let k = 0; k < 200; ++k) sum += (k * n) % 7;  // a little work per step
    child.end();
  }
  const body = JSON.stringify({ request: n, children, sum });
  root.setAttribute('http.response.status_code', 200);
  root.end();
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

const server = createServer(handle);
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  const readyFile = values['ready-file'];
  writeFileSync(`${readyFile}.tmp`, JSON.stringify({ port: server.address().port }));
  renameSync(`${readyFile}.tmp`, readyFile);
});

const FLUSH_LIMIT_MS = 8000;

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections();
  let flush = 'ok';
  if (provider) {
    // Bounded: a slow upstream must not hold the bench.
    flush = await Promise.race([
      provider.shutdown().then(() => 'ok', (error) => `failed: ${error?.message ?? error}`),
      new Promise((resolve) => setTimeout(() => resolve('timed out'), FLUSH_LIMIT_MS).unref()),
    ]);
  }
  const stats = {
    mode: values.mode,
    requests: requestNumber,
    ...counts,
    dropped: counts.ended - counts.exported - counts.failed - counts.pending,
    flush,
  };
  if (values.mode !== 'otlp') {
    // Nothing exported, so nothing dropped; the no-op tracer records nothing.
    for (const key of ['exported', 'failed', 'pending', 'dropped']) stats[key] = null;
    if (values.mode === 'noop') stats.ended = null;
  }
  const out = values['stats-out'];
  writeFileSync(`${out}.tmp`, `${JSON.stringify(stats)}\n`);
  renameSync(`${out}.tmp`, out);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
