import type { App } from '../app.ts';
import { ConfigError } from '../errors.ts';
import { bounceDomainOf } from '../links/recipient-links.ts';
import { isInboundAddress } from './mail-reports.ts';
import { startInboundReceiver, type InboundReceiver } from './smtp-receiver.ts';

/** Where `gazette inbound` (or `serve`) takes mail in. */
export interface InboundSettings {
  /** The SMTP receiver's port; undefined runs none (a mailbox only). */
  port: number | undefined;
  host: string;
  /** imaps://… to read as well; undefined reads none. */
  mailboxUrl: string | undefined;
  log(line: string): void;
  signal: AbortSignal;
}

/** The bounce domains mail is taken for: GAZETTE_BOUNCE_DOMAIN, else the sender's domain in site.yaml. */
export async function inboundDomains(app: App): Promise<string[]> {
  if (app.config.inbound.bounceDomain) return [app.config.inbound.bounceDomain];
  const site = await app.content().then(
    (content) => content.site,
    () => undefined,
  );
  if (!site) throw new ConfigError('GAZETTE_BOUNCE_DOMAIN: not set, and content/site.yaml does not load to take the sender\'s domain from: set GAZETTE_BOUNCE_DOMAIN=bounces.example.com');
  return [bounceDomainOf(site)];
}

/** Starts the ways in by mail (an SMTP receiver, a mailbox reader); `done` settles once the signal stopped them. */
export async function startInbound(app: App, settings: InboundSettings): Promise<{ receiver: InboundReceiver | undefined; done: Promise<void> }> {
  const domains = await inboundDomains(app);
  const handle = await app.inboundMail(domains);
  const tokens = await app.adapters.deliveryTokens();
  const receiver =
    settings.port === undefined
      ? undefined
      : await startInboundReceiver({
          host: settings.host,
          port: settings.port,
          maxBytes: app.config.inbound.maxBytes,
          tls: app.config.inbound.tls,
          accepts: (address) => isInboundAddress(tokens, domains, address),
          handle,
          log: settings.log,
        });
  if (receiver) settings.log(`inbound: taking mail for bounces@ and unsubscribe@ ${domains.join(', ')} on ${settings.host}:${receiver.port}`);
  const mailbox = settings.mailboxUrl
    ? (async () => {
        const { watchMailbox } = await import('./mailbox-reader.ts');
        await watchMailbox({
          url: settings.mailboxUrl!,
          after: app.config.inbound.mailboxAfter,
          pollMs: app.config.inbound.mailboxPollMs,
          handle,
          signal: settings.signal,
          log: settings.log,
        });
      })()
    : Promise.resolve();
  const done = (async () => {
    await new Promise<void>((resolve) => (settings.signal.aborted ? resolve() : settings.signal.addEventListener('abort', () => resolve(), { once: true })));
    await receiver?.close();
    await mailbox;
  })();
  return { receiver, done };
}
