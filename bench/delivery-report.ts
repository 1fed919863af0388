// The delivery bench's lines: one per figure with its target in brackets, each Gazette rate beside
// smtp-source's of the same run, medians over rounds, and a markdown table of the modes.
import { SOURCE_SESSIONS, type Backend, type ModeSample } from './delivery-mode.ts';

/** The issue's targets. */
export const TARGETS = { sustained: 3000, rssMb: 150, enqueueSeconds: 2, enqueueRecipients: 100_000 } as const;

/** Every round of one mode, and the rounds that failed. */
export interface ModeResult {
  backend: Backend;
  workers: number;
  samples: ModeSample[];
  failures: string[];
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en') : 'n/a');
const ratio = (n: number) => (Number.isFinite(n) ? `${n.toFixed(n < 10 ? 2 : 1)}×` : 'n/a');
const mb = (kb: number) => Math.round(kb / 1024);

/** The median of the finite values (NaN when none). */
export function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `backend, W worker(s)`. */
export function modeName(backend: Backend, workers: number): string {
  return `${backend}, ${workers} worker${workers === 1 ? '' : 's'}`;
}

/** The medians a mode is reported by; ratios are per round (Gazette over its own round's smtp-source), then the median. */
function summarize(result: ModeResult) {
  const s = result.samples;
  const of = (pick: (x: ModeSample) => number) => median(s.map(pick));
  const spread = (pick: (x: ModeSample) => number, format: (n: number) => string) => {
    if (s.length < 2) return '';
    const values = s.map(pick).filter(Number.isFinite);
    return `; median of ${s.length} rounds, ${format(Math.min(...values))}–${format(Math.max(...values))}`;
  };
  return {
    sustained: of((x) => x.sustained),
    sustainedSpread: spread((x) => x.sustained, int),
    endToEnd: of((x) => x.endToEnd),
    endToEndSpread: spread((x) => x.endToEnd, int),
    source: of((x) => x.yardstick?.msgsPerSecond ?? NaN),
    sourceSpread: spread((x) => x.yardstick?.msgsPerSecond ?? NaN, int),
    sustainedRatio: of((x) => x.sustained / (x.yardstick?.msgsPerSecond ?? NaN)),
    endToEndRatio: of((x) => x.endToEnd / (x.yardstick?.msgsPerSecond ?? NaN)),
    cpu: of((x) => x.cpuUsPerMessage),
    sourceCpu: of((x) => x.yardstick?.cpuUsPerMessage ?? NaN),
    startup: of((x) => x.startupMs),
    startupSpread: spread((x) => x.startupMs, int),
    drain: of((x) => x.drainMs),
    // Peak RSS of each worker slot, then the largest.
    rss: Array.from({ length: result.workers }, (_, i) => of((x) => x.rssKb[i] ?? NaN)),
    bytes: of((x) => x.messageBytes),
    sent: of((x) => x.sent),
  };
}

/** The lines of one mode: the yardstick, then each of Gazette's figures beside it. */
export function modeLines(result: ModeResult, rounds: number): string[] {
  const name = `delivery ${modeName(result.backend, result.workers)}`;
  const failed = result.failures.map((f) => `${name}: FAILED: ${f.split('\n')[0]}${f.includes('\n') ? ' (more on stderr)' : ''}`);
  if (result.samples.length === 0) return failed;
  const m = summarize(result);
  const partial = result.failures.length > 0 ? ` [${result.failures.length} of ${rounds} rounds failed]` : '';
  return [
    `${name}: smtp-source -d yardstick ${int(m.source)} msgs/s (${SOURCE_SESSIONS} sessions, ${int(m.sent)} messages of ${int(m.bytes)} B, same sink, same run${m.sourceSpread}), CPU ${int(m.sourceCpu)} µs/msg   [yardstick]${partial}`,
    `${name}: sustained ${int(m.sustained)} msgs/s = ${ratio(m.sustainedRatio)} smtp-source -d (first → last sent_at${m.sustainedSpread})   [target >= ${int(TARGETS.sustained)}]`,
    `${name}: end to end ${int(m.endToEnd)} msgs/s = ${ratio(m.endToEndRatio)} smtp-source -d (workers spawned → all exited, last sent_at → exit ${int(m.drain)} ms${m.endToEndSpread})   [no target]`,
    `${name}: start-up ${int(m.startup)} ms (workers spawned → first sent_at${m.startupSpread})   [no target]`,
    `${name}: CPU ${int(m.cpu)} µs/msg = ${ratio(m.cpu / m.sourceCpu)} smtp-source's ${int(m.sourceCpu)} µs/msg (user+sys of every worker; Postgres and Redis servers not counted)   [no target]`,
    `${name}: peak RSS per worker ${m.rss.map((kb) => `${mb(kb)} MB`).join(', ')}   [target <= ${TARGETS.rssMb} MB]`,
    ...failed,
  ];
}

/** The markdown table of every mode. */
export function modeTable(results: ModeResult[]): string[] {
  const rows = results.map((result) => {
    const name = modeName(result.backend, result.workers);
    if (result.samples.length === 0) return `| ${name} | failed | | | | | | | |`;
    const m = summarize(result);
    const rss = Math.max(...m.rss.filter(Number.isFinite));
    return `| ${name} | ${int(m.sustained)} | ${ratio(m.sustainedRatio)} | ${int(m.endToEnd)} | ${ratio(m.endToEndRatio)} | ${int(m.source)} | ${int(m.cpu)} / ${int(m.sourceCpu)} | ${int(m.startup)} | ${Number.isFinite(rss) ? mb(rss) : 'n/a'} |`;
  });
  return [
    '',
    `| mode | sustained msg/s | × smtp-source -d | end-to-end msg/s | × smtp-source -d | smtp-source -d msg/s | CPU µs/msg (Gazette / smtp-source) | start-up ms | peak RSS MB (largest worker) |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ];
}

/** The line of one backend's enqueue time (median over rounds). */
export function enqueueLine(backend: Backend, recipients: number, samplesMs: number[], failures: string[]): string[] {
  const name = `enqueue ${backend}`;
  const failed = failures.map((f) => `${name}: FAILED: ${f.split('\n')[0]}`);
  if (samplesMs.length === 0) return failed;
  const spread = samplesMs.length > 1 ? `, median of ${samplesMs.length} rounds, ${(Math.min(...samplesMs) / 1000).toFixed(2)}–${(Math.max(...samplesMs) / 1000).toFixed(2)} s` : '';
  const what = backend === 'bullmq' ? 'ledger on Postgres, jobs on BullMQ' : backend === 'postgres' ? 'ledger and queue table on Postgres' : 'ledger and queue table in the SQLite file';
  return [
    `${name}: app.editions.send of ${recipients.toLocaleString('en')} recipients: ${(median(samplesMs) / 1000).toFixed(2)} s (${what}; subscribers inserted before, not timed${spread})   [target ${TARGETS.enqueueRecipients.toLocaleString('en')} <= ${TARGETS.enqueueSeconds} s]`,
    ...failed,
  ];
}

/** The RSS flatness line: one worker's peak at each size. */
export function rssLine(sizes: number[], peaksKb: number[]): string {
  const at = sizes.map((size, i) => `${mb(peaksKb[i]!)} MB at ${size.toLocaleString('en')}`).join(', ');
  const first = peaksKb[0]!;
  const last = peaksKb[peaksKb.length - 1]!;
  const growth = sizes.length > 1 ? `; ${last >= first ? '+' : '−'}${Math.abs(mb(last - first))} MB (${last >= first ? '+' : '−'}${Math.abs(Math.round((100 * (last - first)) / first))}%) from ${sizes[0]!.toLocaleString('en')} to ${sizes[sizes.length - 1]!.toLocaleString('en')}` : '';
  return `rss sqlite, 1 worker: peak RSS ${at} recipients${growth}   [target <= ${TARGETS.rssMb} MB, flat]`;
}
