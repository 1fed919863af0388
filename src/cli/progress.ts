import cliProgress from 'cli-progress';

/** A progress bar on a terminal; silent when stderr is not one (pipes, CI, tests). */
export interface Progress {
  update(value: number): void;
  stop(): void;
}

/** Starts a progress bar of `total` steps labelled `label`. */
export function progressBar(label: string, total: number): Progress {
  if (!process.stderr.isTTY || total <= 0) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (value) => bar.update(Math.min(value, total)), stop: () => bar.stop() };
}
