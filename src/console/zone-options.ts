import { canonicalTimeZone } from '../schedule/zone-time.ts';

let zones: string[] | undefined;

/**
 * Every IANA zone under its current name, UTC first: Node 20's list still spells some the old way
 * (Europe/Kiev), and an editor looks for the name they know.
 */
export function timeZones(): readonly string[] {
  zones ??= ['UTC', ...[...new Set(Intl.supportedValuesOf('timeZone').map(currentName))].filter((zone) => zone !== 'UTC').sort()];
  return zones;
}

/** The zones as <option>s for a template: `{ value, selected }`, with `selected` (if known) chosen. */
export function timeZoneOptions(selected: string | undefined): { value: string; selected: boolean }[] {
  const list = selected && !timeZones().includes(selected) ? [selected, ...timeZones()] : timeZones();
  return list.map((value) => ({ value, selected: value === selected }));
}

function currentName(zone: string): string {
  try {
    return canonicalTimeZone(zone);
  } catch {
    return zone;
  }
}
