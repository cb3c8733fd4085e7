// Minimal YAML writer for the generated server configs (block style, JSON-quoted strings).
//
// Why not a library: the suite should depend on nothing but the client. The subset needed is
// small: maps, lists, strings, numbers, booleans, null, plus `raw()` for directives such as
// `fileLoad(users.yml)` that deepstream substitutes textually *before* parsing, so they must
// appear unquoted.
//
// Note: the reference server strips everything after a `#` on every line before parsing
// (server.md §1.2 quirk), so values containing `#` must be avoided.

const RAW = Symbol('raw yaml');

/** Emit `text` verbatim (unquoted) as a scalar value. */
export function raw(text) {
  return { [RAW]: text };
}

export function toYaml(value) {
  return lines(value).join('\n') + '\n';
}

function isRaw(v) {
  return v !== null && typeof v === 'object' && RAW in v;
}

function scalar(v) {
  if (isRaw(v)) return v[RAW];
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') {
    if (v.includes('#')) throw new Error(`'#' in config value ${JSON.stringify(v)} would be cut off by deepstream`);
    return JSON.stringify(v); // a JSON string is a valid YAML double-quoted scalar
  }
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new Error(`cannot write ${typeof v} as YAML`);
}

function isCollection(v) {
  return v !== null && typeof v === 'object' && !isRaw(v);
}

function key(k) {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(k) ? k : JSON.stringify(k);
}

/** Returns the value as YAML lines at indentation 0. */
function lines(value) {
  if (!isCollection(value)) return [scalar(value)];
  if (Array.isArray(value)) {
    if (value.length === 0) return ['[]'];
    return value.flatMap((item) => {
      const [first, ...rest] = lines(item);
      return [`- ${first}`, ...rest.map((l) => `  ${l}`)];
    });
  }
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return ['{}'];
  return entries.flatMap(([k, v]) => {
    const nested = isCollection(v) && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
    if (!nested) return [`${key(k)}: ${lines(v)[0]}`];
    return [`${key(k)}:`, ...lines(v).map((l) => `  ${l}`)];
  });
}
