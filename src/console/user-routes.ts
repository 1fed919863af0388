import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../app.ts';
import { ConflictError, InputError, NotFoundError } from '../errors.ts';
import { ROLES, type User } from '../model/user.ts';
import type { NewApiToken } from '../users/user-use-cases.ts';
import { MIN_PASSWORD_LENGTH } from '../users/passwords.ts';
import type { ConsoleContext } from './console-plugin.ts';
import { field, idParam, requireAdmin, userOf, zoneOf, type Form } from './console-request.ts';
import { timeZoneOptions } from './zone-options.ts';

interface AddForm {
  email?: string;
  role?: string;
  error?: string;
}

/**
 * The users page (admins only: add, change role, reset password, remove) and everyone's account page
 * (time zone, own password, API tokens).
 */
export function registerUserRoutes(admin: FastifyInstance, context: ConsoleContext): void {
  const { app, kit, failures } = context;

  // ---- Users (admins) ----

  admin.get('/users', async (request, reply) => {
    requireAdmin(request, 'manage users');
    return usersPage(request, reply, {});
  });

  admin.post<{ Body: Form }>('/users', async (request, reply) => {
    const me = requireAdmin(request, 'manage users');
    const form: AddForm = { email: (field(request.body, 'email') ?? '').trim(), role: field(request.body, 'role') ?? 'editor' };
    let added: User;
    try {
      added = await app.users.add({ email: form.email, role: form.role, password: field(request.body, 'password') ?? '' });
    } catch (error) {
      if (error instanceof InputError) return usersPage(request, reply, { ...form, error: error.message }, 400);
      if (error instanceof ConflictError) return usersPage(request, reply, { ...form, error: error.message }, 409);
      throw error;
    }
    request.log.info({ user: added.id, role: added.role, by: me.id }, 'console user added');
    return kit.redirect(request, reply, '/admin/users', { tone: 'ok', text: `Added ${added.email} (${added.role}). Give them their password by a safe channel; they can change it on their Account page.` });
  });

  admin.post<{ Params: { id: string }; Body: Form }>('/users/:id/role', async (request, reply) => {
    const me = requireAdmin(request, 'manage users');
    const user = await userById(app, request.params.id);
    let changed: User;
    try {
      changed = await app.users.setRole(user.email, field(request.body, 'role'));
    } catch (error) {
      if (error instanceof InputError || error instanceof ConflictError) return kit.redirect(request, reply, '/admin/users', { tone: 'error', text: error.message });
      throw error;
    }
    request.log.info({ user: user.id, role: changed.role, by: me.id }, 'console user role changed');
    const text = changed.role === user.role ? `${user.email} was already ${changed.role}.` : `${user.email} is now ${changed.role === 'admin' ? 'an admin' : 'an editor'}.`;
    // An admin who made themselves an editor can no longer see the users page.
    return kit.redirect(request, reply, user.id === me.id && changed.role !== 'admin' ? '/admin/account' : '/admin/users', { tone: 'ok', text });
  });

  admin.post<{ Params: { id: string }; Body: Form }>('/users/:id/password', async (request, reply) => {
    const me = requireAdmin(request, 'manage users');
    const user = await userById(app, request.params.id);
    try {
      await app.users.resetPassword(user.email, field(request.body, 'password') ?? '');
    } catch (error) {
      if (error instanceof InputError) return kit.redirect(request, reply, '/admin/users', { tone: 'error', text: `${user.email}: ${error.message}` });
      throw error;
    }
    request.log.info({ user: user.id, by: me.id }, 'console user password reset');
    if (user.id === me.id) return signedOut(request, reply, 'Your password is changed and every session of yours was ended: sign in again with the new password.');
    return kit.redirect(request, reply, '/admin/users', { tone: 'ok', text: `New password set for ${user.email}; every session of theirs was ended. Give them the password by a safe channel.` });
  });

  admin.get<{ Params: { id: string } }>('/users/:id/remove', async (request, reply) => {
    const me = requireAdmin(request, 'manage users');
    const user = await userById(app, request.params.id);
    return kit.page(request, reply, 'confirm', { title: 'Remove a user', section: 'users' }, {
      heading: `Remove ${user.email}?`,
      lines: [
        `They can no longer sign in to the console, their ${user.role === 'admin' ? 'admin ' : ''}sessions end at once and their API tokens stop working.`,
        user.id === me.id ? 'This is your own account: you are signed out straight away.' : 'What they made (stories, editions, schedules) stays.',
      ],
      action: `/admin/users/${user.id}/remove`,
      button: 'Remove the user',
      danger: true,
      cancelHref: '/admin/users',
    });
  });

  admin.post<{ Params: { id: string } }>('/users/:id/remove', async (request, reply) => {
    const me = requireAdmin(request, 'manage users');
    const user = await userById(app, request.params.id);
    try {
      await app.users.remove(user.email);
    } catch (error) {
      if (error instanceof ConflictError) return kit.redirect(request, reply, '/admin/users', { tone: 'error', text: error.message });
      throw error;
    }
    request.log.info({ user: user.id, by: me.id }, 'console user removed');
    if (user.id === me.id) return signedOut(request, reply, 'Your account is removed.');
    return kit.redirect(request, reply, '/admin/users', { tone: 'ok', text: `Removed ${user.email}.` });
  });

  // ---- Account (everyone) ----

  admin.get('/account', async (request, reply) => accountPage(request, reply, {}));

  admin.post<{ Body: Form }>('/account/zone', async (request, reply) => {
    const user = userOf(request);
    const zone = field(request.body, 'zone') ?? '';
    try {
      await app.users.setTimeZone(user.id, zone);
    } catch (error) {
      if (error instanceof InputError) return accountPage(request, reply, { zoneError: error.message }, 400);
      throw error;
    }
    // Stored under its current name (Europe/Kiev becomes Europe/Kyiv): say the one the pages will show.
    const saved = (await app.users.findById(user.id))?.timeZone ?? zone;
    return kit.redirect(request, reply, '/admin/account', { tone: 'ok', text: `Times are now shown in ${saved}.` });
  });

  admin.post<{ Body: Form }>('/account/password', async (request, reply) => {
    const user = userOf(request);
    const current = field(request.body, 'current') ?? '';
    const password = field(request.body, 'password') ?? '';
    const again = field(request.body, 'repeat');
    const refuse = (passwordError: string, status = 400) => accountPage(request, reply, { passwordError }, status);
    // The same counter as the sign-in form: a stolen session cannot be used to guess the password either.
    const account = user.email.toLowerCase();
    const waitMs = failures.accounts.retryAfterMs(account);
    if (waitMs > 0) {
      const minutes = Math.ceil(waitMs / 60_000);
      reply.header('Retry-After', String(Math.ceil(waitMs / 1000)));
      return refuse(`Too many wrong passwords. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`, 429);
    }
    if (!(await app.users.authenticate(user.email, current))) {
      failures.accounts.record(account);
      return refuse('Your current password is not right: the password was not changed.');
    }
    if (again !== undefined && again !== password) return refuse('The new password and its repetition differ: the password was not changed.');
    try {
      await app.users.resetPassword(user.email, password);
    } catch (error) {
      if (error instanceof InputError) return refuse(error.message);
      throw error;
    }
    request.log.info({ user: user.id }, 'console user changed their password');
    return signedOut(request, reply, 'Your password is changed and every session of yours was ended, this one included: sign in again with the new password.');
  });

  admin.post<{ Body: Form }>('/account/tokens', async (request, reply) => {
    const user = userOf(request);
    const name = (field(request.body, 'name') ?? '').trim() || 'API token';
    let made: NewApiToken;
    try {
      made = await app.users.createToken(user.email, name);
    } catch (error) {
      if (error instanceof InputError) return accountPage(request, reply, { tokenError: error.message, tokenName: name }, 400);
      throw error;
    }
    request.log.info({ user: user.id, token: made.id }, 'console user made an API token');
    // Shown on this response only, never put in the session: the page after a reload no longer has it.
    return accountPage(request, reply, { newToken: made }, 201);
  });

  admin.post<{ Params: { id: string } }>('/account/tokens/:id/revoke', async (request, reply) => {
    const user = userOf(request);
    const id = idParam(request.params.id, 'token');
    const token = (await app.users.tokens(user.email)).find((t) => t.id === id);
    await app.users.revokeToken(user.email, id);
    request.log.info({ user: user.id, token: id }, 'console user revoked an API token');
    return kit.redirect(request, reply, '/admin/account', { tone: 'ok', text: `Revoked the token “${token?.name ?? id}”: it no longer works.` });
  });

  async function usersPage(request: FastifyRequest, reply: FastifyReply, form: AddForm, status = 200) {
    const me = userOf(request);
    const users = await app.users.list();
    return kit.page(request, reply, 'users', { title: 'Users', section: 'users' }, {
      ...form,
      zone: zoneOf(request),
      minLength: MIN_PASSWORD_LENGTH,
      roles: ROLES.map((r) => ({ value: r, selected: r === (form.role ?? 'editor') })),
      users: users.map((u) => ({
        ...u,
        isMe: u.id === me.id,
        roles: ROLES.map((r) => ({ value: r, selected: r === u.role })),
      })),
    }, status);
  }

  async function accountPage(
    request: FastifyRequest,
    reply: FastifyReply,
    extra: { zoneError?: string; passwordError?: string; tokenError?: string; tokenName?: string; newToken?: NewApiToken },
    status = 200,
  ) {
    const user = userOf(request);
    const zone = user.timeZone ?? 'UTC';
    const tokens = await app.users.tokens(user.email);
    return kit.page(request, reply, 'account', { title: 'Your account', section: 'account' }, {
      ...extra,
      zone: zoneOf(request),
      account: { email: user.email, role: user.role, createdAt: user.createdAt, passwordChangedAt: user.passwordChangedAt, timeZone: zone, chosenZone: user.timeZone !== undefined },
      zones: timeZoneOptions(zone),
      minLength: MIN_PASSWORD_LENGTH,
      tokens,
      apiBase: `${(app.config.baseUrl ?? (await siteBase(app))).replace(/\/+$/, '')}/api`,
    }, status);
  }
}

/** The user a URL names by id; NotFoundError otherwise. */
async function userById(app: App, text: string): Promise<User> {
  const user = await app.users.findById(idParam(text, 'user'));
  if (!user) throw new NotFoundError(`no user ${text.slice(0, 20)}`);
  return user;
}

/**
 * To the sign-in page after the user's own sessions were ended (password changed, account removed). A fresh
 * session carries the notice: saving the old one would bring back the session the store just deleted.
 */
async function signedOut(request: FastifyRequest, reply: FastifyReply, text: string): Promise<FastifyReply> {
  await request.session.regenerate();
  request.session.flash = { tone: 'ok', text };
  return reply.redirect('/admin/login', 303);
}

async function siteBase(app: App): Promise<string> {
  return (await app.content().catch(() => undefined))?.site.baseUrl ?? '';
}
