/**
 * A small schema library: each schema both checks a value and describes itself as a JSON Schema,
 * so the validation of a route and its OpenAPI document cannot drift apart.
 * https://spec.openapis.org/oas/v3.1.0#schema-object
 */

export type JsonSchema = Record<string, unknown>;

/**
 * A value that does not match its schema. `path` names the faulty key (`data.db1`,
 * `clusters.prod[0]`; empty for the value as a whole); `problem` completes the sentence.
 */
export class ValidationError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
    readonly kind: 'type' | 'value' | 'missing' | 'unknown',
  ) {
    super(kind === 'missing' ? `missing key "${path}"` : `"${path}" ${problem}`);
    this.name = 'ValidationError';
  }
}

export interface Schema<T> {
  readonly json: JsonSchema;
  /** What a value of this schema is, for messages: `a string`, `a list of strings`. */
  readonly noun: string;
  /** The same in the plural, for the items of a list: `strings`. */
  readonly plural: string;
  /** Returns the checked value, or throws ValidationError naming `path`. */
  parse(value: unknown, path: string): T;
}

const describe = (json: JsonSchema, description: string | undefined): JsonSchema =>
  description === undefined ? json : { ...json, description };

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

export function string(
  options: { minLength?: number; format?: string; description?: string } = {},
): Schema<string> {
  const json: JsonSchema = { type: 'string' };
  if (options.minLength !== undefined) json['minLength'] = options.minLength;
  if (options.format !== undefined) json['format'] = options.format;
  return {
    json: describe(json, options.description),
    noun: 'a string',
    plural: 'strings',
    parse(value, path) {
      if (typeof value !== 'string') throw new ValidationError(path, 'must be a string', 'type');
      if (options.minLength !== undefined && value.length < options.minLength) {
        const problem = options.minLength === 1 ? 'must not be empty' : 'is too short';
        throw new ValidationError(path, problem, 'value');
      }
      return value;
    },
  };
}

/** One of a fixed set of strings. */
export function choice<const T extends string>(
  values: readonly T[],
  description?: string,
): Schema<T> {
  return {
    json: describe({ type: 'string', enum: [...values] }, description),
    noun: 'a string',
    plural: 'strings',
    parse(value, path) {
      if (typeof value !== 'string') throw new ValidationError(path, 'must be a string', 'type');
      const found = values.find((known) => known === value);
      if (found === undefined) {
        throw new ValidationError(path, `must be one of ${values.join(', ')}`, 'value');
      }
      return found;
    },
  };
}

interface IntegerOptions {
  minimum?: number;
  maximum?: number;
  description?: string;
}

function integerJson(options: IntegerOptions): JsonSchema {
  const json: JsonSchema = { type: 'integer' };
  if (options.minimum !== undefined) json['minimum'] = options.minimum;
  if (options.maximum !== undefined) json['maximum'] = options.maximum;
  return describe(json, options.description);
}

function checkRange(value: number, path: string, options: IntegerOptions): number {
  const { minimum, maximum } = options;
  if ((minimum !== undefined && value < minimum) || (maximum !== undefined && value > maximum)) {
    const range =
      maximum === undefined ? `at least ${minimum}` : `from ${minimum ?? 'any'} to ${maximum}`;
    throw new ValidationError(path, `must be an integer ${range}`, 'value');
  }
  return value;
}

export function integer(options: IntegerOptions = {}): Schema<number> {
  return {
    json: integerJson(options),
    noun: 'an integer',
    plural: 'integers',
    parse(value, path) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        throw new ValidationError(path, 'must be an integer', 'type');
      }
      return checkRange(value, path, options);
    },
  };
}

export function number(description?: string): Schema<number> {
  return {
    json: describe({ type: 'number' }, description),
    noun: 'a number',
    plural: 'numbers',
    parse(value, path) {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new ValidationError(path, 'must be a number', 'type');
      }
      return value;
    },
  };
}

/** An integer written as decimal digits: a path segment or a query parameter. */
export function integerText(options: IntegerOptions = {}): Schema<number> {
  return {
    json: integerJson(options),
    noun: 'an integer',
    plural: 'integers',
    parse(value, path) {
      const text = typeof value === 'string' ? value.trim() : '';
      const number = /^-?\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
      if (!Number.isSafeInteger(number)) {
        throw new ValidationError(path, 'must be an integer', 'type');
      }
      return checkRange(number, path, options);
    },
  };
}

export function boolean(description?: string): Schema<boolean> {
  return {
    json: describe({ type: 'boolean' }, description),
    noun: 'a boolean',
    plural: 'booleans',
    parse(value, path) {
      if (typeof value !== 'boolean') {
        throw new ValidationError(path, 'must be a boolean (true or false)', 'type');
      }
      return value;
    },
  };
}

/** Any JSON value; for responses that relay stored data (claims, after-images). */
export function anyValue(description?: string): Schema<unknown> {
  return {
    json: describe({}, description),
    noun: 'a JSON value',
    plural: 'JSON values',
    parse: (value) => value,
  };
}

