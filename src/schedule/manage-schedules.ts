import { type Content, publishedStories } from '../model/content.ts';
import { ConflictError, InputError, NotFoundError } from '../errors.ts';
import type { Schedule, ScheduleFire } from '../model/schedule.ts';
import type { Audience } from '../model/edition.ts';
import { FREQUENCIES } from '../model/subscriber.ts';
import { compileCron, normalizeCron } from './cron-time.ts';
import { parseInstant } from './parse-instant.ts';
import type { NewSchedule, ScheduleRecords } from './schedule-records.ts';
import { canonicalTimeZone, formatInZone, sameTimeZone } from './zone-time.ts';
import type { EditionRecords } from '../edition/edition-records.ts';

const AUDIENCES: readonly Audience[] = ['all', ...FREQUENCIES];

/** What an editor asks for, from CLI flags or an API body: one of the three shapes. */
export interface ScheduleRequest {
  /** One-off: the edition and the instant. */
  edition?: number | string | undefined;
  at?: string | undefined;
  /** Recurring digest: list, cron expression, IANA zone (default: site.yaml's), audience. */
  list?: string | undefined;
  cron?: string | undefined;
  tz?: string | undefined;
  digest?: boolean | undefined;
  audience?: string | undefined;
  /** On publish: each new story to the list's instant subscribers. */
  onPublish?: boolean | undefined;
  /** Add it even when an active schedule already fires the same sends (see findDuplicate). Default false. */
  allowDuplicate?: boolean | undefined;
}

/** A schedule just added, and what the editor should be told about it. */
export interface AddedSchedule {
  schedule: Schedule;
  /** One sentence each, e.g. that a zone was stored under its current IANA name. */
  notes: string[];
}

/** How many upcoming fires two recurring schedules are compared on when their cron texts differ. */
const COMPARED_FIRES = 25;

/** What managing schedules needs. */
export interface ManageDeps {
  schedules: ScheduleRecords;
  editions: EditionRecords;
  content(): Promise<Content>;
  now: Date;
}

const SHAPES = 'choose --edition ID --at ISO, --list L --cron EXPR --tz ZONE --digest, or --list L --on-publish';

/** Validates a request and stores the schedule; refuses with a reason naming the bad value. */
export async function addSchedule(deps: ManageDeps, request: ScheduleRequest): Promise<Schedule> {
  return (await addScheduleWithNotes(deps, request)).schedule;
}

/**
 * Validates a request and stores the schedule, with notes for the editor; refuses with a reason
 * naming the bad value, or (ConflictError) naming the active schedule that already does the same.
 */
export async function addScheduleWithNotes(deps: ManageDeps, request: ScheduleRequest): Promise<AddedSchedule> {
  const content = await deps.content();
  const kind = request.onPublish ? 'on-publish' : request.cron !== undefined ? 'recurring' : request.edition !== undefined || request.at !== undefined ? 'one-off' : undefined;
  if (!kind) throw new InputError(SHAPES);
  if (kind === 'on-publish') {
    refuse(request, ['edition', 'at', 'cron', 'tz', 'digest'], 'an on-publish schedule');
    if (request.audience !== undefined && request.audience !== 'instant') throw new InputError(`an on-publish schedule sends to instant subscribers; daily and weekly ones get the story in their digest (audience "${request.audience}" refused)`);
    const list = knownList(content, request.list);
    const existing = (await deps.schedules.list('active')).find((s) => s.kind === 'on-publish' && s.listSlug === list);
    if (existing) throw new InputError(`list "${list}" already has an on-publish schedule (schedule ${existing.id})`);
    // Stories already out when the schedule is made are not mailed: only newly published ones are.
    const present = publishedStories(content, deps.now).map((s) => s.slug);
    return { schedule: await deps.schedules.insert({ kind, listSlug: list, audience: 'instant' }, deps.now, present), notes: [] };
  }
  const notes: string[] = [];
  let schedule: NewSchedule;
  if (kind === 'recurring') {
    refuse(request, ['edition', 'at'], 'a recurring schedule');
    if (!request.digest) throw new InputError('a recurring schedule sends a digest of the stories since the last one: add --digest');
    const list = knownList(content, request.list);
    const given = request.tz ?? content.site.timezone;
    const timezone = canonicalTimeZone(given);
    if (timezone !== given) notes.push(`time zone ${given} is stored as ${timezone}, its current IANA name`);
    const cron = compileCron(request.cron!, timezone);
    if (!cron.next(deps.now)) throw new InputError(`cron expression "${cron.expression}" never fires again`);
    schedule = { kind, listSlug: list, cron: cron.expression, timezone, audience: audience(request.audience) };
  } else {
    refuse(request, ['cron', 'tz', 'digest', 'audience'], 'a one-off schedule (it sends the edition as made)');
    if (request.edition === undefined || request.at === undefined) throw new InputError('a one-off schedule needs both --edition ID and --at ISO');
    schedule = await oneOff(deps, request);
  }
  const duplicate = request.allowDuplicate ? undefined : findDuplicate(await deps.schedules.list('active'), schedule, deps.now);
  if (duplicate) {
    throw new ConflictError(
      `schedule ${duplicate.id} already does this (${duplicate.kind} to ${duplicate.listSlug}: ${describeSchedule(duplicate)}); cancel it, or add this one anyway with --allow-duplicate (API: "allow_duplicate": true)`,
    );
  }
  return { schedule: await deps.schedules.insert(schedule, deps.now), notes };
}

