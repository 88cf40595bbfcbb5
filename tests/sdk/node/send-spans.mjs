// Sends traces with the official OpenTelemetry JavaScript SDK to an OTLP
// endpoint (spanrelayd in the e2e test) and writes one JSON line per span it
// created, so the test can check that every one of them reached the upstream.
//
// usage: node send-spans.mjs --protocol grpc|http/protobuf|http/json
//          --endpoint URL --traces N --spans-per-trace M --out FILE
//          [--compression none|gzip]
//
// grpc endpoint: http://127.0.0.1:PORT; http endpoints: http://127.0.0.1:PORT/v1/traces.
// Exit codes: 0 every span was exported with SUCCESS; 1 an export failed or a
// span never reached the exporter (e.g. dropped by the batch processor); 2 usage.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE =
  'usage: node send-spans.mjs --protocol grpc|http/protobuf|http/json --endpoint URL ' +
  '--traces N --spans-per-trace M --out FILE [--compression none|gzip]';

function usageError(message) {
  process.stderr.write(`send-spans: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        protocol: { type: 'string' },
        endpoint: { type: 'string' },
        traces: { type: 'string' },
        'spans-per-trace': { type: 'string' },
        out: { type: 'string' },
        compression: { type: 'string', default: 'none' },
      },
      strict: true,
    }));
  } catch (error) {
    usageError(error.message);
  }
  const positive = (name) => {
    const text = values[name];
    if (text === undefined || !/^[1-9][0-9]*$/.test(text)) usageError(`--${name} must be a positive integer`);
    return Number(text);
  };
  if (!['grpc', 'http/protobuf', 'http/json'].includes(values.protocol)) usageError('bad --protocol');
  if (!values.endpoint) usageError('--endpoint is required');
  if (!values.out) usageError('--out is required');
  if (!['none', 'gzip'].includes(values.compression)) usageError('bad --compression');
  return {
    protocol: values.protocol,
    endpoint: values.endpoint,
    traces: positive('traces'),
    spansPerTrace: positive('spans-per-trace'),
    out: values.out,
    compression: values.compression,
  };
}

const options = parseOptions();

// The SDK and the exporters read OTEL_* variables (sampler, endpoints, headers,
// batch limits); whatever the calling environment carries must not change what
// this test sends or where. Scrub them before the SDK modules are loaded.
for (const name of Object.keys(process.env)) {
  if (name.startsWith('OTEL_')) delete process.env[name];
}

const api = await import('@opentelemetry/api');
const { ExportResultCode } = await import('@opentelemetry/core');
const { resourceFromAttributes } = await import('@opentelemetry/resources');
const { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor } = await import(
  '@opentelemetry/sdk-trace-base'
);

// Exporter failures are otherwise only logged at a level nobody sees.
api.diag.setLogger(new api.DiagConsoleLogger(), api.DiagLogLevel.WARN);

async function makeExporter() {
  const config = { url: options.endpoint, timeoutMillis: 30000 };
  if (options.compression !== 'none') config.compression = options.compression;
  switch (options.protocol) {
    case 'grpc':
      return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter(config);
    case 'http/protobuf':
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter(config);
    default:  // http/json: the OTLP/HTTP exporter's encoding is JSON
      return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter(config);
  }
}

// Wraps the real exporter to see every ExportResult: the batch processor only
// logs a failed export, and the test needs this process to fail loudly.
class RecordingExporter {
  constructor(inner) {
    this.inner = inner;
    this.exportedSpanIds = new Set();
    this.failures = [];
    this.calls = 0;
  }
  export(spans, resultCallback) {
    this.calls += 1;
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        for (const span of spans) this.exportedSpanIds.add(span.spanContext().spanId);
      } else {
        this.failures.push(`${spans.length} spans: ${result.error?.message ?? 'unknown error'}`);
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

const exporter = new RecordingExporter(await makeExporter());
const totalSpans = options.traces * options.spansPerTrace;
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({
    'service.name': 'spanrelay-node-sdk-e2e',
    'service.instance.id': `send-spans-${process.pid}`,
  }),
  sampler: new AlwaysOnSampler(),
  spanProcessors: [
    new BatchSpanProcessor(exporter, {
      // Large enough that the processor never drops a span however fast we make them.
      maxQueueSize: Math.max(2048, totalSpans),
      maxExportBatchSize: 256,
      scheduledDelayMillis: 50,
      exportTimeoutMillis: 30000,
    }),
  ],
});
const tracer = provider.getTracer('spanrelay-e2e', '1.0.0');

const created = [];
function record(span, name, parentSpanId, status) {
  const { traceId, spanId } = span.spanContext();
  created.push({ trace_id: traceId, span_id: spanId, parent_span_id: parentSpanId, name, status });
}

for (let t = 0; t < options.traces; ++t) {
  // Every 10th trace carries one span with status ERROR (the last one made).
  const withError = t % 10 === 0;
  const rootName = `GET /orders/${t}`;
  const root = tracer.startSpan(rootName, {
    kind: api.SpanKind.SERVER,
    attributes: {
      'http.request.method': 'GET',
      'http.route': '/orders/{id}',
      'url.path': `/orders/${t}`,
      'server.port': 8080,
      'e2e.trace_index': t,
    },
  });
  const rootContext = api.trace.setSpan(api.context.active(), root);
  for (let s = 1; s < options.spansPerTrace; ++s) {
    const name = `child ${t}.${s}`;
    const child = tracer.startSpan(
      name,
      {
        kind: s % 2 === 0 ? api.SpanKind.CLIENT : api.SpanKind.INTERNAL,
        attributes: {
          'e2e.span_index': s,
          'e2e.ratio': s / options.spansPerTrace,
          'e2e.cached': s % 3 === 0,
          'e2e.tags': ['a', `t${t}`, `s${s}`],
          'e2e.note': `trace ${t} span ${s} — ünïcode`,
        },
      },
      rootContext,
    );
    child.addEvent('step', { 'e2e.step': s });
    const isError = withError && s === options.spansPerTrace - 1;
    if (isError) {
      child.setStatus({ code: api.SpanStatusCode.ERROR, message: `failure in trace ${t}` });
    }
    record(child, name, root.spanContext().spanId, isError ? 2 : 0);
    child.end();
  }
  const rootIsError = withError && options.spansPerTrace === 1;
  if (rootIsError) root.setStatus({ code: api.SpanStatusCode.ERROR, message: `failure in trace ${t}` });
  root.setAttribute('http.response.status_code', rootIsError ? 500 : 200);
  record(root, rootName, '', rootIsError ? 2 : 0);
  root.end();
}

let failed = false;
try {
  await provider.forceFlush();
  await provider.shutdown();
} catch (error) {
  process.stderr.write(`send-spans: flush/shutdown failed: ${error?.stack ?? error}\n`);
  failed = true;
}

writeFileSync(options.out, created.map((span) => JSON.stringify(span) + '\n').join(''));

for (const failure of exporter.failures) {
  process.stderr.write(`send-spans: export failed: ${failure}\n`);
  failed = true;
}
const notExported = created.filter((span) => !exporter.exportedSpanIds.has(span.span_id));
if (notExported.length > 0) {
  process.stderr.write(`send-spans: ${notExported.length} of ${created.length} spans were never exported\n`);
  failed = true;
}
process.stderr.write(
  `send-spans: ${options.protocol} -> ${options.endpoint}: ${created.length} spans created, ` +
    `${exporter.exportedSpanIds.size} exported in ${exporter.calls} export calls, ` +
    `${exporter.failures.length} failures\n`,
);
process.exit(failed ? 1 : 0);
