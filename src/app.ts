import type { Config } from './config.ts';
import { loadContent } from './content/load-content.ts';
import type { Content } from './content/model.ts';
import { createMessageSigner, type MessageSigner } from './delivery/dkim.ts';
import { resolveSecret, TokenSigner } from './links/tokens.ts';
import { loadEmailTemplates, type EmailTemplates } from './render/email-templates.ts';

/** The composition root: every adapter and shared service of one process, built on first use. */
export interface App {
  readonly config: Config;
  /** The clock; tests inject their own. */
  now(): Date;
  /** Loads and validates content/ afresh (editors change it while the server runs). */
  content(options?: { baseUrl?: string | undefined }): Promise<Content>;
  emailTemplates(): Promise<EmailTemplates>;
  tokens(): Promise<TokenSigner>;
  signMessage(): Promise<MessageSigner>;
}

/** Overrides for tests: a fixed clock. */
export interface AppOverrides {
  now?: () => Date;
}

/** Builds the App from validated configuration; nothing is opened until first asked for. */
export function createApp(config: Config, overrides: AppOverrides = {}): App {
  const once = <T>(make: () => Promise<T>): (() => Promise<T>) => {
    let value: Promise<T> | undefined;
    return () => (value ??= make());
  };
  return {
    config,
    now: overrides.now ?? (() => new Date()),
    content: (options) => loadContent(config.contentDir, { baseUrl: options?.baseUrl ?? config.baseUrl }),
    emailTemplates: once(() => loadEmailTemplates(config.templatesDir)),
    tokens: once(async () => new TokenSigner(await resolveSecret(config.secret, config.dataDir))),
    signMessage: once(() => createMessageSigner(config.dkim)),
  };
}
