/**
 * Field checks for JSON run configs: a config is described by nested checks (objects with their allowed keys,
 * numbers with bounds, strings out of a list, ...) and `checkConfig` walks it, failing on the first unknown key or
 * wrong value with a message that names the file and the key's dotted path (`model.anchors.minScale`).
 */
import { promises as fs } from 'node:fs';

/** Thrown on the first problem; the message is `<file>: "<key>" <why>`. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly key: string,
    readonly why: string,
  ) {
    super(`${file}: "${key}" ${why}`);
    this.name = 'ConfigError';
  }
}

/** Checks `value` found at `key` (a dotted path; '' for the root); reports a problem through `fail`. */
export type Check = (value: unknown, key: string, fail: (key: string, why: string) => never) => void;

/** A field of an object check; `optional(...)` fields may be absent (an explicit null counts as present). */
export interface OptionalField {
  optional: Check;
}
export type Field = Check | OptionalField;

export function optional(check: Check): OptionalField {
  return { optional: check };
}

const at = (parent: string, k: string | number): string => (typeof k === 'number' ? `${parent}[${k}]` : parent === '' ? k : `${parent}.${k}`);
const shown = (value: unknown): string =>
  typeof value === 'string' ? `'${value}'` : typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));

/** An object with exactly these keys (the optional ones may be absent); any other key is an error. */
export function object(fields: Record<string, Field>): Check {
  return (value, key, fail) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(key || '(root)', `must be an object, got ${shown(value)}`);
    const v = value as Record<string, unknown>;
    for (const k of Object.keys(v)) {
      if (!Object.hasOwn(fields, k)) return fail(at(key, k), `is not a known key (expected one of ${Object.keys(fields).join(', ')})`);
    }
    for (const [k, field] of Object.entries(fields)) {
      const isOptional = typeof field !== 'function';
      if (!Object.hasOwn(v, k)) {
        if (!isOptional) return fail(at(key, k), 'is required');
        continue;
      }
      (isOptional ? field.optional : field)(v[k], at(key, k), fail);
    }
  };
}

/** An object whose `tag` field picks one of several object checks (e.g. a backbone's `type`). */
export function tagged(tag: string, variants: Record<string, Record<string, Field>>): Check {
  const checks = Object.fromEntries(Object.entries(variants).map(([name, fields]) => [name, object({ [tag]: string(), ...fields })]));
  return (value, key, fail) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(key || '(root)', `must be an object, got ${shown(value)}`);
    const name = (value as Record<string, unknown>)[tag];
    if (typeof name !== 'string' || !Object.hasOwn(checks, name)) {
      return fail(at(key, tag), `must be one of ${Object.keys(variants).join(', ')}, got ${shown(name)}`);
    }
    checks[name]!(value, key, fail);
  };
}

export interface NumberBounds {
  /** value >= min */
  min?: number;
  /** value > above */
  above?: number;
  /** value <= max */
  max?: number;
  /** value < below */
  below?: number;
  integer?: boolean;
}

/** A finite number within the bounds. */
export function number(bounds: NumberBounds = {}): Check {
  const { min, above, max, below, integer } = bounds;
  const limits = [
    min !== undefined ? `>= ${min}` : '',
    above !== undefined ? `> ${above}` : '',
    max !== undefined ? `<= ${max}` : '',
    below !== undefined ? `< ${below}` : '',
  ];
  const what = [integer ? 'an integer' : 'a number', limits.filter((s) => s !== '').join(' and ')].join(' ').trimEnd();
  return (value, key, fail) => {
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (!integer || Number.isInteger(value)) &&
      (min === undefined || value >= min) &&
      (above === undefined || value > above) &&
      (max === undefined || value <= max) &&
      (below === undefined || value < below);
    if (!ok) return fail(key, `must be ${what}, got ${shown(value)}`);
  };
}

/** A string; with `values`, one of them. */
export function string(values?: readonly string[]): Check {
  return (value, key, fail) => {
    if (typeof value !== 'string') return fail(key, `must be a string, got ${shown(value)}`);
    if (values !== undefined && !values.includes(value)) return fail(key, `must be one of ${values.join(', ')}, got ${shown(value)}`);
  };
}

export function boolean(): Check {
  return (value, key, fail) => {
    if (typeof value !== 'boolean') return fail(key, `must be true or false, got ${shown(value)}`);
  };
}

/** An array whose items pass `item`; `length` fixes its length, `minLength` bounds it. */
export function array(item: Check, options: { length?: number; minLength?: number } = {}): Check {
  return (value, key, fail) => {
    if (!Array.isArray(value)) return fail(key, `must be an array, got ${shown(value)}`);
    if (options.length !== undefined && value.length !== options.length) return fail(key, `must have ${options.length} items, got ${value.length}`);
    if (options.minLength !== undefined && value.length < options.minLength) return fail(key, `must have at least ${options.minLength} item(s), got ${value.length}`);
    value.forEach((v, i) => item(v, at(key, i), fail));
  };
}

/** null, or what `check` accepts. */
export function nullable(check: Check): Check {
  return (value, key, fail) => {
    if (value !== null) check(value, key, fail);
  };
}

/** The first of `checks` that accepts the value; otherwise `what` names what was expected. */
export function either(what: string, ...checks: Check[]): Check {
  return (value, key, fail) => {
    for (const check of checks) {
      try {
        check(value, key, (k, why) => {
          throw new ConfigError('', k, why);
        });
        return;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
    }
    fail(key, `must be ${what}, got ${shown(value)}`);
  };
}

/** Checks a parsed config against `check`; returns it typed as T or throws a ConfigError naming `file`. */
export function checkConfig<T>(raw: unknown, check: Check, file: string): T {
  check(raw, '', (key, why) => {
    throw new ConfigError(file, key, why);
  });
  return raw as T;
}

/** Reads and parses a JSON config file; unreadable files and bad JSON are errors naming the file. */
export async function readJsonConfig(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read config (${(err as Error).message})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
}
