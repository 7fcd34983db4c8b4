/** The environment that `${VAR}` references read; `process.env` in production. */
export type Env = Readonly<Record<string, string | undefined>>;

export type Interpolated =
  | { ok: true; value: string; usedDefault: boolean }
  | { ok: false; problems: string[] };

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?$/s;

/**
 * Replace environment references in a string scalar, with the shell's meaning:
 * `${VAR}` (an error when unset), `${VAR:-default}` (default when unset or empty),
 * `${VAR-default}` (default only when unset). `$${` writes a literal `${`.
 * A default is taken literally up to the first `}`; references do not nest.
 * When `sensitive`, problems do not quote the text (it may be part of a password).
 */
export function interpolate(text: string, env: Env, sensitive = false): Interpolated {
  if (!text.includes('${')) return { ok: true, value: text, usedDefault: false };
  const problems: string[] = [];
  let value = '';
  let usedDefault = false;
  let at = 0;
  for (;;) {
    const start = text.indexOf('${', at);
    if (start < 0) {
      value += text.slice(at);
      break;
    }
    if (start > 0 && text[start - 1] === '$') {
      value += text.slice(at, start - 1) + '${';
      at = start + 2;
      continue;
    }
    value += text.slice(at, start);
    const end = text.indexOf('}', start + 2);
    if (end < 0) {
      problems.push('unclosed `${`; write `$${` for a literal `${`');
      break;
    }
    const expression = text.slice(start + 2, end);
    at = end + 1;
    const match = REFERENCE.exec(expression);
    if (match === null) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: it shows the file's ${VAR} syntax
      const shown = sensitive ? '${...}' : `\${${expression}}`;
      problems.push(
        `\`${shown}\` is not an environment reference; expected \${NAME} or \${NAME:-default} ` +
          '(`$${` writes a literal `${`)',
      );
      continue;
    }
    const [, name = '', operator, fallback = ''] = match;
    const set = env[name];
    if (set !== undefined && !(operator === ':-' && set === '')) {
      value += set;
    } else if (operator !== undefined) {
      value += fallback;
      usedDefault = true;
    } else {
      problems.push(
        `environment variable ${name} is not set (write \${${name}:-default} to give a default)`,
      );
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value, usedDefault };
}
