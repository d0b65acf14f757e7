// Open-loop HTTP load: `count` POSTs due at a fixed `rate`, whatever the server answers.
//
// scripts/reliability.py runs this for the overload figures. A Python client sharing the two
// cores with the server could not offer twice the server's rate (it reached 160 of 437 req/s);
// Node's http client, single-threaded and event-driven like the server, can. It uses only
// Node's standard library (Node 18+), so nothing is installed for it.
//
//   node scripts/loadgen.mjs --url http://127.0.0.1:8080/v1/models/m:predict \
//        --body body.json --rate 400 --count 20000 --connections 32 [--header k:v ...]
//
// Prints one JSON object: answers by status, responses that carried Retry-After, transport
// errors, the achieved send rate (from the moment the last request was written out, so a
// backlog in front of busy connections shows as a lower rate), latency percentiles of
// accepted (200) answers measured from the moment each request was due (time spent waiting
// for a free connection counts) and from the moment it was written, and the same of refusals
// (429 and 503).
import http from "node:http";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: {
    url: { type: "string" },
    body: { type: "string" },
    rate: { type: "string" },
    count: { type: "string" },
    connections: { type: "string", default: "32" },
    header: { type: "string", multiple: true, default: [] },
    timeout: { type: "string", default: "30" },
  },
});
for (const name of ["url", "body", "rate", "count"]) {
  if (!opts[name]) {
    console.error(`--${name} is required`);
    process.exit(2);
  }
}
const url = new URL(opts.url);
const body = readFileSync(opts.body);
const rate = Number(opts.rate);
const count = Number(opts.count);
const headers = { "content-type": "application/json", "content-length": body.length };
for (const pair of opts.header) {
  const at = pair.indexOf(":");
  headers[pair.slice(0, at).trim().toLowerCase()] = pair.slice(at + 1).trim();
}
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(opts.connections) });

const statuses = {};
const errors = {};
let retryAfter = 0;
const fromDue = [];
const fromWrite = [];
const refusedFromWrite = [];
let issued = 0;
let finished = 0;
let lastWrite = 0;
const start = performance.now();

function send(due) {
  let settled = false;
  const settle = () => {
    if (!settled) {
      settled = true;
      done();
    }
  };
  const failed = (error) => {
    if (settled) return;
    const key = error.code || error.message;
    errors[key] = (errors[key] || 0) + 1;
    settle();
  };
  const request = http.request(
    {
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: "POST",
      headers,
      agent,
      timeout: Number(opts.timeout) * 1000,
    },
    (response) => {
      response.resume();
      // A connection reset in the middle of an answer is a dropped request, not a crash.
      response.on("error", failed);
      response.on("end", () => {
        if (settled) return;
        const now = performance.now();
        statuses[response.statusCode] = (statuses[response.statusCode] || 0) + 1;
        if (response.headers["retry-after"] !== undefined) retryAfter += 1;
        if (response.statusCode === 200) {
          fromDue.push(now - due);
          fromWrite.push(now - written);
        } else if (response.statusCode === 429 || response.statusCode === 503) {
          refusedFromWrite.push(now - written);
        }
        settle();
      });
    },
  );
  let written = performance.now();
  request.on("socket", () => {
    written = performance.now();
  });
  request.on("finish", () => {
    lastWrite = Math.max(lastWrite, performance.now());
  });
  request.on("timeout", () => request.destroy(new Error("timeout")));
  request.on("error", failed);
  request.end(body);
}

function done() {
  finished += 1;
  if (finished === count) report();
}

function tick() {
  const now = performance.now();
  const due = Math.min(count, Math.floor(((now - start) * rate) / 1000) + 1);
  while (issued < due) {
    send(start + (issued * 1000) / rate);
    issued += 1;
  }
  if (issued < count) setTimeout(tick, 1);
}

function percentile(values, q) {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  const index = Math.min(sorted.length - 1, Math.ceil((q / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, index)] * 100) / 100;
}

function report() {
  const seconds = (performance.now() - start) / 1000;
  const sending = Math.max((lastWrite - start) / 1000, 1e-9);
  console.log(
    JSON.stringify({
      sent: count,
      statuses,
      transport_errors: errors,
      with_retry_after: retryAfter,
      offered_rps: rate,
      achieved_send_rps: Math.round((count / sending) * 10) / 10,
      seconds: Math.round(seconds * 100) / 100,
      accepted_ms_from_due: { p50: percentile(fromDue, 50), p99: percentile(fromDue, 99) },
      accepted_ms_from_write: { p50: percentile(fromWrite, 50), p99: percentile(fromWrite, 99) },
      refused_ms_from_write: {
        p50: percentile(refusedFromWrite, 50),
        p99: percentile(refusedFromWrite, 99),
      },
    }),
  );
  agent.destroy();
}

tick();
