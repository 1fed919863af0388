import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebhookConfig } from '../config.ts';
import { InputError } from '../errors.ts';
import type { InboundReport, ReportHandler } from '../inbound/inbound-report.ts';
import { MailgunVerifier, mailgunReports, parseMailgunBody } from '../inbound/webhooks/mailgun.ts';
import { postmarkAuthorized, postmarkReports } from '../inbound/webhooks/postmark.ts';
import { sendgridPublicKey, sendgridRefusal, sendgridReports, SENDGRID_SIGNATURE_HEADER, SENDGRID_TIMESTAMP_HEADER } from '../inbound/webhooks/sendgrid.ts';
import { sesReports } from '../inbound/webhooks/ses.ts';
import { createSnsClient, parseSnsMessage, snsRefusal, type SnsClient } from '../inbound/webhooks/sns-message.ts';

/** What the provider webhooks need. */
export interface WebhookDeps {
  /** Where every report goes; a rejection (the store failed) answers 503 so the provider retries. */
  reports: ReportHandler;
  config: WebhookConfig;
  now: () => Date;
  /** Certificate fetching and subscription confirmation for SNS; default createSnsClient(). */
  sns?: SnsClient;
}

/** Largest webhook body taken; SendGrid batches events, up to a few hundred KB. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

/** What one webhook request did, as its JSON answer says. */
interface Tally {
  recorded: number;
  duplicate: number;
  ignored: number;
}

/**
 * POST /webhooks/ses (SES through SNS), /webhooks/postmark, /webhooks/mailgun and /webhooks/sendgrid:
 * each checks the provider's signature or credentials, reads its events into reports and answers
 * 2xx only once every report was handled. A provider without credentials configured answers 404.
 */
