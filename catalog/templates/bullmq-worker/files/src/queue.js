import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { config } from './config.js';

// BullMQ needs maxRetriesPerRequest: null so that blocking commands wait for
// Redis to come back instead of failing.
export function createConnection() {
  return new Redis(config.redisUrl, { maxRetriesPerRequest: null });
}

// Applied to every job unless the producer overrides them.
export const defaultJobOptions = Object.freeze({
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000 }, // 2s, 4s, 8s, 16s
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
});

export function createQueue(connection) {
  return new Queue(config.queueName, { connection, defaultJobOptions });
}
