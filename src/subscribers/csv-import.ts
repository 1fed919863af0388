import type { Readable } from 'node:stream';
import { CsvError, Parser } from 'csv-parse';
import type { MailingList } from '../model/content.ts';
import { InputError } from '../errors.ts';
import { FREQUENCIES, type Frequency, type ListChoice, type NewSubscriber, type SubscriberStatus } from '../model/subscriber.ts';
import { parseDisplayName } from './display-name.ts';
import { parseEmailAddress } from './email-address.ts';

/** What an import needs from the store; SubscribersRepo provides it. */
export interface ImportRepo {
  insertMany(subscribers: NewSubscriber[], now: Date): Promise<number>;
  /** The keys among `emailKeys` on the suppression list: one lookup per batch, never one per row. */
  suppressedAmong(emailKeys: string[]): Promise<Set<string>>;
}

/** How to import a CSV file of subscribers. */
export interface ImportOptions {
  repo: ImportRepo;
  /** The site's lists (site.yaml). */
  lists: MailingList[];
  /** List slug for rows that name none; default: the first list of the site. */
  list?: string | undefined;
  /** True makes new subscribers active (the operator asserts consent); false leaves them pending. */
  confirmed: boolean;
  /** Frequency for rows that name none; default: instant. */
  frequency?: Frequency | undefined;
  now: Date;
  source: 'import';
  /** Rows per database batch, and rows between progress reports; default 1000. */
  batchSize?: number;
  /** Called every batch of rows in each pass: first while the file is checked, then while it is stored. */
  onProgress?: (progress: ImportProgress) => void;
}

/** Opens the CSV from its start. Called once per pass, so it must give the same bytes each time: a file, not a request. */
export type OpenCsv = () => Readable;

/** How far an import is: `validate` reads the whole file and writes nothing, then `insert` reads it again and stores it. */
export interface ImportProgress {
  phase: 'validate' | 'insert';
  /** Data rows read so far in this pass. */
  rows: number;
  /** Bytes read so far in this pass. */
  bytes: number;
}

/** A row that was not imported, by its line in the file (the header is line 1). */
export interface InvalidRow {
  line: number;
  reason: string;
}

/** What an import did. Every data row is counted once: imported + existing + suppressed + invalidCount = rows. */
export interface ImportSummary {
  /** Data rows read (header and empty lines not counted). */
  rows: number;
  /** New subscribers added. */
  imported: number;
  /** Addresses already subscribed: left unchanged. */
  existing: number;
  /** Addresses on the suppression list (bounced, complained, removed by hand): skipped. */
  suppressed: number;
  /** How many rows were invalid. */
  invalidCount: number;
  /** The first MAX_INVALID_DETAILS invalid rows, with line and reason. */
  invalid: InvalidRow[];
}

/** A longer row is a broken file (a quote never closed), not a subscriber: the whole file is refused. */
export const MAX_ROW_BYTES = 64 * 1024;

/** At most this many invalid rows are kept with their reason (all are counted). */
export const MAX_INVALID_DETAILS = 1000;

/** The CSV itself is broken (an unclosed quote, binary data…): names the line. Found before anything is stored. */
export class MalformedCsvError extends InputError {
  readonly line: number;

  constructor(line: number, problem: string, options?: { cause?: unknown }) {
    super(`malformed CSV at line ${line}: ${problem} (nothing was imported)`);
    if (options?.cause) this.cause = options.cause;
    this.line = line;
  }
}

const STATUSES: readonly SubscriberStatus[] = ['pending', 'active', 'unsubscribed', 'bounced', 'complained'];

/** Where each known column sits in a row. */
interface Columns {
  email: number;
  name: number | undefined;
  lists: number | undefined;
  frequency: number | undefined;
  status: number | undefined;
  count: number;
}

