/**
 * Literals for people: renders a value captured in PostgreSQL's binary format as SQL text, for
 * the displayed form of an undo. Nothing rendered here is executed; undo statements bind the
 * binary values themselves. A type this file does not know renders as undefined, and the caller
 * keeps the `$n` placeholder with a type hint instead.
 * Binary formats: the `*send` functions of PostgreSQL's src/backend/utils/adt.
 */

/** Built-in type OIDs (pg_type.dat); stable across every PostgreSQL installation. */
export const TypeOid = {
  BOOL: 16,
  BYTEA: 17,
  NAME: 19,
  INT8: 20,
  INT2: 21,
  INT4: 23,
  TEXT: 25,
  OID: 26,
  JSON: 114,
  FLOAT4: 700,
  FLOAT8: 701,
  BPCHAR: 1042,
  VARCHAR: 1043,
  DATE: 1082,
  TIME: 1083,
  TIMESTAMP: 1114,
  TIMESTAMPTZ: 1184,
  INTERVAL: 1186,
  NUMERIC: 1700,
  UUID: 2950,
  JSONB: 3802,
} as const;

const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;

/** A string literal; standard_conforming_strings (on since 9.1) keeps backslashes literal. */
export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** The literal for a binary value of type `oid`, or undefined when this type is not rendered. */
export function renderLiteral(oid: number, value: Buffer | null): string | undefined {
  if (value === null) return 'NULL';
  try {
    return renderValue(oid, value);
  } catch {
    // A value shorter than its type's binary format: show the placeholder rather than guess.
    return undefined;
  }
}

function renderValue(oid: number, v: Buffer): string | undefined {
  switch (oid) {
    case TypeOid.BOOL:
      return v.length === 1 ? (v[0] ? 'true' : 'false') : undefined;
    case TypeOid.INT2:
      return String(v.readInt16BE(0));
    case TypeOid.INT4:
      return String(v.readInt32BE(0));
    case TypeOid.INT8:
      return String(v.readBigInt64BE(0));
    case TypeOid.OID:
      return String(v.readUInt32BE(0));
    case TypeOid.TEXT:
    case TypeOid.VARCHAR:
    case TypeOid.BPCHAR:
    case TypeOid.NAME:
      return quoteLiteral(v.toString('utf8'));
    case TypeOid.NUMERIC:
      return renderNumeric(v);
    case TypeOid.FLOAT4:
      return renderFloat(shortestFloat4(v.readFloatBE(0)), 'real');
    case TypeOid.FLOAT8:
      return renderFloat(v.readDoubleBE(0), 'double precision');
    case TypeOid.UUID:
      return v.length === 16 ? `${quoteLiteral(formatUuid(v))}::uuid` : undefined;
    case TypeOid.JSON:
      return `${quoteLiteral(v.toString('utf8'))}::json`;
    case TypeOid.JSONB:
      // jsonb_send writes a format version byte (1) before the text.
      return v[0] === 1 ? `${quoteLiteral(v.subarray(1).toString('utf8'))}::jsonb` : undefined;
    case TypeOid.BYTEA:
      return `'\\x${v.toString('hex')}'::bytea`;
    case TypeOid.DATE:
      return cast(formatDate(v.readInt32BE(0)), 'date');
    case TypeOid.TIMESTAMP:
      return cast(formatTimestamp(v.readBigInt64BE(0), ''), 'timestamp');
    case TypeOid.TIMESTAMPTZ:
      return cast(formatTimestamp(v.readBigInt64BE(0), '+00'), 'timestamptz');
    case TypeOid.TIME:
      return cast(formatTime(v.readBigInt64BE(0)), 'time');
    case TypeOid.INTERVAL:
      return cast(
        formatInterval(v.readBigInt64BE(0), v.readInt32BE(8), v.readInt32BE(12)),
        'interval',
      );
    default:
      return undefined;
  }
}

function cast(text: string | undefined, type: string): string | undefined {
  return text === undefined ? undefined : `${quoteLiteral(text)}::${type}`;
}

/**
 * numeric_send: int16 ndigits, int16 weight, uint16 sign, int16 dscale, then ndigits base-10000
 * digits; the value is the sum of digit[i] * 10000^(weight - i), shown with dscale decimals.
 */
function renderNumeric(v: Buffer): string {
  const ndigits = v.readInt16BE(0);
  const weight = v.readInt16BE(2);
  const sign = v.readUInt16BE(4);
  const dscale = v.readInt16BE(6);
  if (sign === 0xc000) return `'NaN'::numeric`;
  if (sign === 0xd000) return `'Infinity'::numeric`;
  if (sign === 0xf000) return `'-Infinity'::numeric`;
  const digit = (i: number): number => (i >= 0 && i < ndigits ? v.readInt16BE(8 + 2 * i) : 0);
  let whole = '';
  for (let i = 0; i <= weight; i++) {
    const d = String(digit(i));
    whole += i === 0 ? d : d.padStart(4, '0');
  }
  if (whole === '') whole = '0';
  let fraction = '';
  for (let i = weight + 1; fraction.length < dscale; i++) {
    fraction += String(digit(i)).padStart(4, '0');
  }
  const text = dscale > 0 ? `${whole}.${fraction.slice(0, dscale)}` : whole;
  return sign === 0x4000 ? `-${text}` : text;
}