export async function webhookRoutes(app: FastifyInstance, deps: WebhookDeps): Promise<void> {
  const sns = deps.sns ?? createSnsClient();
  const mailgun = deps.config.mailgunSigningKey ? new MailgunVerifier({ signingKey: deps.config.mailgunSigningKey, now: deps.now }) : undefined;
  // Read once at start-up, so a wrong key stops the server rather than every webhook.
  const sendgridKey = deps.config.sendgridPublicKey ? sendgridPublicKey(deps.config.sendgridPublicKey) : undefined;

  // Signatures cover the exact bytes (SendGrid) and SNS posts JSON as text/plain: every body is kept
  // raw. Only in this plugin's scope: the rest of the server keeps its parsers.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_request, body, done) => done(null, body));
  app.setErrorHandler((error, request, reply) => {
    const status = error instanceof InputError ? 400 : (error as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err: error }, 'webhook failed');
      return reply.status(500).send({ error: 'internal_error', message: 'Something went wrong on our side.' });
    }
    return reply.status(status).send({ error: status === 400 ? 'bad_request' : 'request_refused', message: error instanceof Error ? error.message : String(error) });
  });

  app.post('/webhooks/ses', async (request, reply) => {
    if (deps.config.sesTopicArns.length === 0) return off(reply, 'GAZETTE_SES_TOPIC_ARNS');
    const message = parseSnsMessage(json(request));
    let refusal: string | undefined;
    try {
      refusal = await snsRefusal(message, { topicArns: deps.config.sesTopicArns, client: sns, now: deps.now() });
    } catch (error) {
      request.log.warn({ err: error }, 'SNS signing certificate unavailable');
      return reply.status(502).send({ error: 'bad_gateway', message: 'could not fetch the SNS signing certificate; try again' });
    }
    if (refusal) return refuse(request, reply, 'SNS', refusal);
    if (message.Type === 'SubscriptionConfirmation') {
      try {
        await sns.confirmSubscription(message.SubscribeURL!);
      } catch (error) {
        request.log.warn({ err: error }, 'SNS subscription confirmation failed');
        return reply.status(502).send({ error: 'bad_gateway', message: 'could not confirm the SNS subscription; try again' });
      }
      request.log.info({ topic: message.TopicArn }, 'SNS subscription confirmed');
      return { confirmed: true, recorded: 0, duplicate: 0, ignored: 0 };
    }
    if (message.Type === 'UnsubscribeConfirmation') {
      // Someone unsubscribed this endpoint; resubscribing is theirs to decide, not ours.
      request.log.warn({ topic: message.TopicArn }, 'SNS subscription ended');
      return { recorded: 0, duplicate: 0, ignored: 0 };
    }
    return record(request, reply, sesReports(message, deps.now()));
  });

  app.post('/webhooks/postmark', async (request, reply) => {
    const auth = deps.config.postmarkAuth;
    if (!auth) return off(reply, 'GAZETTE_POSTMARK_WEBHOOK_AUTH');
    if (!postmarkAuthorized(request.headers.authorization, auth)) {
      request.log.warn('Postmark webhook refused: wrong credentials');
      return reply
        .status(401)
        .header('WWW-Authenticate', 'Basic realm="gazette webhooks"')
        .send({ error: 'unauthorized', message: 'send the user:password of GAZETTE_POSTMARK_WEBHOOK_AUTH as HTTP Basic auth' });
    }
    return record(request, reply, postmarkReports(json(request), deps.now()));
  });

  app.post('/webhooks/mailgun', async (request, reply) => {
    if (!mailgun) return off(reply, 'GAZETTE_MAILGUN_SIGNING_KEY');
    const body = parseMailgunBody(json(request));
    const refusal = mailgun.refusal(body.signature);
    if (refusal) return refuse(request, reply, 'Mailgun', refusal);
    try {
      return await record(request, reply, mailgunReports(body['event-data'], deps.now()));
    } finally {
      // Unrecorded, the token must pass again when Mailgun retries.
      if (reply.statusCode >= 300 || !reply.sent) mailgun.release(body.signature.token);
    }
  });

  app.post('/webhooks/sendgrid', async (request, reply) => {
    if (!sendgridKey) return off(reply, 'GAZETTE_SENDGRID_PUBLIC_KEY');
    const refusal = sendgridRefusal(sendgridKey, header(request, SENDGRID_SIGNATURE_HEADER), header(request, SENDGRID_TIMESTAMP_HEADER), raw(request));
    if (refusal) return refuse(request, reply, 'SendGrid', refusal);
    const events = json(request);
    if (!Array.isArray(events)) throw new InputError('body: expected a JSON array of SendGrid events');
    return record(request, reply, sendgridReports(events, deps.now()));
  });

  /** Hands every report to the handler, one after another; 503 when one could not be stored. */
  async function record(request: FastifyRequest, reply: FastifyReply, batch: { reports: InboundReport[]; ignored: string[] }): Promise<FastifyReply> {
    const tally: Tally = { recorded: 0, duplicate: 0, ignored: batch.ignored.length };
    try {
      for (const report of batch.reports) {
        const outcome = await deps.reports.handle(report);
        tally[outcome.result] += 1;
      }
    } catch (error) {
      request.log.error({ err: error }, 'webhook reports could not be recorded');
      return reply.status(503).send({ error: 'unavailable', message: 'the reports could not be recorded; try again later' });
    }
    if (batch.ignored.length > 0) request.log.debug({ ignored: batch.ignored }, 'webhook events ignored');
    return reply.status(200).send(tally);
  }
}

function off(reply: FastifyReply, variable: string): FastifyReply {
  return reply.status(404).send({ error: 'not_found', message: `this webhook is off: set ${variable}` });
}

function refuse(request: FastifyRequest, reply: FastifyReply, provider: string, reason: string): FastifyReply {
  request.log.warn({ reason }, `${provider} webhook refused`);
  return reply.status(403).send({ error: 'forbidden', message: `${provider} webhook refused: ${reason}` });
}

function raw(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

function json(request: FastifyRequest): unknown {
  const text = raw(request).toString('utf8');
  if (text.trim() === '') throw new InputError('body: empty; expected JSON');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InputError(`body: not valid JSON (${(error as Error).message.slice(0, 120)})`);
  }
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}
