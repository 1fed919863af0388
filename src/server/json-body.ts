import { InputError } from '../errors.ts';

/** The body as a JSON object with only `known` fields; InputError naming what is wrong otherwise. */
export function objectBody(body: unknown, known: string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InputError('body: expected a JSON object');
  const unknown = Object.keys(body).filter((key) => !known.includes(key));
  if (unknown.length > 0) throw new InputError(`unknown field ${unknown.map((k) => `"${k.slice(0, 40)}"`).join(', ')} (known: ${known.join(', ')})`);
  return body as Record<string, unknown>;
}

/** A text field, or undefined when absent or null. */
export function optionalText(fields: Record<string, unknown>, key: string): string | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new InputError(`${key}: expected text`);
  return value;
}

/** A true/false field, or undefined when absent or null. */
export function optionalFlag(fields: Record<string, unknown>, key: string): boolean | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new InputError(`${key}: expected true or false`);
  return value;
}
