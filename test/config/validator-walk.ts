import { getAt, pathText, problemsOf, setAt, type RawConfig, type Segment } from './settings.js';

/** An object whose keys the validator checks, as it lists them in an unknown-key problem. */
export interface ValidatorSection {
  label: string;
  keys: string[];
}

const PROBE = 'taskqProbe';
const KNOWN_KEYS = 'is not a known setting; known settings here: ';
const CHOICES = /^must be one of (.+) \(got "taskqProbe"\)$/;

/**
 * Finds what the validator checks by asking it, without reading its source: an unknown key put
 * into an object makes it list the keys it knows there, and an unknown word given to a setting
 * makes it list the choices it takes. A setting whose choices change the known keys beside it
 * (a broker's `type`) splits the object into variants, each explored on its own.
 */
export function walkValidator(base: RawConfig) {
  const sections: ValidatorSection[] = [];
  const choices = new Map<string, string[]>();

  const explore = (at: Segment[], label: string, around: RawConfig, fixed: Set<string>): void => {
    const keys = knownKeys(around, at);
    if (!keys) return;

    for (const key of keys) {
      if (fixed.has(key)) continue;
      const found = choicesOf(around, [...at, key]);
      if (!found) continue;
      choices.set(found.path, found.choices);
      const variants = found.choices.map((choice) => setAt(around, [...at, key], choice));
      const shapes = new Set(variants.map((variant) => knownKeys(variant, at)?.join(',')));
      if (shapes.size === 1) continue;
      found.choices.forEach((choice, index) =>
        explore(at, `${label}{${key}=${choice}}`, variants[index]!, new Set([...fixed, key])),
      );
      return;
    }

    sections.push({ label: label || '(top level)', keys });
    for (const key of keys) {
      const child = [...at, key];
      const childLabel = label ? `${label}.${key}` : key;
      const asObject = setAt(around, child, {});
      if (knownKeys(asObject, child)) {
        explore(child, childLabel, asObject, new Set());
        continue;
      }
      const asList = Array.isArray(getAt(around, child)) ? around : setAt(around, child, [{}]);
      if (knownKeys(asList, [...child, 0]))
        explore([...child, 0], `${childLabel}[0]`, asList, new Set());
    }
  };

  explore([], '', base, new Set());
  return { sections, choices };
}

/** The keys the validator knows in the object at `at`, or null if it is no such object. */
function knownKeys(around: RawConfig, at: Segment[]): string[] | null {
  const where = pathText([...at, PROBE]);
  const problem = problemsOf(setAt(around, [...at, PROBE], true)).find(
    (candidate) => candidate.path === where && candidate.message.startsWith(KNOWN_KEYS),
  );
  return problem ? problem.message.slice(KNOWN_KEYS.length).split(', ') : null;
}

/** The choices the validator offers for the setting at `at`, and the path it reports them at. */
function choicesOf(around: RawConfig, at: Segment[]): { path: string; choices: string[] } | null {
  const prefix = pathText(at);
  for (const problem of problemsOf(setAt(around, at, PROBE))) {
    const match = CHOICES.exec(problem.message);
    if (match && problem.path.startsWith(prefix))
      return { path: problem.path, choices: match[1]!.split(', ') };
  }
  return null;
}
