/** What to do with the fires that came due in a window: run at most one, record the rest as missed. */
export interface FirePlan {
  run: Date | undefined;
  missed: { at: Date; detail: string }[];
}

/**
 * Plans the due fires of one schedule (oldest first). The newest one runs if it is within the grace
 * period; the others are recorded as missed: too late, or superseded by the newer fire (a digest
 * since the last one covers their stories anyway, so nothing is lost and nothing is sent twice).
 */
export function planFires(due: Date[], now: Date, graceMs: number, truncated = false): FirePlan {
  const latest = due.at(-1);
  const run = latest && now.getTime() - latest.getTime() <= graceMs ? latest : undefined;
  const minutes = Math.round(graceMs / 60_000);
  const missed = due
    .filter((at) => at !== run)
    .map((at) => ({
      at,
      detail:
        now.getTime() - at.getTime() > graceMs
          ? `not sent: more than the ${minutes}-minute grace period late (no scheduler was running)`
          : `not sent: superseded by the fire at ${run!.toISOString()}`,
    }));
  if (truncated && missed[0]) missed[0].detail += '; earlier missed fires are not recorded';
  return { run, missed };
}
