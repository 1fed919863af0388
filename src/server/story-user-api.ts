import type { FastifyInstance } from 'fastify';
import { ContentError, InputError, type ContentIssue } from '../errors.ts';
import { storyState } from '../model/content.ts';
import type { User } from '../model/user.ts';
import { apiAccess, checkAdminAccess, requireApiAdmin } from './admin-auth.ts';
import { objectBody } from './json-body.ts';
import type { ServerContext } from './server.ts';

type Email = { Params: { email: string } };

/**
 * GET /api/stories (every story with its state, and the files left out with their problems), and the
 * users, for admins: GET /api/users, POST /api/users, PATCH /api/users/:email (role),
 * PUT /api/users/:email/password, DELETE /api/users/:email.
 */
export function registerStoryAndUserApi(server: FastifyInstance, context: ServerContext): void {
  const { app } = context;
  void server.register(
    async (api) => {
      api.addHook('onRequest', async (request, reply) => checkAdminAccess(apiAccess(app), request, reply));

      api.get('/stories', async () => {
        const now = app.now();
        try {
          const content = await app.content();
          return {
            stories: content.stories.map((s) => ({ slug: s.slug, title: s.title, state: storyState(s, now), date: s.date.toISOString(), tags: s.tags, file: s.sourceFile })),
            problems: content.problems.map(issueJson),
          };
        } catch (error) {
          // content/ that cannot load at all is still an answer an editor's script can act on.
          if (error instanceof ContentError) return { stories: [], problems: error.issues.map(issueJson) };
          throw error;
        }
      });

      api.get('/users', async (request) => {
        requireApiAdmin(request, 'manage users');
        return { users: (await app.users.list()).map(userJson) };
      });

      api.post<{ Body: unknown }>('/users', async (request, reply) => {
        requireApiAdmin(request, 'manage users');
        const fields = objectBody(request.body, ['email', 'password', 'role']);
        if (typeof fields.password !== 'string') throw new InputError('password: expected text of at least 12 characters');
        const user = await app.users.add({ email: fields.email, password: fields.password, role: fields.role });
        request.log.info({ user: user.id, by: request.apiActor?.name }, 'user added through the API');
        return reply.status(201).send(userJson(user));
      });

      api.patch<Email & { Body: unknown }>('/users/:email', async (request) => {
        requireApiAdmin(request, 'manage users');
        const fields = objectBody(request.body, ['role']);
        return userJson(await app.users.setRole(request.params.email, fields.role));
      });

      api.put<Email & { Body: unknown }>('/users/:email/password', async (request, reply) => {
        requireApiAdmin(request, 'manage users');
        const fields = objectBody(request.body, ['password']);
        if (typeof fields.password !== 'string') throw new InputError('password: expected text of at least 12 characters');
        await app.users.resetPassword(request.params.email, fields.password);
        return reply.status(204).send();
      });

      api.delete<Email>('/users/:email', async (request, reply) => {
        requireApiAdmin(request, 'manage users');
        await app.users.remove(request.params.email);
        return reply.status(204).send();
      });
    },
    { prefix: '/api' },
  );
}

function userJson(user: User) {
  return { id: user.id, email: user.email, role: user.role, created_at: user.createdAt, last_login_at: user.lastLoginAt, time_zone: user.timeZone ?? null };
}

function issueJson(issue: ContentIssue) {
  return { file: issue.file, line: issue.line ?? null, field: issue.field, message: issue.message };
}
