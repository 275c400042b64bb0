import { UnrecoverableError } from 'bullmq';

// data: { text: "..." } -> { characters, words, lines, topWords: [[word, count], ...] }
// A CPU-bound example that reports its progress.
export async function textStats(job) {
  const { text } = job.data ?? {};
  if (typeof text !== 'string') {
    throw new UnrecoverableError('data.text must be a string');
  }
  const lines = text.length === 0 ? 0 : text.split(/\r?\n/).length;
  const words = text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
  const counts = new Map();
  for (let i = 0; i < words.length; i += 1) {
    counts.set(words[i], (counts.get(words[i]) ?? 0) + 1);
    if (i > 0 && i % 50_000 === 0) await job.updateProgress(Math.round((i / words.length) * 100));
  }
  await job.updateProgress(100);
  const topWords = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 10);
  return { characters: [...text].length, words: words.length, lines, topWords };
}
