// A worker that drains the queue and exits, printing its peak RSS: the benchmark's sending process.
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';

const app = createApp(loadConfig());
const queue = await app.queue();
const worker = await app.worker({ pollMs: 50 });
let idle = 0;
await worker.run({
  signal: new AbortController().signal,
  // Two empty polls in a row: the other worker may still hold a few jobs, which is fine.
  stopWhenIdle: async () => {
    const counts = await queue.counts(new Date());
    idle = counts.waiting + counts.leased + counts.delayed === 0 ? idle + 1 : 0;
    return idle >= 2;
  },
});
await app.close();
process.stdout.write(`maxrss=${process.resourceUsage().maxRSS}\n`);
