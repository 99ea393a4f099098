// Classifies a failed Kubernetes API call once, at the I/O boundary, so that callers branch on a
// kind instead of on HTTP codes, message texts and error shapes.
//
// Understood shapes:
// - client-node's ApiException: `.code` is the HTTP status, `.body` the raw response text (or
//   undefined for 401). The body, when it is a metav1.Status, gives `reason`, `message` and
//   `details.causes`.
// - client-node's Watch errors: an Error with a numeric `.statusCode`.
// - Network failures, found anywhere in the `cause` chain (and in an AggregateError's list):
//   Node socket error codes (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...), undici's UND_ERR_*
//   codes, "fetch failed", "socket hang up", "other side closed", "terminated", and a
//   TimeoutError: undici's, AbortSignal.timeout's, and the RequestTimeoutError with which our API
//   clients end a request past its deadline (../observability/api-requests.ts), whether it was
//   connecting, awaiting headers or reading the body. They are all `Transient`: the request may
//   or may not have taken effect, so only an idempotent or preconditioned retry is safe.
//
// Kinds by HTTP status: 404 NotFound; 409 AlreadyExists when the Status reason says so, else
// Conflict; 410 Gone; 403 Forbidden; 400 and 422 Invalid; 408, 429, 500, 502, 503, 504
// Transient; anything else (including 401) Unknown. An abort by the caller (AbortError) is
// Unknown: it is not a failure of the API server, and retrying it is the caller's decision.
//
// It never throws, whatever it is given.

export type KubeErrorKind =
  'NotFound' | 'AlreadyExists' | 'Conflict' | 'Gone' | 'Forbidden' | 'Invalid' | 'Transient' | 'Unknown';

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface KubeError {
  kind: KubeErrorKind;
  /** The HTTP status, when there was a response. */
  code?: number;
  message: string;
  /** The Status reason (e.g. "AlreadyExists", "Conflict", "Expired"), or a network error code. */
  reason?: string;
  /** `details.causes` of the Status, e.g. which fields were invalid. */
  causes?: StatusCause[];
}

const TRANSIENT_HTTP = new Set([408, 429, 500, 502, 503, 504]);

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

const NETWORK_MESSAGES = [/^fetch failed$/i, /socket hang up/i, /other side closed/i, /^terminated$/i];

export function classify(err: unknown): KubeError {
  const status = httpStatus(err);
  if (status !== undefined) return fromHttp(status, bodyOf(err), messageOf(err));
  const network = findNetworkError(err, 0);
  if (network !== undefined) {
    const top = messageOf(err);
    const message = network.message === top || top === '' ? network.message : `${top}: ${network.message}`;
    return {
      kind: 'Transient',
      message,
      ...(network.reason === undefined ? {} : { reason: network.reason }),
    };
  }
  return { kind: 'Unknown', message: messageOf(err) || String(err) };
}

function fromHttp(code: number, body: unknown, errMessage: string): KubeError {
  const s = parseStatus(body);
  const reason = s.reason ?? (code === 401 ? 'Unauthorized' : undefined);
  const bodyText = typeof body === 'string' ? body.trim() : '';
  // ApiException's own message repeats the body and the headers: useless to a reader. A watch
  // error's message is the HTTP status text.
  const ownMessage = errMessage.startsWith('HTTP-Code:') ? '' : errMessage;
  const detail = s.message ?? (bodyText || ownMessage || reason);
  const message =
    s.message ??
    (detail !== undefined && detail !== '' ? `HTTP ${code}: ${truncate(detail)}` : `HTTP ${code}`);
  const result: KubeError = { kind: kindOf(code, reason), code, message };
  if (reason !== undefined) result.reason = reason;
  if (s.causes !== undefined) result.causes = s.causes;
  return result;
}

function kindOf(code: number, reason: string | undefined): KubeErrorKind {
  switch (code) {
    case 404:
      return 'NotFound';
    case 409:
      return reason === 'AlreadyExists' ? 'AlreadyExists' : 'Conflict';
    case 410:
      return 'Gone';
    case 403:
      return 'Forbidden';
    case 400:
    case 422:
      return 'Invalid';
    default:
      return TRANSIENT_HTTP.has(code) ? 'Transient' : 'Unknown';
  }
}

function httpStatus(err: unknown): number | undefined {
  if (!isObject(err)) return undefined;
  for (const field of ['code', 'statusCode'] as const) {
    const v = err[field];
    if (typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599) return v;
  }
  return undefined;
}

function bodyOf(err: unknown): unknown {
  return isObject(err) ? err['body'] : undefined;
}

interface ParsedStatus {
  reason?: string;
  message?: string;
  causes?: StatusCause[];
}

function parseStatus(body: unknown): ParsedStatus {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return {};
    }
  }
  if (!isObject(value)) return {};
  const out: ParsedStatus = {};
  const reason = nonEmptyString(value['reason']);
  if (reason !== undefined) out.reason = reason;
  const message = nonEmptyString(value['message']);
  if (message !== undefined) out.message = message;
  const details = value['details'];
  if (isObject(details) && Array.isArray(details['causes'])) {
    const causes: StatusCause[] = [];
    for (const c of details['causes'] as unknown[]) {
      if (!isObject(c)) continue;
      const cause: StatusCause = {};
      const r = nonEmptyString(c['reason']);
      const m = nonEmptyString(c['message']);
      const f = nonEmptyString(c['field']);
      if (r !== undefined) cause.reason = r;
      if (m !== undefined) cause.message = m;
      if (f !== undefined) cause.field = f;
      causes.push(cause);
    }
    if (causes.length > 0) out.causes = causes;
  }
  return out;
}

function findNetworkError(err: unknown, depth: number): { message: string; reason?: string } | undefined {
  if (depth > 8 || !isObject(err)) return undefined;
  const code = err['code'];
  const message = messageOf(err);
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return { message: message || code, reason: code };
  if (err['name'] === 'TimeoutError') return { message: message || 'timed out', reason: 'TimeoutError' };
  // The innermost cause says most ("connect ECONNREFUSED 127.0.0.1:6443" under "fetch failed").
  const inner = findNetworkError(err['cause'], depth + 1);
  if (inner !== undefined) return inner;
  const errors = err['errors'];
  if (Array.isArray(errors)) {
    for (const e of errors as unknown[]) {
      const found = findNetworkError(e, depth + 1);
      if (found !== undefined) return found;
    }
  }
  if (NETWORK_MESSAGES.some((re) => re.test(message))) return { message };
  return undefined;
}

function messageOf(err: unknown): string {
  if (isObject(err) && typeof err['message'] === 'string') return err['message'];
  return typeof err === 'string' ? err : '';
}

function truncate(s: string): string {
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}