export function nullable<T>(schema: Schema<T>): Schema<T | null> {
  const { type } = schema.json;
  const json =
    typeof type === 'string'
      ? { ...schema.json, type: [type, 'null'] }
      : { oneOf: [schema.json, { type: 'null' }] };
  return {
    json,
    noun: `${schema.noun} or null`,
    plural: `${schema.plural} or nulls`,
    parse: (value, path) => (value === null ? null : schema.parse(value, path)),
  };
}

/**
 * A list. An item of the wrong type is reported on the list (`"data.db1" must be a list of
 * strings`), which reads better than an index; an item with a wrong value is reported by index.
 */
export function array<T>(item: Schema<T>, description?: string): Schema<T[]> {
  const noun = `a list of ${item.plural}`;
  return {
    json: describe({ type: 'array', items: item.json }, description),
    noun,
    plural: `lists of ${item.plural}`,
    parse(value, path) {
      if (!Array.isArray(value)) throw new ValidationError(path, `must be ${noun}`, 'type');
      return value.map((element, index) => {
        try {
          return item.parse(element, `${path}[${index}]`);
        } catch (error) {
          if (error instanceof ValidationError && error.kind === 'type') {
            throw new ValidationError(path, `must be ${noun}`, 'type');
          }
          throw error;
        }
      });
    },
  };
}

/** An object whose keys are free (cluster names) and whose values all match one schema. */
export function record<T>(value: Schema<T>, description?: string): Schema<Record<string, T>> {
  const noun = `an object of ${value.plural}`;
  return {
    json: describe({ type: 'object', additionalProperties: value.json }, description),
    noun,
    plural: `objects of ${value.plural}`,
    parse(input, path) {
      if (!isPlainObject(input)) throw new ValidationError(path, `must be ${noun}`, 'type');
      // No prototype, so that a key such as `constructor` is only ever data.
      const result: Record<string, T> = Object.create(null);
      for (const [key, element] of Object.entries(input)) {
        result[key] = value.parse(element, join(path, key));
      }
      return result;
    },
  };
}

export interface Field<T, R extends boolean> {
  schema: Schema<T>;
  required: R;
}

export const required = <T>(schema: Schema<T>): Field<T, true> => ({ schema, required: true });
export const optional = <T>(schema: Schema<T>): Field<T, false> => ({ schema, required: false });

type Fields = Record<string, Field<unknown, boolean>>;

export type ObjectOf<F extends Fields> = {
  [K in keyof F]: F[K] extends Field<infer T, infer R>
    ? R extends true
      ? T
      : T | undefined
    : never;
};

/**
 * An object with known keys. `strict` refuses keys the schema does not name, so that a
 * misspelt option (`dryrun`) fails instead of being ignored; the original's routes are not
 * strict, since its clients may send more than it read.
 */
export function object<F extends Fields>(
  fields: F,
  options: { strict?: boolean; description?: string } = {},
): Schema<ObjectOf<F>> {
  const properties: Record<string, JsonSchema> = {};
  const requiredKeys: string[] = [];
  for (const [key, field] of Object.entries(fields)) {
    properties[key] = field.schema.json;
    if (field.required) requiredKeys.push(key);
  }
  const json: JsonSchema = { type: 'object', properties };
  if (requiredKeys.length > 0) json['required'] = requiredKeys;
  if (options.strict === true) json['additionalProperties'] = false;
  return {
    json: describe(json, options.description),
    noun: 'an object',
    plural: 'objects',
    parse(value, path) {
      if (!isPlainObject(value)) throw new ValidationError(path, 'must be an object', 'type');
      const result: Record<string, unknown> = {};
      for (const [key, field] of Object.entries(fields)) {
        const element = Object.hasOwn(value, key) ? value[key] : undefined;
        if (element === undefined) {
          if (field.required) throw new ValidationError(join(path, key), '', 'missing');
          result[key] = undefined;
        } else {
          result[key] = field.schema.parse(element, join(path, key));
        }
      }
      if (options.strict === true) {
        const unknown = Object.keys(value).find((key) => !Object.hasOwn(fields, key));
        if (unknown !== undefined) {
          const known = Object.keys(fields).join(', ') || 'none';
          throw new ValidationError(
            join(path, unknown),
            `is not known (known: ${known})`,
            'unknown',
          );
        }
      }
      return result as ObjectOf<F>;
    },
  };
}

/** A schema whose check is a function: for values with their own parser (durations). */
export function custom<T>(
  json: JsonSchema,
  noun: string,
  parse: (value: unknown) => T | undefined,
): Schema<T> {
  return {
    json,
    noun,
    plural: noun,
    parse(value, path) {
      const parsed = parse(value);
      if (parsed === undefined) throw new ValidationError(path, `must be ${noun}`, 'type');
      return parsed;
    },
  };
}
