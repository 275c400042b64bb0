// The job types this worker runs: job name -> async processor(job).
// A processor's return value is stored as the job's result; a thrown error
// fails the attempt (and BullMQ retries it), except UnrecoverableError,
// which fails the job at once.
import { deliverWebhook } from './webhook.js';
import { textStats } from './text-stats.js';

export const processors = {
  'webhook.deliver': deliverWebhook,
  'text.stats': textStats,
};

export const jobNames = Object.keys(processors);
