import { verify, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { GazetteError, InputError } from '../../errors.ts';

/** An Amazon SNS message as posted to an HTTPS subscription, before its signature is checked. */
export interface SnsMessage {
  Type: 'Notification' | 'SubscriptionConfirmation' | 'UnsubscribeConfirmation';
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  SignatureVersion: string;
  Signature: string;
  SigningCertURL: string;
  Subject?: string | undefined;
  SubscribeURL?: string | undefined;
  Token?: string | undefined;
}

/** What SNS verification needs from the outside world; the default is createSnsClient(). */
export interface SnsClient {
  /** The PEM certificate at a SigningCertURL already checked to be on an SNS host. */
  fetchCertificate(url: string): Promise<string>;
  /** Visits a SubscriptionConfirmation's SubscribeURL, which confirms the subscription. */
  confirmSubscription(subscribeUrl: string): Promise<void>;
}

/** Options of createSnsClient, each with its default. */
export interface SnsClientOptions {
  /** The fetch used; default the global one. */
  fetch?: typeof globalThis.fetch;
  /** How long one request may take; default 5 s. */
  timeoutMs?: number;
  /** Certificates kept in memory; default 20 (SNS rotates them rarely). */
  maxCertificates?: number;
}

/** How old a message may be; SNS retries keep the first Timestamp, and an older one is a replay. */
export const SNS_MAX_AGE_MS = 60 * 60_000;
// Clocks drift: a message a little in the future is still plausible.
const MAX_SKEW_MS = 5 * 60_000;
const MAX_CERTIFICATE_BYTES = 64 * 1024;
const SNS_HOST = /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;

const messageSchema = z.object({
  Type: z.enum(['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation']),
  MessageId: z.string().min(1),
  TopicArn: z.string().min(1),
  Message: z.string(),
  Timestamp: z.string(),
  SignatureVersion: z.string(),
  Signature: z.string().min(1),
  SigningCertURL: z.string(),
  Subject: z.string().nullish().transform((value) => value ?? undefined),
  SubscribeURL: z.string().optional(),
  Token: z.string().optional(),
});

/** Reads a parsed JSON body as an SNS message; throws InputError naming the first wrong field. */
export function parseSnsMessage(body: unknown): SnsMessage {
  const parsed = messageSchema.safeParse(body);
  if (!parsed.success) throw new InputError(`SNS message: ${describe(parsed.error)}`);
  const message = parsed.data;
  if (message.Type !== 'Notification' && (message.SubscribeURL === undefined || message.Token === undefined)) {
    throw new InputError(`SNS message: a ${message.Type} needs SubscribeURL and Token`);
  }
  return message;
}

/** The string SNS signs: each field's name and value on their own lines, in AWS's documented order. */
export function snsStringToSign(message: SnsMessage): string {
  const fields: (keyof SnsMessage)[] =
    message.Type === 'Notification'
      ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return fields
    .filter((field) => message[field] !== undefined)
    .map((field) => `${field}\n${message[field]}\n`)
    .join('');
}

/** True for an https URL on an SNS host of any region (`sns.<region>.amazonaws.com[.cn]`), on the default port. */
export function isSnsUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return parsed.protocol === 'https:' && parsed.port === '' && parsed.username === '' && parsed.password === '' && SNS_HOST.test(parsed.hostname);
}

/** Options of verifySnsMessage. */
export interface SnsVerifyOptions {
  /** The topics whose messages are taken. */
  topicArns: readonly string[];
  client: Pick<SnsClient, 'fetchCertificate'>;
  now: Date;
}

/**
 * Why an SNS message is refused (wrong topic, certificate not on an SNS host, too old, bad
 * signature), or undefined when it is genuine. Rejects only when the certificate could not be fetched.
 */
export async function snsRefusal(message: SnsMessage, options: SnsVerifyOptions): Promise<string | undefined> {
  if (!options.topicArns.includes(message.TopicArn)) return `topic ${message.TopicArn.slice(0, 200)} is not one of GAZETTE_SES_TOPIC_ARNS`;
  const algorithm = ({ '1': 'sha1', '2': 'sha256' } as Record<string, string>)[message.SignatureVersion];
  if (!algorithm) return `SignatureVersion ${JSON.stringify(message.SignatureVersion.slice(0, 10))} is not 1 or 2`;
  if (!isSnsUrl(message.SigningCertURL) || !new URL(message.SigningCertURL).pathname.endsWith('.pem')) {
    return 'SigningCertURL is not a .pem on an https sns.<region>.amazonaws.com host';
  }
  if (message.SubscribeURL !== undefined && !isSnsUrl(message.SubscribeURL)) return 'SubscribeURL is not on an https SNS host';
  const sent = Date.parse(message.Timestamp);
  const now = options.now.getTime();
  if (Number.isNaN(sent)) return 'Timestamp is not a date';
  if (now - sent > SNS_MAX_AGE_MS) return `Timestamp ${message.Timestamp.slice(0, 40)} is more than an hour old`;
  if (sent - now > MAX_SKEW_MS) return `Timestamp ${message.Timestamp.slice(0, 40)} is in the future`;
  const pem = await options.client.fetchCertificate(message.SigningCertURL);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch {
    return 'the signing certificate is not a valid X.509 certificate';
  }
  if (now < Date.parse(certificate.validFrom) || now > Date.parse(certificate.validTo)) return 'the signing certificate is not valid now';
  const signature = Buffer.from(message.Signature, 'base64');
  const genuine = verify(algorithm, Buffer.from(snsStringToSign(message), 'utf8'), certificate.publicKey, signature);
  return genuine ? undefined : 'the signature does not match the message';
}

/** The SNS client over fetch: certificates cached in memory, every URL checked to be an SNS one first. */
export function createSnsClient(options: SnsClientOptions = {}): SnsClient {
  const fetchFn = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxCertificates = options.maxCertificates ?? 20;
  // Promises, so that concurrent notifications share one download.
  const certificates = new Map<string, Promise<string>>();

  const get = async (url: string, what: string): Promise<Response> => {
    if (!isSnsUrl(url)) throw new GazetteError('SNS_URL_REFUSED', `${what} is not on an https SNS host`);
    // No redirects: the host check would mean nothing if SNS's URL could send us elsewhere.
    const response = await fetchFn(url, { redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new GazetteError('SNS_REQUEST_FAILED', `${what}: SNS answered ${response.status}`);
    return response;
  };

  const download = async (url: string): Promise<string> => {
    const response = await get(url, 'the signing certificate');
    const text = await response.text();
    if (text.length > MAX_CERTIFICATE_BYTES || !text.includes('-----BEGIN CERTIFICATE-----')) {
      throw new GazetteError('SNS_REQUEST_FAILED', 'the signing certificate URL did not answer with a PEM certificate');
    }
    return text;
  };

  return {
    fetchCertificate(url) {
      const cached = certificates.get(url);
      if (cached) return cached;
      const loading = download(url);
      certificates.set(url, loading);
      // A failed download is forgotten, so the next notification tries again.
      loading.catch(() => certificates.delete(url));
      if (certificates.size > maxCertificates) certificates.delete(certificates.keys().next().value!);
      return loading;
    },
    async confirmSubscription(subscribeUrl) {
      await (await get(subscribeUrl, 'SubscribeURL')).arrayBuffer();
    },
  };
}

function describe(error: z.ZodError): string {
  return error.issues.slice(0, 3).map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
}