const HEADER_NAMES: Record<Exclude<keyof Columns, 'count'>, string[]> = {
  email: ['email', 'email address', 'e-mail'],
  name: ['name', 'full name'],
  lists: ['lists', 'list'],
  frequency: ['frequency'],
  status: ['status'],
};

/**
 * Imports a CSV of subscribers in two streamed passes, so memory stays flat whatever the size. The first
 * pass checks every row and writes nothing: a broken file (unclosed quote, overlong row, binary data) is
 * refused whole, naming the line. The second stores the good rows in batches (not one transaction, which
 * would hold SQLite's write lock for the whole import); bad rows are reported, not fatal.
 * A header row with an `email` column is required; `name`, `lists` (slugs, or slug:frequency, separated
 * by ; or ,), `frequency` and `status` are optional, other columns are ignored. A `status` of pending,
 * unsubscribed, bounced or complained is kept (so a re-imported export mails nobody who did not agree);
 * any other row becomes active when `confirmed`, else pending. No email is sent. Importing a file twice
 * changes nothing.
 */
export async function importSubscribersCsv(open: OpenCsv, options: ImportOptions): Promise<ImportSummary> {
  const defaults = importDefaults(options);
  const checked = await validatePass(open(), defaults, options);
  return insertPass(open(), checked, defaults, options);
}

/** What the first pass learnt: the header, the refused rows, and which line of each address is kept. */
interface CheckedFile {
  columns: Columns;
  summary: ImportSummary;
  /**
   * The first line of each good address: later copies are reported as duplicates, and the second pass
   * stores a row only on its address's first line. The one cost that grows with the file, about 100 bytes
   * an address (~100 MB for a million rows), as the single pass had before.
   */
  firstLines: Map<string, number>;
}

/** Reads the whole file, checking every row; throws on a broken file, stores nothing. */
async function validatePass(input: Readable, defaults: RowDefaults, options: ImportOptions): Promise<CheckedFile> {
  const summary: ImportSummary = { rows: 0, imported: 0, existing: 0, suppressed: 0, invalidCount: 0, invalid: [] };
  const firstLines = new Map<string, number>();
  const report = progressReporter('validate', options);
  let columns: Columns | undefined;
  let bytes = 0;
  for await (const item of readRecords(input)) {
    if ('problem' in item) throw new MalformedCsvError(item.line, csvProblem(item.problem), { cause: item.problem });
    const line = startLine(item);
    const junk = notText(item.record);
    if (junk) throw new MalformedCsvError(line, junk);
    bytes = item.bytesRead;
    if (!columns) {
      columns = readHeader(item.record, line);
      continue;
    }
    summary.rows += 1;
    const row = parseRow(item.record, columns, defaults);
    if ('error' in row) addInvalid(summary, line, row.error);
    else if (firstLines.has(row.emailKey)) addInvalid(summary, line, `duplicate: ${row.email} is already on line ${firstLines.get(row.emailKey)}`);
    else firstLines.set(row.emailKey, line);
    report(summary.rows, bytes);
  }
  if (!columns) throw new InputError('the file is empty: expected a header row with an "email" column');
  report(summary.rows, bytes, true);
  return { columns, summary, firstLines };
}

/** Reads the file again and stores the rows the first pass kept, a batch at a time. */
async function insertPass(input: Readable, checked: CheckedFile, defaults: RowDefaults, options: ImportOptions): Promise<ImportSummary> {
  const { columns, summary, firstLines } = checked;
  const batchSize = options.batchSize ?? 1000;
  const report = progressReporter('insert', options);
  let header = true;
  let rows = 0;
  let bytes = 0;
  let batch: NewSubscriber[] = [];
  for await (const item of readRecords(input)) {
    if ('problem' in item) throw fileChanged(summary);
    bytes = item.bytesRead;
    if (header) {
      header = false;
      continue;
    }
    rows += 1;
    const row = parseRow(item.record, columns, defaults);
    // Rows refused by the first pass (invalid, or a later copy of an address) are already in the summary.
    if ('error' in row || firstLines.get(row.emailKey) !== startLine(item)) continue;
    batch.push(row);
    if (batch.length >= batchSize) {
      await insertBatch(options, batch, summary);
      batch = [];
      report(rows, bytes, true);
    }
  }
  await insertBatch(options, batch, summary);
  if (rows !== summary.rows) throw fileChanged(summary);
  report(rows, bytes, true);
  return summary;
}

