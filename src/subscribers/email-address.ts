/** A checked email address: as given (trimmed) and the key it is unique by. */
export interface EmailAddress {
  address: string;
  key: string;
}

// Pragmatic RFC 5321 shape: dot-atom local part, a domain with a dot, no spaces.
const LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const DOMAIN = /^(?=.{1,253}$)([A-Za-z0-9\u00a1-\uffff]([A-Za-z0-9\u00a1-\uffff-]{0,61}[A-Za-z0-9\u00a1-\uffff])?\.)+[A-Za-z\u00a1-\uffff]{2,63}$/;

/** Checks an address (syntax, at most 254 characters, no CR/LF); returns the reason when it is not one. */
export function parseEmailAddress(input: unknown): EmailAddress | { error: string } {
  if (typeof input !== 'string') return { error: 'email: expected an email address' };
  if (/[\r\n]/.test(input)) return { error: 'email: must not contain line breaks' };
  const address = input.trim();
  if (address === '') return { error: 'email: required' };
  if (address.length > 254) return { error: `email: at most 254 characters (got ${address.length})` };
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (at < 1 || local.length > 64 || !LOCAL.test(local) || !DOMAIN.test(domain)) {
    return { error: `email: "${address.length > 60 ? `${address.slice(0, 57)}...` : address}" is not a valid email address` };
  }
  return { address, key: address.toLowerCase() };
}