/**
 * The active schedule that already fires the sends `candidate` would: the same list and kind, audiences
 * that overlap (equal, or one is all), and the same fire times. For a one-off that is the same edition
 * at the same instant; for a recurring digest, the same cron (same text, or the same next fires) in the
 * same zone, aliases counting as one (Europe/Kiev = Europe/Kyiv).
 */
export function findDuplicate(active: readonly Schedule[], candidate: NewSchedule, now: Date): Schedule | undefined {
  const overlaps = (a: Audience, b: Audience) => a === b || a === 'all' || b === 'all';
  const peers = active.filter((s) => s.status === 'active' && s.kind === candidate.kind && s.listSlug === candidate.listSlug && overlaps(s.audience, candidate.audience));
  if (candidate.kind === 'one-off') {
    return peers.find((s) => s.editionId === candidate.editionId && s.at !== null && Date.parse(s.at) === candidate.at?.getTime());
  }
  if (candidate.kind !== 'recurring' || !candidate.cron || !candidate.timezone) return undefined;
  const { cron, timezone } = candidate;
  let fires: string | undefined;
  const firesOf = (expression: string) =>
    compileCron(expression, timezone).upcoming(now, COMPARED_FIRES).map((d) => d.getTime()).join(',');
  return peers.find((s) => {
    if (!s.cron || !s.timezone || !sameTimeZone(s.timezone, timezone)) return false;
    if (normalizeCron(s.cron) === normalizeCron(cron)) return true;
    fires ??= firesOf(cron);
    try {
      return firesOf(s.cron) === fires;
    } catch {
      return false;
    }
  });
}

async function oneOff(deps: ManageDeps, request: ScheduleRequest): Promise<NewSchedule> {
  const id = Number(request.edition);
  if (!Number.isInteger(id) || id <= 0) throw new InputError(`expected an edition id (a positive whole number), got "${String(request.edition).slice(0, 40)}"`);
  const edition = await deps.editions.find(id);
  if (!edition) throw new NotFoundError(`no edition ${id}`);
  if (edition.status !== 'draft') throw new InputError(`edition ${id} is already ${edition.status === 'sent' ? 'sent' : 'being sent'}: a schedule would send nothing`);
  if (request.list !== undefined && request.list !== edition.listSlug) throw new InputError(`edition ${id} is for list "${edition.listSlug}", not "${request.list}"`);
  const at = parseInstant(request.at!);
  if (at.getTime() <= deps.now.getTime()) {
    throw new InputError(`${request.at} is in the past (now is ${deps.now.toISOString()}): a one-off send must be scheduled ahead`);
  }
  // The same edition at the same instant is a duplicate (refused unless allowed); at another instant, a conflict.
  const taken = (await deps.schedules.list('active')).find((s) => s.kind === 'one-off' && s.editionId === id && Date.parse(s.at!) !== at.getTime());
  if (taken) throw new InputError(`edition ${id} is already scheduled (schedule ${taken.id}, at ${taken.at}); cancel that one first`);
  // The zone it was asked in (`…[Europe/Kyiv]`), kept so the editor sees the time as they chose it.
  const zone = /\[([^\]]+)\]\s*$/.exec(request.at!)?.[1];
  return { kind: 'one-off', listSlug: edition.listSlug, editionId: id, at, audience: edition.audience, timezone: zone ? canonicalTimeZone(zone) : null };
}

/** Cancels an active schedule; it stops firing in every scheduler process within seconds. */
export async function cancelSchedule(deps: { schedules: ScheduleRecords; now: Date }, id: number): Promise<Schedule> {
  const schedule = await deps.schedules.find(id);
  if (!schedule) throw new NotFoundError(`no schedule ${id}`);
  if (schedule.status !== 'active') throw new InputError(`schedule ${id} is already ${schedule.status}`);
  await deps.schedules.setStatus(id, 'cancelled', deps.now);
  return (await deps.schedules.find(id))!;
}

/** An upcoming fire, in the schedule's zone and in UTC. */
export interface UpcomingFire {
  at: string;
  local: string;
  timezone: string;
}