/** The file read by the second pass is not the one the first pass checked (edited meanwhile). */
function fileChanged(summary: ImportSummary): InputError {
  return new InputError(
    `the file changed while it was being imported (${summary.imported} rows were imported): import it again, rows already imported are skipped`,
  );
}

/** Calls onProgress for one pass: on every `batchSize`-th row unless forced, never twice for the same count. */
function progressReporter(phase: ImportProgress['phase'], options: ImportOptions) {
  const every = options.batchSize ?? 1000;
  let reported = -1;
  return (rows: number, bytes: number, force = false): void => {
    if (rows === reported || (!force && rows % every !== 0)) return;
    reported = rows;
    options.onProgress?.({ phase, rows, bytes });
  };
}

/** The records of a CSV stream, then at most one problem; the input is closed when the reader stops early. */
async function* readRecords(input: Readable): AsyncGenerator<ParsedItem> {
  const parser = new TaggingParser({
    bom: true,
    relax_column_count: true,
    // Blank lines and rows of empty cells (",,," from spreadsheets) are not subscribers.
    skip_empty_lines: true,
    skip_records_with_empty_values: true,
    max_record_size: MAX_ROW_BYTES,
  });
  input.on('error', (error) => parser.destroy(error));
  try {
    yield* input.pipe(parser) as AsyncIterable<ParsedItem>;
  } finally {
    input.unpipe(parser);
    if (!input.readableEnded) input.destroy();
  }
}

/** A parsed record and where it ends in the file. */
interface TaggedRecord {
  record: string[];
  endLine: number;
  bytesRead: number;
}

/** What the parser yields: records, then at most one problem that ends the file. */
type ParsedItem = TaggedRecord | { problem: CsvError; line: number };

/**
 * csv-parse's stream, changed in two ways. Each record carries the line it ends on, read from the parser's
 * counters as it is pushed (its `info` option copies every counter for every record). A malformed file
 * ends with a problem item after the good records instead of an error that would drop those still queued.
 */
class TaggingParser extends Parser {
  private lastLine = 0;
  private failed = false;

  override push(record: unknown, encoding?: BufferEncoding): boolean {
    if (record === null) return super.push(null, encoding);
    this.lastLine = this.info.lines;
    const tagged: TaggedRecord = { record: record as string[], endLine: this.info.lines, bytesRead: this.info.bytes };
    return super.push(tagged, encoding);
  }

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.failed) return callback();
    super._transform(chunk, encoding, (error) => this.settle(error, callback));
  }

  override _flush(callback: (error?: Error | null) => void): void {
    if (this.failed) return callback();
    super._flush((error) => this.settle(error, callback));
  }

  private settle(error: Error | null | undefined, callback: (error?: Error | null) => void): void {
    if (!(error instanceof CsvError)) return callback(error);
    this.failed = true;
    const problem: ParsedItem = { problem: error, line: csvErrorLine(error, this.lastLine) };
    super.push(problem);
    callback();
  }
}

/** What rows that do not say get, and the lists of the site. */
interface RowDefaults {
  lists: MailingList[];
  choice: ListChoice;
  status: SubscriberStatus;
  source: string;
  /** Parsed `lists` cells by text and frequency: a file repeats a handful of values thousands of times. */
  listCache: Map<string, ListChoice[] | { error: string }>;
}

