import type { Command } from 'commander';
import { InputError } from '../../errors.ts';
import { describeSchedule, fireJson, upcomingFires, type ScheduleView, type UpcomingFire } from '../../schedule/manage-schedules.ts';
import { stderrScheduleLog } from '../../schedule/schedule-log.ts';
import type { AppFactory } from '../main.ts';
import { withApp } from '../with-app.ts';

interface AddFlags {
  edition?: string;
  at?: string;
  list?: string;
  cron?: string;
  tz?: string;
  digest?: boolean;
  audience?: string;
  onPublish?: boolean;
  allowDuplicate?: boolean;
}

/** `gazette schedule add | list | cancel | next | check`. */
export function registerSchedule(program: Command, makeApp: AppFactory): void {
  const schedule = program.command('schedule').description('schedule sends: one-off, recurring digests, each story on publish');

  schedule
    .command('add')
    .description('add a schedule: --edition ID --at ISO | --list L --cron EXPR --tz ZONE --digest | --list L --on-publish; prints its id')
    .option('--edition <id>', 'one-off: the edition to send')
    .option('--at <iso>', 'one-off: when, with an offset or zone (2026-03-30T07:00+03:00, …Z, 2026-03-30T07:00[Europe/Kyiv])')
    .option('--list <slug>', 'recurring or on-publish: the list')
    .option('--cron <expr>', 'recurring: cron expression, 5 fields (or 6 with seconds first), e.g. "0 7 * * 1"')
    .option('--tz <zone>', 'recurring: IANA zone the cron times are in (default: site.yaml timezone)')
    .option('--digest', 'recurring: each fire sends a digest of the stories since the list\'s last one')
    .option('--audience <who>', 'recurring: all (default), instant, daily or weekly subscribers')
    .option('--on-publish', 'each newly published story to the list\'s instant subscribers')
    .option('--allow-duplicate', 'add it even when an active schedule already sends the same (same list and kind, same fire times)')
    .action(
      withApp(makeApp, async (app, flags: AddFlags) => {
        const { schedule: row, view, notes } = await app.schedules.add(flags);
        const next = view.next_fire ? `; next fire ${both(view.next_fire)}` : '';
        for (const note of notes) process.stderr.write(`note: ${note}\n`);
        process.stderr.write(`schedule ${row.id}: ${row.kind} to ${row.listSlug}: ${describeSchedule(row)}${next}\n`);
        process.stdout.write(`${row.id}\n`);
      }),
    );

  schedule
    .command('list')
    .description('schedules, with their next fire (in the schedule\'s zone and in UTC) and their last')
    .option('--json', 'machine-readable output')
    .action(
      withApp(makeApp, async (app, flags: { json?: boolean }) => {
        const views = await app.schedules.list();
        process.stdout.write(flags.json ? `${JSON.stringify(views, null, 2)}\n` : formatList(views));
      }),
    );

  schedule
    .command('show')
    .description('one schedule: what it does, its next fires, and the history of its fires with their reasons')
    .argument('<id>', 'schedule id')
    .option('--json', 'machine-readable output')
    .action(
      withApp(makeApp, async (app, id: string, flags: { json?: boolean }) => {
        const { schedule: row, view, fires, stories } = await app.schedules.show(id);
        if (flags.json) {
          const history = fires.map(fireJson);
          const sent = stories.map((story) => ({ story: story.slug, edition_id: story.editionId, at: story.at }));
          process.stdout.write(`${JSON.stringify({ ...view, fires: history, ...(row.kind === 'on-publish' ? { stories: sent } : {}) }, null, 2)}\n`);
          return;
        }
        const lines = [
          `schedule ${row.id} (${row.status}): ${row.kind} to ${row.listSlug}: ${describeSchedule(row)}`,
          ...upcomingFires(row, app.now(), 3).map((fire) => `  next ${both(fire)}`),
          ...(row.kind === 'on-publish'
            ? [stories.length === 0 ? '  no story sent yet' : '  stories sent, newest first:', ...stories.map((story) => `    ${story.at}  ${story.slug}  edition ${story.editionId}`)]
            : [fires.length === 0 ? '  no fires yet' : '  fires, newest first:']),
          ...fires.map((f) => {
            const retry = f.status === 'retrying' && f.nextAttemptAt ? ` (next try ${f.nextAttemptAt})` : '';
            const detail = f.detail ? `\n      ${f.detail.replace(/\n/g, '\n      ')}` : '';
            return `    ${f.fireAt}  ${f.status}${retry}${f.editionId ? `  edition ${f.editionId}` : ''}${detail}`;
          }),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );

  schedule
    .command('cancel')
    .description('cancel a schedule: it stops firing in every running scheduler within seconds')
    .argument('<id>')
    .action(
      withApp(makeApp, async (app, id: string) => {
        const { schedule: row } = await app.schedules.cancel(id);
        process.stderr.write(`schedule ${row.id} cancelled (${describeSchedule(row)})\n`);
      }),
    );

  schedule
    .command('next')
    .description('upcoming fire times, in the schedule\'s zone and in UTC (all active schedules, or one)')
    .argument('[id]')
    .option('--count <n>', 'how many fires per schedule', '5')
    .option('--json', 'machine-readable output')
    .action(
      withApp(makeApp, async (app, id: string | undefined, flags: { count: string; json?: boolean }) => {
        const count = Number(flags.count);
        if (!Number.isInteger(count) || count < 1 || count > 1000) throw new InputError(`--count: expected a whole number from 1 to 1000, got "${flags.count}"`);
        const entries = await app.schedules.next(id, count);
        const result = entries.map(({ schedule: row, fires }) => ({ id: row.id, kind: row.kind, status: row.status, fires }));
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(id === undefined ? result : result[0], null, 2)}\n`);
          return;
        }
        for (const { schedule: row, fires } of entries) {
          process.stdout.write(`schedule ${row.id} (${row.kind}, ${row.listSlug}): ${describeSchedule(row)}\n`);
          if (row.status !== 'active') process.stdout.write(`  ${row.status}: no more fires\n`);
          else if (row.kind === 'on-publish') process.stdout.write('  fires when a story is published (checked every 30 s by the scheduler)\n');
          for (const fire of fires) process.stdout.write(`  ${both(fire)}\n`);
        }
      }),
    );

  schedule
    .command('check')
    .description('send newly published stories for every on-publish schedule now (the scheduler also checks every 30 s)')
    .action(
      withApp(makeApp, async (app) => {
        const { checked, sent } = await app.schedules.checkOnPublish();
        process.stderr.write(`${checked} on-publish ${checked === 1 ? 'schedule' : 'schedules'} checked; ${sent} ${sent === 1 ? 'story' : 'stories'} sent\n`);
      }),
    );
}

/** `gazette scheduler`: runs the schedules until SIGTERM/SIGINT. */
export function registerScheduler(program: Command, makeApp: AppFactory): void {
  program
    .command('scheduler')
    .description('run the scheduler alone: fires one-off, recurring and on-publish schedules until stopped')
    .action(async () => {
      const app = makeApp();
      try {
        const running = await app.schedules.start({ log: stderrScheduleLog });
        process.stderr.write(`scheduler: running ${running.scheduler.registered().length} active schedules (grace ${Math.round(app.config.scheduleGraceMs / 60_000)} min)\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', resolve);
          process.once('SIGINT', resolve);
        });
        process.stderr.write('scheduler: stopping after the fires in progress\n');
        await running.stop();
      } finally {
        await app.close();
      }
    });
}

function both(fire: UpcomingFire): string {
  return fire.timezone === 'UTC' ? fire.at : `${fire.local} ${fire.timezone}  =  ${fire.at}`;
}

function formatList(views: ScheduleView[]): string {
  if (views.length === 0) return 'no schedules (add one with gazette schedule add)\n';
  const lines = views.map((v) => {
    // A fire that went wrong says why here, on its schedule's line; `schedule show ID` has the history.
    const why = v.last_fire && ['failed', 'retrying', 'missed', 'skipped'].includes(v.last_fire.status) && v.last_fire.detail ? ` (${v.last_fire.detail.split('\n')[0]})` : '';
    const last = v.last_fire ? `last ${v.last_fire.fire_at} ${v.last_fire.status}${why}` : v.stories_sent !== null ? `${v.stories_sent} sent` : 'never fired';
    const next = v.next_fire ? `next ${both(v.next_fire)}` : '';
    return `${String(v.id).padStart(4)}  ${v.status.padEnd(9)} ${v.kind.padEnd(10)} ${v.list.padEnd(12)} ${describeSchedule({ ...v, listSlug: v.list, editionId: v.edition_id })}  ${[next, last].filter(Boolean).join(' · ')}`;
  });
  return `${lines.join('\n')}\n`;
}
