import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MailingList } from '../../src/model/content.ts';
import { InputError } from '../../src/errors.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { SubscribersRepo } from '../../src/store/subscribers-repo.ts';
import type { NewSubscriber } from '../../src/model/subscriber.ts';
import { exportSubscribersCsv } from '../../src/subscribers/csv-export.ts';
import {
  importSubscribersCsv,
  MalformedCsvError,
  MAX_INVALID_DETAILS,
  type ImportOptions,
  type ImportProgress,
  type ImportRepo,
} from '../../src/subscribers/csv-import.ts';

const LISTS: MailingList[] = [
  { slug: 'dispatch', name: 'The Dispatch', description: '' },
  { slug: 'weekly', name: 'Weekly Briefing', description: '' },
];
const now = new Date('2025-07-04T09:00:00.000Z');

let dataDir: string;
let store: Store;
let repo: SubscribersRepo;

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-import-'));
  store = await openStore({ databaseUrl: undefined, dataDir });
  repo = new SubscribersRepo(store.db);
});
afterEach(async () => {
  await store.close();
  await rm(dataDir, { recursive: true, force: true });
});

function run(csv: string | string[], options: Partial<ImportOptions> = {}) {
  const chunks = Array.isArray(csv) ? csv : [csv];
  // A fresh stream each time: the import reads its input twice (check, then store).
  return importSubscribersCsv(() => Readable.from(chunks.map((c) => Buffer.from(c))), { repo, lists: LISTS, confirmed: false, now, source: 'import', ...options });
}

async function exportText(target: SubscribersRepo, list?: string): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await exportSubscribersCsv(target, out, { list, batchSize: 2 });
  return Buffer.concat(chunks).toString('utf8');
}