/** The next `count` fires of a schedule after `now` (none for on-publish, cancelled or done ones). */
export function upcomingFires(schedule: Schedule, now: Date, count: number): UpcomingFire[] {
  if (schedule.status !== 'active') return [];
  if (schedule.kind === 'one-off') {
    const zone = schedule.timezone ?? 'UTC';
    return [{ at: schedule.at!, local: formatInZone(new Date(schedule.at!), zone), timezone: zone }];
  }
  if (schedule.kind !== 'recurring') return [];
  const zone = schedule.timezone!;
  return compileCron(schedule.cron!, zone)
    .upcoming(now, count)
    .map((d) => ({ at: d.toISOString(), local: formatInZone(d, zone), timezone: zone }));
}

/** A schedule as shown by `schedule list --json` and the admin API: stable field names. */
export interface ScheduleView {
  id: number;
  kind: Schedule['kind'];
  list: string;
  edition_id: number | null;
  at: string | null;
  cron: string | null;
  timezone: string | null;
  audience: Audience;
  status: Schedule['status'];
  created_at: string;
  updated_at: string;
  next_fire_at: string | null;
  /** The next fire in the schedule's zone (for a one-off, the zone it was given in, else UTC) and in UTC; null when it fires no more. */
  next_fire: UpcomingFire | null;
  last_fire: { fire_at: string; status: string; edition_id: number | null; detail: string | null } | null;
  /** On-publish: how many stories it has sent. */
  stories_sent: number | null;
}

/** A fire as scripts see it (`schedule show --json`, the admin API): stable field names. */
export interface FireJson {
  fire_at: string;
  status: ScheduleFire['status'];
  attempts: number;
  next_attempt_at: string | null;
  edition_id: number | null;
  detail: string | null;
}

/** The stable JSON shape of a fire. */
export function fireJson(fire: ScheduleFire): FireJson {
  return { fire_at: fire.fireAt, status: fire.status, attempts: fire.attempts, next_attempt_at: fire.nextAttemptAt, edition_id: fire.editionId, detail: fire.detail };
}

/** Builds the view of a schedule, with its next fire and its last recorded fire. */
export async function scheduleView(schedules: ScheduleRecords, schedule: Schedule, now: Date): Promise<ScheduleView> {
  const [last] = await schedules.fires(schedule.id, 1);
  const next = upcomingFires(schedule, now, 1)[0] ?? null;
  return {
    id: schedule.id,
    kind: schedule.kind,
    list: schedule.listSlug,
    edition_id: schedule.editionId,
    at: schedule.at,
    cron: schedule.cron,
    timezone: schedule.timezone,
    audience: schedule.audience,
    status: schedule.status,
    created_at: schedule.createdAt,
    updated_at: schedule.updatedAt,
    next_fire_at: next?.at ?? null,
    next_fire: next,
    last_fire: last ? { fire_at: last.fireAt, status: last.status, edition_id: last.editionId, detail: last.detail } : null,
    stories_sent: schedule.kind === 'on-publish' ? await schedules.sentStoryCount(schedule.id) : null,
  };
}

/** One line saying what a schedule does. */
export function describeSchedule(s: Pick<Schedule, 'kind' | 'editionId' | 'at' | 'cron' | 'timezone' | 'listSlug' | 'audience'>): string {
  if (s.kind === 'one-off') return `edition ${s.editionId} at ${s.at}`;
  if (s.kind === 'recurring') return `digest "${s.cron}" ${s.timezone}${s.audience === 'all' ? '' : ` to ${s.audience} subscribers`}`;
  return 'each newly published story to instant subscribers';
}

/** Parses a schedule id argument. */
export function scheduleId(value: string | number): number {
  const id = Number(value);
  if (!Number.isInteger(id) || id <= 0) throw new InputError(`expected a schedule id (a positive whole number), got "${String(value).slice(0, 40)}"`);
  return id;
}

function knownList(content: Content, slug: string | undefined): string {
  const known = content.site.lists.map((l) => l.slug);
  if (!slug) throw new InputError(`choose a list with --list (known: ${known.join(', ')})`);
  if (!known.includes(slug)) throw new InputError(`unknown list "${slug.slice(0, 60)}" (known: ${known.join(', ')})`);
  return slug;
}

function audience(value: string | undefined): Audience {
  if (value === undefined) return 'all';
  if (!AUDIENCES.includes(value as Audience)) throw new InputError(`audience: expected one of ${AUDIENCES.join(', ')}, got "${value.slice(0, 40)}"`);
  return value as Audience;
}

function refuse(request: ScheduleRequest, fields: (keyof ScheduleRequest)[], what: string): void {
  const given = fields.filter((f) => request[f] !== undefined && request[f] !== false);
  if (given.length > 0) throw new InputError(`${given.map(flag).join(', ')} ${given.length === 1 ? 'does' : 'do'} not apply to ${what}; ${SHAPES}`);
}

function flag(field: keyof ScheduleRequest): string {
  return field === 'onPublish' ? '--on-publish' : `--${field}`;
}
