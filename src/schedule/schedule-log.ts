import type { ScheduleLog } from './fire-schedule.ts';

/** A scheduler log that writes one line per event to stderr. */
export const stderrScheduleLog: ScheduleLog = {
  info: (message) => process.stderr.write(`scheduler: ${message}\n`),
  warn: (message) => process.stderr.write(`scheduler: warning: ${message}\n`),
  error: (message) => process.stderr.write(`scheduler: error: ${message}\n`),
};