describe('importSubscribersCsv', () => {
  it('imports good rows as pending on the first list, with names and lists', async () => {
    const summary = await run('email,name\nann@example.com,Ann\nBob@Example.com,\n');
    expect(summary).toEqual({ rows: 2, imported: 2, existing: 0, suppressed: 0, invalidCount: 0, invalid: [] });
    const bob = await repo.findByEmail('bob@example.com');
    expect(bob).toMatchObject({ email: 'Bob@Example.com', name: null, status: 'pending', source: 'import', confirmedAt: null });
    expect(bob!.lists).toEqual([{ slug: 'dispatch', frequency: 'instant' }]);
    expect((await repo.findByEmail('ann@example.com'))!.name).toBe('Ann');
  });

  it('makes rows active with confirmed, and uses --list and --frequency for rows that name none', async () => {
    await run('email,lists\na@example.com,\nb@example.com,dispatch:daily\n', { confirmed: true, list: 'weekly', frequency: 'weekly' });
    const a = await repo.findByEmail('a@example.com');
    expect(a).toMatchObject({ status: 'active', confirmedAt: now.toISOString() });
    expect(a!.lists).toEqual([{ slug: 'weekly', frequency: 'weekly' }]);
    expect((await repo.findByEmail('b@example.com'))!.lists).toEqual([{ slug: 'dispatch', frequency: 'daily' }]);
  });

  it('reads a BOM, any header case, extra columns, the lists and frequency columns', async () => {
    const csv = '\ufeffFirst,E-Mail,NAME,Lists,Frequency\nx,a@example.com,Ann,"weekly, dispatch:instant",daily\r\n';
    expect((await run(csv)).imported).toBe(1);
    const a = await repo.findByEmail('a@example.com');
    expect(a!.name).toBe('Ann');
    expect(a!.lists).toEqual([
      { slug: 'dispatch', frequency: 'instant' },
      { slug: 'weekly', frequency: 'daily' },
    ]);
  });

  it('reports each bad row by its line in the file (header = line 1) and imports the rest', async () => {
    const csv = [
      'email,name,lists,frequency', // 1
      'good1@example.com,One,,', // 2
      'not-an-email,Two,,', // 3
      ',,,', // 4: empty cells, skipped but counted as a line
      'good2@example.com,"Multi', // 5
      'line name",,', // 6 (same record)
      'good3@example.com,,nosuch,', // 7
      'good4@example.com,,,hourly', // 8
      'GOOD1@example.com,Again,,', // 9
      'good5@example.com,Smith, John,,', // 10
      'good6@example.com,,weekly:often,', // 11
      `good7@example.com,${'x'.repeat(101)},,`, // 12
      'good8@example.com,,,', // 13
    ].join('\n');
    const summary = await run(csv);
    expect(summary.invalid).toEqual([
      { line: 3, reason: 'email: "not-an-email" is not a valid email address' },
      { line: 5, reason: 'name: must not contain control characters (found U+000A at position 6)' },
      { line: 7, reason: 'lists: unknown list "nosuch" (known: dispatch, weekly)' },
      { line: 8, reason: 'frequency: expected one of instant, daily, weekly, got "hourly"' },
      { line: 9, reason: 'duplicate: GOOD1@example.com is already on line 2' },
      { line: 10, reason: '5 values but the header has 4 columns (quote values that contain commas)' },
      { line: 11, reason: 'frequency: expected one of instant, daily, weekly, got "often"' },
      { line: 12, reason: 'name: at most 100 characters (got 101)' },
    ]);
    expect(summary).toMatchObject({ rows: 10, imported: 2, existing: 0, invalidCount: 8 });
    expect(await repo.findByEmail('good8@example.com')).toBeDefined();
  });

  it('changes nothing when the same file is imported twice', async () => {
    const csv = 'email,name\na@example.com,Ann\nb@example.com,Bob\nbad,\n';
    await run(csv);
    await repo.setStatus((await repo.findByEmail('a@example.com'))!.id, 'active', now);
    const second = await run(csv, { confirmed: true });
    expect(second).toMatchObject({ rows: 3, imported: 0, existing: 2, invalidCount: 1 });
    expect((await repo.findByEmail('b@example.com'))!.status).toBe('pending');
    expect(await repo.countByStatus()).toMatchObject({ active: 1, pending: 1 });
  });

  it('skips and counts suppressed addresses', async () => {
    await repo.suppress('bounced@example.com', 'bounced', null, now);
    const summary = await run('email\nBounced@example.com\nok@example.com\n', { confirmed: true });
    expect(summary).toMatchObject({ imported: 1, suppressed: 1, existing: 0 });
    expect(await repo.findByEmail('bounced@example.com')).toBeUndefined();
  });

  it('looks suppressions up once per batch', async () => {
    const calls: string[][] = [];
    const inserted: NewSubscriber[] = [];
    const fake: ImportRepo = {
      async insertMany(subscribers) {
        inserted.push(...subscribers);
        return subscribers.length;
      },
      async suppressedAmong(keys) {
        calls.push(keys);
        return new Set(keys.filter((k) => k.startsWith('x')));
      },
    };
    const rows = Array.from({ length: 5 }, (_, i) => `${i % 2 ? 'x' : 'y'}${i}@example.com`);
    const summary = await importSubscribersCsv(() => Readable.from([`email\n${rows.join('\n')}\n`]), {
      repo: fake,
      lists: LISTS,
      confirmed: false,
      now,
      source: 'import',
      batchSize: 2,
    });
    expect(calls.map((c) => c.length)).toEqual([2, 2, 1]);
    expect(summary).toMatchObject({ rows: 5, imported: 3, suppressed: 2 });
    expect(inserted.map((s) => s.emailKey)).toEqual(['y0@example.com', 'y2@example.com', 'y4@example.com']);
  });

  it('works across batches and chunk boundaries, reporting progress over both passes', async () => {
    const rows = Array.from({ length: 2_500 }, (_, i) => `user${i}@example.com,User ${i}`);
    const text = `email,name\n${rows.join('\n')}\n`;
    // Chunks of 61 bytes split records and the header anywhere.
    const chunks = text.match(/[\s\S]{1,61}/g)!;
    const progress: ImportProgress[] = [];
    const summary = await run(chunks, { batchSize: 1000, onProgress: (p) => progress.push(p) });
    expect(summary).toMatchObject({ rows: 2_500, imported: 2_500 });
    expect(progress.map((p) => `${p.phase} ${p.rows}`)).toEqual(['validate 1000', 'validate 2000', 'validate 2500', 'insert 1000', 'insert 2000', 'insert 2500']);
    for (const phase of ['validate', 'insert']) {
      const bytes = progress.filter((p) => p.phase === phase).map((p) => p.bytes);
      expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
      expect(bytes.at(-1)).toBe(Buffer.byteLength(text));
    }
    expect((await repo.countByStatus()).pending).toBe(2_500);
  });

  it('counts every invalid row but keeps at most MAX_INVALID_DETAILS of them', async () => {
    const bad = Array.from({ length: MAX_INVALID_DETAILS + 5 }, (_, i) => `bad${i}`);
    const summary = await run(`email\n${bad.join('\n')}\n`);
    expect(summary.invalidCount).toBe(MAX_INVALID_DETAILS + 5);
    expect(summary.invalid).toHaveLength(MAX_INVALID_DETAILS);
    expect(summary.invalid[0]!.line).toBe(2);
  });

  it('refuses a malformed CSV whole, naming the line: nothing is stored', async () => {
    const unclosed = run('email,name\na@example.com,Ann\nb@example.com,"Bob\nc@example.com,Cee\n').catch((e: unknown) => e);
    expect(await unclosed).toBeInstanceOf(MalformedCsvError);
    expect(String(await unclosed)).toBe('MalformedCsvError: malformed CSV at line 3: a quoted value is never closed (nothing was imported)');
    expect(await unclosed).toMatchObject({ line: 3, code: 'INPUT_INVALID' });
    const quoteInside = run('email,name\na@example.com,Ann\nb@example.com,B"ob\n').catch((e: unknown) => e);
    expect(await quoteInside).toMatchObject({ line: 3 });
    expect(String(await quoteInside)).toMatch(/line 3: a quote in the middle of an unquoted value/);
    const overlong = run(`email\nok@example.com\n"${'x'.repeat(70_000)}\n`);
    await expect(overlong).rejects.toThrow(/^malformed CSV at line 3: a row longer than 64 KB/);
    expect(await repo.countByStatus()).toMatchObject({ pending: 0, active: 0 });
  });

  it('refuses a file broken at its last line after thousands of good rows, storing none of them', async () => {
    const many = Array.from({ length: 4_999 }, (_, i) => `many${i}@example.com`).join('\n');
    const late = await run(`email\n${many}\n"late@example.com\n`.match(/[\s\S]{1,61}/g)!).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(MalformedCsvError);
    expect(late).toMatchObject({ line: 5_001 });
    expect(String(late)).toMatch(/malformed CSV at line 5001: a quoted value is never closed \(nothing was imported\)$/);
    expect(await repo.findByEmail('many0@example.com')).toBeUndefined();
    expect((await repo.countByStatus()).pending).toBe(0);
  });

  it('refuses binary data and text that is not UTF-8 whole, naming the line', async () => {
    const good = Buffer.from('email,name\na@example.com,Ann\n');
    const cases: [Buffer, RegExp][] = [
      [Buffer.concat([good, Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x14, 0x0a])]), /^malformed CSV at line 3: a NUL byte: this is binary data or UTF-16 text/],
      [Buffer.concat([good, Buffer.from('b@example.com,\xc8ve\n', 'latin1')]), /^malformed CSV at line 3: bytes that are not UTF-8 text/],
      // UTF-16 without a byte-order mark (csv-parse reads it when the mark is there).
      [Buffer.from('email\na@example.com\n', 'utf16le'), /^malformed CSV at line 1: a NUL byte/],
    ];
    for (const [bytes, message] of cases) {
      const failed = await importSubscribersCsv(() => Readable.from([bytes]), { repo, lists: LISTS, confirmed: false, now, source: 'import' }).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(MalformedCsvError);
      expect(String((failed as Error).message)).toMatch(message);
    }
    expect(await repo.findByEmail('a@example.com')).toBeUndefined();
    // Characters that are UTF-8 are welcome, across chunk boundaries too.
    const accented = Buffer.from('email,name\ne@example.com,Ève Zoë 日本\n');
    const split = [accented.subarray(0, 27), accented.subarray(27)];
    expect(await importSubscribersCsv(() => Readable.from(split), { repo, lists: LISTS, confirmed: false, now, source: 'import' })).toMatchObject({ imported: 1 });
    expect((await repo.findByEmail('e@example.com'))!.name).toBe('Ève Zoë 日本');
  });

  it('reads its input twice and closes each stream it opened', async () => {
    const opened: Readable[] = [];
    const summary = await importSubscribersCsv(
      () => {
        const stream = Readable.from([Buffer.from('email\na@example.com\nb@example.com\n')]);
        opened.push(stream);
        return stream;
      },
      { repo, lists: LISTS, confirmed: false, now, source: 'import' },
    );
    expect(summary).toMatchObject({ rows: 2, imported: 2 });
    expect(opened).toHaveLength(2);
    expect(opened.every((s) => s.destroyed || s.readableEnded)).toBe(true);
    // A broken file is opened once: the second pass never starts.
    opened.length = 0;
    const broken = importSubscribersCsv(
      () => {
        const stream = Readable.from([Buffer.from('email\n"a@example.com\n'), Buffer.from('b@example.com\n')]);
        opened.push(stream);
        return stream;
      },
      { repo, lists: LISTS, confirmed: false, now, source: 'import' },
    );
    await expect(broken).rejects.toThrow(MalformedCsvError);
    expect(opened).toHaveLength(1);
  });

  it('says so when the file changed between the check and the store', async () => {
    const versions = ['email\na@example.com\nb@example.com\n', 'email\na@example.com\nb@example.com\nc@example.com\n'];
    const changed = importSubscribersCsv(() => Readable.from([Buffer.from(versions.shift()!)]), { repo, lists: LISTS, confirmed: false, now, source: 'import' });
    // The rows the check saw were stored; the new one was not, and the summary would be wrong: so it fails, saying what to do.
    await expect(changed).rejects.toThrow(/^the file changed while it was being imported \(2 rows were imported\): import it again/);
    expect(await repo.findByEmail('c@example.com')).toBeUndefined();
  });

  it('needs a header row with an email column, and known --list and --frequency', async () => {
    await expect(run('')).rejects.toThrow('the file is empty: expected a header row with an "email" column');
    await expect(run('mail,name\na@example.com,x\n')).rejects.toThrow('line 1: the header row needs an "email" column (found: "mail", "name")');
    await expect(run('email,Email\n')).rejects.toThrow(/more than one "email" column/);
    await expect(run('email\na@example.com\n', { list: 'nope' })).rejects.toThrow(InputError);
    await expect(run('email\na@example.com\n', { list: 'nope' })).rejects.toThrow('--list: unknown list "nope" (known: dispatch, weekly)');
    expect((await repo.countByStatus()).pending).toBe(0);
  });
});

