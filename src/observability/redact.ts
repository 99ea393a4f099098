/**
 * Masks credentials in text before it reaches a log line or an error message.
 *
 * Guarantees: the password in any `scheme://user:password@host` inside the text is replaced by
 * `***` (user and host stay, they help debugging); a `password=...` key/value pair (libpq's
 * keyword form, or a query parameter) is masked the same way.
 *
 * Does not give: detection of secrets in other shapes (tokens in free text, headers). Code must
 * still not log secrets on purpose; this is the net under that rule, not the rule.
 */

// user part: anything up to ':' without '/', '@' or whitespace; password: up to the last '@' before the host.
const urlCredentials = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@"']*:)[^\s"']*@/gi;
const passwordPair = /\b(password|passwd|pwd)=([^\s&;"']+)/gi;

export function redactCredentials(text: string): string {
  return text.replace(urlCredentials, '$1***@').replace(passwordPair, '$1=***');
}
