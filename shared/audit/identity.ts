/**
 * The identity of one audit.k8s.io Event line (its top-level `auditID` and `stage`), exactly as
 * `JSON.parse` of the line would give them, without building the object.
 *
 * Why: a source reads every line of the audit log, and `JSON.parse` of a ~1 KB Event builds a
 * tree of objects only to read two strings from it; on the audit bench that was a quarter of
 * the pipeline's main-thread time, and most of its garbage collection. This scanner checks the
 * whole line against the JSON grammar (RFC 8259, as `JSON.parse` accepts it) in one pass with
 * no allocation, and slices out the two top-level strings. Where exactness would need more
 * than a slice (an escape sequence in a top-level key or in either value) it defers to
 * `JSON.parse`, so the answer is always the one `JSON.parse` gives: `null` for a line that is
 * not a JSON object, the last of duplicate keys.
 */

/** An Event's identity: `auditID` (a non-empty string) and `stage` (only with an `auditID`). */
export interface EventIdentity {
  auditID: string | null;
  stage: string | null;
}

const NONE: EventIdentity = Object.freeze({ auditID: null, stage: null }) as EventIdentity;

/** The identity as `JSON.parse` gives it (the reference, and the path for escaped keys and values). */
export function parsedEventIdentity(line: string): EventIdentity {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return { auditID: null, stage: null };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return { auditID: null, stage: null };
  const { auditID, stage } = parsed as Record<string, unknown>;
  const id = typeof auditID === 'string' && auditID.length > 0 ? auditID : null;
  return { auditID: id, stage: id !== null && typeof stage === 'string' && stage !== '' ? stage : null };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isDigit = (c: number): boolean => c >= ZERO && c <= NINE;
const isHex = (c: number): boolean =>
  (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/** Set by {@link scanString}: whether the string just scanned holds an escape sequence. */
let escaped = false;

/** The index after the JSON string starting at `i` (a quote), or -1 when it is not one. */
function scanString(s: string, i: number): number {
  escaped = false;
  const n = s.length;
  for (let j = i + 1; j < n; j++) {
    const c = s.charCodeAt(j);
    if (c === QUOTE) return j + 1;
    if (c < 0x20) return -1;
    if (c === BACKSLASH) {
      escaped = true;
      const e = s.charCodeAt(++j);
      if (e === 0x75) {
        // \uXXXX
        if (!(isHex(s.charCodeAt(j + 1)) && isHex(s.charCodeAt(j + 2)) && isHex(s.charCodeAt(j + 3))))
          return -1;
        if (!isHex(s.charCodeAt(j + 4))) return -1;
        j += 4;
      } else if (
        e !== QUOTE &&
        e !== BACKSLASH &&
        e !== 0x2f &&
        e !== 0x62 &&
        e !== 0x66 &&
        e !== 0x6e &&
        e !== 0x72 &&
        e !== 0x74
      ) {
        return -1;
      }
    }
  }
  return -1;
}

/** The index after the JSON number starting at `i`, or -1 when it is not one. */
function scanNumber(s: string, i: number): number {
  let j = i;
  if (s.charCodeAt(j) === MINUS) j++;
  const first = s.charCodeAt(j);
  if (first === ZERO) j++;
  else if (first > ZERO && first <= NINE) while (isDigit(s.charCodeAt(++j)));
  else return -1;
  if (s.charCodeAt(j) === DOT) {
    if (!isDigit(s.charCodeAt(++j))) return -1;
    while (isDigit(s.charCodeAt(++j)));
  }
  const e = s.charCodeAt(j);
  if (e === 0x65 || e === 0x45) {
    const sign = s.charCodeAt(++j);
    if (sign === 0x2b || sign === MINUS) j++;
    if (!isDigit(s.charCodeAt(j))) return -1;
    while (isDigit(s.charCodeAt(++j)));
  }
  return j;
}

/** Containers open at the scan's position: 1 object, 2 array (reused; the scan allocates nothing else). */
const stack: number[] = [];

/** What the top-level key just scanned is: 0 another key, 1 `auditID`, 2 `stage`. */
function topKey(s: string, start: number, end: number): number {
  const length = end - start - 2;
  if (length === 7 && s.startsWith('auditID', start + 1)) return 1;
  if (length === 5 && s.startsWith('stage', start + 1)) return 2;
  return 0;
}

/**
 * The `auditID` and `stage` of an audit Event line: what `JSON.parse` of the line gives (see
 * the module comment). `null` fields for a line that is not a JSON object or lacks them.
 */
export function eventIdentity(line: string): EventIdentity {
  const s = line;
  const n = s.length;
  let i = 0;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  if (s.charCodeAt(i) !== LBRACE) return NONE;
  // Top-level `auditID` / `stage` values: [start, end) of the string without quotes; -1 when
  // the last such key had a value that is not a string; -2 when absent.
  let idStart = -2;
  let idEnd = -2;
  let stageStart = -2;
  let stageEnd = -2;
  stack.length = 0;
  // `expect`: 0 a value, 1 a key (or `}` right after `{`), 2 what follows a value.
  let expect = 1;
  let key = 0;
  stack.push(1);
  i++;
  for (;;) {
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i >= n) return NONE;
    const c = s.charCodeAt(i);
    if (expect === 1) {
      if (c === RBRACE) {
        // Only right after `{`: a `,` is followed by a key (expect 3 below).
        stack.pop();
        i++;
        if (stack.length === 0) break;
        expect = 2;
        continue;
      }
      expect = 3;
    }
    if (expect === 3) {
      if (c !== QUOTE) return NONE;
      const end = scanString(s, i);
      if (end < 0) return NONE;
      key = stack.length === 1 ? topKey(s, i, end) : 0;
      // An escaped top-level key might spell `auditID` or `stage`: JSON.parse decides.
      if (escaped && stack.length === 1) return parsedEventIdentity(line);
      i = end;
      while (i < n && isWs(s.charCodeAt(i))) i++;
      if (s.charCodeAt(i) !== COLON) return NONE;
      i++;
      expect = 0;
      continue;
    }
    if (expect === 0) {
      const top = stack.length === 1 ? key : 0;
      key = 0;
      if (c === QUOTE) {
        const end = scanString(s, i);
        if (end < 0) return NONE;
        if (top !== 0) {
          if (escaped) return parsedEventIdentity(line);
          if (top === 1) {
            idStart = i + 1;
            idEnd = end - 1;
          } else {
            stageStart = i + 1;
            stageEnd = end - 1;
          }
        }
        i = end;
        expect = 2;
        continue;
      }
      if (top === 1) idStart = idEnd = -1;
      else if (top === 2) stageStart = stageEnd = -1;
      if (c === LBRACE) {
        stack.push(1);
        i++;
        expect = 1;
        continue;
      }
      if (c === LBRACKET) {
        i++;
        while (i < n && isWs(s.charCodeAt(i))) i++;
        if (s.charCodeAt(i) === RBRACKET) {
          i++;
          expect = 2;
        } else {
          stack.push(2);
          expect = 0;
        }
        continue;
      }
      if (c === 0x74 ? s.startsWith('true', i) : c === 0x6e ? s.startsWith('null', i) : false) {
        i += 4;
      } else if (c === 0x66 && s.startsWith('false', i)) {
        i += 5;
      } else {
        const end = scanNumber(s, i);
        if (end < 0) return NONE;
        i = end;
      }
      expect = 2;
      continue;
    }
    // expect === 2: after a value, inside the container on top of the stack.
    const container = stack[stack.length - 1];
    if (c === COMMA) {
      i++;
      expect = container === 1 ? 3 : 0;
      continue;
    }
    if (c === (container === 1 ? RBRACE : RBRACKET)) {
      stack.pop();
      i++;
      if (stack.length === 0) break;
      continue;
    }
    return NONE;
  }
  while (i < n && isWs(s.charCodeAt(i))) i++;
  if (i !== n) return NONE;
  const auditID = idStart >= 0 && idEnd > idStart ? s.slice(idStart, idEnd) : null;
  const stage =
    auditID !== null && stageStart >= 0 && stageEnd > stageStart ? s.slice(stageStart, stageEnd) : null;
  return { auditID, stage };
}
