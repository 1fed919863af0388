import { z } from 'zod';

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

const text = (what: string) =>
  z.string({ error: (issue) => `expected ${what}, got ${describe(issue.input)}` }).trim().min(1, `expected ${what}, got an empty string`);

const absoluteUrl = z
  .string({ error: (issue) => `expected an absolute http(s) URL, got ${describe(issue.input)}` })
  .refine((value) => /^https?:\/\/[^\s/]+/.test(value) && URL.canParse(value), {
    error: (issue) => `expected an absolute http(s) URL, got ${describe(issue.input)}`,
  });

/** Front matter of a story file. */
export const storyFrontMatterSchema = z.strictObject(
  {
    title: text('a title'),
    date: z
      .string({ error: (issue) => `expected an ISO 8601 date with timezone, got ${describe(issue.input)}` })
      .refine((value) => ISO_WITH_ZONE.test(value.trim()) && !Number.isNaN(Date.parse(value)), {
        error: (issue) => `expected an ISO 8601 date with timezone, got ${describe(issue.input)}`,
      }),
    author: text('the author\'s name'),
    summary: text('a one-paragraph summary'),
    tags: z
      .array(text('a tag'), { error: (issue) => `expected a list of tags, got ${describe(issue.input)}` })
      .default([]),
    image: z
      .strictObject({
        url: absoluteUrl,
        alt: text('alt text describing the image'),
        width: z.number().int().positive().optional(),
        height: z.number().int().positive().optional(),
      })
      .optional(),
    faq: z
      .array(
        z.strictObject({ q: text('a question'), a: text('an answer') }),
        { error: (issue) => `expected a list of {q, a}, got ${describe(issue.input)}` },
      )
      .default([]),
    slug: z
      .string()
      .regex(SLUG, 'expected lowercase letters, digits and single hyphens (like "my-story")')
      .optional(),
    draft: z.boolean({ error: (issue) => `expected true or false, got ${describe(issue.input)}` }).default(false),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown field (known: title, date, author, summary, tags, image, faq, slug, draft)` : `expected a mapping of fields, got ${describe(issue.input)}`) },
);

export type StoryFrontMatter = z.infer<typeof storyFrontMatterSchema>;

/** content/site.yaml. */
export const siteSchema = z.strictObject({
  title: text('the newsletter title'),
  description: text('a one-line description'),
  base_url: absoluteUrl,
  language: z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'expected a language tag like "en" or "en-GB"').default('en'),
  timezone: z
    .string()
    .refine(isTimeZone, { error: (issue) => `expected an IANA time zone like "Europe/Kyiv", got ${describe(issue.input)}` })
    .default('UTC'),
  sender: z.strictObject({
    name: text('the sender name'),
    address: z.email({ error: (issue) => `expected an email address, got ${describe(issue.input)}` }),
    reply_to: z.email({ error: (issue) => `expected an email address, got ${describe(issue.input)}` }).optional(),
  }),
  postal_address: text('the postal address printed in every email footer (required by anti-spam law)'),
  editors: z
    .array(z.email({ error: (issue) => `expected an email address, got ${describe(issue.input)}` }), {
      error: (issue) => `expected a list of email addresses, got ${describe(issue.input)}`,
    })
    .optional(),
  lists: z
    .array(
      z.strictObject({
        slug: z.string().regex(SLUG, 'expected lowercase letters, digits and single hyphens'),
        name: text('the list name'),
        description: z.string().default(''),
      }),
    )
    .min(1, 'expected at least one list'),
  feed: z
    .strictObject({
      limit: z.number().int().positive().default(50),
      ttl_minutes: z.number().int().positive().default(60),
    })
    .default({ limit: 50, ttl_minutes: 60 }),
  theme: z
    .strictObject({
      accent: z
        .string()
        .regex(/^#[0-9a-fA-F]{6}$/, 'expected a colour as #rrggbb, such as "#9c2f1f"')
        .default('#9c2f1f'),
      logo_url: absoluteUrl.optional(),
    })
    .default({ accent: '#9c2f1f' }),
});

export type SiteFile = z.infer<typeof siteSchema>;

/** True for a time zone name Intl knows (IANA names such as Europe/Kyiv, and UTC). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Describes a value for an error message: quoted strings, short JSON otherwise. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  const json = JSON.stringify(value);
  return json === undefined ? String(value) : json.length > 60 ? `${json.slice(0, 57)}...` : json;
}
