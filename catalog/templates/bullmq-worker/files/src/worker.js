// The worker process: takes jobs from the queue and runs them. Run as many
// copies as you need, on as many machines: Redis hands each job to one.
import { UnrecoverableError, Worker } from 'bullmq';
import { config } from './config.js';
import { processors } from './jobs/index.js';
import { log } from './log.js';
import { createConnection } from './queue.js';

async function run(job) {
  const processor = processors[job.name];
  if (!processor) throw new UnrecoverableError(`unknown job name ${JSON.stringify(job.name)}`);
  log.debug('job started', { id: job.id, name: job.name, attempt: job.attemptsMade + 1 });
  return processor(job);
}

const connection = createConnection();
const worker = new Worker(config.queueName, run, {
  connection,
  concurrency: config.concurrency,
});

worker.on('ready', () => {
  log.info('worker ready', { queue: config.queueName, concurrency: config.concurrency });
});
worker.on('completed', (job) => {
  log.info('job completed', { id: job.id, name: job.name, ms: job.finishedOn - job.processedOn });
});
worker.on('failed', (job, error) => {
  const willRetry = job && job.attemptsMade < (job.opts.attempts ?? 1) && !(error instanceof UnrecoverableError);
  log.warn(willRetry ? 'job attempt failed, will retry' : 'job failed', {
    id: job?.id,
    name: job?.name,
    attempt: job?.attemptsMade,
    error: error.message,
  });
});
worker.on('error', (error) => log.error('worker error', { error: error.message }));

// Graceful shutdown: stop taking jobs, let running ones finish, then exit.
// Jobs cut off by a hard kill are detected as stalled and run again.
let closing = false;
async function shutdown(signal) {
  if (closing) return;
  closing = true;
  log.info('shutting down', { signal });
  const timer = setTimeout(() => {
    log.error('jobs did not finish in 30s, exiting');
    process.exit(1);
  }, 30_000);
  timer.unref();
  await worker.close();
  await connection.quit();
  process.exit(0);
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