/** Defaults for rows that do not say: checked once, before any row is read. */
function importDefaults(options: ImportOptions): RowDefaults {
  const known = options.lists;
  if (known.length === 0) throw new InputError('site.yaml has no lists to import subscribers into');
  const slug = options.list ?? known[0]!.slug;
  if (!known.some((l) => l.slug === slug)) {
    throw new InputError(`--list: unknown list "${slug}" (known: ${known.map((l) => l.slug).join(', ')})`);
  }
  const frequency = options.frequency ?? 'instant';
  if (!FREQUENCIES.includes(frequency)) throw new InputError(`--frequency: expected one of ${FREQUENCIES.join(', ')}, got "${frequency}"`);
  return { lists: known, choice: { slug, frequency }, status: options.confirmed ? 'active' : 'pending', source: options.source, listCache: new Map() };
}

async function insertBatch(options: ImportOptions, batch: NewSubscriber[], summary: ImportSummary): Promise<void> {
  if (batch.length === 0) return;
  const { repo } = options;
  const suppressed = await repo.suppressedAmong(batch.map((s) => s.emailKey));
  const fresh = batch.filter((s) => !suppressed.has(s.emailKey));
  const inserted = await repo.insertMany(fresh, options.now);
  summary.imported += inserted;
  summary.existing += fresh.length - inserted;
  summary.suppressed += batch.length - fresh.length;
}

function readHeader(record: string[], line: number): Columns {
  const names = record.map((name) => name.trim().toLowerCase());
  const find = (key: keyof typeof HEADER_NAMES): number | undefined => {
    const found = names.flatMap((name, index) => (HEADER_NAMES[key].includes(name) ? [index] : []));
    if (found.length > 1) throw new InputError(`line ${line}: the header has more than one "${key}" column`);
    return found[0];
  };
  const email = find('email');
  if (email === undefined) {
    throw new InputError(`line ${line}: the header row needs an "email" column (found: ${names.map((n) => `"${n.slice(0, 40)}"`).join(', ')})`);
  }
  return { email, name: find('name'), lists: find('lists'), frequency: find('frequency'), status: find('status'), count: record.length };
}

function parseRow(record: string[], columns: Columns, defaults: RowDefaults): NewSubscriber | { error: string } {
  if (record.length > columns.count) {
    return { error: `${record.length} values but the header has ${columns.count} columns (quote values that contain commas)` };
  }
  const field = (index: number | undefined) => (index === undefined ? '' : unescapeFormula(record[index] ?? '').trim());
  const email = parseEmailAddress(field(columns.email));
  if ('error' in email) return email;
  const name = columns.name === undefined ? null : parseDisplayName(unescapeFormula(record[columns.name] ?? ''));
  if (name !== null && typeof name === 'object') return name;
  const status = parseStatus(field(columns.status), defaults.status);
  if (typeof status !== 'string') return status;
  const frequency = field(columns.frequency) || defaults.choice.frequency;
  if (!FREQUENCIES.includes(frequency as Frequency)) return { error: frequencyError(frequency) };
  // People who left stay without lists, as unsubscribing leaves them.
  const lists = status === 'active' || status === 'pending' ? cachedLists(field(columns.lists), defaults, frequency as Frequency) : [];
  if (!Array.isArray(lists)) return lists;
  return { email: email.address, emailKey: email.key, name, status, source: defaults.source, consentIp: null, lists };
}

function parseStatus(value: string, fallback: SubscriberStatus): SubscriberStatus | { error: string } {
  const status = value.toLowerCase();
  // `active` in a file is only a claim: the operator's `confirmed` decides. `pending` stays pending.
  if (status === '' || status === 'active') return fallback;
  if (STATUSES.includes(status as SubscriberStatus)) return status as SubscriberStatus;
  return { error: `status: expected one of ${STATUSES.join(', ')}, got "${value.slice(0, 40)}"` };
}

