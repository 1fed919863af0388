import type { FastifyInstance } from 'fastify';
import { ContentError, formatContentIssue, NotFoundError, type ContentIssue } from '../errors.ts';
import { storyState, type Content, type Story, type StoryState } from '../model/content.ts';
import type { ConsoleContext } from './console-plugin.ts';
import { zoneOf } from './console-request.ts';
import { sendFrame } from './preview-frames.ts';

/** GET /admin/stories (every story and every file left out), GET /admin/stories/:slug with its previews. */
export function registerStoryRoutes(admin: FastifyInstance, context: ConsoleContext): void {
  const { app, kit } = context;

  admin.get('/stories', async (request, reply) => {
    const { content, issues } = await loadForEditors(context);
    const now = app.now();
    const stories = (content?.stories ?? []).map((story) => ({ ...storyRow(story, now), date: story.date.toISOString() }));
    const invalid = groupByFile(issues);
    return kit.page(request, reply, 'stories', { title: 'Stories', section: 'stories' }, { stories, invalid, zone: zoneOf(request) });
  });

  admin.get<{ Params: { slug: string } }>('/stories/:slug', async (request, reply) => {
    const story = await findStory(context, request.params.slug);
    const slug = encodeURIComponent(story.slug);
    const sample = await app.editions.sampleContent({ story: story.slug });
    return kit.page(request, reply, 'story', { title: story.title, section: 'stories' }, {
      story: { ...storyRow(story, app.now()), date: story.date.toISOString(), author: story.author, summary: story.summary },
      pageFrame: `/admin/stories/${slug}/page`,
      emailFrame: `/admin/stories/${slug}/email`,
      text: sample.text,
      subject: sample.subject,
      zone: zoneOf(request),
    });
  });

  admin.get<{ Params: { slug: string } }>('/stories/:slug/page', async (request, reply) => {
    const story = await findStory(context, request.params.slug);
    const { site } = await app.content();
    const html = context.site.web.render('story', site, { title: story.title, description: story.summary, story, related: [], hasSubscribeBox: false });
    return sendFrame(reply, html, 'page');
  });

  admin.get<{ Params: { slug: string } }>('/stories/:slug/email', async (request, reply) => {
    const story = await findStory(context, request.params.slug);
    return sendFrame(reply, (await app.editions.sampleContent({ story: story.slug })).html, 'email');
  });
}

/** content/ for an editor: what loaded and the problems, even when content/ as a whole cannot load. */
async function loadForEditors(context: ConsoleContext): Promise<{ content: Content | undefined; issues: ContentIssue[] }> {
  try {
    const content = await context.app.content();
    return { content, issues: content.problems };
  } catch (error) {
    if (error instanceof ContentError) return { content: undefined, issues: error.issues };
    throw error;
  }
}

async function findStory(context: ConsoleContext, slug: string): Promise<Story> {
  const story = (await context.app.content()).stories.find((s) => s.slug === slug);
  if (!story) throw new NotFoundError(`no story called "${slug.slice(0, 80)}" (a file with errors is listed under Stories with what is wrong)`);
  return story;
}

function storyRow(story: Story, now: Date): { slug: string; title: string; tags: string[]; state: StoryState; file: string } {
  return { slug: story.slug, title: story.title, tags: story.tags, state: storyState(story, now), file: story.sourceFile };
}

function groupByFile(issues: ContentIssue[]): { file: string; messages: string[] }[] {
  const files = new Map<string, string[]>();
  for (const issue of issues) {
    const list = files.get(issue.file) ?? [];
    list.push(formatContentIssue(issue));
    files.set(issue.file, list);
  }
  return [...files].map(([file, messages]) => ({ file, messages }));
}
