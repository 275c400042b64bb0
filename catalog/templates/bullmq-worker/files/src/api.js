// A small HTTP API that enqueues jobs and reports on them (node:http, no
// framework). In a larger app, call createQueue() from your own web server.
import http from 'node:http';
import { config } from './config.js';
import { jobNames } from './jobs/index.js';
import { log } from './log.js';
import { createConnection, createQueue } from './queue.js';

const MAX_BODY = 1024 * 1024;

const connection = createConnection();
const queue = createQueue(connection);

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw Object.assign(new Error('body is not valid JSON'), { status: 400 });
  }
}

async function route(req, res) {
  const url = new URL(req.url, 'http://localhost');

  if (req.method === 'GET' && url.pathname === '/health') {
    await connection.ping();
    return send(res, 200, { status: 'ok', queue: config.queueName, counts: await queue.getJobCounts() });
  }

  // POST /jobs {"name": "text.stats", "data": {...}, "delayMs": 0}
  if (req.method === 'POST' && url.pathname === '/jobs') {
    const body = await readJson(req);
    if (!jobNames.includes(body?.name)) {
      return send(res, 422, { error: `name must be one of ${jobNames.join(', ')}` });
    }
    const delay = Number.isInteger(body.delayMs) && body.delayMs > 0 ? body.delayMs : undefined;
    const job = await queue.add(body.name, body.data ?? {}, { delay });
    log.info('job enqueued', { id: job.id, name: job.name });
    res.setHeader('location', `/jobs/${job.id}`);
    return send(res, 202, { id: job.id, name: job.name });
  }

  // GET /jobs/:id
  const match = url.pathname.match(/^\/jobs\/([^/]+)$/);
  if (req.method === 'GET' && match) {
    const job = await queue.getJob(decodeURIComponent(match[1]));
    if (!job) return send(res, 404, { error: 'job not found' });
    return send(res, 200, {
      id: job.id,
      name: job.name,
      state: await job.getState(),
      progress: job.progress,
      attempts: job.attemptsMade,
      result: job.returnvalue ?? null,
      error: job.failedReason ?? null,
      createdAt: new Date(job.timestamp).toISOString(),
      finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
    });
  }

  return send(res, 404, { error: `no route for ${req.method} ${url.pathname}` });
}

const server = http.createServer((req, res) => {
  route(req, res).catch((error) => {
    const status = error.status ?? 500;
    if (status >= 500) log.error('request failed', { error: error.message });
    send(res, status, { error: status >= 500 ? 'internal error' : error.message });
  });
});

server.listen(config.port, () => {
  log.info('api listening', { port: server.address().port, queue: config.queueName });
});

async function shutdown(signal) {
  log.info('shutting down', { signal });
  server.close();
  server.closeIdleConnections();
  await queue.close();
  await connection.quit();
  process.exit(0);
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
