import cronstrue from 'cronstrue';
import { InputError } from '../errors.ts';

/** The weekdays a weekly preset offers, Monday first, with their cron day numbers. */
export const WEEKDAYS: readonly { value: string; name: string }[] = [
  { value: '1', name: 'Monday' },
  { value: '2', name: 'Tuesday' },
  { value: '3', name: 'Wednesday' },
  { value: '4', name: 'Thursday' },
  { value: '5', name: 'Friday' },
  { value: '6', name: 'Saturday' },
  { value: '0', name: 'Sunday' },
];

/** How an editor says when a digest goes out: a preset, or a cron expression of their own. */
export interface CronChoice {
  mode: 'daily' | 'weekly' | 'cron';
  /** HH:MM (24-hour) for the presets. */
  time?: string | undefined;
  /** A cron day number (0 = Sunday … 6) for the weekly preset. */
  weekday?: string | undefined;
  /** The expression for mode `cron`, passed on as written (the use case validates it). */
  cron?: string | undefined;
}

/** "At 07:00, only on Monday": a cron expression in words (24-hour clock); undefined when cronstrue cannot read it. */
export function describeCron(expression: string): string | undefined {
  try {
    return cronstrue.toString(expression, { use24HourTimeFormat: true, verbose: true, throwExceptionOnParseError: true });
  } catch {
    return undefined;
  }
}

/** The cron expression a choice stands for: "daily at 07:30" → `30 7 * * *`, "weekly on Monday at 07:00" → `0 7 * * 1`. */
export function cronOfChoice(choice: CronChoice): string {
  if (choice.mode === 'cron') {
    const cron = choice.cron?.trim() ?? '';
    if (!cron) throw new InputError('cron: write a cron expression (e.g. "0 7 * * 1"), or choose a preset');
    return cron;
  }
  const match = /^([01][0-9]|2[0-3]):([0-5][0-9])$/.exec(choice.time?.trim() ?? '');
  if (!match) throw new InputError(`time: expected a 24-hour time such as 07:00, got "${(choice.time ?? '').slice(0, 20)}"`);
  const [hour, minute] = [Number(match[1]), Number(match[2])];
  if (choice.mode === 'daily') return `${minute} ${hour} * * *`;
  const day = WEEKDAYS.find((d) => d.value === choice.weekday);
  if (!day) throw new InputError(`weekday: choose a day of the week, got "${(choice.weekday ?? '').slice(0, 20)}"`);
  return `${minute} ${hour} * * ${day.value}`;
}
