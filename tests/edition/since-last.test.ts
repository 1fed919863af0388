import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/content/load-content.ts';
import { createEdition, EditionError } from '../../src/edition/create-edition.ts';
import { loadEmailTemplates } from '../../src/render/email-templates.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { EditionsRepo } from '../../src/store/editions-repo.ts';
import { PublicationsRepo } from '../../src/store/publications-repo.ts';
import { storyFile, tempContentDir, TEMPLATES_DIR } from '../helpers/content-dir.ts';
import { freshDatabase, type TestDatabase } from '../helpers/databases.ts';

// "The stories published since the last digest" must include a draft made public after that
// digest, even though the date it carries is older than the digest.

describe('a digest of the stories since the last one', () => {
  let database: TestDatabase;
  let store: Store;
  let dir: string;
  beforeEach(async () => {
    database = await freshDatabase('sqlite');
    store = await openStore({ databaseUrl: database.url, dataDir: database.dataDir });
    dir = await tempContentDir({
      'old.md': storyFile({ title: '"Old"', date: '2026-02-01T08:00:00Z' }),
      'later.md': storyFile({ title: '"Imported as a draft"', date: '2026-02-02T08:00:00Z', draft: 'true' }),
    });
  });
  afterEach(async () => {
    await store.close();
    await database.drop();
  });

  const digest = async (now: string) => {
    const editions = new EditionsRepo(store.db);
    const made = await createEdition(
      { content: await loadContent(dir), templates: await loadEmailTemplates(TEMPLATES_DIR), editions, now: new Date(now), publications: new PublicationsRepo(store.db) },
      { list: 'dispatch', digest: true, sinceLast: true },
    );
    await editions.setStatus(made.id, 'sent', new Date(now));
    return made.stories.map((s) => s.title);
  };

  it('takes a draft made public after the last digest, though its date is older', async () => {
    expect(await digest('2026-02-03T08:00:00Z')).toEqual(['Old']);
    // Two days later the editor publishes the draft, keeping its date of 2 February.
    await writeFile(path.join(dir, 'stories', 'later.md'), storyFile({ title: '"Imported as a draft"', date: '2026-02-02T08:00:00Z' }));
    expect(await digest('2026-02-05T08:00:00Z')).toEqual(['Imported as a draft']);
    // Nothing new since: the next one is empty.
    await expect(digest('2026-02-06T08:00:00Z')).rejects.toBeInstanceOf(EditionError);
  });

  it('a story never seen as a draft counts from its date, so an old story seen for the first time is not new again', async () => {
    expect(await digest('2026-02-03T08:00:00Z')).toEqual(['Old']);
    await writeFile(path.join(dir, 'stories', 'backfill.md'), storyFile({ title: '"Backfilled"', date: '2026-01-15T08:00:00Z' }));
    await expect(digest('2026-02-04T08:00:00Z')).rejects.toBeInstanceOf(EditionError);
  });
});
