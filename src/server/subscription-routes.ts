import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InputError } from '../errors.ts';
import { FREQUENCIES, type Subscriber } from '../model/subscriber.ts';
import { frequencyField, perListFrequencies, type ListChoiceInput } from '../subscribers/list-choices.ts';
import type { SubscribeOutcome } from '../subscribers/subscription-service.ts';
import { homeWithFormError } from './public-pages.ts';
import { type ServerContext, wantsJson } from './server.ts';

type TokenQuery = { Querystring: { token?: string } };
type FormBody = Record<string, unknown> | undefined;

const PENDING_MESSAGE = 'If that address can receive email, a confirmation link is on its way. Click it to start your subscription.';

const FREQUENCY_LABELS: Record<string, string> = {
  instant: 'Every story, as it is published',
  daily: 'A daily digest',
  weekly: 'A weekly digest',
};

/** POST /subscribe, GET /confirm, GET+POST /unsubscribe (RFC 8058), GET+POST /preferences. */
export async function registerSubscriptionRoutes(server: FastifyInstance, context: ServerContext, options: { rateLimit: number }): Promise<void> {
  const { app, web } = context;
  await server.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, ctx) => ({
      statusCode: 429,
      message: `Too many subscribe requests from your address; try again in ${Math.ceil(ctx.ttl / 1000)} seconds.`,
    }),
  });
  const page = async (reply: FastifyReply, status: number, name: string, data: Record<string, unknown>) => {
    const { site } = await context.feeds.current().then((s) => s.content);
    return reply.status(status).type('text/html; charset=utf-8').send(web.render(name, site, data));
  };

  server.post<{ Body: FormBody }>(
    '/subscribe',
    { config: { rateLimit: { max: options.rateLimit, timeWindow: '1 minute' } } },
    async (request, reply) => {
      const body = request.body ?? {};
      const service = await app.subscriptions();
      let outcome: SubscribeOutcome;
      try {
        outcome = await service.subscribe({
          email: body.email,
          name: body.name,
          lists: body.lists,
          frequency: body.frequency,
          frequencies: perListFrequencies(body),
          ip: request.ip,
          source: 'form',
        });
      } catch (error) {
        // A person at the form sees it again, as typed, with the reason beside the field; JSON clients get the usual 400.
        if (!(error instanceof InputError) || wantsJson(request)) throw error;
        const html = homeWithFormError(context, await context.feeds.current(), body, error.message);
        return reply.status(400).type('text/html; charset=utf-8').header('Cache-Control', 'no-store').send(html);
      }
      request.log.info({ outcome }, 'subscribe');
      // The same answer whatever happened, so the form never tells who is subscribed.
      if (wantsJson(request)) return reply.status(202).send({ status: 'pending', message: PENDING_MESSAGE });
      return page(reply, 200, 'message', { title: 'Check your inbox', heading: 'Check your inbox', text: PENDING_MESSAGE });
    },
  );

  // Opening the link only checks it and shows a button: mail scanners follow links (GET and HEAD),
  // and double opt-in must be the person's own act. The button POSTs to the same URL.
  server.get<TokenQuery>('/confirm', async (request, reply) => {
    const token = requireToken(request);
    const subscriber = await (await app.subscriptions()).checkConfirm(token);
    if (subscriber.status === 'active') return subscribedPage(reply, subscriber.email);
    if (wantsJson(request)) return reply.send({ status: subscriber.status, confirm: 'POST this URL to confirm' });
    return page(reply, 200, 'confirm', { title: 'Confirm your subscription', email: subscriber.email, token });
  });

  server.post<TokenQuery & { Body: FormBody }>('/confirm', async (request, reply) => {
    const subscriber = await (await app.subscriptions()).confirm(requireToken(request));
    if (wantsJson(request)) return reply.send({ status: subscriber.status });
    return subscribedPage(reply, subscriber.email);
  });

  async function subscribedPage(reply: FastifyReply, email: string) {
    return page(reply, 200, 'message', {
      title: 'Subscribed',
      heading: 'You are subscribed',
      text: `Thank you — emails will come to ${email}. A welcome email with the latest stories is on its way.`,
      link: { href: '/', label: 'Read the latest stories' },
    });
  }

  // Reached without a token (the web version of an edition links here): say where the personal link is.
  const noTokenPage = (reply: FastifyReply, what: 'unsubscribe' | 'change your preferences') =>
    page(reply, 200, 'message', {
      title: what === 'unsubscribe' ? 'Unsubscribe' : 'Preferences',
      heading: what === 'unsubscribe' ? 'Unsubscribe' : 'Your preferences',
      text: `To ${what}, use the link at the bottom of any email we sent you: it knows who you are, so there is no password to remember.`,
      link: { href: '/', label: 'Go to the home page' },
    });

  // A GET never unsubscribes: mail scanners follow links. It shows one button instead.
  server.get<TokenQuery>('/unsubscribe', async (request, reply) => {
    if (request.query.token === undefined) return noTokenPage(reply, 'unsubscribe');
    const token = requireToken(request);
    const { subscriber, preferencesToken } = await (await app.subscriptions()).checkUnsubscribe(token);
    if (subscriber.status === 'unsubscribed') return unsubscribedPage(reply, subscriber);
    return page(reply, 200, 'unsubscribe', {
      title: 'Unsubscribe',
      email: subscriber.email,
      token,
      preferencesToken,
    });
  });

  // RFC 8058: POST with List-Unsubscribe=One-Click, no cookies, no redirect; 200 when done.
  server.post<TokenQuery & { Body: FormBody }>('/unsubscribe', async (request, reply) => {
    const subscriber = await (await app.subscriptions()).unsubscribe(requireToken(request));
    if (wantsJson(request)) return reply.send({ status: subscriber.status });
    return unsubscribedPage(reply, subscriber);
  });

  server.get<TokenQuery>('/preferences', async (request, reply) => {
    if (request.query.token === undefined) return noTokenPage(reply, 'change your preferences');
    const token = requireToken(request);
    return preferencesPage(reply, token, await (await app.subscriptions()).preferences(token), {});
  });

  // The form sends `lists` (one per ticked box) and `frequency_<slug>` per list; old forms send one `frequency`.
  server.post<TokenQuery & { Body: FormBody }>('/preferences', async (request, reply) => {
    const token = requireToken(request);
    const body = request.body ?? {};
    const choice: ListChoiceInput =
      body.action === 'leave' ? { lists: [] } : { lists: body.lists, frequency: body.frequency, frequencies: perListFrequencies(body) };
    const service = await app.subscriptions();
    let subscriber: Subscriber;
    try {
      subscriber = await service.updatePreferences(token, choice);
    } catch (error) {
      // The page again as stored (nothing changed), the reason beside the list it names; JSON clients get the usual 400.
      if (!(error instanceof InputError) || wantsJson(request)) throw error;
      return preferencesPage(reply, token, await service.preferences(token), { status: 400, error: error.message });
    }
    if (wantsJson(request)) return reply.send({ status: subscriber.status, lists: subscriber.lists });
    if (subscriber.lists.length === 0) return unsubscribedPage(reply, subscriber);
    return preferencesPage(reply, token, subscriber, { saved: true });
  });

  async function unsubscribedPage(reply: FastifyReply, subscriber: Subscriber) {
    return page(reply, 200, 'message', {
      title: 'Unsubscribed',
      heading: 'You are unsubscribed',
      text: `${subscriber.email} will get no more emails from us. Changed your mind? You can subscribe again from the home page.`,
      link: { href: '/', label: 'Go to the home page' },
    });
  }

  /** The form as stored: each list ticked or not, with its own frequency checked. */
  async function preferencesPage(reply: FastifyReply, token: string, subscriber: Subscriber, state: { saved?: boolean; error?: string; status?: number }) {
    const { site } = await context.feeds.current().then((s) => s.content);
    const { error } = state;
    // A list not joined yet offers the pace of the ones joined, as the single choice of old did.
    const usual = subscriber.lists[0]?.frequency ?? 'instant';
    const lists = site.lists.map((l) => {
      const field = frequencyField(l.slug);
      const joined = subscriber.lists.find((s) => s.slug === l.slug);
      const frequency = joined?.frequency ?? usual;
      return {
        ...l,
        field,
        checked: joined !== undefined,
        error: error?.startsWith(`${field}: `) ? error : undefined,
        frequencies: FREQUENCIES.map((value) => ({ value, label: FREQUENCY_LABELS[value], checked: value === frequency })),
      };
    });
    return page(reply, state.status ?? 200, 'preferences', {
      title: 'Preferences',
      email: subscriber.email,
      token,
      saved: state.saved === true,
      // An error no list claims (an unknown list, a bad shared frequency) is shown above the form.
      error: error !== undefined && !lists.some((l) => l.error) ? error : undefined,
      lists,
    });
  }
}

function requireToken(request: FastifyRequest<TokenQuery>): string {
  const token = request.query.token;
  if (typeof token !== 'string' || token === '') throw new InputError('This link is missing its token. Use the link from the email as it is.');
  if (token.length > 200) throw new InputError('This link is not valid. Use the link from the most recent email we sent you.');
  return token;
}