function cachedLists(value: string, defaults: RowDefaults, frequency: Frequency): ListChoice[] | { error: string } {
  const key = `${frequency}|${value}`;
  let lists = defaults.listCache.get(key);
  if (!lists) {
    lists = parseLists(value, defaults, frequency);
    if (defaults.listCache.size >= 1000) defaults.listCache.clear();
    defaults.listCache.set(key, lists);
  }
  return lists;
}

function parseLists(value: string, defaults: RowDefaults, frequency: Frequency): ListChoice[] | { error: string } {
  if (value === '') return [{ slug: defaults.choice.slug, frequency }];
  const choices = new Map<string, Frequency>();
  for (const entry of value.split(/[;,]/).map((e) => e.trim()).filter(Boolean)) {
    const [slug = '', pace = ''] = entry.split(':').map((part) => part.trim());
    if (!defaults.lists.some((l) => l.slug === slug)) {
      return { error: `lists: unknown list "${slug.slice(0, 60)}" (known: ${defaults.lists.map((l) => l.slug).join(', ')})` };
    }
    if (pace !== '' && !FREQUENCIES.includes(pace as Frequency)) return { error: frequencyError(pace) };
    choices.set(slug, (pace || frequency) as Frequency);
  }
  if (choices.size === 0) return [{ slug: defaults.choice.slug, frequency }];
  return [...choices].map(([slug, pace]) => ({ slug, frequency: pace }));
}

function frequencyError(value: string): string {
  return `frequency: expected one of ${FREQUENCIES.join(', ')}, got "${value.slice(0, 40)}"`;
}

/** Undoes the `'` the export puts before values a spreadsheet would run as a formula. */
function unescapeFormula(value: string): string {
  return /^'[=+\-@\t\r]/.test(value) ? value.slice(1) : value;
}

function addInvalid(summary: ImportSummary, line: number, reason: string): void {
  summary.invalidCount += 1;
  if (summary.invalid.length < MAX_INVALID_DETAILS) summary.invalid.push({ line, reason });
}

// A record's line is where it starts: the parser reports where it ends, after any line breaks inside quotes.
function startLine({ record, endLine }: TaggedRecord): number {
  let breaks = 0;
  for (const value of record) {
    for (let i = value.indexOf('\n'); i !== -1; i = value.indexOf('\n', i + 1)) breaks += 1;
  }
  return endLine - breaks;
}

/** Why a record cannot come from a UTF-8 text file, if it cannot: checked on every record, since junk may start anywhere. */
function notText(record: string[]): string | undefined {
  for (const value of record) {
    if (value.includes('\u0000')) return 'a NUL byte: this is binary data or UTF-16 text, not a UTF-8 CSV file';
    // The decoder puts U+FFFD for bytes that are not UTF-8: importing them would store garbled names.
    if (value.includes('\ufffd')) return 'bytes that are not UTF-8 text (save the file as "CSV UTF-8")';
  }
  return undefined;
}

function csvErrorLine(error: CsvError, lastRecordEndLine: number): number {
  // An unclosed quote is noticed at the end of the file, an overlong row at its end: either row starts after the last good one.
  if (error.code === 'CSV_QUOTE_NOT_CLOSED' || error.code === 'CSV_MAX_RECORD_SIZE') return lastRecordEndLine + 1;
  return typeof error.lines === 'number' ? error.lines : lastRecordEndLine + 1;
}

function csvProblem(error: CsvError): string {
  switch (error.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'a quoted value is never closed';
    case 'INVALID_OPENING_QUOTE':
      return 'a quote in the middle of an unquoted value (quote the whole value and double the quotes inside it)';
    case 'CSV_MAX_RECORD_SIZE':
      return `a row longer than ${MAX_ROW_BYTES / 1024} KB (is a quote never closed?)`;
    case 'CSV_INVALID_CLOSING_QUOTE':
      return 'a character right after a closing quote (double the quotes inside a quoted value)';
    default:
      return error.message;
  }
}