/** The shortest decimal that reads back as the same float4, as PostgreSQL 12+ prints it. */
function shortestFloat4(value: number): number {
  if (!Number.isFinite(value)) return value;
  for (let precision = 1; precision < 10; precision++) {
    const candidate = Number(value.toPrecision(precision));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}

function renderFloat(value: number, type: string): string {
  if (Number.isNaN(value)) return `'NaN'::${type}`;
  if (value === Number.POSITIVE_INFINITY) return `'Infinity'::${type}`;
  if (value === Number.NEGATIVE_INFINITY) return `'-Infinity'::${type}`;
  if (Object.is(value, -0)) return `'-0'::${type}`;
  return String(value);
}

function formatUuid(v: Buffer): string {
  const hex = v.toString('hex');
  const groups = [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20)];
  return `${groups.join('-')}-${hex.slice(20)}`;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * `YYYY-MM-DD` of a day counted from 1970-01-01 in the proleptic Gregorian calendar, as
 * PostgreSQL writes it (`0044-03-15 BC`); integer arithmetic, since PostgreSQL's range (to year
 * 5874897) is far past what a JavaScript Date holds. Counts 400-year eras of 146097 days, then
 * the year within the era, with years starting in March so that leap days come last.
 */
function formatDay(unixDays: number): string {
  const z = unixDays + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear =
    dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const rest = `${pad(month)}-${pad(day)}`;
  return year > 0 ? `${pad(year, 4)}-${rest}` : `${pad(1 - year, 4)}-${rest} BC`;
}

/** Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch for dates and timestamps. */
const PG_EPOCH_DAYS = 10_957;

/** date_send: int32 days since 2000-01-01; the int32 extremes are ±infinity. */
function formatDate(days: number): string {
  if (days === INT32_MAX) return 'infinity';
  if (days === INT32_MIN) return '-infinity';
  return formatDay(PG_EPOCH_DAYS + days);
}

/** timestamp_send: int64 microseconds since 2000-01-01 00:00 (UTC for timestamptz). */
function formatTimestamp(micros: bigint, zone: string): string {
  if (micros === INT64_MAX) return 'infinity';
  if (micros === INT64_MIN) return '-infinity';
  const days = floorDiv(micros, 86_400_000_000n);
  const day = formatDay(PG_EPOCH_DAYS + Number(days));
  const time = formatTime(micros - days * 86_400_000_000n);
  return day.endsWith(' BC') ? `${day.slice(0, -3)} ${time}${zone} BC` : `${day} ${time}${zone}`;
}

/** time_send: int64 microseconds since midnight. */
function formatTime(micros: bigint): string {
  const total = Number(micros);
  const seconds = Math.floor(total / 1_000_000);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${pad(h)}:${pad(m)}:${pad(seconds % 60)}${fractionOf(total % 1_000_000)}`;
}

/** interval_send: int64 microseconds, int32 days, int32 months; all extremes are ±infinity. */
function formatInterval(micros: bigint, days: number, months: number): string {
  if (micros === INT64_MAX && days === INT32_MAX && months === INT32_MAX) return 'infinity';
  if (micros === INT64_MIN && days === INT32_MIN && months === INT32_MIN) return '-infinity';
  // Under IntervalStyle sql_standard a leading minus applies to every field that has no sign of
  // its own, so when any field is negative every field carries its sign.
  const signed = months < 0 || days < 0 || micros < 0n;
  const sign = (negative: boolean) => (negative ? '-' : signed ? '+' : '');
  const parts: string[] = [];
  if (months !== 0) parts.push(`${sign(months < 0)}${Math.abs(months)} mons`);
  if (days !== 0) parts.push(`${sign(days < 0)}${Math.abs(days)} days`);
  if (micros !== 0n || parts.length === 0) {
    const abs = micros < 0n ? -micros : micros;
    const hours = abs / 3_600_000_000n;
    parts.push(
      `${sign(micros < 0n)}${pad(Number(hours))}:${formatTime(abs % 3_600_000_000n).slice(3)}`,
    );
  }
  return parts.join(' ');
}

/** `.ffffff` without trailing zeros, or nothing for a whole second. */
function fractionOf(micros: number): string {
  return micros === 0 ? '' : `.${pad(micros, 6).replace(/0+$/, '')}`;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}