describe('exportSubscribersCsv', () => {
  it('round-trips through import: addresses, names, lists, and the statuses of people who did not confirm or left', async () => {
    await run(
      [
        'email,name,lists',
        'ann@example.com,"Ann, the ""first""",weekly:daily;dispatch',
        'bob@example.com,"=HYPERLINK(""http://evil"")",',
        'cat@example.com,Cat,',
        'dan@example.com,,weekly',
        'eve@example.com,Ève,',
      ].join('\n'),
      { confirmed: true },
    );
    await repo.setStatus((await repo.findByEmail('cat@example.com'))!.id, 'unsubscribed', now);
    await repo.replaceLists((await repo.findByEmail('cat@example.com'))!.id, [], now);
    await repo.setStatus((await repo.findByEmail('dan@example.com'))!.id, 'pending', now);
    const exported = await exportText(repo);
    const lines = exported.trim().split('\n');
    expect(lines[0]).toBe('email,name,status,lists,created_at,confirmed_at,source');
    expect(lines).toHaveLength(6);
    expect(lines[1]).toBe(`ann@example.com,"Ann, the ""first""",active,dispatch:instant;weekly:daily,${now.toISOString()},${now.toISOString()},import`);
    // Formula-looking cells are defused for spreadsheets.
    expect(lines[2]).toContain(`"'=HYPERLINK(""http://evil"")"`);

    const otherDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-import-'));
    const other = await openStore({ databaseUrl: undefined, dataDir: otherDir });
    try {
      const otherRepo = new SubscribersRepo(other.db);
      const summary = await importSubscribersCsv(() => Readable.from([exported]), { repo: otherRepo, lists: LISTS, confirmed: true, now, source: 'import' });
      expect(summary).toMatchObject({ rows: 5, imported: 5, invalidCount: 0 });
      const pick = (csv: string) => csv.trim().split('\n').map((l) => l.split(',').slice(0, 4).join(','));
      expect(pick(await exportText(otherRepo))).toEqual(pick(exported));
      expect((await otherRepo.findByEmail('bob@example.com'))!.name).toBe('=HYPERLINK("http://evil")');
      expect(await otherRepo.findByEmail('cat@example.com')).toMatchObject({ status: 'unsubscribed', lists: [] });
      expect(await otherRepo.findByEmail('dan@example.com')).toMatchObject({ status: 'pending', confirmedAt: null });
    } finally {
      await other.close();
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('exports only one list when asked, in id order across batches', async () => {
    await run('email,lists\na@example.com,weekly\nb@example.com,dispatch\nc@example.com,weekly\nd@example.com,weekly\n');
    const emails = (await exportText(repo, 'weekly')).trim().split('\n').slice(1).map((l) => l.split(',')[0]);
    expect(emails).toEqual(['a@example.com', 'c@example.com', 'd@example.com']);
    expect((await exportText(repo, 'nothing')).trim()).toBe('email,name,status,lists,created_at,confirmed_at,source');
  });
});
